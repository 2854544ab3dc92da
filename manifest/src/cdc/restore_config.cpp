#include "nightjar/cdc/restore_config.hpp"

#include "nightjar/core/json_fields.hpp"

namespace nightjar::cdc {

CdcRestoreConfig parse_cdc_restore_config(const JsonFields& f) {
    f.only({"connectors", "mode", "hold_timeout_s", "topic_retention_s"});
    CdcRestoreConfig c;
    c.mode = f.choice("mode", {"replay", "reanchor", "none"}, "");
    c.hold_timeout_s = f.number_or("hold_timeout_s", 1, 86400, c.hold_timeout_s);
    c.topic_retention_s = f.number_or("topic_retention_s", 0, 1e10, c.topic_retention_s);
    if (f.has("connectors")) {
        const auto& list = f.array("connectors");
        for (std::size_t i = 0; i < list.size(); ++i) {
            JsonFields e = f.element("connectors", i);
            e.only({"name", "cluster", "database", "role", "mode", "reanchor", "signal_table", "tables",
                    "drop_slot", "topic_retention_s"});
            CdcRestoreConnector r;
            r.name = e.string("name");
            if (r.name.empty() || r.name.find('/') != std::string::npos)
                e.fail("name", "expected a connector name, got " + describe_json(r.name));
            r.cluster = e.string_or("cluster", "");
            while (!r.cluster.empty() && r.cluster.back() == '/') r.cluster.pop_back();
            r.database = e.string_or("database", "");
            r.role = e.choice("role", {"sink", "source"}, "");
            r.mode = e.choice("mode", {"replay", "reanchor", "none"}, "");
            r.reanchor = e.choice("reanchor", {"reset", "signal"}, "reset");
            r.signal_table = e.string_or("signal_table", "");
            if (r.reanchor == "signal" && r.signal_table.empty())
                e.fail("signal_table",
                       "required with \"reanchor\": \"signal\" (Debezium's signal.data.collection)");
            r.tables = e.strings_or("tables", {});
            r.drop_slot = e.boolean_or("drop_slot", false);
            r.topic_retention_s = e.number_or("topic_retention_s", 0, 1e10, c.topic_retention_s);
            if (r.role == "sink" && r.mode == "reanchor")
                e.fail("mode", "reanchor applies to source connectors; a sink replays (\"replay\")");
            if (r.role == "source" && r.mode == "replay")
                e.fail("mode", "replay applies to sink connectors; a source is re-anchored (\"reanchor\")");
            c.connectors.push_back(std::move(r));
        }
    }
    return c;
}

}  // namespace nightjar::cdc
