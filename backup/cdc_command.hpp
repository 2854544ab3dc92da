#pragma once
// `nightjar-backup cdc status|pause|resume|watch`: thin CLI over the library's CDC windows and watchdog.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "options.hpp"

namespace nightjar {

struct CdcCommandOptions {
    std::string action;      // "status", "pause", "resume", "watch"; "" when no cdc subcommand was given
    bool json = false;       // status: one JSON document on stdout
    std::string window;      // pause: how long the window lasts ("40m", "2h")
    std::int64_t until = 0;  // expire-window (internal): the window's end, unix seconds
    long pausing_pid = 0;    // expire-window (internal): the `cdc pause` that started this guardian

    // Adds the `cdc` subcommand and its four subcommands. The top-level flags (--config, --backup-dir,
    // --log-file, ...) also work after them.
    void add_to(CLI::App& app);
    bool selected() const { return !action.empty(); }
};

// Runs the chosen cdc subcommand; returns the exit code. Throws nightjar::Error like run_backup.
int run_cdc_command(const CdcCommandOptions& cdc, const BackupOptions& options);

}  // namespace nightjar
