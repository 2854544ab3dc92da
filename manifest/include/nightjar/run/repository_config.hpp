#pragma once
// Where backups live: a directory on disk (the default) or a prefix of an S3 bucket (`repository.type`
// "s3", or `--backup-dir s3://bucket/prefix`), and the copies a run ships once it has published (`copies`).
// open_repository() is the one place a run turns that into a Storage.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/core/json_fields.hpp"
#include "nightjar/repo/storage.hpp"

namespace nightjar {

struct S3ObjectLockConfig {
    std::string mode = "compliance";  // "compliance" or "governance"
    int days = 0;                     // every object is locked this long from its upload; 0 = no lock
};

struct S3RepositoryConfig {
    std::string endpoint;  // http(s)://host[:port]; "" = $NIGHTJAR_S3_ENDPOINT
    std::string region;    // signed into every request; "" = $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1
    std::string bucket;    // lowercase, at least 3 characters
    std::string prefix;    // key prefix of this host's backups; "" = "<host>/"
    std::string access_key_id;  // "" = AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN
    std::filesystem::path secret_access_key_file;  // first line is the secret (not readable by others)
    std::optional<bool> path_style;                // nullopt: true, except on *.amazonaws.com
    int part_size_mib = 16;                        // first multipart part size (>= 5)
    int parallel_parts = 4;                        // parts uploading at once
    std::uint64_t bandwidth_limit = 0;             // bytes/s for one transfer ("50MiB/s"); 0 = unlimited
    S3ObjectLockConfig object_lock;                // retention on every object (lock-enabled bucket)
};

struct RepositoryConfig {
    std::string type = "local";    // "local" (backup_dir) or "s3" (the s3 fields below)
    std::string mode = "private";  // "private": dirs 0700, files 0600; "group": 0750/0640 (a backup group)
    S3RepositoryConfig s3;         // type "s3" (and the endpoint and credentials of an s3:// --backup-dir)
    std::vector<S3RepositoryConfig> copies;  // stores each published backup is copied to, in order
    int lease_stale_minutes =
        360;  // type s3: a run's lease (leases/<host>.json) older than this is taken over
};

// The `repository` section (JsonFields at /repository). Kind::Config naming the field.
RepositoryConfig parse_repository_config(const JsonFields& f);
// "50MiB/s", "800KiB/s", "1GB/s", "1000000" (bytes/s). nullopt when it is not one of those.
std::optional<std::uint64_t> parse_bandwidth(const std::string& text);

// True for "s3://bucket[/prefix]".
bool is_s3_location(const std::filesystem::path& location);
// A local backup dir made absolute; an s3:// location as it is.
std::filesystem::path absolute_location(const std::filesystem::path& location);
// The s3:// location of an S3 repository ("s3://bucket/prefix", the prefix defaulting to "<host>").
std::filesystem::path s3_location(const S3RepositoryConfig& s3);
// This machine's host name (the default key prefix of its backups).
std::string local_host_name();

// The storage at `location`: a PosixStorage (with the modes of `config.mode`) for a directory, an
// S3Storage for s3://bucket/prefix (bucket and prefix from the location; endpoint, credentials, part
// sizes, bandwidth and object lock from `config.s3`, else the environment). Kind::Config when the endpoint
// or credentials are missing. The secret is never logged.
std::unique_ptr<Storage> open_repository(const std::filesystem::path& location,
                                         const RepositoryConfig& config);
// The same, the repository section read from `config_file` when the location is s3:// and a config file is
// named (restore and listing: the binaries name the config only for that).
std::unique_ptr<Storage> open_repository(const std::filesystem::path& location,
                                         const std::filesystem::path& config_file);
// A dry run's check of an s3:// location: "" when a listing of the prefix works (logged as a plan line),
// else the problem ("repository s3://...: ..."). A local location is not probed here ("").
std::string probe_repository(const std::filesystem::path& location, const RepositoryConfig& config);
// A copy's storage (its own bucket and prefix).
std::unique_ptr<Storage> open_s3_repository(const S3RepositoryConfig& s3);

}  // namespace nightjar
