// Issue 13: the host-wide CDC journal (its path, cdc.state_dir) and what happens to a damaged one.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "nightjar/cdc/cdc_config.hpp"
#include "nightjar/cdc/kafka_connect.hpp"
#include "nightjar/cdc/state_file.hpp"
#include "nightjar/run/config.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;

TEST_CASE("the journal path depends on the clusters only, in any order", "[unit][cdc][journal]") {
    fs::path a = cdc::cdc_journal_path("/var/lib/nightjar/cdc",
                                       {{"http://w1:8083", "http://w2:8083"}, {"http://x:8083"}});
    fs::path b = cdc::cdc_journal_path("/var/lib/nightjar/cdc",
                                       {{"http://x:8083"}, {"http://w2:8083", "http://w1:8083"}});
    CHECK(a == b);
    CHECK(a.parent_path() == "/var/lib/nightjar/cdc");
    CHECK(a.extension() == ".json");
    CHECK(a.stem().string().size() == 16);
    CHECK(cdc::cdc_journal_path("/s", {{"http://other:8083"}}) !=
          cdc::cdc_journal_path("/s", {{"http://x:8083"}}));
}

TEST_CASE("cdc.state_dir: default, config, absolute only", "[unit][cdc][journal]") {
    auto parse = [](json j) {
        j["kafka_connect"] = {{"url", "http://127.0.0.1:8083"}, {"connectors", {"a"}}};
        return parse_config(json{{"backup_dir", "/b"}, {"cdc", j}}.dump(), "c.json").cdc.value();
    };
    cdc::CdcConfig c = parse(json::object());
    CHECK(c.state_dir.empty());
    if (!std::getenv("NIGHTJAR_CDC_STATE_DIR")) CHECK(cdc::cdc_state_dir(c) == cdc::kDefaultCdcStateDir);
    cdc::CdcConfig d = parse({{"state_dir", "/tmp/nj-state"}});
    CHECK(cdc::cdc_state_dir(d) == "/tmp/nj-state");
    CHECK(cdc::cdc_journal_file(d) == cdc::cdc_journal_path("/tmp/nj-state", {{"http://127.0.0.1:8083"}}));
    CHECK_THROWS_MATCHES(parse({{"state_dir", "relative/dir"}}), Error,
                         test::IsError(Kind::Config, "/cdc/state_dir: expected an absolute path"));
}

TEST_CASE("a damaged journal is CdcStateDamaged, is moved aside, and its names are salvaged",
          "[unit][cdc][journal]") {
    test::TempDir dir;
    fs::path file = dir / "abc.json";
    test::write_file(file,
                     "{\"version\": 1, \"connectors\": [{\"name\": \"orders\", \"urls\": [\"http://x\"]}, "
                     "{\"name\": \"inventory\", \"urls\": [");
    CHECK_THROWS_AS(cdc::read_cdc_state(file), cdc::CdcStateDamaged);
    test::write_file(dir / "typed.json", "{\"version\": 1, \"connectors\": [{\"name\": 7}]}");
    CHECK_THROWS_AS(cdc::read_cdc_state(dir / "typed.json"), cdc::CdcStateDamaged);
    CHECK(cdc::salvage_connector_names(file) == std::vector<std::string>{"orders", "inventory"});
    fs::path aside = cdc::quarantine_cdc_state(file, 1764633600);  // 2025-12-02T00:00:00Z
    CHECK(aside == dir / "abc.json.damaged-20251202T000000Z");
    CHECK_FALSE(fs::exists(file));
    CHECK(fs::exists(aside));
    test::write_file(file, "x");
    CHECK(cdc::quarantine_cdc_state(file, 1764633600) == dir / "abc.json.damaged-20251202T000000Z-2");
}

TEST_CASE("a request every worker refused is known never to have been sent", "[unit][cdc][journal]") {
    // Issue 13 #4: such a pause is dropped from the journal again; any answer, or a timeout, may have landed.
    cdc::KafkaConnectOptions o;
    o.urls = {"http://127.0.0.1:1", "http://127.0.0.1:2"};
    o.request_timeout = std::chrono::milliseconds(2000);
    cdc::KafkaConnectClient client(o);
    try {
        client.pause("a");
        FAIL("expected a KafkaConnectError");
    } catch (const cdc::KafkaConnectError& e) {
        CHECK(e.status() == 0);
        CHECK(e.transient());
        CHECK(e.not_sent());
    }
    cdc::KafkaConnectError answered("PUT x: 500", 500, true, "Error writing target state to Kafka");
    CHECK_FALSE(answered.not_sent());
}
