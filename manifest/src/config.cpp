#include "nightjar/config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nightjar/error.hpp"
#include "nightjar/json_fields.hpp"

namespace nightjar {

using nlohmann::json;

namespace {

FilesConfig parse_files(const JsonFields& f) {
    f.only({"paths", "exclude", "on_unreadable"});
    FilesConfig c;
    c.paths = f.strings_or("paths", {});
    if (!f.has("paths")) f.fail("paths", "required field is missing");
    if (c.paths.empty()) f.fail("paths", "expected at least one path");
    for (std::size_t i = 0; i < c.paths.size(); ++i)
        if (c.paths[i].empty() || c.paths[i][0] != '/')
            f.fail("paths/" + std::to_string(i),
                   "expected an absolute path, got " + describe_json(c.paths[i]));
    c.exclude = f.strings_or("exclude", {});
    c.on_unreadable = f.choice("on_unreadable", {"fail", "warn"}, "fail");
    return c;
}

RetentionPolicy parse_retention(const JsonFields& f) {
    f.only({"days", "keep_last", "keep_daily", "keep_weekly", "keep_monthly"});
    RetentionPolicy p;
    if (f.has("days")) p.days = static_cast<int>(f.integer("days", 1, 100000));
    p.keep_last = static_cast<int>(f.integer_or("keep_last", 0, 100000, 0));
    p.keep_daily = static_cast<int>(f.integer_or("keep_daily", 0, 100000, 0));
    p.keep_weekly = static_cast<int>(f.integer_or("keep_weekly", 0, 100000, 0));
    p.keep_monthly = static_cast<int>(f.integer_or("keep_monthly", 0, 100000, 0));
    return p;
}

MonitoringConfig parse_monitoring(const JsonFields& f) {
    f.only({"ping_url", "metrics_file", "timeout_s"});
    MonitoringConfig m;
    m.ping_url = f.string_or("ping_url", "");
    if (!m.ping_url.empty() && m.ping_url.rfind("http://", 0) != 0 && m.ping_url.rfind("https://", 0) != 0)
        f.fail("ping_url", "expected an http:// or https:// URL, got " + describe_json(m.ping_url));
    while (!m.ping_url.empty() && m.ping_url.back() == '/') m.ping_url.pop_back();
    m.metrics_file = f.string_or("metrics_file", "");
    if (!m.metrics_file.empty() && !m.metrics_file.is_absolute())
        f.fail("metrics_file", "expected an absolute path, got " + describe_json(m.metrics_file.string()));
    m.timeout_s = static_cast<int>(f.integer_or("timeout_s", 1, 300, m.timeout_s));
    return m;
}

}  // namespace

Config parse_config(const std::string& text, const std::filesystem::path& source) {
    json j;
    std::string what = "config " + source.string();
    try {
        j = json::parse(text, nullptr, true, /*ignore_comments=*/true);
    } catch (const json::parse_error& e) {
        throw Error(Kind::Config, what + ": not valid JSON: " + e.what());
    }
    JsonFields f(j, what, Kind::Config);
    f.only({"backup_dir", "repository", "compression", "files", "retention", "monitoring", "cdc", "hooks",
            "redis", "postgres"});
    Config c;
    c.source = source;
    c.backup_dir = f.string_or("backup_dir", "");
    if (!c.backup_dir.empty() && !c.backup_dir.is_absolute())
        f.fail("backup_dir",
               "expected an absolute path (a relative one resolves against the working directory, "
               "which is / under systemd), got " +
                   describe_json(c.backup_dir.string()));
    if (auto repo = f.optional_object("repository")) {
        repo->only({"mode"});
        c.repository.mode = repo->choice("mode", {"private", "group"}, c.repository.mode);
    }
    if (auto comp = f.optional_object("compression")) {
        comp->only({"level", "threads"});
        c.compression.level = static_cast<int>(comp->integer_or("level", 1, 19, c.compression.level));
        c.compression.threads = static_cast<int>(comp->integer_or("threads", 0, 64, c.compression.threads));
    }
    if (auto files = f.optional_object("files")) c.files = parse_files(*files);
    if (auto retention = f.optional_object("retention")) c.retention = parse_retention(*retention);
    if (auto monitoring = f.optional_object("monitoring")) c.monitoring = parse_monitoring(*monitoring);
    if (auto cdc = f.optional_object("cdc")) c.cdc = parse_cdc_config(*cdc);
    if (auto hooks = f.optional_object("hooks")) c.hooks = parse_hooks_config(*hooks);
    if (auto redis = f.optional_object("redis")) c.redis = redis::parse_redis_config(*redis);
    if (auto pg = f.optional_object("postgres")) c.postgres = parse_postgres_config(*pg);
    return c;
}

Config load_config(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in)
        throw Error(Kind::Config,
                    "config: cannot read " + path.string() + ": check the path given to --config");
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_config(ss.str(), path);
}

}  // namespace nightjar
