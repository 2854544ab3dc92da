#include "nightjar/cdc/status_report.hpp"

#include <chrono>

#include "nightjar/cdc/coordinator.hpp"
#include "nightjar/cdc/kafka_connect.hpp"
#include "nightjar/cdc/state_file.hpp"
#include "nightjar/cdc/window.hpp"

namespace nightjar::cdc {

using nlohmann::json;

namespace {

// Who (according to the state files) holds `name` of the cluster `url` paused; "" when nobody.
std::string paused_by(const std::vector<std::pair<CdcPauseState, std::string>>& states,
                      const std::string& url, const std::string& name) {
    for (const auto& [s, what] : states)
        for (const auto& p : s.connectors)
            if (p.name == name && p.urls.at(0) == url) return what;
    return "";
}

}  // namespace

CdcStatusReport cdc_status(const CdcConfig& config, const std::filesystem::path& backup_dir) {
    CdcStatusReport report;
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    std::vector<std::pair<CdcPauseState, std::string>> states;
    if (auto s = read_cdc_journal(config, backup_dir)) {
        std::string what =
            s->owner == "window"
                ? (window_active(*s, now) ? "pause window until " : "pause window that ended at ") +
                      s->window_until.value_or("?")
                : "backup run" + (s->backup_id.empty() ? std::string() : " " + s->backup_id) + " (pid " +
                      std::to_string(s->pid) + ")";
        states.emplace_back(*s, what);
    }
    if (auto s = read_cdc_state(backup_dir / kCdcWatchStateFile))
        states.emplace_back(*s, "watchdog (pid " + std::to_string(s->pid) + ", the connector FAILED)");

    for (const auto& cluster : config.clusters) {
        KafkaConnectClient client(client_options(cluster));
        const std::string url = cluster.urls.at(0);
        std::vector<std::string> names = cluster.connectors;
        try {
            if (cluster.all_connectors) names = client.connectors();
        } catch (const KafkaConnectError& e) {
            report.problems.push_back("Kafka Connect " + url + " does not answer: " + e.what());
            report.lines.push_back(url + ": does not answer: " + e.what());
            report.connectors.push_back({{"cluster", url}, {"name", nullptr}, {"problem", e.what()}});
            continue;
        }
        for (const auto& name : names) {
            json j{{"cluster", url}, {"name", name}};
            std::string by = paused_by(states, url, name);
            j["paused_by"] = by.empty() ? json(nullptr) : json(by);
            std::string line = name + " (" + url + "): ";
            try {
                KafkaConnectStatus s = client.status(name);
                json sj = s.to_json();
                j["state"] = sj["state"];
                j["tasks"] = sj["tasks"];
                if (sj.contains("trace")) j["trace"] = sj["trace"];
                line += s.summary();
                if (!by.empty()) line += "; paused by nightjar: " + by;
                report.lines.push_back(line);
                if (!s.trace.empty())
                    report.lines.push_back("    connector FAILED: " + trace_first_line(s.trace));
                for (const auto& t : s.tasks)
                    if (!t.trace.empty())
                        report.lines.push_back("    task " + std::to_string(t.id) + " " + t.state + ": " +
                                               trace_first_line(t.trace));
            } catch (const KafkaConnectError& e) {
                std::string why =
                    e.status() == 404 && !e.endpoint_unsupported()
                        ? "does not exist (" + e.api_message() + "): check cdc.kafka_connect.connectors"
                        : std::string("status unknown: ") + e.what();
                j["problem"] = why;
                report.problems.push_back(name + " (" + url + ") " + why);
                report.lines.push_back(line + why + (by.empty() ? "" : "; paused by nightjar: " + by));
            }
            report.connectors.push_back(std::move(j));
        }
    }
    return report;
}

}  // namespace nightjar::cdc
