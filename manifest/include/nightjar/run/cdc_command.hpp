#pragma once
// `nightjar-backup cdc status|pause|resume|watch|expire-window` in the library: the binary maps its flags to
// a CdcCommandRequest (backup/cdc_command.cpp) and this runs the CDC windows, status and watchdog.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "nightjar/core/error.hpp"
#include "nightjar/run/config.hpp"

namespace nightjar {

struct CdcCommandRequest {
    Config config = {};                        // the loaded config (its cdc section is required)
    std::filesystem::path backup_dir = "";     // absolute; the flags' --backup-dir over the config's
    std::string action = "";                   // "status", "pause", "resume", "watch", "expire-window"
    bool json = false;                         // status: one JSON document on stdout
    std::string window = "";                   // pause: how long the window lasts ("40m", "2h")
    std::int64_t until = 0;                    // expire-window: the window's end, unix seconds
    long pausing_pid = 0;                      // expire-window: the `cdc pause` that started the guardian
    std::vector<std::string> self_flags = {};  // pause: the flags the window's guardian or timer is given
};

// Runs the action; returns the exit code, throws nightjar::Error (Kind::CdcResume when connectors may
// still be paused).
int run_cdc_command(const CdcCommandRequest& request);

}  // namespace nightjar
