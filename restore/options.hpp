#pragma once
#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

namespace nightjar {

struct RestoreRequest;

inline constexpr const char* kDefaultConfig = "/etc/nightjar/nightjar.json";  // read when it exists

struct RestoreCliOptions {
    std::string backup;  // manifest path, backup id, or "latest"
    std::string
        backup_dir;      // where backups are published (default: the manifest's directory, or the config's)
    std::string config;  // config file ($NIGHTJAR_CONFIG; default /etc/nightjar/nightjar.json when it exists)
    bool list = false;   // list published backups
    bool all_hosts = false;  // s3wire: with --list, every host prefix in the bucket
    bool dry_run = false;    // verify and show what would change; write nothing
    bool skip_config = false;
    bool skip_db = false;
    bool skip_redis = false;
    std::string target_dir;             // files: restore under this directory instead of the original paths
    bool clean = false;                 // replace non-empty targets
    std::string db_host;                // postgres: restore to this host instead of the recorded one
    int db_port = 0;                    // postgres: ... and this port
    std::string db_user;                // postgres: connect as this role
    std::vector<std::string> db_names;  // postgres: OLD=NEW renames
    int jobs = 0;                       // postgres: pg_restore jobs (0 = one per core, at most 4)
    bool skip_globals = false;          // postgres: leave roles and tablespaces alone
    std::vector<std::string> dbs;       // postgres: --db NAME, the databases to restore (empty = all)
    std::string globals;         // postgres: "" (default rule), "create" or "replace" (--globals[=…])
    bool allow_special = false;  // files: restore FIFOs, devices and sockets the manifest declares
    bool json = false;           // one JSON summary on stdout
    bool quiet = false;
    bool redis_flush = false;    // redis live mode: empty the target first
    bool redis_merge = false;    // redis live mode: load into a non-empty target, keeping its other keys
    bool force = false;          // overwrite an existing output file (redis file mode)
    std::string redis_mode;      // "live" or "file"; default: file when --redis-rdb-path is given, else live
    std::string redis_rdb_path;  // redis file mode: where to write the RDB
    std::string redis_host;      // redis live mode target (default: the endpoint recorded in the manifest)
    int redis_port = 0;          // redis live mode target port when > 0
    std::string cdc = "auto";    // cdc (issue 18): --cdc=replay|reanchor|none; auto: cdc.restore and defaults

    std::string log_file;             // also append log lines here
    std::string log_format = "text";  // "text" or "json" (one object per line)
    bool allow_unsigned = false;      // accept an encrypted backup whose index is not signed (legacy)

    // `nightjar-restore drill <backup-id|latest|random>` (run/drill): set when that subcommand is given.
    CLI::App* drill = nullptr;
    std::string drill_backup;  // backup id, "latest" or "random"

    void add_to(CLI::App& app);
    // The config file to read: --config, else $NIGHTJAR_CONFIG, else /etc/nightjar/nightjar.json when it
    // exists, else none ("").
    std::string config_file() const;
    std::vector<std::string> skipped_kinds() const;
    // The flags as the restore run reads them (Kind::Usage for a --db-name that is not OLD=NEW).
    RestoreRequest to_request(const std::filesystem::path& backup_dir) const;
};

}  // namespace nightjar
