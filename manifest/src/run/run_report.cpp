#include "nightjar/run/run_report.hpp"

#include "nightjar/core/log.hpp"

namespace nightjar {
using nlohmann::json;

void RunReport::add_error(const std::string& what) {
    error = error.empty() ? what : error + "; " + what;
}

void to_json(json& j, const RunReport& r) {
    j = {{"backup_dir", r.backup_dir}, {"components", json::array()}};
    for (const auto& c : r.components) {
        json row{
            {"kind", c.kind}, {"status", c.status}, {"stored_bytes", c.stored_bytes}, {"seconds", c.seconds}};
        if (!c.error.empty()) row["error"] = c.error;
        j["components"].push_back(std::move(row));
    }
    if (!r.id.empty()) j["id"] = r.id;
    if (r.cdc) j["cdc"] = *r.cdc;
    if (r.hooks) j["hooks"] = *r.hooks;
    if (!r.status.empty()) j["status"] = r.status;
    if (r.stored_bytes) j["stored_bytes"] = *r.stored_bytes;
    if (!r.manifest.empty()) j["manifest"] = r.manifest;
    if (r.pruned) j["pruned"] = *r.pruned;
    if (r.drill) j["drill"] = *r.drill;
    if (!r.error.empty()) j["error"] = r.error;
    if (r.exit_code) j["exit_code"] = *r.exit_code;
}

std::string ping_body(const RunReport& r) {
    return json(r).dump();
}

std::vector<std::string> summary_lines(const RunReport& r) {
    std::vector<std::string> out;
    for (const auto& c : r.components)
        out.push_back("summary: " + c.kind + " " + c.status + " " + log::human_bytes(c.stored_bytes) +
                      " in " + log::seconds(c.seconds) + " s");
    return out;
}

RunMetrics run_metrics(const RunReport& r, std::int64_t started, std::int64_t finished) {
    RunMetrics m;
    m.finished_at = finished;
    m.duration_s = static_cast<double>(finished - started);
    m.exit_code = r.exit_code.value_or(0);
    for (const auto& c : r.components) m.component_bytes[c.kind] += c.stored_bytes;
    if (r.cdc && r.cdc->is_object() && r.cdc->contains("connectors") && (*r.cdc)["connectors"].is_array())
        for (const auto& c : (*r.cdc)["connectors"])
            if (c.is_object() && c.value("held_seconds", nlohmann::json()).is_number() &&
                c.value("name", nlohmann::json()).is_string())
                m.cdc_held_seconds[c["name"].get<std::string>()] = c["held_seconds"].get<double>();
    return m;
}

}  // namespace nightjar
