#include "run.hpp"

#include <filesystem>
#include <iostream>

#include "nightjar/run/cli_log.hpp"
#include "nightjar/run/config.hpp"
#include "nightjar/run/drill.hpp"
#include "nightjar/run/fleet.hpp"
#include "nightjar/run/repository_config.hpp"
#include "nightjar/run/restore_run.hpp"

namespace nightjar {
namespace fs = std::filesystem;

namespace {

bool is_latest(const std::string& what) {
    return what == "latest" || what == "latest-any";
}

// Where the backups are: --backup-dir, else the directory of a manifest path, else the config's backup_dir.
fs::path resolve_backup_dir(const RestoreCliOptions& o) {
    if (!o.backup_dir.empty()) return absolute_location(o.backup_dir);  // s3wire: s3:// stays as it is
    if (!o.backup.empty() && !is_latest(o.backup) && o.backup.find('/') != std::string::npos) {
        if (!fs::exists(o.backup))
            throw Error(Kind::Usage,
                        "backup not found: " + o.backup + ": no such manifest file: check the path");
        return fs::absolute(o.backup).parent_path();
    }
    if (const std::string config = o.config_file(); !config.empty()) {
        Config c = load_config(config);
        if (!c.backup_dir.empty()) return absolute_location(c.backup_dir);  // s3wire
    }
    if (!o.backup.empty() && fs::exists(o.backup)) return fs::absolute(o.backup).parent_path();
    throw Error(Kind::Usage, "which backup dir? pass --backup-dir DIR, a manifest path, or --config FILE");
}

// `nightjar-restore drill`: the library's drill with the config's backup dir and monitoring.
int run_drill_command(const RestoreCliOptions& o) {
    DrillRequest request;
    request.which = o.drill_backup;
    if (const std::string config = o.config_file(); !config.empty()) {
        Config c = load_config(config);
        request.backup_dir = c.backup_dir;
        request.config_file = config;
        request.monitoring = c.monitoring;
        if (c.drill) request.random_skip_days = c.drill->random_skip_days;
        request.encryption = c.encryption;
    }
    if (!o.backup_dir.empty()) request.backup_dir = absolute_location(o.backup_dir);  // s3:// as it is
    if (request.backup_dir.empty())
        throw Error(Kind::Usage, "drill: which backup dir? pass --backup-dir DIR or --config FILE");
    DrillReport report = run_drill(request);
    if (o.json) std::cout << report.to_json().dump(2) << std::endl;
    return report.exit_code;
}

}  // namespace

int run_restore(const RestoreCliOptions& o) {
    configure_cli_log({.quiet = o.quiet, .format = o.log_format, .file = o.log_file});
    if (o.drill && o.drill->parsed()) return run_drill_command(o);
    if (!o.list && o.backup.empty())
        throw Error(Kind::Usage, "name a backup: a manifest path, a backup id, 'latest' or 'latest-any'");
    const fs::path backup_dir = resolve_backup_dir(o);
    if (o.list && o.all_hosts) {  // s3wire
        print_host_list(list_all_hosts(backup_dir, o.config_file()), o.json, std::cout);
        return 0;
    }
    // The identities and pinned signing keys of the config's encryption section, if any.
    std::optional<EncryptionConfig> encryption;
    if (const std::string config = o.config_file(); !config.empty())
        encryption = load_config(config).encryption;
    if (o.list) {
        print_backup_list(
            list_backups(backup_dir, repository_keys(encryption, o.allow_unsigned), o.config_file()), o.json,
            std::cout);
        return 0;
    }
    RestoreRequest request = o.to_request(backup_dir);
    request.encryption = std::move(encryption);
    RestoreResult result = nightjar::run_restore(request);
    if (o.json) std::cout << nlohmann::json(result).dump(2) << std::endl;
    if (result.error) throw *result.error;
    return result.exit_code;
}

}  // namespace nightjar
