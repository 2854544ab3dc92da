#pragma once
// A small HTTP/1.1 client over libcurl for JSON REST APIs (Kafka Connect, monitoring pings). One request per
// call; transport failures are thrown, every HTTP status is returned.
#include <chrono>
#include <string>
#include <string_view>

#include "nightjar/core/error.hpp"

namespace nightjar {

struct HttpOptions {
    std::chrono::milliseconds timeout{10000};  // the whole request, connect included
    std::string user;                          // basic auth user; empty: no auth
    std::string password;                      // basic auth password (never logged)
};

struct HttpResponse {
    long status = 0;           // HTTP status code
    std::string body;          // raw body (may be empty, JSON, plain text or HTML)
    std::string content_type;  // the Content-Type header, "" when absent
};

enum class TransportFailure { ConnectionRefused, Timeout, Other };

// No HTTP response at all: refused, timed out, DNS, reset. Kind::SourceUnavailable.
class HttpTransportError : public Error {
public:
    HttpTransportError(TransportFailure failure, const std::string& message)
        : Error(Kind::SourceUnavailable, message), failure_(failure) {}
    TransportFailure failure() const noexcept { return failure_; }

private:
    TransportFailure failure_;
};

class HttpClient {
public:
    explicit HttpClient(HttpOptions options = {});
    // `method` is GET, PUT, POST, DELETE or PATCH; `body` is sent as application/json when not empty.
    HttpResponse request(std::string_view method, const std::string& url, const std::string& body = {}) const;

private:
    HttpOptions options_;
};

}  // namespace nightjar
