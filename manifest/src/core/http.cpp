#include "nightjar/core/http.hpp"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace nightjar {

namespace {

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::size_t append_body(char* data, std::size_t size, std::size_t n, void* user) {
    static_cast<std::string*>(user)->append(data, size * n);
    return size * n;
}

}  // namespace

HttpClient::HttpClient(HttpOptions options) : options_(std::move(options)) {
    global_init();
}

HttpResponse HttpClient::request(std::string_view method, const std::string& url,
                                 const std::string& body) const {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) throw Error(Kind::Internal, "http: curl_easy_init failed");
    CURL* h = curl.get();
    HttpResponse response;
    char errbuf[CURL_ERROR_SIZE] = {};
    std::string verb(method);
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM; our signal handlers stay ours
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.timeout.count()));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!options_.user.empty()) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, options_.user.c_str());
        curl_easy_setopt(h, CURLOPT_PASSWORD, options_.password.c_str());
    }
    curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
    if (!body.empty()) headers = curl_slist_append(headers, "Content-Type: application/json");
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(headers, curl_slist_free_all);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (verb == "GET") {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        // POSTFIELDS (even empty) sends a Content-Length, which some proxies require for PUT/POST.
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, verb.c_str());
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
        TransportFailure failure = rc == CURLE_COULDNT_CONNECT      ? TransportFailure::ConnectionRefused
                                   : rc == CURLE_OPERATION_TIMEDOUT ? TransportFailure::Timeout
                                                                    : TransportFailure::Other;
        throw HttpTransportError(failure, verb + " " + url + ": " + detail);
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
    char* type = nullptr;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type);
    if (type) response.content_type = type;
    return response;
}

}  // namespace nightjar
