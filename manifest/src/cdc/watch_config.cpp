#include "nightjar/cdc/watch_config.hpp"

#include "nightjar/core/json_fields.hpp"

namespace nightjar::cdc {

WatchConfig parse_watch_config(const JsonFields& f) {
    f.only({"check_interval_s", "probe_interval_s", "probe_timeout_s", "settle_s", "max_wait_min",
            "alert_repeat_min", "backoff", "probes", "on_alert", "ping_url"});
    WatchConfig w;
    w.check_interval_s = f.number_or("check_interval_s", 0.01, 86400, w.check_interval_s);
    w.probe_interval_s = f.number_or("probe_interval_s", 0.01, 86400, w.probe_interval_s);
    w.probe_timeout_s = f.number_or("probe_timeout_s", 0.1, 600, w.probe_timeout_s);
    w.settle_s = f.number_or("settle_s", 0, 86400, w.settle_s);
    w.max_wait_min = f.number_or("max_wait_min", 0.001, 100000, w.max_wait_min);
    w.alert_repeat_min = f.number_or("alert_repeat_min", 0.001, 100000, w.alert_repeat_min);
    if (auto b = f.optional_object("backoff")) {
        b->only({"initial_s", "max_s"});
        w.backoff.initial_s = b->number_or("initial_s", 0.01, 86400, w.backoff.initial_s);
        w.backoff.max_s = b->number_or("max_s", 0.01, 86400, w.backoff.max_s);
        if (w.backoff.max_s < w.backoff.initial_s) b->fail("max_s", "must not be less than initial_s");
    }
    if (auto probes = f.optional_object("probes"))
        for (const auto& [name, value] : probes->raw().items()) {
            if (!value.is_object())
                probes->fail(name, "expected {\"tcp\": \"host:port\"} or {\"postgres\": {...}}, got " +
                                       describe_json(value));
            w.probes[name] = parse_source_probe(probes->object(name));
        }
    w.on_alert = parse_hook_commands(f, "on_alert");
    w.ping_url = f.string_or("ping_url", "");
    while (!w.ping_url.empty() && w.ping_url.back() == '/') w.ping_url.pop_back();
    return w;
}

}  // namespace nightjar::cdc
