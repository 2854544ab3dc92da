// CDC held and put back in step by the real nightjar-restore (issue 18): an emulated sink upserting into
// real PostgreSQL (tests/support/cdc_sink.hpp), nightjar-backup recording its offsets, nightjar-restore
// --config holding it while the database is restored and replaying it after; a 3.5 worker, a connector that
// does not come back, a killed or interrupted restore, a reanchored source, a dry run and a renamed restore.
#include <signal.h>

#include <catch2/catch.hpp>
#include <thread>

#include "nightjar/cdc/state_file.hpp"
#include "nightjar/io/process.hpp"
#include "support/cdc_sink.hpp"
#include "support/commands.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// The index of the first entry of `list` that starts with `prefix`, or -1.
int index_of(const std::vector<std::string>& list, const std::string& prefix) {
    for (std::size_t i = 0; i < list.size(); ++i)
        if (list[i].rfind(prefix, 0) == 0) return static_cast<int>(i);
    return -1;
}

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + "\n";
    return s;
}

fs::path journal(const test::SinkFixture& f) {
    return cdc::cdc_journal_path(f.state_dir, {{f.emu.url()}});
}

// Changes 1..n applied by the sink, then a backup that holds it and records offset n.
json back_up_at(test::SinkFixture& f, int n) {
    f.publish(1, n);
    REQUIRE(f.wait_committed(n));
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    json manifest = f.last_manifest();
    REQUIRE(manifest["cdc"]["connectors"][0]["offsets"][0]["offset"]["kafka_offset"] == n);
    return manifest;
}

bool stopped(const Subprocess& p) {
    for (int i = 0; i < 800; ++i) {
        std::string path = "/proc/" + std::to_string(p.pid()) + "/stat";
        if (fs::exists(path) && test::read_file(path).find(") T ") != std::string::npos) return true;
        std::this_thread::sleep_for(25ms);
    }
    return false;
}

}  // namespace

TEST_CASE(
    "cdc restore: the sink is stopped, the database restored, the sink replayed: row for row the present",
    "[integration][cdc][restore]") {
    test::SinkFixture f("nj_cdcrs");
    const int N = 60, M = 140;
    json manifest = back_up_at(f, N);
    CHECK(manifest["cdc"]["connectors"][0]["held_with"] == "stop");
    const std::string at_backup = f.rows();
    // After the backup the sink applies N+1..M; then the database is lost.
    f.publish(N + 1, M);
    REQUIRE(f.wait_committed(M));
    const std::string present = f.rows();
    REQUIRE(present != at_backup);
    f.pg.drop();
    f.emu.control("DELETE", "requests");

    auto r = f.restore();
    INFO(r.err);
    REQUIRE(r.code == 0);
    json out = json::parse(r.out);
    INFO(out["cdc"].dump(2));
    REQUIRE(f.wait_committed(M));
    for (int i = 0; i < 100 && f.rows() != present; ++i) std::this_thread::sleep_for(50ms);
    CHECK(f.rows() == present);

    // The report: per connector its role, action, offsets before and after, final state.
    REQUIRE(out["cdc"]["connectors"].size() == 1);
    const json& e = out["cdc"]["connectors"][0];
    CHECK(e["name"] == f.sink);
    CHECK(e["role"] == "sink");
    CHECK(e["mode"] == "replay");
    CHECK(e["action"] == "held");
    CHECK(e["held_with"] == "stop");
    CHECK(e["offsets_before"][0]["offset"]["kafka_offset"] == M);
    CHECK(e["offsets_recorded"][0]["offset"]["kafka_offset"] == N);
    CHECK(e["offsets_after"][0]["offset"]["kafka_offset"] == N);
    CHECK(e["final_state"]["state"] == "RUNNING");
    CHECK(e["needs_attention"] == false);
    CHECK(out["cdc"]["resume_failures"].empty());
    CHECK_THAT(r.err, Catch::Contains("offsets set to those of the backup"));
    // Stopped before the restore wrote, offsets set while STOPPED, then resumed; nothing else written.
    auto w = f.writes(f.sink);
    INFO(joined(w));
    const std::string base = "/connectors/" + f.sink;
    int stop = index_of(w, "PUT " + base + "/stop");
    int patch = index_of(w, "PATCH " + base + "/offsets {\"offsets\"");
    int resume = index_of(w, "PUT " + base + "/resume");
    CHECK(stop >= 0);
    CHECK(patch > stop);
    CHECK(resume > patch);
    CHECK(index_of(w, "DELETE") == -1);
    CHECK(index_of(w, "PUT " + base + "/pause") == -1);
    CHECK_FALSE(fs::exists(journal(f)));  // everything brought back: the crash journal is gone
}

TEST_CASE("cdc restore: a 3.5 worker cannot alter offsets: the manual steps are printed and the exit is 6",
          "[integration][cdc][restore]") {
    test::SinkFixture f("nj_cdc35", "3.5");
    const int N = 20;
    back_up_at(f, N);
    const std::string at_backup = f.rows();
    f.publish(N + 1, 30);
    REQUIRE(f.wait_committed(30));
    f.pg.drop();
    f.emu.control("DELETE", "requests");

    auto r = f.restore();
    INFO(r.err);
    CHECK(r.code == 6);
    json out = json::parse(r.out);
    INFO(out["cdc"].dump(2));
    CHECK(out["ok"] == true);  // the restore itself is complete
    const json& e = out["cdc"]["connectors"][0];
    CHECK(e["features"]["offsets_write"] == false);
    CHECK(e["needs_attention"] == true);
    CHECK(e["held_with"] == "stop");
    REQUIRE(e["manual_steps"].size() == 3);
    const std::string reset = "kafka-consumer-groups.sh --bootstrap-server <kafka> --group connect-" +
                              f.sink + " --topic " + f.topic + ":0 --reset-offsets --to-offset " +
                              std::to_string(N) + " --execute";
    CHECK(e["manual_steps"][1] == reset);
    CHECK_THAT(r.err, Catch::Contains("replay by hand, in this order") && Catch::Contains(reset) &&
                          Catch::Contains("Kafka Connect older than 3.6"));
    // Brought back as it was: resumed, offsets untouched, the restored table as at the backup.
    CHECK(f.emu.wait_settled(f.sink, "RUNNING"));
    auto w = f.writes(f.sink);
    INFO(joined(w));
    CHECK(index_of(w, "PATCH /connectors/" + f.sink + "/offsets {\"offsets\"") == -1);
    CHECK(index_of(w, "PUT /connectors/" + f.sink + "/resume") >= 0);
    CHECK(f.committed() == 30);
    CHECK(f.rows() == at_backup);
    CHECK_FALSE(fs::exists(journal(f)));
}

TEST_CASE("cdc restore: a sink that fails after the replay's resume gives exit 8, and the watchdog heals it",
          "[integration][cdc][restore]") {
    test::SinkFixture f("nj_cdcfail");
    back_up_at(f, 20);
    f.pg.drop();
    f.emu.control(
        "POST", "fail",
        {{"connector", f.sink},
         {"task", 0},
         {"after_resume", true},
         {"trace", "org.apache.kafka.connect.errors.ConnectException: the sink's database went away"}});
    auto r = f.restore();
    INFO(r.err);
    CHECK(r.code == 8);
    json out = json::parse(r.out);
    INFO(out["cdc"].dump(2));
    REQUIRE(out["cdc"]["resume_failures"].size() == 1);
    CHECK_THAT(out["cdc"]["resume_failures"][0].get<std::string>(), Catch::Contains(f.sink));
    CHECK(out["cdc"]["connectors"][0]["offsets_after"][0]["offset"]["kafka_offset"] == 20);
    CHECK_THAT(r.err, Catch::Contains("connectors may still be held or came back FAILED after the restore"));
    CHECK(f.emu.task_states(f.sink) == std::vector<std::string>{"FAILED"});

    // The watchdog restarts the FAILED task and it stays RUNNING.
    f.write_config();
    fs::path log = f.dir / "watch.log";
    Subprocess watch = Subprocess::spawn(
        {NIGHTJAR_BACKUP_BIN, "cdc", "watch", "--config", f.config.string(), "--log-file", log.string()});
    bool healed = false;
    for (int i = 0; i < 300 && !healed; ++i) {
        std::this_thread::sleep_for(100ms);
        healed = fs::exists(log) && test::read_file(log).find("is healed") != std::string::npos;
    }
    INFO((fs::exists(log) ? test::read_file(log) : std::string("no watchdog log")));
    CHECK(healed);
    CHECK(f.emu.wait_settled(f.sink, "RUNNING"));
    watch.kill(SIGTERM);
    CHECK(watch.wait() == 0);
    CHECK_FALSE(fs::exists(journal(f)));
}

TEST_CASE("cdc restore: a restore killed between the stop and the resume is healed by the next nightjar run",
          "[integration][cdc][restore]") {
    test::SinkFixture f("nj_cdckill");
    const int N = 20, M = 45;
    back_up_at(f, N);
    f.publish(N + 1, M);
    REQUIRE(f.wait_committed(M));
    const std::string present = f.rows();
    f.pg.drop();
    auto killed = f.restore({}, {"NIGHTJAR_FAILPOINT=restore:cdc-held"});
    INFO(killed.err);
    REQUIRE(killed.code == 128 + SIGKILL);
    CHECK(f.emu.connector_state(f.sink) == "STOPPED");
    auto state = cdc::read_cdc_state(journal(f));
    REQUIRE(state);
    CHECK(state->owner == "restore");
    REQUIRE(state->connectors.size() == 1);
    CHECK(state->connectors[0].name == f.sink);

    SECTION("nightjar-backup --resume-cdc resumes it") {
        auto r = f.backup({"--resume-cdc"});
        INFO(r.err);
        CHECK(r.code == 0);
        CHECK_THAT(r.err, Catch::Contains("a previous run (restore") && Catch::Contains("resuming them now"));
        CHECK(f.emu.wait_settled(f.sink, "RUNNING"));
        CHECK_FALSE(fs::exists(journal(f)));
    }
    SECTION("the next backup resumes it before it holds it again") {
        f.pg.psql("postgres", "CREATE DATABASE " + f.pg.name);  // something to back up
        f.emu.control("DELETE", "requests");
        auto r = f.backup();
        INFO(r.err);
        CHECK(r.code == 0);
        CHECK_THAT(r.err, Catch::Contains("a previous run (restore"));
        auto w = f.writes(f.sink);
        INFO(joined(w));
        CHECK(index_of(w, "PUT /connectors/" + f.sink + "/resume") <
              index_of(w, "PUT /connectors/" + f.sink + "/stop"));
        CHECK(f.emu.wait_settled(f.sink, "RUNNING"));
        CHECK_FALSE(fs::exists(journal(f)));
    }
    SECTION("the next restore resumes it, holds it again and replays") {
        auto r = f.restore();
        INFO(r.err);
        CHECK(r.code == 0);
        CHECK_THAT(r.err, Catch::Contains("a previous run (restore"));
        json out = json::parse(r.out);
        INFO(out["cdc"].dump(2));
        CHECK(out["cdc"]["resumed_from_previous_run"].size() == 1);
        CHECK(out["cdc"]["connectors"][0]["action"] == "held");  // held again once resumed
        CHECK(out["cdc"]["connectors"][0]["offsets_after"][0]["offset"]["kafka_offset"] == N);
        REQUIRE(f.wait_committed(M));
        for (int i = 0; i < 100 && f.rows() != present; ++i) std::this_thread::sleep_for(50ms);
        CHECK(f.rows() == present);
        CHECK_FALSE(fs::exists(journal(f)));
    }
}

TEST_CASE("cdc restore: a SIGTERM while the sink is held brings it back unchanged and exits 143",
          "[integration][cdc][restore]") {
    test::SinkFixture f("nj_cdcterm");
    back_up_at(f, 20);
    f.publish(21, 30);
    REQUIRE(f.wait_committed(30));
    f.pg.drop();
    f.emu.control("DELETE", "requests");
    f.write_config();
    SpawnOptions o;
    o.env = {"NIGHTJAR_FAILPOINT=restore:cdc-held", "NIGHTJAR_FAILPOINT_ACTION=stop",
             "PGPASSWORD=" + f.pg.password};
    Subprocess restore = Subprocess::spawn(
        {NIGHTJAR_RESTORE_BIN, "latest", "--config", f.config.string(), "--db", f.pg.name}, o);
    REQUIRE(stopped(restore));
    CHECK(f.emu.connector_state(f.sink) == "STOPPED");
    restore.kill(SIGTERM);
    restore.kill(SIGCONT);
    CHECK(restore.wait() == 128 + SIGTERM);
    INFO(restore.stderr_text());
    CHECK_THAT(restore.stderr_text(),
               Catch::Contains("the restore did not complete: resumed without changing"));
    CHECK(f.emu.wait_settled(f.sink, "RUNNING"));
    auto w = f.writes(f.sink);
    INFO(joined(w));
    CHECK(index_of(w, "PATCH /connectors/" + f.sink + "/offsets {\"offsets\"") == -1);
    CHECK(index_of(w, "PUT /connectors/" + f.sink + "/resume") >
          index_of(w, "PUT /connectors/" + f.sink + "/stop"));
    CHECK(f.committed() == 30);
    CHECK_FALSE(fs::exists(journal(f)));
}

TEST_CASE("cdc restore: --cdc=reanchor resets a source's offsets and resumes it, a sink is left as it was",
          "[integration][cdc][restore]") {
    test::SinkFixture f("nj_cdcre");
    const std::string source = "pg-src";
    f.emu.control("POST", "connectors",
                  {{"name", source}, {"flavor", "postgres"}, {"config", {{"snapshot.mode", "initial"}}}});
    f.cfg["cdc"]["kafka_connect"]["connectors"] = {f.sink, source};
    f.publish(1, 10);
    REQUIRE(f.wait_committed(10));
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    f.pg.drop();
    f.emu.control("DELETE", "requests");

    auto r = f.restore({"--cdc=reanchor"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    json out = json::parse(r.out);
    INFO(out["cdc"].dump(2));
    json src, snk;
    for (const auto& e : out["cdc"]["connectors"]) (e["name"] == source ? src : snk) = e;
    REQUIRE(src.is_object());
    REQUIRE(snk.is_object());
    CHECK(src["role"] == "source");
    CHECK(src["mode"] == "reanchor");
    CHECK(src["held_with"] == "stop");
    CHECK_FALSE(src["offsets_before"].empty());
    CHECK(src["offsets_after"] == json::array());
    CHECK(src["final_state"]["state"] == "RUNNING");
    auto w = f.writes(source);
    INFO(joined(w));
    const std::string base = "/connectors/" + source;
    CHECK(index_of(w, "PUT " + base + "/stop") >= 0);
    CHECK(index_of(w, "DELETE " + base + "/offsets") > index_of(w, "PUT " + base + "/stop"));
    CHECK(index_of(w, "PUT " + base + "/resume") > index_of(w, "DELETE " + base + "/offsets"));
    CHECK(f.emu.wait_settled(source, "RUNNING"));
    // The sink: held (it writes into the restored database) and resumed, offsets untouched, out of step said.
    CHECK(snk["mode"] == "none");
    CHECK(snk["held_with"] == "stop");
    CHECK_THAT(snk["warnings"].dump(),
               Catch::Contains("reanchor applies to source connectors") && Catch::Contains("out of step"));
    CHECK(index_of(f.writes(f.sink), "PATCH /connectors/" + f.sink + "/offsets {\"offsets\"") == -1);
    CHECK(f.emu.wait_settled(f.sink, "RUNNING"));
}

TEST_CASE("cdc restore: --dry-run prints the REST calls with the offsets and changes nothing",
          "[integration][cdc][restore]") {
    test::SinkFixture f("nj_cdcdry");
    back_up_at(f, 20);
    f.publish(21, 30);
    REQUIRE(f.wait_committed(30));
    f.pg.drop();
    f.emu.control("DELETE", "requests");

    auto r = f.restore({"--dry-run"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    json out = json::parse(r.out);
    INFO(out["cdc"].dump(2));
    CHECK(out["dry_run"] == true);
    const std::string plan = out["cdc"]["plan"].dump();
    const std::string url = f.emu.url() + "/connectors/" + f.sink;
    CHECK_THAT(plan,
               Catch::Contains("PUT " + url + "/stop") && Catch::Contains("PATCH " + url + "/offsets") &&
                   Catch::Contains("\\\"kafka_offset\\\":20") && Catch::Contains("PUT " + url + "/resume"));
    CHECK_THAT(r.err,
               Catch::Contains("would: cdc: " + f.sink) && Catch::Contains("PATCH " + url + "/offsets"));
    // Only reads went out, and the PATCH {} probe, which a RUNNING connector refuses (400) and which alters
    // nothing.
    int gets = 0;
    for (const auto& q : f.emu.requests()) {
        INFO(q.dump());
        if (q["method"] == "GET") {
            ++gets;
            continue;
        }
        CHECK(q["method"] == "PATCH");
        CHECK(q["body"] == "{}");
        CHECK(q["status"] == 400);
    }
    CHECK(gets > 0);
    CHECK(f.emu.connector_state(f.sink) == "RUNNING");
    CHECK(f.committed() == 30);
    CHECK_FALSE(f.pg.exists());  // nothing restored
    CHECK_FALSE(fs::exists(journal(f)));
}

TEST_CASE("cdc restore: a restore under another name (--db-name) touches no connector",
          "[integration][cdc][restore]") {
    test::SinkFixture f("nj_cdcren");
    back_up_at(f, 20);
    const std::string copy = f.pg.name + "_copy";
    f.pg.also_drop.push_back(copy);
    f.emu.control("DELETE", "requests");

    auto r = f.restore({"--db-name", f.pg.name + "=" + copy});
    INFO(r.err);
    REQUIRE(r.code == 0);
    json out = json::parse(r.out);
    INFO(out["cdc"].dump(2));
    CHECK(f.emu.requests().empty());
    REQUIRE(out["cdc"]["connectors"].size() == 1);
    CHECK(out["cdc"]["connectors"][0]["action"] == "skipped");
    CHECK_THAT(out["cdc"]["connectors"][0]["warnings"].dump(), Catch::Contains("--db-name"));
    CHECK(f.rows(copy) == f.rows());
    CHECK(f.emu.connector_state(f.sink) == "RUNNING");
}
