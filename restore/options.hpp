#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace nightjar {

struct RestoreCliOptions {
    std::string backup;  // manifest path, backup id, or "latest"
    std::string
        backup_dir;        // where backups are published (default: the manifest's directory, or the config's)
    std::string config;    // optional config file, read for backup_dir only
    bool list = false;     // list published backups
    bool dry_run = false;  // verify and show what would change; write nothing
    bool skip_config = false;
    bool skip_db = false;
    bool skip_redis = false;
    std::string target_dir;   // files: restore under this directory instead of the original paths
    bool clean = false;       // replace non-empty targets
    std::string db_host;      // postgres: restore to this host instead of the recorded one
    int db_port = 0;          // postgres: ... and this port
    std::string db_user;      // postgres: connect as this role
    std::vector<std::string> db_names;  // postgres: OLD=NEW renames
    int jobs = 0;                       // postgres: pg_restore jobs (0 = one per core, at most 4)
    bool skip_globals = false;          // postgres: leave roles and tablespaces alone
    bool allow_special = false;         // files: restore FIFOs, devices and sockets the manifest declares
    bool json = false;        // one JSON summary on stdout
    bool quiet = false;
    bool redis_flush = false;      // redis live mode: empty the target first
    bool force = false;            // overwrite an existing output file (redis file mode)
    std::string redis_mode;        // "live" or "file"; default: file when --redis-rdb-path is given, else live
    std::string redis_rdb_path;    // redis file mode: where to write the RDB
    std::string redis_host;        // redis live mode target (default: the config's redis section, else 127.0.0.1)
    int redis_port = 0;            // redis live mode target port when > 0

    void add_to(CLI::App& app);
    std::vector<std::string> skipped_kinds() const;
};

}  // namespace nightjar
