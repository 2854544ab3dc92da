#include "options.hpp"

#include <filesystem>

#include "nightjar/run/backup_run.hpp"
#include "nightjar/run/repository_config.hpp"

namespace nightjar {

void BackupOptions::add_to(CLI::App& app) {
    app.add_option("-c,--config", config, "Config file (JSON)")
        ->capture_default_str()
        ->envname("NIGHTJAR_CONFIG");
    app.add_option("--backup-dir", backup_dir,
                   "Backup directory, or s3://bucket/prefix (overrides backup_dir in the config)");
    app.add_flag("-n,--dry-run", dry_run,
                 "Validate config, sources and backup dir; print the plan; write nothing");
    app.add_flag("--skip-config", skip_config, "Do not back up configuration files");
    app.add_flag("--skip-db", skip_db, "Do not back up PostgreSQL");
    app.add_flag("--skip-redis", skip_redis, "Do not back up Redis");
    app.add_flag("--json", json, "Print a JSON summary on stdout");
    app.add_option("--compression-level", compression_level, "zstd level 1-19 (overrides the config)")
        ->check(CLI::Range(1, 19));
    app.add_flag("-q,--quiet", quiet, "Only warnings and errors on stderr");
    app.add_option("--log-file", log_file, "Also append log lines to this file");
    app.add_option("--log-format", log_format, "Log line format")
        ->check(CLI::IsMember({"text", "json"}))
        ->capture_default_str();
    app.add_flag("--prune-only", prune_only,
                 "Apply the retention policy without backing up (with --dry-run: only report)");
    app.add_flag("--prune-on-failure", prune_on_failure, "Prune even when this backup run failed");
    app.add_option("--retention-days", retention_days, "Delete backups older than N days")
        ->check(CLI::Range(1, 100000));
    app.add_option("--keep-last", keep_last, "Keep the N newest complete backups")
        ->check(CLI::Range(0, 100000));
    app.add_option("--keep-daily", keep_daily, "Keep the newest backup of each of the last N days")
        ->check(CLI::Range(0, 100000));
    app.add_option("--keep-weekly", keep_weekly, "Keep the newest backup of each of the last N ISO weeks")
        ->check(CLI::Range(0, 100000));
    app.add_option("--keep-monthly", keep_monthly, "Keep the newest backup of each of the last N months")
        ->check(CLI::Range(0, 100000));
    auto* skip = app.add_flag("--skip-cdc", skip_cdc,
                              "Back up without pausing or resuming any Kafka Connect connector");
    app.add_flag("--resume-cdc", resume_cdc,
                 "Only resume the connectors a previous run left paused (its state file), then exit")
        ->excludes(skip);
    app.add_option("--redis-host", redis_host, "Redis host (overrides redis.host in the config)");
    app.add_option("--redis-port", redis_port, "Redis port (overrides redis.port in the config)")
        ->check(CLI::Range(1, 65535));
    app.add_option("--db-host", db_host, "PostgreSQL host for every database (overrides the config)");
    app.add_option("--db-port", db_port, "PostgreSQL port (overrides the config)")
        ->check(CLI::Range(1, 65535));
    // encryption (issue 15)
    keygen = app.add_subcommand("keygen",
                                "Create an age identity file (AGE-SECRET-KEY-1..., mode 0600) and print its "
                                "public key (the age1... recipient for encryption.recipients)");
    keygen->add_option("-o,--output", keygen_output, "The identity file to create (must not exist)")
        ->required();
}

RetentionPolicy BackupOptions::retention(RetentionPolicy p) const {
    if (retention_days > 0) p.days = retention_days;
    if (keep_last >= 0) p.keep_last = keep_last;
    if (keep_daily >= 0) p.keep_daily = keep_daily;
    if (keep_weekly >= 0) p.keep_weekly = keep_weekly;
    if (keep_monthly >= 0) p.keep_monthly = keep_monthly;
    return p;
}

std::vector<std::string> BackupOptions::skipped_kinds() const {
    return nightjar::skipped_kinds(skip_config, skip_db, skip_redis);
}

BackupRequest BackupOptions::to_request(Config config) const {
    if (compression_level > 0) config.compression.level = compression_level;
    if (config.postgres) config.postgres->override_endpoint(db_host, db_port);
    if (!redis_host.empty() || redis_port > 0) {
        if (!config.redis) config.redis.emplace();
        if (!redis_host.empty()) config.redis->endpoint.host = redis_host;
        if (redis_port > 0) config.redis->endpoint.port = redis_port;
    }
    std::filesystem::path dir = !backup_dir.empty() ? std::filesystem::path(backup_dir) : config.backup_dir;
    if (dir.empty())
        throw Error(Kind::Config, "config " + config.source.string() +
                                      ": /backup_dir: required field is missing (or pass --backup-dir)");
    BackupRequest r{.config = std::move(config),
                    .backup_dir = absolute_location(dir),  // s3wire: s3://bucket/prefix stays as it is
                    .skip = skipped_kinds(),
                    .skip_cdc = skip_cdc,
                    .quiet = quiet,
                    .retention = {},
                    .prune_on_failure = prune_on_failure};
    r.retention = retention(r.config.retention);
    return r;
}

}  // namespace nightjar
