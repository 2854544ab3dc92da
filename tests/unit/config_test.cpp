#include <catch2/catch.hpp>

#include "nightjar/config.hpp"
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
