#pragma once
// What a backup run reports, typed, filled by the phases as they go (run/backup_run.hpp), and rendered once
// each way: the summary log lines, the --json document, the metrics textfile, the monitoring ping's body.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/run/monitoring.hpp"

namespace nightjar {

// One component of the run.
struct ComponentRunReport {
    std::string kind;                // "files", "postgres", "redis"
    std::string status = "ok";       // "ok" or "failed"
    std::uint64_t stored_bytes = 0;  // bytes its artifacts take in the backup dir
    double seconds = 0;              // wall time of its dump (rounded for display)
    std::string error = "";          // why it failed ("" when ok)
};

struct RunReport {
    std::string backup_dir;                              // where the backup goes
    std::string id = "";                                 // the backup id, once chosen
    std::vector<ComponentRunReport> components = {};     // in run order
    std::optional<nlohmann::json> cdc = std::nullopt;    // what the run did with CDC (the manifest's record)
    std::optional<nlohmann::json> hooks = std::nullopt;  // every hook run, when hooks are configured
    std::string status = "";                             // "complete" or "partial", once published
    std::optional<std::uint64_t> stored_bytes = std::nullopt;  // the published backup's size
    std::string manifest = "";                                 // the published manifest's path
    std::optional<int> pruned = std::nullopt;                  // backups deleted by the prune after it
    std::optional<nlohmann::json> drill = std::nullopt;        // drill.after_backup: the drill report
    std::string error = "";                                    // what went wrong ("" = nothing)
    std::optional<int> exit_code = std::nullopt;               // the process exit code, once known

    // Appends to `error` ("a; b").
    void add_error(const std::string& what);
};

// --json, and the monitoring ping's body (compact).
void to_json(nlohmann::json& j, const RunReport& r);
std::string ping_body(const RunReport& r);
// "summary: postgres ok 1.2 MiB in 3.4 s", one per component.
std::vector<std::string> summary_lines(const RunReport& r);
// The metrics of a finished run (backups_kept is the caller's: it lists the repository).
RunMetrics run_metrics(const RunReport& r, std::int64_t started, std::int64_t finished);

}  // namespace nightjar
