#include "nightjar/run/config.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "nightjar/core/error.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/io/fd.hpp"

namespace nightjar {

using nlohmann::json;

namespace {

// A config file larger than this is refused (real ones are a few KiB): read with a cap, so /dev/zero or a
// pipe that never ends fails fast.
constexpr std::size_t kConfigMaxBytes = 1u << 20;

files::FilesConfig parse_files(const JsonFields& f) {
    f.only({"paths", "exclude", "on_unreadable"});
    files::FilesConfig c;
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

Config parse_config_json(const json& j, const std::string& what, const std::filesystem::path& source);

}  // namespace

Config parse_config(const std::string& text, const std::filesystem::path& source) {
    std::string what = "config " + source.string();
    if (text.size() > kConfigMaxBytes)
        throw Error(Kind::Config, what + ": larger than the " + std::to_string(kConfigMaxBytes >> 20) +
                                      " MiB a config file may have: check the path given to --config");
    json j = parse_json_document(text, what, Kind::Config, {.ignore_comments = true});
    try {
        return parse_config_json(j, what, source);
    } catch (const json::exception& e) {
        throw Error(Kind::Config, what + ": " + e.what());
    }
}

namespace {

Config parse_config_json(const json& j, const std::string& what, const std::filesystem::path& source) {
    JsonFields f(j, what, Kind::Config);
    f.only({"backup_dir", "repository", "compression", "files", "retention", "monitoring", "cdc", "hooks",
            "redis", "postgres", "drill", "encryption", "parallel"});
    Config c;
    c.source = source;
    c.backup_dir = f.string_or("backup_dir", "");
    if (!c.backup_dir.empty() && !c.backup_dir.is_absolute() && !is_s3_location(c.backup_dir))
        f.fail("backup_dir",
               "expected an absolute path (a relative one resolves against the working directory, "
               "which is / under systemd), got " +
                   describe_json(c.backup_dir.string()));
    if (auto repo = f.optional_object("repository")) {
        c.repository = parse_repository_config(*repo);
        // An S3 repository is where backups go: backup_dir would name a second one.
        if (c.repository.type == "s3" && !c.backup_dir.empty())
            f.fail("backup_dir",
                   "repository.type is \"s3\": leave backup_dir out (or keep type \"local\" "
                   "and name the bucket under repository.copies)");
        if (c.repository.type == "s3") c.backup_dir = s3_location(c.repository.s3);
    }
    if (auto comp = f.optional_object("compression")) {
        comp->only({"level", "threads"});
        c.compression.level = static_cast<int>(comp->integer_or("level", 1, 19, c.compression.level));
        c.compression.threads = static_cast<int>(comp->integer_or("threads", 0, 64, c.compression.threads));
    }
    c.parallel = static_cast<int>(f.integer_or("parallel", 0, 16, c.parallel));
    if (auto files = f.optional_object("files")) c.files = parse_files(*files);
    if (auto retention = f.optional_object("retention")) c.retention = parse_retention(*retention);
    if (auto monitoring = f.optional_object("monitoring")) c.monitoring = parse_monitoring(*monitoring);
    if (auto cdc = f.optional_object("cdc")) c.cdc = cdc::parse_cdc_config(*cdc);
    if (auto hooks = f.optional_object("hooks")) c.hooks = parse_hooks_config(*hooks);
    if (auto redis = f.optional_object("redis")) c.redis = redis::parse_redis_config(*redis);
    if (auto pg = f.optional_object("postgres")) c.postgres = postgres::parse_postgres_config(*pg);
    if (auto drill = f.optional_object("drill")) c.drill = parse_drill_config(drill->raw(), what);
    if (auto enc = f.optional_object("encryption")) c.encryption = parse_encryption_config(*enc, source);
    return c;
}

}  // namespace

Config load_config(const std::filesystem::path& path) {
    // Read through the descriptor with a cap, never by the size the file claims: /dev/zero, a pipe or a
    // growing file stop at the limit.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw Error(Kind::Config, "config: cannot read " + path.string() + ": " + std::strerror(errno) +
                                      ": check the path given to --config");
    io::UniqueFd owned(fd);
    std::string text;
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            throw Error(Kind::Config, "config: cannot read " + path.string() + ": " + std::strerror(errno) +
                                          ": check the path given to --config");
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > kConfigMaxBytes)
            throw Error(Kind::Config, "config " + path.string() + ": larger than the " +
                                          std::to_string(kConfigMaxBytes >> 20) +
                                          " MiB a config file may have: check the path given to --config");
    }
    return parse_config(text, path);
}

}  // namespace nightjar
