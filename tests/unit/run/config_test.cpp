#include <catch2/catch.hpp>

#include "nightjar/repo/storage.hpp"
#include "nightjar/run/config.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using test::IsError;

TEST_CASE("config loads with defaults", "[config]") {
    Config c = parse_config(R"({"backup_dir": "/b", "files": {"paths": ["/etc/nginx"]}})", "c.json");
    CHECK(c.backup_dir == "/b");
    REQUIRE(c.files);
    CHECK(c.files->paths == std::vector<std::string>{"/etc/nginx"});
    CHECK(c.files->on_unreadable == "fail");
    CHECK(c.compression.level == 3);
}

TEST_CASE("config errors name the JSON pointer", "[config]") {
    SECTION("unknown key") {
        REQUIRE_THROWS_MATCHES(parse_config(R"({"backupdir": "/b"})", "c.json"), Error,
                               IsError(Kind::Config, "config c.json: /backupdir: unknown field"));
    }
    SECTION("wrong type") {
        REQUIRE_THROWS_MATCHES(
            parse_config(R"({"compression": {"level": "high"}})", "c.json"), Error,
            IsError(Kind::Config, "/compression/level: expected integer 1-19, got \"high\""));
    }
    SECTION("out of range") {
        REQUIRE_THROWS_MATCHES(parse_config(R"({"compression": {"level": 40}})", "c.json"), Error,
                               IsError(Kind::Config, "/compression/level: expected integer 1-19, got 40"));
    }
    SECTION("relative path") {
        REQUIRE_THROWS_MATCHES(parse_config(R"({"files": {"paths": ["etc"]}})", "c.json"), Error,
                               IsError(Kind::Config, "/files/paths/0: expected an absolute path"));
    }
    SECTION("bad choice") {
        REQUIRE_THROWS_MATCHES(
            parse_config(R"({"files": {"paths": ["/etc"], "on_unreadable": "skip"}})", "c.json"), Error,
            IsError(Kind::Config, "/files/on_unreadable: expected one of fail|warn"));
    }
    SECTION("not JSON") {
        REQUIRE_THROWS_MATCHES(parse_config("{", "c.json"), Error,
                               IsError(Kind::Config, "config c.json: not valid JSON"));
    }
    SECTION("missing file") {
        REQUIRE_THROWS_MATCHES(load_config("/nonexistent/nightjar.json"), Error,
                               IsError(Kind::Config, "cannot read /nonexistent/nightjar.json"));
    }
}

TEST_CASE("retention and monitoring sections", "[config]") {
    Config c = parse_config(R"({"retention": {"days": 30, "keep_daily": 7},
                                "monitoring": {"ping_url": "http://hc.local/ping/x/", "metrics_file": "/var/lib/m.prom"}})",
                            "c.json");
    CHECK(c.retention.days == 30);
    CHECK(c.retention.keep_daily == 7);
    CHECK(c.retention.keep_last == 0);
    CHECK(c.monitoring.ping_url == "http://hc.local/ping/x");
    CHECK(c.monitoring.metrics_file == "/var/lib/m.prom");
    REQUIRE_THROWS_MATCHES(parse_config(R"({"retention": {"days": 0}})", "c.json"), Error,
                           IsError(Kind::Config, "/retention/days: expected integer 1-100000, got 0"));
    REQUIRE_THROWS_MATCHES(
        parse_config(R"({"monitoring": {"ping_url": "ftp://x"}})", "c.json"), Error,
        IsError(Kind::Config, "/monitoring/ping_url: expected an http:// or https:// URL"));
    REQUIRE_THROWS_MATCHES(parse_config(R"({"retention": {"keep_hourly": 1}})", "c.json"), Error,
                           IsError(Kind::Config, "/retention/keep_hourly: unknown field"));
}

TEST_CASE("a relative backup_dir is a config error naming /backup_dir", "[config]") {
    REQUIRE_THROWS_MATCHES(parse_config(R"({"backup_dir": "backups"})", "c.json"), Error,
                           IsError(Kind::Config, "config c.json: /backup_dir: expected an absolute path"));
    REQUIRE_THROWS_MATCHES(parse_config(R"({"backup_dir": "./b"})", "c.json"), Error,
                           IsError(Kind::Config, "/backup_dir: expected an absolute path"));
    CHECK(parse_config(R"({"backup_dir": "/var/backups/nightjar"})", "c.json").backup_dir ==
          "/var/backups/nightjar");
}

TEST_CASE("hooks: after_publish is a stage of its own", "[config][hooks]") {
    Config c = parse_config(
        R"({"backup_dir": "/b", "hooks": {"after_publish": [{"argv": ["rclone", "copy"]}]}})", "c.json");
    REQUIRE(c.hooks.after_publish.size() == 1);
    CHECK(c.hooks.after_publish[0].argv == std::vector<std::string>{"rclone", "copy"});
    CHECK_FALSE(c.hooks.empty());
    REQUIRE_THROWS_MATCHES(parse_config(R"({"hooks": {"after_publish": [{"argv": []}]}})", "c.json"), Error,
                           IsError(Kind::Config, "/hooks/after_publish/0/argv"));
}

TEST_CASE("repository.mode: private by default, group on request, anything else refused", "[config]") {
    CHECK(parse_config(R"({"backup_dir": "/b"})", "c.json").repository.mode == "private");
    Config g = parse_config(R"({"backup_dir": "/b", "repository": {"mode": "group"}})", "c.json");
    CHECK(g.repository.mode == "group");
    CHECK(storage_modes(g.repository.mode).dir == 0750);
    CHECK(storage_modes(g.repository.mode).file == 0640);
    CHECK(storage_modes("private").dir == 0700);
    CHECK(storage_modes("private").file == 0600);
    REQUIRE_THROWS_MATCHES(parse_config(R"({"repository": {"mode": "world"}})", "c.json"), Error,
                           IsError(Kind::Config, "/repository/mode: expected one of private|group"));
    REQUIRE_THROWS_MATCHES(parse_config(R"({"repository": {"umask": 0}})", "c.json"), Error,
                           IsError(Kind::Config, "/repository/umask: unknown field"));
}
