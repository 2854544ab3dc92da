// What a restore does with connectors (cdc/restore_hold), against the Kafka Connect emulator: the client's
// stop/offsets/feature detection, the cdc.restore config, holding with the journal, replay, reanchor, none,
// the 3.5 manual steps, the dry-run description and the report.
#include <catch2/catch.hpp>

#include "nightjar/cdc/cdc_config.hpp"
#include "nightjar/cdc/coordinator.hpp"
#include "nightjar/cdc/kafka_connect.hpp"
#include "nightjar/cdc/restore_hold.hpp"
#include "nightjar/cdc/state_file.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/run/config.hpp"
#include "support/kafka_connect_emulator.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using nlohmann::json;
using test::IsError;
using test::KafkaConnectEmulator;

namespace {

cdc::CdcConfig cdc_for(const KafkaConnectEmulator& emu, const test::TempDir& dir,
                       std::vector<std::string> names) {
    cdc::CdcConfig c;
    cdc::KafkaConnectClusterConfig k;
    k.urls = {emu.url()};
    k.connectors = std::move(names);
    k.request_timeout_s = 5;
    c.clusters = {k};
    c.pause_timeout_s = 10;
    c.resume_timeout_s = 10;
    c.retry.initial_backoff_s = 0.05;
    c.retry.max_backoff_s = 0.2;
    c.state_dir = (dir / "cdc").string();
    return c;
}

cdc::KafkaConnectClient client_for(const KafkaConnectEmulator& emu) {
    return cdc::KafkaConnectClient(cdc::KafkaConnectOptions{
        .urls = {emu.url()}, .user = "", .password = "", .request_timeout = std::chrono::seconds(5)});
}

json sink_offsets(const std::string& topic, int offset) {
    return json::array({{{"partition", {{"kafka_topic", topic}, {"kafka_partition", 0}}},
                         {"offset", {{"kafka_offset", offset}}}}});
}

void add_sink(const KafkaConnectEmulator& emu, const std::string& name, const json& offsets,
              const json& config = json::object()) {
    json c = config;
    if (!c.contains("topics")) c["topics"] = name + ".rows";
    emu.control("POST", "connectors",
                {{"name", name}, {"type", "sink"}, {"config", c}, {"offsets", offsets}});
}

json manifest_cdc(const KafkaConnectEmulator& emu, const std::string& name, const json& offsets) {
    return {{"connectors", json::array({{{"cluster", emu.url()}, {"name", name}, {"offsets", offsets}}})}};
}

cdc::CdcRestoreConfig restore_config(const std::string& text) {
    json j = json::parse(text);
    return cdc::parse_cdc_restore_config(JsonFields(j, "config", Kind::Config, "/cdc/restore"));
}

bool journal_names(const cdc::CdcConfig& c, const std::string& name) {
    auto s = cdc::read_cdc_state(cdc::cdc_journal_file(c));
    if (!s) return false;
    for (const auto& p : s->connectors)
        if (p.name == name) return true;
    return false;
}

}  // namespace

TEST_CASE("kafka connect client: stop, alter and reset offsets, info", "[cdc][restore-hold]") {
    KafkaConnectEmulator emu({.connectors = {}, .tasks = 1, .transition_delay_s = 0});
    add_sink(emu, "s1", json::array());
    auto client = client_for(emu);
    auto info = client.info("s1");
    CHECK(info.type == "sink");
    CHECK(info.config_value("insert.mode") == "upsert");
    CHECK(client.status("s1").type == "sink");
    // Offsets can be altered only when STOPPED: the worker's 400 text comes through.
    REQUIRE_THROWS_MATCHES(client.alter_offsets("s1", sink_offsets("s1.rows", 3)), cdc::KafkaConnectError,
                           IsError(Kind::SourceUnavailable, "Connectors must be in the STOPPED state"));
    client.stop("s1");
    CHECK(emu.connector_state("s1") == "STOPPED");
    CHECK(client.alter_offsets("s1", sink_offsets("s1.rows", 3)) ==
          "The offsets for this connector have been altered successfully");
    CHECK(*client.offsets("s1") == sink_offsets("s1.rows", 3));
    CHECK(client.reset_offsets("s1") == "The offsets for this connector have been reset successfully");
    CHECK(*client.offsets("s1") == json::array());
}

TEST_CASE("kafka connect client: features by probing, not by version", "[cdc][restore-hold]") {
    KafkaConnectEmulator emu({.connectors = {"src"}, .tasks = 1, .transition_delay_s = 0});
    auto client = client_for(emu);
    SECTION("3.6") {
        emu.control("POST", "config", {{"profile", "3.6"}, {"version", "7.5.0-ccs"}});  // a vendor string
        auto f = client.features("src");
        CHECK(f.stop);
        CHECK(f.offsets_read);
        CHECK(f.offsets_write);
        CHECK_THAT(f.evidence, Catch::Contains("Partitions / offsets need to be provided"));
    }
    SECTION("3.5") {
        emu.control("POST", "config", {{"profile", "3.5"}, {"version", "9.9.9"}});  // the version lies
        auto f = client.features("src");
        CHECK(f.stop);
        CHECK(f.offsets_read);
        CHECK_FALSE(f.offsets_write);
        CHECK_THAT(f.evidence, Catch::Contains("405"));
    }
    SECTION("3.4") {
        emu.control("POST", "config", {{"profile", "3.4"}});
        auto f = client.features("src");
        CHECK_FALSE(f.stop);
        CHECK_FALSE(f.offsets_read);
        CHECK_FALSE(f.offsets_write);
    }
    // The probe changed nothing: still RUNNING with its offsets.
    CHECK(emu.connector_state("src") == "RUNNING");
    CHECK(emu.count("PATCH", "/connectors/src/offsets") <= 1);
    CHECK(emu.count("PUT", "/connectors/src/stop") == 0);
}

TEST_CASE("cdc.restore config: parsed with cdc, errors name the pointer", "[cdc][restore-hold][config]") {
    Config c = parse_config(R"({"backup_dir": "/b", "cdc": {"kafka_connect": {"url": "http://h:8083",
        "connectors": ["jdbc-sink", "pg-src"]}, "sink_hold": "pause",
        "restore": {"mode": "none", "hold_timeout_s": 30, "topic_retention_s": 604800, "connectors": [
          {"name": "jdbc-sink", "database": "app", "role": "sink", "mode": "replay"},
          {"name": "pg-src", "database": "app", "role": "source", "reanchor": "signal",
           "signal_table": "public.debezium_signal", "tables": ["public.items"], "drop_slot": true}]}}})",
                            "c.json");
    REQUIRE(c.cdc);
    CHECK(c.cdc->sink_hold == "pause");
    const auto& r = c.cdc->restore;
    CHECK(r.mode == "none");
    CHECK(r.hold_timeout_s == 30);
    REQUIRE(r.connectors.size() == 2);
    CHECK(r.connectors[0].role == "sink");
    CHECK(r.connectors[0].mode == "replay");
    CHECK(r.connectors[0].topic_retention_s == 604800);
    CHECK(r.connectors[1].reanchor == "signal");
    CHECK(r.connectors[1].signal_table == "public.debezium_signal");
    CHECK(r.connectors[1].tables == std::vector<std::string>{"public.items"});
    CHECK(r.connectors[1].drop_slot);
    CHECK(parse_config(R"({"backup_dir": "/b", "cdc": {"kafka_connect": {"url": "http://h",
        "connectors": ["a"]}}})",
                       "c.json")
              .cdc->sink_hold == "stop");

    REQUIRE_THROWS_MATCHES(restore_config(R"({"connectors": [{"name": "a", "mode": "rewind"}]})"), Error,
                           IsError(Kind::Config, "/cdc/restore/connectors/0/mode: expected one of"));
    REQUIRE_THROWS_MATCHES(
        restore_config(R"({"connectors": [{"name": "a", "role": "sink", "mode": "reanchor"}]})"), Error,
        IsError(Kind::Config, "reanchor applies to source connectors"));
    REQUIRE_THROWS_MATCHES(restore_config(R"({"connectors": [{"name": "a", "reanchor": "signal"}]})"), Error,
                           IsError(Kind::Config, "/cdc/restore/connectors/0/signal_table: required"));
    REQUIRE_THROWS_MATCHES(restore_config(R"({"modes": "none"})"), Error, IsError(Kind::Config, "modes"));
}

TEST_CASE("restore hold: a sink is stopped, journalled, replayed to the backup's offsets and resumed",
          "[cdc][restore-hold]") {
    test::TempDir dir;
    KafkaConnectEmulator emu({.connectors = {}, .tasks = 2, .transition_delay_s = 0.1});
    add_sink(emu, "sink-a", sink_offsets("sink-a.rows", 42));  // it has applied up to 42
    cdc::CdcConfig cdc = cdc_for(emu, dir, {"sink-a"});
    cdc::CdcRestoreHold hold(cdc, {},
                             {.databases = {"app"},
                              .renamed = false,
                              .cdc = std::nullopt,
                              .backup_id = "20261201T000000Z",
                              .backup_time = 0,
                              .manifest_cdc = manifest_cdc(emu, "sink-a", sink_offsets("sink-a.rows", 10)),
                              .connect = {}});
    hold.hold();
    CHECK(emu.connector_state("sink-a") == "STOPPED");
    CHECK(journal_names(cdc, "sink-a"));  // a crash from here on is healed by the next run
    const auto& e = hold.entries().at(0);
    CHECK(e.role == "sink");  // from Kafka Connect's type
    CHECK(e.mode == "replay");
    CHECK(e.hold_with == "stop");
    CHECK(e.offsets_before == sink_offsets("sink-a.rows", 42));

    hold.bring_back(true);
    CHECK(hold.exit_code() == 0);
    CHECK(emu.wait_settled("sink-a", "RUNNING"));
    CHECK_FALSE(journal_names(cdc, "sink-a"));
    auto lines = emu.request_lines();
    auto at = [&](const std::string& line) {
        return std::find(lines.begin(), lines.end(), line) - lines.begin();
    };
    // stop -> PATCH -> resume, in that order.
    REQUIRE(at("PUT /connectors/sink-a/stop 204") < static_cast<long>(lines.size()));
    CHECK(at("PUT /connectors/sink-a/stop 204") < at("PATCH /connectors/sink-a/offsets 200"));
    CHECK(at("PATCH /connectors/sink-a/offsets 200") < at("PUT /connectors/sink-a/resume 202"));
    auto state = emu.control("GET", "state")["connectors"]["sink-a"];
    CHECK(state["offsets"] == sink_offsets("sink-a.rows", 10));

    json report = hold.report();
    REQUIRE(report["connectors"].size() == 1);
    const auto& r = report["connectors"][0];
    CHECK(r["role"] == "sink");
    CHECK(r["mode"] == "replay");
    CHECK(r["held_with"] == "stop");
    CHECK(r["offsets_before"] == sink_offsets("sink-a.rows", 42));
    CHECK(r["offsets_recorded"] == sink_offsets("sink-a.rows", 10));
    CHECK(r["offsets_after"] == sink_offsets("sink-a.rows", 10));
    CHECK(r["final_state"]["state"] == "RUNNING");
    CHECK(report["resume_failures"].empty());
}

TEST_CASE("restore hold: a 3.5 worker gets the manual steps and exit 6, and is still resumed",
          "[cdc][restore-hold]") {
    test::TempDir dir;
    KafkaConnectEmulator emu({.connectors = {}, .tasks = 1, .transition_delay_s = 0});
    emu.control("POST", "config", {{"profile", "3.5"}});
    add_sink(emu, "old-sink", sink_offsets("old.rows", 9), {{"topics", "old.rows"}});
    cdc::CdcConfig cdc = cdc_for(emu, dir, {"old-sink"});
    cdc::CdcRestoreHold hold(cdc, {},
                             {.databases = {"app"},
                              .renamed = false,
                              .cdc = "replay",
                              .backup_id = "b1",
                              .backup_time = 0,
                              .manifest_cdc = manifest_cdc(emu, "old-sink", sink_offsets("old.rows", 5)),
                              .connect = {}});
    auto dry = hold.describe();
    std::string all;
    for (const auto& l : dry) all += l + "\n";
    CHECK_THAT(all, Catch::Contains("by hand: curl -X PUT " + emu.url() + "/connectors/old-sink/stop"));
    CHECK_THAT(all, Catch::Contains("kafka-consumer-groups.sh --bootstrap-server <kafka> --group "
                                    "connect-old-sink --topic old.rows:0 --reset-offsets --to-offset 5 "
                                    "--execute"));
    CHECK(emu.count("PUT", "/connectors/old-sink/stop") == 0);  // the dry run holds nothing
    hold.hold();
    CHECK(emu.connector_state("old-sink") == "STOPPED");  // 3.5 has stop
    hold.bring_back(true);
    CHECK(hold.exit_code() == 6);
    CHECK(emu.wait_settled("old-sink", "RUNNING"));
    CHECK(emu.count("PATCH", "/connectors/old-sink/offsets") == 1);  // the probe only, answered 405
    auto r = hold.report()["connectors"][0];
    CHECK(r["needs_attention"] == true);
    CHECK(r["manual_steps"].size() == 3);
    CHECK(r["offsets_after"].is_null());
}

TEST_CASE("restore hold: a 3.4 worker is held with pause", "[cdc][restore-hold]") {
    test::TempDir dir;
    KafkaConnectEmulator emu({.connectors = {"src-old"}, .tasks = 1, .transition_delay_s = 0});
    emu.control("POST", "config", {{"profile", "3.4"}});
    cdc::CdcConfig cdc = cdc_for(emu, dir, {"src-old"});
    cdc::CdcRestoreHold hold(cdc, restore_config(R"({"connectors": [{"name": "src-old", "mode": "none"}]})"),
                             {.databases = {"app"},
                              .renamed = false,
                              .cdc = std::nullopt,
                              .backup_id = "b",
                              .backup_time = 0,
                              .manifest_cdc = nullptr,
                              .connect = {}});
    hold.hold();
    CHECK(emu.connector_state("src-old") == "PAUSED");
    CHECK(hold.entries()[0].hold_with == "pause");
    hold.bring_back(true);
    CHECK(emu.wait_settled("src-old", "RUNNING"));
    CHECK(hold.exit_code() == 0);
    CHECK_THAT(hold.report()["connectors"][0]["warnings"].dump(), Catch::Contains("out of step"));
}

TEST_CASE("restore hold: reanchor resets a source's offsets, and it snapshots afresh",
          "[cdc][restore-hold]") {
    test::TempDir dir;
    KafkaConnectEmulator emu({.connectors = {"pg-src"}, .tasks = 1, .transition_delay_s = 0});
    cdc::CdcConfig cdc = cdc_for(emu, dir, {"pg-src"});
    auto before = emu.control("GET", "state")["connectors"]["pg-src"]["offsets"];
    cdc::CdcRestoreHold hold(cdc, {},
                             {.databases = {"app"},
                              .renamed = false,
                              .cdc = "reanchor",
                              .backup_id = "b",
                              .backup_time = 0,
                              .manifest_cdc = manifest_cdc(emu, "pg-src", before),
                              .connect = {}});
    hold.hold();
    hold.bring_back(true);
    CHECK(hold.exit_code() == 0);
    CHECK(emu.wait_settled("pg-src", "RUNNING"));
    auto lines = emu.request_lines();
    CHECK(std::find(lines.begin(), lines.end(), "DELETE /connectors/pg-src/offsets 200") != lines.end());
    CHECK(std::find(lines.begin(), lines.end(), "PUT /connectors/pg-src/resume 202") != lines.end());
    auto r = hold.report()["connectors"][0];
    CHECK(r["role"] == "source");
    CHECK(r["mode"] == "reanchor");
    CHECK(r["offsets_after"] == json::array());
    CHECK(r["offsets_before"] == before);
}

TEST_CASE("restore hold: a renamed restore touches nothing unless asked, a paused one is left alone",
          "[cdc][restore-hold]") {
    test::TempDir dir;
    KafkaConnectEmulator emu({.connectors = {"a"}, .tasks = 1, .transition_delay_s = 0});
    add_sink(emu, "b", sink_offsets("b.rows", 1));
    emu.control("POST", "connectors", {{"name", "c"}, {"state", "PAUSED"}});
    cdc::CdcConfig cdc = cdc_for(emu, dir, {"a", "b", "c"});
    auto cfg = restore_config(R"({"connectors": [{"name": "a", "database": "other"}, {"name": "b", "database":
        "app"}, {"name": "c", "database": "app"}]})");
    {
        cdc::CdcRestoreHold renamed(cdc, cfg,
                                    {.databases = {"app"},
                                     .renamed = true,
                                     .cdc = std::nullopt,
                                     .backup_id = "b",
                                     .backup_time = 0,
                                     .manifest_cdc = nullptr,
                                     .connect = {}});
        renamed.hold();
        renamed.bring_back(true);
        REQUIRE(renamed.entries().size() == 2);  // "a" belongs to another database
        CHECK(renamed.entries()[0].action == "skipped");
        CHECK(renamed.exit_code() == 0);
        CHECK(emu.count("PUT", "/connectors/b/stop") == 0);
    }
    cdc::CdcRestoreHold hold(cdc, cfg,
                             {.databases = {"app"},
                              .renamed = false,
                              .cdc = std::nullopt,
                              .backup_id = "b",
                              .backup_time = 0,
                              .manifest_cdc = manifest_cdc(emu, "b", sink_offsets("b.rows", 1)),
                              .connect = {}});
    hold.hold();
    CHECK(emu.connector_state("b") == "STOPPED");
    CHECK(emu.connector_state("c") == "PAUSED");
    hold.bring_back(true);
    CHECK(emu.count("PUT", "/connectors/a/stop") == 0);
    CHECK(emu.count("PUT", "/connectors/c/stop") == 0);
    CHECK(emu.count("PUT", "/connectors/c/resume") == 0);  // someone else's pause stays
    CHECK(hold.entries()[1].action == "left-alone");
}

TEST_CASE("restore hold: offsets missing, insert mode and retention are reported", "[cdc][restore-hold]") {
    test::TempDir dir;
    KafkaConnectEmulator emu({.connectors = {}, .tasks = 1, .transition_delay_s = 0});
    add_sink(emu, "ins", sink_offsets("ins.rows", 3), {{"insert.mode", "insert"}});
    cdc::CdcConfig cdc = cdc_for(emu, dir, {"ins"});
    auto cfg = restore_config(R"({"topic_retention_s": 3600})");
    cdc::CdcRestoreHold hold(cdc, cfg,
                             {.databases = {"app"},
                              .renamed = false,
                              .cdc = std::nullopt,
                              .backup_id = "b",
                              .backup_time = 1000,  // 1970: far older than an hour
                              .manifest_cdc = manifest_cdc(emu, "ins", "unavailable"),
                              .connect = {}});
    hold.hold();
    hold.bring_back(true);
    CHECK(hold.exit_code() == 6);
    CHECK(emu.count("PATCH", "/connectors/ins/offsets") == 1);  // the probe: nothing to set
    CHECK(emu.wait_settled("ins", "RUNNING"));
    std::string warnings = hold.report()["connectors"][0]["warnings"].dump();
    CHECK_THAT(warnings, Catch::Contains("no Kafka offsets"));
    CHECK_THAT(warnings, Catch::Contains("insert.mode is \\\"insert\\\""));
    CHECK_THAT(warnings, Catch::Contains("older than its topics' retention"));
}

TEST_CASE("restore hold: a connector that cannot be resumed is exit 8 and healed by the next run",
          "[cdc][restore-hold]") {
    test::TempDir dir;
    KafkaConnectEmulator emu({.connectors = {}, .tasks = 1, .transition_delay_s = 0.1});
    add_sink(emu, "frail", sink_offsets("frail.rows", 3));
    cdc::CdcConfig cdc = cdc_for(emu, dir, {"frail"});
    cdc.resume_timeout_s = 1.5;
    {
        cdc::CdcRestoreHold hold(cdc, {},
                                 {.databases = {"app"},
                                  .renamed = false,
                                  .cdc = std::nullopt,
                                  .backup_id = "b",
                                  .backup_time = 0,
                                  .manifest_cdc = manifest_cdc(emu, "frail", sink_offsets("frail.rows", 1)),
                                  .connect = {}});
        hold.hold();
        // Every resume is refused (500) until the phase's deadline.
        emu.control("POST", "faults", {{"status_500_next", 100}, {"endpoints", {"/resume$"}}});
        hold.bring_back(true);
        CHECK(hold.exit_code() == 8);
        CHECK_FALSE(hold.report()["resume_failures"].empty());
        CHECK(emu.connector_state("frail") == "STOPPED");
    }
    CHECK(journal_names(cdc, "frail"));  // still held: the next run (or the watchdog) resumes it
    emu.control("DELETE", "faults");
    cdc::CdcCoordinator next(cdc,
                             {.backup_dir = {}, .backup_id = "next", .owner = "backup", .window_until = {}});
    next.heal_previous();
    CHECK(emu.wait_settled("frail", "RUNNING"));
    CHECK_FALSE(journal_names(cdc, "frail"));
}

TEST_CASE("restore hold: a stop that cannot be sent fails the hold and resumes what was held",
          "[cdc][restore-hold]") {
    test::TempDir dir;
    KafkaConnectEmulator emu({.connectors = {"one", "two"}, .tasks = 1, .transition_delay_s = 0});
    cdc::CdcConfig cdc = cdc_for(emu, dir, {"one", "two"});
    cdc.restore.hold_timeout_s = 1;
    cdc::CdcRestoreHold hold(cdc, cdc.restore,
                             {.databases = {"app"},
                              .renamed = false,
                              .cdc = "none",
                              .backup_id = "b",
                              .backup_time = 0,
                              .manifest_cdc = nullptr,
                              .connect = {}});
    hold.plan();
    emu.control("POST", "faults", {{"status_409_next", 1000}, {"endpoints", {"/connectors/two/stop"}}});
    REQUIRE_THROWS_MATCHES(hold.hold(), Error, IsError(Kind::SourceUnavailable, "cdc: cannot hold two"));
    CHECK(emu.wait_settled("one", "RUNNING"));
    CHECK(emu.count("PUT", "/connectors/one/resume") == 1);
    CHECK_FALSE(journal_names(cdc, "one"));
}

TEST_CASE("restore hold: a restore that dies between stop and resume is healed by the next nightjar run",
          "[cdc][restore-hold]") {
    test::TempDir dir;
    KafkaConnectEmulator emu({.connectors = {}, .tasks = 1, .transition_delay_s = 0});
    add_sink(emu, "orphan", sink_offsets("orphan.rows", 7));
    cdc::CdcConfig cdc = cdc_for(emu, dir, {"orphan"});
    {
        cdc::CdcRestoreHold hold(cdc, {},
                                 {.databases = {"app"},
                                  .renamed = false,
                                  .cdc = std::nullopt,
                                  .backup_id = "b",
                                  .backup_time = 0,
                                  .manifest_cdc = manifest_cdc(emu, "orphan", sink_offsets("orphan.rows", 2)),
                                  .connect = {}});
        hold.hold();
        // No bring_back(): the process is gone (its journal lock with it).
    }
    CHECK(emu.connector_state("orphan") == "STOPPED");
    auto journal = cdc::read_cdc_state(cdc::cdc_journal_file(cdc));
    REQUIRE(journal);
    CHECK(journal->owner == "restore");
    cdc::CdcCoordinator next(cdc,
                             {.backup_dir = {}, .backup_id = "next", .owner = "backup", .window_until = {}});
    next.heal_previous();
    CHECK(emu.wait_settled("orphan", "RUNNING"));
    CHECK_FALSE(cdc::read_cdc_state(cdc_journal_file(cdc)));
    CHECK(emu.count("PATCH", "/connectors/orphan/offsets") == 1);  // the probe; healing sets no offsets
}
