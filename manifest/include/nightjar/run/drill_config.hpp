#pragma once
// The config's "drill" section, on its own so run/config.hpp can hold it without including the drill.
#include <nlohmann/json.hpp>
#include <string>

namespace nightjar {

// The config's "drill" section (optional; every key optional, unknown keys rejected).
struct DrillConfig {
    bool after_backup = false;  // drill each new backup right after it is published, in the same run
    int random_skip_days = 7;   // `random` picks among complete backups not drilled in this many days
};
// Parses the "drill" section; `pointer` is its JSON pointer ("/drill") for messages. Kind::Config.
DrillConfig parse_drill_config(const nlohmann::json& section, const std::string& what,
                               const std::string& pointer = "/drill");

}  // namespace nightjar
