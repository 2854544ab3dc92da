#include "nightjar/cdc/cdc_config.hpp"

#include <cstdlib>

#include "nightjar/cdc/state_file.hpp"
#include "nightjar/core/json_fields.hpp"

namespace nightjar::cdc {

namespace {

KafkaConnectClusterConfig parse_cluster(const JsonFields& f) {
    f.only({"url", "urls", "connectors", "auth", "request_timeout_s"});
    KafkaConnectClusterConfig c;
    if (f.has("url") && f.has("urls")) f.fail("urls", "give either url or urls, not both");
    c.urls = f.has("urls") ? f.strings_or("urls", {}) : f.string_or_strings("url", {});
    if (!f.has("url") && !f.has("urls")) f.fail("url", "required field is missing");
    if (c.urls.empty()) f.fail(f.has("urls") ? "urls" : "url", "expected at least one URL");
    for (std::size_t i = 0; i < c.urls.size(); ++i) {
        std::string& u = c.urls[i];
        if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0)
            f.fail(f.raw()[f.has("urls") ? "urls" : "url"].is_array()
                       ? (f.has("urls") ? "urls/" : "url/") + std::to_string(i)
                       : std::string("url"),
                   "expected an http:// or https:// URL, got " + describe_json(u));
        while (!u.empty() && u.back() == '/') u.pop_back();
    }
    if (!f.has("connectors")) f.fail("connectors", "required field is missing (a list of names, or \"all\")");
    const auto& raw = f.raw()["connectors"];
    if (raw.is_string()) {
        if (raw.get<std::string>() != "all")
            f.fail("connectors", "expected a list of connector names or \"all\", got " + describe_json(raw));
        c.all_connectors = true;
    } else {
        c.connectors = f.strings_or("connectors", {});
        if (c.connectors.empty()) f.fail("connectors", "expected at least one connector name (or \"all\")");
        for (std::size_t i = 0; i < c.connectors.size(); ++i)
            if (c.connectors[i].empty() || c.connectors[i].find('/') != std::string::npos)
                f.fail("connectors/" + std::to_string(i),
                       "expected a connector name, got " + describe_json(c.connectors[i]));
    }
    if (auto auth = f.optional_object("auth")) {
        auth->only({"user", "password_file"});
        KafkaConnectAuth a;
        a.user = auth->string("user");
        a.password_file = auth->string("password_file");
        if (a.password_file.empty() || a.password_file[0] != '/')
            auth->fail("password_file", "expected an absolute path, got " + describe_json(a.password_file));
        c.auth = a;
    }
    c.request_timeout_s = f.number_or("request_timeout_s", 0.1, 3600, c.request_timeout_s);
    return c;
}

}  // namespace

CdcConfig parse_cdc_config(const JsonFields& f) {
    f.only({"kafka_connect", "pause_timeout_s", "resume_timeout_s", "on_pause_failure", "retry", "watch",
            "state_dir", "restore", "sink_hold", "hold", "hold_for"});
    CdcConfig c;
    if (!f.has("kafka_connect")) f.fail("kafka_connect", "required field is missing");
    const auto& kc = f.raw()["kafka_connect"];
    if (kc.is_array()) {
        if (kc.empty()) f.fail("kafka_connect", "expected at least one Kafka Connect cluster");
        for (std::size_t i = 0; i < kc.size(); ++i)
            c.clusters.push_back(parse_cluster(f.element("kafka_connect", i)));
    } else {
        c.clusters.push_back(parse_cluster(f.object("kafka_connect")));
    }
    c.pause_timeout_s = f.number_or("pause_timeout_s", 0, 86400, c.pause_timeout_s);
    c.resume_timeout_s = f.number_or("resume_timeout_s", 0, 86400, c.resume_timeout_s);
    c.on_pause_failure = f.choice("on_pause_failure", {"abort", "continue"}, c.on_pause_failure);
    c.sink_hold = f.choice("sink_hold", {"stop", "pause"}, c.sink_hold);
    if (f.has("hold")) c.hold = f.choice("hold", {"snapshot", "backup"}, "backup");
    c.hold_for = f.strings_or("hold_for", c.hold_for);
    if (c.hold_for.empty()) f.fail("hold_for", "expected at least one of \"postgres\", \"redis\"");
    for (const auto& k : c.hold_for)
        if (k != "postgres" && k != "redis")
            f.fail("hold_for", "unknown component \"" + k + "\": expected \"postgres\" or \"redis\"");
    if (auto retry = f.optional_object("retry")) {
        retry->only({"initial_backoff_s", "max_backoff_s"});
        c.retry.initial_backoff_s =
            retry->number_or("initial_backoff_s", 0.01, 60, c.retry.initial_backoff_s);
        c.retry.max_backoff_s = retry->number_or("max_backoff_s", 0.01, 600, c.retry.max_backoff_s);
        if (c.retry.max_backoff_s < c.retry.initial_backoff_s)
            retry->fail("max_backoff_s", "must not be less than initial_backoff_s");
    }
    if (auto watch = f.optional_object("watch")) c.watch = parse_watch_config(*watch);
    if (auto restore = f.optional_object("restore")) c.restore = parse_cdc_restore_config(*restore);
    c.state_dir = f.string_or("state_dir", "");
    if (!c.state_dir.empty() && c.state_dir[0] != '/')
        f.fail("state_dir", "expected an absolute path, got " + describe_json(c.state_dir));
    return c;
}

std::filesystem::path cdc_state_dir(const CdcConfig& config) {
    if (!config.state_dir.empty()) return config.state_dir;
    if (const char* env = std::getenv("NIGHTJAR_CDC_STATE_DIR"); env && *env) return env;
    return kDefaultCdcStateDir;
}

std::filesystem::path cdc_journal_file(const CdcConfig& config) {
    std::vector<std::vector<std::string>> urls;
    for (const auto& c : config.clusters) urls.push_back(c.urls);
    return cdc_journal_path(cdc_state_dir(config), urls);
}

}  // namespace nightjar::cdc
