#include "options.hpp"

namespace nightjar {

void BackupOptions::add_to(CLI::App& app) {
    app.add_option("-c,--config", config, "Config file (JSON)")->capture_default_str();
    app.add_option("--backup-dir", backup_dir, "Backup directory (overrides backup_dir in the config)");
    app.add_flag("-n,--dry-run", dry_run, "Validate config, sources and backup dir; print the plan; write nothing");
    app.add_flag("--skip-config", skip_config, "Do not back up configuration files");
    app.add_flag("--skip-db", skip_db, "Do not back up PostgreSQL");
    app.add_flag("--skip-redis", skip_redis, "Do not back up Redis");
    app.add_flag("--json", json, "Print a JSON summary on stdout");
    app.add_option("--compression-level", compression_level, "zstd level 1-19 (overrides the config)")
        ->check(CLI::Range(1, 19));
    app.add_flag("-q,--quiet", quiet, "Only warnings and errors on stderr");
    app.add_option("--log-file", log_file, "Also append log lines to this file");
    app.add_option("--db-host", db_host, "PostgreSQL host for every database (overrides the config)");
    app.add_option("--db-port", db_port, "PostgreSQL port (overrides the config)")
        ->check(CLI::Range(1, 65535));
}

std::vector<std::string> BackupOptions::skipped_kinds() const {
    std::vector<std::string> out;
    if (skip_config) out.push_back("files");
    if (skip_db) out.push_back("postgres");
    if (skip_redis) out.push_back("redis");
    return out;
}

}  // namespace nightjar
