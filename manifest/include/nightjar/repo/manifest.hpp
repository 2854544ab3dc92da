#pragma once
// The manifest: one JSON document per backup, the commit record that makes a backup exist.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/io/pipeline.hpp"

namespace nightjar {

inline constexpr int kManifestSchema = 1;
// A manifest larger than this is refused before it is parsed (real ones are a few KiB to a few MiB).
inline constexpr std::size_t kManifestMaxBytes = 64u << 20;

// One stored file of a backup.
struct Artifact {
    std::string component;                             // "files" | "postgres" | "redis" | ...
    std::string name;                                  // unique within the backup, e.g. "config", "db-appdb"
    std::string path;                                  // relative to the backup dir: "<id>/<file>"
    std::uint64_t size = 0;                            // stored bytes (compressed)
    std::string sha256;                                // of the stored bytes
    std::uint64_t content_size = 0;                    // bytes before compression
    std::string content_sha256;                        // of the bytes before compression
    std::string format;                                // "tar", "pg_dump-custom", "rdb", ...
    std::string compression;                           // "zstd" or "none" (the codec, for old readers)
    std::optional<io::PipelineSpec> pipeline;          // codec, level, cipher; absent in older manifests
    nlohmann::json source = nlohmann::json::object();  // component-specific state at capture time

    // What the stored bytes went through: `pipeline`, or for an older manifest the zstd (or no) codec that
    // `compression` names, with no cipher.
    io::PipelineSpec spec() const;
    // Records `spec` as `pipeline` and its codec as `compression`.
    void set_pipeline(const io::PipelineSpec& spec);
};

// What happened to one component in this run.
struct ComponentResult {
    std::string kind;                                   // component kind
    std::string status;                                 // "ok" | "failed" | "skipped"
    std::string error;                                  // why it failed, when it did
    nlohmann::json details = nlohmann::json::object();  // component-specific summary
};

struct Manifest {
    int schema = kManifestSchema;
    std::string id;           // backup id, "YYYYMMDD_HHMMSS[_N]"
    std::string started_at;   // RFC 3339 UTC
    std::string finished_at;  // RFC 3339 UTC
    std::string host;
    std::string nightjar_version;
    std::string status;                                 // "complete" | "partial"
    nlohmann::json options = nlohmann::json::object();  // the options the run used (skips, compression)
    std::vector<Artifact> artifacts;
    std::vector<ComponentResult> components;
    nlohmann::json cdc = nullptr;    // CDC coordination record, when CDC is configured
    nlohmann::json hooks = nullptr;  // hook runs and their exit codes, when hooks are configured

    const Artifact* find(std::string_view name) const;
    std::uint64_t stored_bytes() const;
};

// The canonical JSON with its self-digest ("manifest_sha256") filled in.
nlohmann::json to_json_with_digest(const Manifest& m);
std::string serialize(const Manifest& m);
// Strict: unknown schema or field, wrong types, unsafe paths, bad digests and an edited document
// (self-digest) throw Kind::Verification with the JSON pointer of the field. `what` names the document in
// messages. Total: any input gives a Manifest or a Kind::Verification error (size, nesting depth, bytes
// after the document, numbers out of range, NUL bytes in strings included), nothing else.
Manifest parse_manifest(std::string_view text, const std::string& what);

std::string manifest_file_name(const std::string& id);  // "manifest_<id>.json"
bool is_backup_id(std::string_view id);
// "20261125_013000" (UTC) for a time.
std::string backup_id_for(std::int64_t unix_seconds);
std::int64_t parse_backup_id_time(std::string_view id);  // unix seconds, -1 when malformed

}  // namespace nightjar
