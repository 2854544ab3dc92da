#pragma once
// A Storage on an S3 bucket under a key prefix: keys are the relative paths ('/' separated) after the
// prefix, a "directory" is a key prefix ending in '/'. Writes stream as multipart uploads (a short file is
// one PUT); nothing is visible under a name until finish(), an unfinished write aborts its upload, and a
// create-only write is If-None-Match: * (StorageExists when taken). No rename, no directory sync, no lock
// (capabilities all false): the repository publishes by writing its index last, create-only.
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "nightjar/repo/s3/client.hpp"
#include "nightjar/repo/s3/multipart_writer.hpp"
#include "nightjar/repo/storage.hpp"

namespace nightjar::s3 {

struct LockPolicy {
    LockMode mode = LockMode::Compliance;
    int days = 0;  // a backup's objects are locked at least this long from their upload; 0 = no lock
    bool enabled() const { return days > 0; }
};

struct S3StorageOptions {
    std::string bucket;            // lowercase, at least 3 characters
    std::string prefix;            // "host/" (a trailing '/' is added when missing); "" = the whole bucket
    MultipartOptions multipart{};  // part size, parallel parts, bandwidth (put options are set per write)
    LockPolicy lock{};             // object lock on a backup's objects (the bucket must have lock enabled)
    std::size_t read_buffer = 8u << 20;  // bytes a streaming read holds ahead of its reader at most
};

class S3Storage final : public Storage {
public:
    S3Storage(std::shared_ptr<const Client> client, S3StorageOptions options);

    StorageCapabilities capabilities() const override { return {}; }
    std::unique_ptr<io::Reader> open_read(const std::filesystem::path& rel,
                                          ReadRange range = {}) const override;
    std::unique_ptr<io::Writer> open_write(const std::filesystem::path& rel,
                                           WriteOptions options = {}) override;
    std::vector<Entry> list(const std::filesystem::path& dir) const override;
    std::vector<Entry> list_prefix(const std::string& prefix) const override;
    std::optional<Entry> stat(const std::filesystem::path& rel) const override;
    void make_dir(const std::filesystem::path&) override {}
    void rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
    void remove(const std::filesystem::path& rel) override;
    void remove_tree(const std::filesystem::path& rel) override;
    void sync_dir(const std::filesystem::path&) override {}
    std::string describe(const std::filesystem::path& rel) const override;

    const Client& client() const { return *client_; }
    const std::string& bucket() const { return options_.bucket; }
    // The key prefix ("host/", or "" for the whole bucket).
    std::string prefix() const { return key(""); }
    // The object key of a relative path (the prefix joined); Kind::Internal for an absolute path or "..".
    std::string key(const std::filesystem::path& rel) const;

    const LockPolicy& lock_policy() const { return options_.lock; }
    // With a lock policy: the retain-until of the objects of backup `id` written from now on (its
    // artifacts under <id>/, manifest_<id>.json[.age], index_<id>.json), computed by the run from the
    // retention (repo/object_lock.hpp). A backup without one is locked for lock.days from each upload.
    // Objects outside a backup (leases/, runs/, records) are never locked: they are rewritten or removed.
    void set_backup_lock(const std::string& id, std::chrono::system_clock::time_point until);
    // The lock a write of `rel` gets (nullopt: none).
    std::optional<ObjectLock> lock_for(const std::filesystem::path& rel) const;

private:
    std::shared_ptr<const Client> client_;
    S3StorageOptions options_;
    mutable std::mutex mutex_;  // backup_locks_
    std::map<std::string, std::chrono::system_clock::time_point> backup_locks_;
};

// The backup an object of a repository belongs to: "<id>/..." or manifest_<id>.json[.age] or
// index_<id>.json at the top; "" for anything else.
std::string backup_of(const std::filesystem::path& rel);

// Unix seconds of an S3 time: ISO 8601 ("2026-12-02T00:30:52.000Z", listings) or RFC 1123
// ("Wed, 02 Dec 2026 00:30:52 GMT", HEAD). 0 when it cannot be read.
std::int64_t parse_s3_time(const std::string& text);

}  // namespace nightjar::s3
