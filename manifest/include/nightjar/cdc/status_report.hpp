#pragma once
// `nightjar-backup cdc status`: every configured connector with its state, its tasks' states, the first line
// of any trace, and whether a nightjar state file says nightjar holds it paused (a backup run, a pause window
// or the watchdog).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nightjar/cdc/cdc_config.hpp"

namespace nightjar::cdc {

struct CdcStatusReport {
    nlohmann::json connectors =
        nlohmann::json::array();        // {cluster, name, state, tasks, trace?, paused_by?, problem?}
    std::vector<std::string> lines;     // the same, for people
    std::vector<std::string> problems;  // a worker that does not answer, a missing connector
};

CdcStatusReport cdc_status(const CdcConfig& config, const std::filesystem::path& backup_dir);

}  // namespace nightjar::cdc
