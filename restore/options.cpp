#include "options.hpp"

#include <filesystem>

#include "nightjar/run/config.hpp"
#include "nightjar/run/restore_run.hpp"

namespace nightjar {

void RestoreCliOptions::add_to(CLI::App& app) {
    drill = app.add_subcommand(
        "drill",
        "Restore drill: restore a backup into throwaway servers started for it, compare the result with the "
        "expectations recorded at capture, and keep the evidence (drills/<id>/<utc>.json)");
    drill->add_option("which", drill_backup, "Backup id, 'latest' (newest complete) or 'random'")->required();
    drill->add_option("--backup-dir", backup_dir, "Backup directory (default: the config's backup_dir)");
    drill
        ->add_option("-c,--config", config,
                     "Config file, read for backup_dir, monitoring and the drill section (default: "
                     "$NIGHTJAR_CONFIG, else /etc/nightjar/nightjar.json when it exists)")
        ->envname("NIGHTJAR_CONFIG");
    drill->add_flag("--json", json, "Print the drill report as JSON on stdout");
    drill->add_flag("-q,--quiet", quiet, "Only warnings and errors on stderr");
    drill->add_option("--log-file", log_file, "Also append log lines to this file");
    drill->add_option("--log-format", log_format, "Log line format")
        ->check(CLI::IsMember({"text", "json"}))
        ->capture_default_str();
    app.add_option("backup", backup,
                   "Manifest file, backup id, 'latest' (the newest complete backup) or 'latest-any' (the "
                   "newest of any status)");
    app.add_option("--backup-dir", backup_dir,
                   "Backup directory, or s3://bucket/prefix (default: the manifest's own directory)");
    app.add_option("-c,--config", config,
                   "Config file, read for backup_dir, Redis credentials and the cdc section (default: "
                   "$NIGHTJAR_CONFIG, else /etc/nightjar/nightjar.json when it exists)")
        ->envname("NIGHTJAR_CONFIG");
    auto* list_flag = app.add_flag("-l,--list", list, "List published backups and exit");
    app.add_flag("--all-hosts", all_hosts,  // s3wire
                 "With --list on an S3 repository: every host prefix in the bucket and its last success")
        ->needs(list_flag);
    app.add_flag("-n,--dry-run", dry_run,
                 "Verify every artifact and show what a restore would change; write nothing");
    app.add_flag("--skip-config", skip_config, "Do not restore configuration files");
    app.add_flag("--skip-db", skip_db, "Do not restore PostgreSQL");
    app.add_flag("--skip-redis", skip_redis, "Do not restore Redis");
    app.add_option("--target-dir", target_dir,
                   "Restore files under this directory instead of their original paths");
    app.add_flag("--clean", clean,
                 "Replace targets that are not empty (postgres: drop and recreate the database)");
    app.add_option("--db-host", db_host, "PostgreSQL host to restore to (default: the one backed up)");
    app.add_option("--db-port", db_port, "PostgreSQL port to restore to")->check(CLI::Range(1, 65535));
    app.add_option("--db-user", db_user,
                   "PostgreSQL role to connect as (default: the one that took the backup)");
    app.add_option("--db-name", db_names,
                   "OLD=NEW: restore database OLD into NEW, leaving OLD untouched (repeatable)");
    app.add_option("--jobs", jobs, "pg_restore parallel jobs (default: one per core, at most 4)")
        ->check(CLI::Range(1, 64));
    app.add_option(
        "--db", dbs,
        "Restore only this PostgreSQL database (repeatable; default: every database of the backup)");
    auto* skip_globals_flag =
        app.add_flag("--skip-globals", skip_globals, "Do not restore PostgreSQL roles and tablespaces");
    app.add_flag("--globals{create}", globals,
                 "Restore roles and tablespaces also with --db/--db-name (create missing ones; "
                 "--globals=replace also alters existing ones)")
        ->check(CLI::IsMember({"create", "replace"}))
        ->excludes(skip_globals_flag);
    app.add_flag(
        "--allow-special", allow_special,
        "Files: restore FIFOs, devices and sockets the manifest declares (else a verification failure)");
    app.add_flag("--json", json, "Print a JSON summary on stdout");
    app.add_flag("-q,--quiet", quiet, "Only warnings and errors on stderr");
    // encryption (issue 15)
    app.add_flag("--allow-unsigned", allow_unsigned,
                 "Accept an encrypted backup whose index is not signed (legacy backups; trust whoever can "
                 "write the backup dir)");
    auto* flush = app.add_flag("--redis-flush", redis_flush,
                               "Redis live mode: empty a non-empty target first (FLUSHALL)");
    app.add_flag("--redis-merge", redis_merge,
                 "Redis live mode: load into a non-empty target, keeping its keys not in the backup")
        ->excludes(flush);
    app.add_flag("--force", force, "Overwrite an existing file (--redis-rdb-path)");
    app.add_option("--redis-mode", redis_mode, "Redis restore: live (into a running server) or file")
        ->check(CLI::IsMember({"live", "file"}));
    app.add_option("--redis-rdb-path", redis_rdb_path, "Redis file mode: write the RDB here");
    app.add_option("--redis-host", redis_host,
                   "Redis live mode: the target server's host (default: the one recorded in the manifest)");
    app.add_option("--redis-port", redis_port, "Redis live mode: the target server's port")
        ->check(CLI::Range(1, 65535));
    // cdc (issue 18) {
    app.add_option("--cdc", cdc,
                   "Kafka Connect connectors of the restored databases (the config's cdc section), held "
                   "(stop, else pause) while the restore writes: replay (sinks: set the offsets recorded in "
                   "the backup, resume: they replay every change since), reanchor (sources: reset offsets "
                   "or signal a snapshot, resume), none (touch no connector; say what is out of step). "
                   "Default: cdc.restore, else replay for sinks writing into the restored database and "
                   "resume sources as they were; with --db-name no connector unless --cdc is given")
        ->check(CLI::IsMember({"auto", "replay", "reanchor", "none"}))
        ->capture_default_str();
    // } cdc
    app.add_option("--log-file", log_file, "Also append log lines to this file");
    app.add_option("--log-format", log_format, "Log line format")
        ->check(CLI::IsMember({"text", "json"}))
        ->capture_default_str();
}

std::string RestoreCliOptions::config_file() const {
    if (!config.empty()) return config;
    std::error_code ec;
    if (std::filesystem::exists(kDefaultConfig, ec)) return kDefaultConfig;
    return "";
}

std::vector<std::string> RestoreCliOptions::skipped_kinds() const {
    return nightjar::skipped_kinds(skip_config, skip_db, skip_redis);
}

namespace {

// Roles and tablespaces are restored with the databases, except in a side-by-side or partial restore
// (--db-name, --db), where they are left alone unless --globals asks for them.
postgres::PgGlobals globals_rule(const RestoreCliOptions& o) {
    if (o.skip_globals) return postgres::PgGlobals::Skip;
    if (o.globals.empty() && (!o.dbs.empty() || !o.db_names.empty())) return postgres::PgGlobals::Skip;
    return o.globals == "replace" ? postgres::PgGlobals::Replace : postgres::PgGlobals::Create;
}

redis::RedisRestoreMode redis_mode_of(const RestoreCliOptions& o) {
    if (!o.redis_mode.empty())
        return o.redis_mode == "file" ? redis::RedisRestoreMode::File : redis::RedisRestoreMode::Live;
    return o.redis_rdb_path.empty() ? redis::RedisRestoreMode::Live : redis::RedisRestoreMode::File;
}

}  // namespace

RestoreRequest RestoreCliOptions::to_request(const std::filesystem::path& backup_dir) const {
    namespace fs = std::filesystem;
    RestoreRequest r{
        .backup_dir = backup_dir,
        .backup = backup,
        .dry_run = dry_run,
        .skip = skipped_kinds(),
        .target_root = target_dir.empty() ? std::nullopt : std::optional<fs::path>(fs::absolute(target_dir)),
        .clean = clean,
        .components = {.files = {.allow_special = allow_special},
                       .postgres = {.host = db_host,
                                    .port = db_port,
                                    .user = db_user,
                                    .rename = postgres::parse_db_renames(db_names),
                                    .databases = dbs,
                                    .jobs = jobs,
                                    .globals = globals_rule(*this)},
                       .redis = {.mode = redis_mode_of(*this),
                                 .rdb_path = redis_rdb_path.empty()
                                                 ? std::nullopt
                                                 : std::optional<fs::path>(fs::absolute(redis_rdb_path)),
                                 .force = force,
                                 .non_empty = redis_flush   ? redis::RedisNonEmpty::Flush
                                              : redis_merge ? redis::RedisNonEmpty::Merge
                                                            : redis::RedisNonEmpty::Refuse,
                                 .host = redis_host,
                                 .port = redis_port}},
        .config_file = config_file(),
        .explain_skipped_globals = !skip_globals,
        .allow_unsigned = allow_unsigned,  // encryption (issue 15)
    };
    // cdc (issue 18): the config's cdc section, when there is a config (a drill or a restore without one
    // touches no connector).
    r.cdc_mode = cdc;
    if (!r.config_file.empty()) r.cdc = load_config(r.config_file).cdc;
    return r;
}

}  // namespace nightjar
