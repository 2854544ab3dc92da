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
