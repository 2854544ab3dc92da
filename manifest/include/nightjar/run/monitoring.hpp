#pragma once
// Telling the outside world how the nightly run went: healthchecks-style pings and Prometheus textfile
// metrics.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "nightjar/run/config.hpp"

namespace nightjar {

// Pings `<url>/start`, `<url>` (success) and `<url>/fail` (with the summary as body). A ping that fails is
// logged as a warning and never fails the run.
class Pinger {
public:
    explicit Pinger(const MonitoringConfig& config) : config_(config) {}
    void start() const;
    void success(const std::string& summary) const;
    void failure(const std::string& summary) const;
    // `<url>/log`: an event that changes nothing (a CDC recovery notice on the backup's own check).
    void log_event(const std::string& text) const;

private:
    void ping(const std::string& suffix, const std::string& body) const;
    const MonitoringConfig& config_;
};

struct RunMetrics {
    std::int64_t finished_at = 0;                          // unix seconds
    double duration_s = 0;                                 // wall time of the run
    int exit_code = 0;                                     // 0 = success
    std::map<std::string, std::uint64_t> component_bytes;  // stored bytes per component of this run
    std::size_t backups_kept = 0;                          // published backups after pruning
    std::map<std::string, double> cdc_held_seconds;        // per connector: how long this run held it
};

// Writes the Prometheus text file atomically. nightjar_last_success_timestamp_seconds is carried over from
// the previous file when this run failed, so the alert "no success for 26 h" keeps working.
void write_metrics(const std::filesystem::path& file, const RunMetrics& metrics);
std::string render_metrics(const RunMetrics& metrics, std::int64_t last_success);
// The value of nightjar_last_success_timestamp_seconds in an existing file, or 0.
std::int64_t read_last_success(const std::filesystem::path& file);

}  // namespace nightjar
