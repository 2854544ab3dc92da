// The config keys of a faster night: "parallel" (components at once) and "cdc.hold" (how long connectors
// are held).
#include <catch2/catch.hpp>

#include "nightjar/core/error.hpp"
#include "nightjar/run/config.hpp"
#include "support/matchers.hpp"

using namespace nightjar;
using test::IsError;

TEST_CASE("config: parallel defaults to auto, takes 0-16", "[unit][run][config][parallel]") {
    CHECK(parse_config(R"({"backup_dir": "/b"})", "c.json").parallel == 0);
    CHECK(parse_config(R"({"backup_dir": "/b", "parallel": 1})", "c.json").parallel == 1);
    CHECK(parse_config(R"({"backup_dir": "/b", "parallel": 3})", "c.json").parallel == 3);
    REQUIRE_THROWS_MATCHES(parse_config(R"({"backup_dir": "/b", "parallel": 17})", "c.json"), Error,
                           IsError(Kind::Config, "/parallel"));
    REQUIRE_THROWS_MATCHES(parse_config(R"({"backup_dir": "/b", "parallel": "many"})", "c.json"), Error,
                           IsError(Kind::Config, "/parallel"));
}

TEST_CASE("config: cdc.hold is snapshot or backup, unset by default", "[unit][run][config][cdc]") {
    const std::string cdc = R"("cdc": {"kafka_connect": {"url": "http://h:8083", "connectors": ["a"]})";
    CHECK(parse_config(R"({"backup_dir": "/b", )" + cdc + "}}", "c.json").cdc->hold.empty());
    CHECK(parse_config(R"({"backup_dir": "/b", )" + cdc + R"(, "hold": "snapshot"}})", "c.json").cdc->hold ==
          "snapshot");
    CHECK(parse_config(R"({"backup_dir": "/b", )" + cdc + R"(, "hold": "backup"}})", "c.json").cdc->hold ==
          "backup");
    REQUIRE_THROWS_MATCHES(
        parse_config(R"({"backup_dir": "/b", )" + cdc + R"(, "hold": "forever"}})", "c.json"), Error,
        IsError(Kind::Config, "/cdc/hold"));
}

TEST_CASE("config: cdc.hold_for names postgres by default and takes redis too", "[unit][run][config][cdc]") {
    const std::string cdc = R"("cdc": {"kafka_connect": {"url": "http://h:8083", "connectors": ["a"]})";
    auto hold_for = [&](const std::string& extra) {
        return parse_config(R"({"backup_dir": "/b", )" + cdc + extra + "}}", "c.json").cdc->hold_for;
    };
    CHECK(hold_for("") == std::vector<std::string>{"postgres"});
    CHECK(hold_for(R"(, "hold_for": ["postgres", "redis"])") ==
          std::vector<std::string>{"postgres", "redis"});
    CHECK(hold_for(R"(, "hold_for": ["redis"])") == std::vector<std::string>{"redis"});
    REQUIRE_THROWS_MATCHES(hold_for(R"(, "hold_for": [])"), Error, IsError(Kind::Config, "/cdc/hold_for"));
    REQUIRE_THROWS_MATCHES(hold_for(R"(, "hold_for": ["files"])"), Error,
                           IsError(Kind::Config, "/cdc/hold_for"));
}
