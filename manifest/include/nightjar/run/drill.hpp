#pragma once
// Restore drills: restore one backup into throwaway servers (run/drill_servers), compare the result with the
// expectations recorded at capture time, exactly, measure the recovery time of each component and of the
// whole, and keep the evidence beside the backup (drills/<id>/<utc>.json), in the metrics and in a ping.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/io/signing.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/run/config.hpp"
#include "nightjar/run/drill_config.hpp"
#include "nightjar/run/drill_servers.hpp"

namespace nightjar {

struct DrillRequest {
    std::filesystem::path backup_dir;   // the repository: a directory or s3://bucket/prefix
    std::filesystem::path config_file;  // the endpoint and credentials of an s3:// repository ("" = none)
    std::string which = "latest";       // a backup id, "latest" (newest complete) or "random"
    int random_skip_days = 7;           // `random`: skip backups drilled (pass or fail) in the last N days
    std::uint64_t random_seed = 0;      // `random`: 0 = from the clock
    drill::ServerOptions servers =
        {};  // state dir, PostgreSQL root, redis-server (what to start is decided here)
    MonitoringConfig monitoring = {};  // metrics textfile and ping URL ("" = off)
    bool write_record = true;          // write drills/<id>/<utc>.json
    bool ping = true;                  // ping the monitoring URL (a backup run's own end ping reports it)
    const io::SigningKey* signing_key = nullptr;  // signs the record (the host's key); nullptr = unsigned
    const io::TrustedSigners* trusted_signers =
        nullptr;  // `random`: only records signed by these count as drills (nullptr or empty = any record)
    // The config's encryption section: the identity and pinned hosts an encrypted backup needs.
    std::optional<EncryptionConfig> encryption = std::nullopt;
};

struct DrillCheck {
    std::string what;  // "postgres db-app: public.t rows"
    bool ok = false;
    std::string detail;  // "expected 10, got 10"
};

struct DrillComponent {
    std::string component;  // "files" | "postgres" | "redis"
    bool ok = false;
    std::string error;        // why the restore failed (the restore's own message), "" when it succeeded
    double seconds = 0;       // recovery time: verify + restore of its artifacts
    std::uint64_t bytes = 0;  // content bytes restored
    std::uint64_t stored_bytes = 0;
    std::vector<DrillCheck> checks;
};

struct DrillReport {
    std::string backup_id;
    bool ok = false;
    std::string reason;  // the first failure, named ("postgres db-app: public.t rows: expected 10, got 9")
    int exit_code = 0;   // 0 passed; 4 verification, 7 restore or check failed, 3 servers did not start
    std::string started_at, finished_at;
    std::int64_t finished_unix = 0;
    double seconds = 0;       // total recovery time (all components, servers started and stopped excluded)
    double wall_seconds = 0;  // the whole drill
    std::uint64_t bytes = 0;
    std::vector<DrillComponent> components;
    nlohmann::json tools =
        nlohmann::json::object();  // versions: nightjar, postgres, redis-server, pg_restore
    std::string host;
    std::string record;                // drills/<id>/<utc>.json, when written
    std::string signer;                // the record's signer ("ed25519:..."), "" when unsigned
    std::vector<std::string> cleaned;  // leftovers of earlier drills removed
    nlohmann::json to_json() const;
};

// Picks the backup: an id, "latest" (newest complete) or "random" (uniform among complete backups not
// drilled in the last `skip_days` days; when every one was, the least recently drilled). Kind::Usage when
// nothing matches.
// `trusted` (when pinned): only records signed by them count as drills (repo/drill_record.hpp).
std::string select_drill_backup(const RepositoryReader& repo, const std::string& which, int skip_days,
                                std::int64_t now, std::uint64_t seed,
                                const io::TrustedSigners* trusted = nullptr);

// The whole drill. Never throws for a failing backup: the report says why (exit_code). Throws for a drill
// that cannot run at all (no backup dir, bad request).
DrillReport run_drill(const DrillRequest& request);

// Prometheus lines for a drill; the previous success time is carried over when this drill failed.
std::string render_drill_metrics(const DrillReport& report, std::int64_t last_success);
// Replaces the nightjar_drill_* lines of the metrics textfile (the backup's own lines stay), atomically.
void write_drill_metrics(const std::filesystem::path& file, const DrillReport& report);
// The lines of an existing textfile whose metric starts with `prefix` (HELP/TYPE included), for a writer
// that rewrites the file and must keep another writer's lines (write_metrics keeps "nightjar_drill_").
std::string metric_lines_with_prefix(const std::filesystem::path& file, const std::string& prefix);

}  // namespace nightjar
