#pragma once
// An S3 client on libcurl (SigV4 by CURLOPT_AWS_SIGV4), for AWS and S3-compatible stores (Ceph radosgw,
// MinIO, Swift s3api). One Client is safe to share between threads: each call takes a pooled curl handle.
// Every call retries with exponential backoff and full jitter on 5xx, throttling, timeouts and resets; a
// failure throws S3Error (Kind::Storage) naming the bucket/key, the HTTP status and the S3 error <Code>.
// The secret key is never logged, put in argv or in an error message.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/core/error.hpp"
#include "nightjar/io/stream.hpp"

namespace nightjar::s3 {

struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;  // never logged, printed or put in an error
    std::string session_token;      // x-amz-security-token; "" when not temporary credentials

    // The key id as given and the secret from the first line of a file (which must not be readable by
    // others). Kind::Config when the file is missing, empty or too open.
    static Credentials from_file(std::string access_key_id, const std::filesystem::path& secret_file);
    // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. Kind::Config when one of the first
    // two is missing.
    static Credentials from_env();
};

struct RetryOptions {
    int attempts = 6;                      // tries per request, the first included
    std::chrono::milliseconds base{200};   // backoff before the 2nd try; doubles each time
    std::chrono::milliseconds cap{20000};  // longest backoff; each wait is uniform in [0, backoff]
};

struct ClientOptions {
    std::string endpoint;              // "https://s3.eu-west-1.amazonaws.com" or "http://127.0.0.1:7480"
    std::string region = "us-east-1";  // signed into every request
    bool path_style = true;            // http://host/bucket/key (true) or http://bucket.host/key
    std::string ca_bundle;  // a CA file for https; "" = the system's (AWS_CA_BUNDLE is read by callers)
    RetryOptions retry{};   // what every request does on a transient failure
    std::chrono::milliseconds connect_timeout{10000};  // TCP + TLS connect
    std::chrono::seconds stall_timeout{60};  // a transfer moving < 1 byte/s this long is a timeout (retried)
    std::uint64_t bandwidth_limit = 0;       // bytes/s for all transfers of one call together; 0 = unlimited
};

struct ObjectInfo {
    std::string key;
    std::uint64_t size = 0;
    std::string etag;           // with its quotes removed; "<md5>-<parts>" for a multipart object
    std::string last_modified;  // as the server wrote it (ISO 8601 in listings, RFC 1123 from HEAD)
    std::string version_id;     // from HEAD on a versioned bucket; "" otherwise
    // From HEAD on a locked object: x-amz-object-lock-retain-until-date as the server wrote it (ISO 8601)
    // and x-amz-object-lock-mode ("COMPLIANCE"/"GOVERNANCE"); "" when the object has no retention.
    std::string lock_retain_until;
    std::string lock_mode;
};

enum class LockMode { Governance, Compliance };

struct ObjectLock {
    LockMode mode = LockMode::Compliance;
    std::chrono::system_clock::time_point retain_until;  // the object cannot be deleted before this
};

struct PutOptions {
    bool create_only = false;  // If-None-Match: *; an existing key throws ObjectExistsError
    // If-Match: <etag> (compare and swap; sent unquoted, which radosgw needs); another ETag there throws
    // PreconditionFailedError.
    std::string if_match;
    std::optional<ObjectLock> lock;  // x-amz-object-lock-mode + retain-until-date (bucket lock enabled)
    std::string content_type = "application/octet-stream";
    std::uint64_t max_speed = 0;  // bytes/s for this request; 0 = the client's bandwidth_limit
};

struct Range {
    std::uint64_t offset = 0;
    std::optional<std::uint64_t> length;  // nullopt: to the end
};

// A request body that can be read more than once (a hashing pass, then each try). Sizes are known.
class Body {
public:
    virtual ~Body() = default;
    virtual std::uint64_t size() const = 0;
    virtual std::unique_ptr<io::Reader> open() const = 0;
};

// Bytes in memory (not copied: they must outlive the call).
class MemoryBody final : public Body {
public:
    explicit MemoryBody(io::Bytes data) : data_(data) {}
    std::uint64_t size() const override { return data_.size(); }
    std::unique_ptr<io::Reader> open() const override;

private:
    io::Bytes data_;
};

// A regular file, read from the start on each open.
class FileBody final : public Body {
public:
    explicit FileBody(std::filesystem::path path);
    std::uint64_t size() const override { return size_; }
    std::unique_ptr<io::Reader> open() const override;

private:
    std::filesystem::path path_;
    std::uint64_t size_ = 0;
};

// Every failure of a call: Kind::Storage, the message naming operation, bucket/key, HTTP status (0 when
// there was no reply) and the S3 error code ("" when none).
class S3Error : public Error {
public:
    S3Error(const std::string& message, long status, std::string code)
        : Error(Kind::Storage, message), status_(status), code_(std::move(code)) {}
    long status() const noexcept { return status_; }
    const std::string& code() const noexcept { return code_; }
    bool not_found() const noexcept { return status_ == 404; }

private:
    long status_;
    std::string code_;
};

// A create-only write (If-None-Match: *) found the key already there (HTTP 412).
class ObjectExistsError final : public S3Error {
public:
    using S3Error::S3Error;
};

// A write with If-Match found another ETag there (HTTP 412): someone else rewrote the object.
class PreconditionFailedError final : public S3Error {
public:
    using S3Error::S3Error;
};

struct PartInfo {
    int number = 0;
    std::string etag;  // without quotes
    std::uint64_t size = 0;
};

struct UploadInfo {
    std::string key;
    std::string upload_id;
    std::string initiated;  // ISO 8601
};

struct ListResult {
    std::vector<ObjectInfo> objects;
    std::vector<std::string> common_prefixes;  // with a delimiter: the "directories" below prefix
};

struct ListOptions {
    std::string delimiter;  // "" = a flat listing of every key under the prefix
    int max_keys = 1000;    // per request (the listing follows continuation tokens to the end)
    bool one_page = false;  // stop after the first reply (an existence check), not at the listing's end
};

class Client {
public:
    Client(ClientOptions options, Credentials credentials);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    const ClientOptions& options() const { return options_; }

    // Returns the ETag. Content-MD5 and a signed x-amz-content-sha256 are computed from a first pass.
    std::string put_object(const std::string& bucket, const std::string& key, const Body& body,
                           const PutOptions& options = {}) const;
    // Streams the object (or a range of it) into `out` (not finished); returns the bytes written. A
    // transfer broken midway resumes from where it stopped (If-Match on the first reply's ETag). A range
    // starting at or past the end reads nothing.
    std::uint64_t get_object(const std::string& bucket, const std::string& key, io::Writer& out,
                             std::optional<Range> range = std::nullopt) const;
    // nullopt when there is no such key.
    std::optional<ObjectInfo> head_object(const std::string& bucket, const std::string& key) const;
    // Deleting a missing key succeeds (as S3 does). On a versioned (object-lock) bucket a delete without a
    // version only adds a delete marker; deleting a locked version throws (AccessDenied).
    void delete_object(const std::string& bucket, const std::string& key,
                       const std::string& version_id = "") const;
    ListResult list_objects(const std::string& bucket, const std::string& prefix,
                            const ListOptions& options = {}) const;
    void put_object_retention(const std::string& bucket, const std::string& key,
                              const ObjectLock& lock) const;
    // GetObjectRetention: the object's lock, nullopt when it has none (NoSuchObjectLockConfiguration).
    std::optional<ObjectLock> get_object_retention(const std::string& bucket, const std::string& key) const;

    // Multipart. create_multipart takes the lock (and content type) of the object to be.
    std::string create_multipart(const std::string& bucket, const std::string& key,
                                 const PutOptions& options = {}) const;
    // Returns the part's ETag; sends Content-MD5 and the signed SHA-256 of the part.
    std::string upload_part(const std::string& bucket, const std::string& key, const std::string& upload_id,
                            int part_number, io::Bytes data, std::uint64_t max_speed = 0) const;
    std::vector<PartInfo> list_parts(const std::string& bucket, const std::string& key,
                                     const std::string& upload_id) const;
    // `parts` in ascending order. A 200 reply carrying <Error> throws; create_only throws
    // ObjectExistsError when the key exists. Returns the ETag ("" when the server gives none: radosgw).
    // create_only sends If-None-Match: *, and because radosgw 16.2 ignores that header on this call (it
    // replaces the object), it HEADs the key first: a check then a write, so two uploads racing to the same
    // key within that moment can both complete there. Publish small objects (manifests) with put_object.
    std::string complete_multipart(const std::string& bucket, const std::string& key,
                                   const std::string& upload_id, const std::vector<PartInfo>& parts,
                                   bool create_only = false) const;
    void abort_multipart(const std::string& bucket, const std::string& key,
                         const std::string& upload_id) const;
    std::vector<UploadInfo> list_multipart_uploads(const std::string& bucket,
                                                   const std::string& prefix) const;

    struct Impl;

private:
    ClientOptions options_;
    std::unique_ptr<Impl> impl_;
};

// S3's URI encoding (RFC 3986 unreserved kept; '/' kept when encode_slash is false).
std::string uri_encode(std::string_view s, bool encode_slash);
// "Fri, 02 Jan 2026 ..." is not accepted for retain-until: ISO 8601 UTC with seconds, "2026-01-02T03:04:05Z".
std::string iso8601(std::chrono::system_clock::time_point t);

}  // namespace nightjar::s3
