#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "nightjar/run/backup_run.hpp"

namespace nightjar {

struct BackupOptions {
    std::string config = "/etc/nightjar/nightjar.json";  // the config file
    std::string backup_dir;                              // overrides config backup_dir
    bool dry_run = false;                                // validate and print the plan; write nothing
    bool skip_config = false;                            // leave out the files component
    bool skip_db = false;                                // leave out PostgreSQL
    bool skip_redis = false;                             // leave out Redis
    bool json = false;                                   // one JSON summary on stdout
    int compression_level = 0;                           // overrides config compression.level when > 0
    bool quiet = false;                                  // only warnings and errors on stderr
    std::string log_file;                                // also append log lines here
    std::string log_format = "text";                     // "text" or "json" (one object per line)
    bool prune_only = false;                             // apply retention without backing up
    bool prune_on_failure = false;                       // prune even when this run failed
    int retention_days = 0;                              // overrides retention.days when > 0
    int keep_last = -1;                                  // overrides retention.keep_last when >= 0
    int keep_daily = -1;                                 // overrides retention.keep_daily when >= 0
    int keep_weekly = -1;                                // overrides retention.keep_weekly when >= 0
    int keep_monthly = -1;                               // overrides retention.keep_monthly when >= 0
    bool skip_cdc = false;                               // back up without touching Kafka Connect connectors
    bool resume_cdc = false;                             // only resume connectors a previous run left paused
    std::string redis_host;                              // overrides redis.host (and enables Redis)
    int redis_port = 0;                                  // overrides redis.port when > 0 (and enables Redis)
    std::string db_host;                                 // overrides postgres host (every database)
    int db_port = 0;                                     // overrides postgres port when > 0
    // encryption (issue 15): `nightjar-backup keygen -o FILE`, set when that subcommand is given.
    CLI::App* keygen = nullptr;
    std::string keygen_output;  // the age identity file keygen creates

    void add_to(CLI::App& app);
    std::vector<std::string> skipped_kinds() const;
    // Flags over config: the retention policy this run applies.
    RetentionPolicy retention(RetentionPolicy from_config) const;
    // The flags over `config` (endpoints, compression, backup dir, retention) as the backup run reads them.
    BackupRequest to_request(Config config) const;
};

}  // namespace nightjar
