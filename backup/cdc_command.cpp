#include "cdc_command.hpp"

#include <filesystem>

#include "nightjar/run/cdc_command.hpp"
#include "nightjar/run/cli_log.hpp"
#include "nightjar/run/config.hpp"

namespace nightjar {

namespace fs = std::filesystem;

void CdcCommandOptions::add_to(CLI::App& app) {
    CLI::App* cdc =
        app.add_subcommand("cdc", "Kafka Connect connectors: status, backup windows, the watchdog");
    cdc->require_subcommand(1);
    cdc->fallthrough();
    CLI::App* status = cdc->add_subcommand("status",
                                           "Every configured connector's state, its tasks, traces, "
                                           "and whether nightjar holds it paused");
    status->add_flag("--json", json, "Print one JSON document on stdout");
    CLI::App* pause = cdc->add_subcommand(
        "pause", "Pause the connectors for a backup nightjar does not run, for at most --window");
    pause->add_option("--window", window, "How long the window lasts at most (e.g. 40m, 2h, 1h30m)")
        ->required();
    CLI::App* resume =
        cdc->add_subcommand("resume", "End the window: resume exactly what `cdc pause` paused");
    CLI::App* watch = cdc->add_subcommand(
        "watch", "Run the watchdog: pause FAILED connectors, probe their source, restart and resume them");
    // Internal: the detached guardian `cdc pause --window` starts where systemd does not run the host.
    CLI::App* expire =
        cdc->add_subcommand("expire-window", "Resume a pause window's connectors when it ends");
    expire->group("");
    expire->add_option("--until", until, "The window's end (unix seconds)")->required();
    expire->add_option("--pausing-pid", pausing_pid, "The cdc pause process that started this guardian");
    for (CLI::App* sub : {status, pause, resume, watch, expire}) {
        sub->fallthrough();
        sub->callback([this, sub] { action = sub->get_name(); });
    }
}

namespace {

// The flags a process this command starts (the window's guardian or timer) passes on, paths made absolute.
std::vector<std::string> common_flags(const BackupOptions& options) {
    std::vector<std::string> flags{"--config", fs::absolute(options.config).string()};
    if (!options.backup_dir.empty())
        flags.insert(flags.end(), {"--backup-dir", fs::absolute(options.backup_dir).string()});
    if (!options.log_file.empty())
        flags.insert(flags.end(), {"--log-file", fs::absolute(options.log_file).string()});
    return flags;
}

}  // namespace

int run_cdc_command(const CdcCommandOptions& cdc, const BackupOptions& options) {
    configure_cli_log({.quiet = options.quiet, .format = options.log_format, .file = options.log_file});
    Config config = load_config(options.config);
    if (!config.cdc)
        throw Error(Kind::Config,
                    "config " + config.source.string() +
                        ": /cdc: required field is missing (nightjar-backup cdc needs the Kafka "
                        "Connect workers and connectors)");
    fs::path dir = !options.backup_dir.empty() ? fs::path(options.backup_dir) : config.backup_dir;
    if (dir.empty())
        throw Error(Kind::Config,
                    "config " + config.source.string() +
                        ": /backup_dir: required field is missing (or pass --backup-dir): the cdc "
                        "state file lives there");
    return run_cdc_command(CdcCommandRequest{.config = std::move(config),
                                             .backup_dir = fs::absolute(dir),
                                             .action = cdc.action,
                                             .json = cdc.json,
                                             .window = cdc.window,
                                             .until = cdc.until,
                                             .pausing_pid = cdc.pausing_pid,
                                             .self_flags = common_flags(options)});
}

}  // namespace nightjar
