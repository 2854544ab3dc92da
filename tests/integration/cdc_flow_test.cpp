// CDC coordination and hooks through the real nightjar-backup against the Kafka Connect emulator: connectors
// are paused before the first component and resumed on every way out, and the journal of the emulator shows
// exactly what nightjar asked for.
#include <signal.h>

#include <catch2/catch.hpp>
#include <thread>

#include "support/cdc_rig.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string& kA = test::kConnectorA;
const std::string& kB = test::kConnectorB;

struct CdcFlow : test::CdcRig {
    fs::path hook_log = dir / "hooks.log";

    explicit CdcFlow(test::EmulatorOptions options = two_connectors(2)) : CdcRig(std::move(options)) {}
    fs::path state_file() const { return journal(); }
    // A hook that appends "<tag> <status> <id> <dir> <manifest> <connector state>" to hooks.log.
    json hook(const std::string& tag, int exit_code = 0) const {
        std::string script =
            "import os,sys,urllib.request,json\n"
            "s=json.load(urllib.request.urlopen('" +
            emu.url() + "/_emulator/state'))['connectors']['" + kA +
            "']\n"
            "e=os.environ\n"
            "open('" +
            hook_log.string() + "','a').write(' '.join(['" + tag +
            "',e['NIGHTJAR_STATUS'],"
            "e['NIGHTJAR_BACKUP_ID'],e['NIGHTJAR_BACKUP_DIR'],e['NIGHTJAR_MANIFEST'],"
            "s['connector']['state']]+[t['state'] for t in s['tasks']])+'\\n')\n"
            "print('hello from " +
            tag +
            "')\n"
            "sys.exit(" +
            std::to_string(exit_code) + ")\n";
        return {{"argv", {"python3", "-c", script}}, {"timeout_s", 30}};
    }
    std::vector<std::string> hook_lines() const {
        std::vector<std::string> out;
        if (!fs::exists(hook_log)) return out;
        std::istringstream in(test::read_file(hook_log));
        for (std::string line; std::getline(in, line);) out.push_back(line);
        return out;
    }
    void require_resumed(const std::string& name) const {
        INFO(name);
        CHECK(emu.count("PUT", "/connectors/" + name + "/pause") >= 1);
        CHECK(emu.count("PUT", "/connectors/" + name + "/resume") >= 1);
        // nightjar waited for RUNNING before it exited: no waiting here.
        CHECK(emu.connector_state(name) == "RUNNING");
        for (const auto& t : emu.task_states(name)) CHECK(t == "RUNNING");
    }
};

}  // namespace

TEST_CASE("connectors are paused around a successful backup and resumed", "[integration][cdc]") {
    CdcFlow f;
    f.cfg["hooks"] = {{"before_backup", {f.hook("before")}}};
    auto b = f.backup({"--json"});
    INFO(b.err);
    REQUIRE(b.code == 0);
    f.require_resumed(kA);
    f.require_resumed(kB);
    CHECK(f.emu.count("PUT", "/connectors/" + kA + "/pause") == 1);
    CHECK(f.emu.count("PUT", "/connectors/" + kA + "/resume") == 1);
    // The before hook runs after the pause has converged: connector and both tasks PAUSED.
    REQUIRE(f.hook_lines().size() == 1);
    CHECK(f.hook_lines()[0].ends_with(" PAUSED PAUSED PAUSED"));
    // The journal order: pause both, offsets while paused, resume both.
    auto lines = f.emu.request_lines();
    auto pos = [&](const std::string& l) { return std::find(lines.begin(), lines.end(), l) - lines.begin(); };
    CHECK(pos("PUT /connectors/" + kA + "/pause 202") < pos("GET /connectors/" + kA + "/offsets 200"));
    CHECK(pos("GET /connectors/" + kA + "/offsets 200") < pos("PUT /connectors/" + kA + "/resume 202"));
    CHECK(f.emu.count("POST", "/connectors/" + kA + "/restart") == 0);

    json m = f.manifest();
    CHECK(m["cdc"]["mode"] == "coordinated");
    CHECK(m["cdc"]["paused"] == true);
    CHECK(m["cdc"]["resume_failures"].empty());
    REQUIRE(m["cdc"]["connectors"].size() == 2);
    for (const auto& c : m["cdc"]["connectors"]) {
        CHECK(c["cluster"] == f.emu.url());
        CHECK(c["status_before"]["state"] == "RUNNING");
        CHECK(c["action"] == "paused");
        CHECK(c["paused_by_us"] == true);
        CHECK(c["pause_requested_at"].is_string());
        CHECK(c["paused_at"].is_string());
        CHECK(c["resumed_at"].is_string());
        CHECK(c["offsets"].is_array());
        CHECK(c["offsets"][0]["partition"]["server"] == c["name"]);
        CHECK(c["offsets"][0]["offset"].contains("lsn"));
        CHECK(c["status_after"]["state"] == "RUNNING");
        CHECK(c["status_after"]["tasks"].size() == 2);
    }
    CHECK(json::parse(b.out)["cdc"]["paused"] == true);
    CHECK_FALSE(fs::exists(f.state_file()));
}

TEST_CASE("connectors are resumed after a failing component", "[integration][cdc]") {
    CdcFlow f;
    f.cfg["files"]["paths"] = {(f.dir / "missing").string()};
    auto b = f.backup();
    INFO(b.err);
    CHECK(b.code == 3);
    CHECK(b.err.find("files: cannot read " + (f.dir / "missing").string()) != std::string::npos);
    CHECK(f.manifests().empty());
    f.require_resumed(kA);
    f.require_resumed(kB);
    CHECK_FALSE(fs::exists(f.state_file()));
}

TEST_CASE("connectors are resumed after a failing database dump", "[integration][cdc]") {
    CdcFlow f;
    // A real PostgreSQL whose configured database does not exist: pg_dump fails, the files still back up.
    f.cfg["postgres"] = {{"host", test::required_env("NIGHTJAR_TEST_PGHOST")},
                         {"port", std::stoi(test::required_env("NIGHTJAR_TEST_PGPORT"))},
                         {"user", test::required_env("NIGHTJAR_TEST_PGUSER")},
                         {"databases", {"no_such_database"}}};
    auto b = f.backup({}, {"PGPASSWORD=" + test::required_env("NIGHTJAR_TEST_PGPASSWORD")});
    INFO(b.err);
    CHECK(b.code == 6);  // published as partial: the files made it, the database did not
    CHECK_THAT(b.err, Catch::Contains("no_such_database"));
    REQUIRE(f.manifests().size() == 1);
    f.require_resumed(kA);
    f.require_resumed(kB);
    CHECK_FALSE(fs::exists(f.state_file()));
}

TEST_CASE("SIGTERM in the middle of a component resumes the connectors and exits 143", "[integration][cdc]") {
    CdcFlow f;
    // Many large sparse files: the component reads zeros for seconds and checks for signals between files.
    for (int i = 0; i < 40; ++i) {
        fs::path p = f.src / ("big-" + std::to_string(i) + ".bin");
        test::write_file(p, "");
        fs::resize_file(p, std::uint64_t(512) << 20);
    }
    fs::path log = f.dir / "backup.log";
    test::write_file(f.config, f.cfg.dump(2));
    SpawnOptions spawn;
    spawn.capture_stderr = true;
    Subprocess p = Subprocess::spawn(
        {NIGHTJAR_BACKUP_BIN, "--config", f.config.string(), "--log-file", log.string()}, spawn);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!fs::exists(log) || test::read_file(log).find("connector(s) paused") == std::string::npos) {
        REQUIRE_FALSE(p.wait_for(std::chrono::milliseconds(20)));
        REQUIRE(std::chrono::steady_clock::now() < deadline);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(f.emu.connector_state(kA) == "PAUSED");
    p.kill(SIGTERM);
    int code = p.wait();
    std::string err = p.stderr_text();
    INFO(err);
    CHECK(code == 143);
    // It stopped in the middle of the component: the artifact was never finished.
    CHECK(err.find("files: config") == std::string::npos);
    CHECK(err.find("interrupted by signal 15") != std::string::npos);
    CHECK(f.manifests().empty());
    f.require_resumed(kA);
    f.require_resumed(kB);
    CHECK_FALSE(fs::exists(f.state_file()));
}

TEST_CASE("a slow pause (10 s) is waited for until every task is PAUSED", "[integration][cdc]") {
    CdcFlow f({.connectors = {kA, kB}, .tasks = 2, .transition_delay_s = 10});
    f.cfg["cdc"]["pause_timeout_s"] = 30;
    f.cfg["cdc"]["resume_timeout_s"] = 30;
    f.cfg["hooks"] = {{"before_backup", {f.hook("before")}}};
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    REQUIRE(f.hook_lines().size() == 1);
    CHECK(f.hook_lines()[0].ends_with(" PAUSED PAUSED PAUSED"));
    // It polled status while the pause converged, then waited for RUNNING after the resume.
    auto lines = f.emu.request_lines();
    auto pause = std::find(lines.begin(), lines.end(), "PUT /connectors/" + kA + "/pause 202");
    auto resume = std::find(lines.begin(), lines.end(), "PUT /connectors/" + kA + "/resume 202");
    REQUIRE(pause < resume);
    CHECK(std::count(pause, resume, "GET /connectors/" + kA + "/status 200") >= 2);
    f.require_resumed(kA);
    f.require_resumed(kB);
}

TEST_CASE("409s during pause and resume are retried", "[integration][cdc]") {
    CdcFlow f;
    f.emu.control("POST", "faults", {{"status_409_next", 2}, {"endpoints", {"/" + kA + "/pause$"}}});
    f.emu.control("POST", "faults", {{"status_409_next", 2}, {"endpoints", {"/" + kA + "/resume$"}}});
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK(f.emu.count("PUT", "/connectors/" + kA + "/pause") == 3);
    CHECK(f.emu.count("PUT", "/connectors/" + kA + "/resume") == 3);
    CHECK(b.err.find("HTTP 409 Cannot complete request") != std::string::npos);
    f.require_resumed(kA);
    f.require_resumed(kB);
    CHECK(f.manifest()["cdc"]["resume_failures"].empty());
}

TEST_CASE("a resume that fails twice then works", "[integration][cdc]") {
    CdcFlow f;
    f.emu.control("POST", "faults", {{"status_500_next", 2}, {"endpoints", {"/resume$"}}});
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK(b.err.find("HTTP 500 Error writing target state to Kafka") != std::string::npos);
    auto lines = f.emu.request_lines();
    CHECK(std::count(lines.begin(), lines.end(), "PUT /connectors/" + kA + "/resume 500") +
              std::count(lines.begin(), lines.end(), "PUT /connectors/" + kB + "/resume 500") ==
          2);
    f.require_resumed(kA);
    f.require_resumed(kB);
    CHECK_FALSE(fs::exists(f.state_file()));
}

TEST_CASE(
    "a resume that keeps failing exits 8, names the connector, runs on_error, and --resume-cdc heals it",
    "[integration][cdc]") {
    CdcFlow f;
    f.cfg["cdc"]["resume_timeout_s"] = 1;
    f.cfg["hooks"] = {{"on_error", {f.hook("on_error")}}, {"after_backup", {f.hook("after")}}};
    f.emu.control("POST", "faults", {{"status_500_next", 1000}, {"endpoints", {"/" + kB + "/resume$"}}});
    auto b = f.backup();
    INFO(b.err);
    CHECK(b.code == 8);
    CHECK(b.err.find("cdc: connectors may still be paused or are FAILED after the resume: " + kB + " (" +
                     f.emu.url() + "): resume failed") != std::string::npos);
    CHECK(f.emu.connector_state(kA) == "RUNNING");
    CHECK(f.emu.connector_state(kB) == "PAUSED");
    // The backup itself is good and published; its manifest says what is still paused.
    REQUIRE(f.manifests().size() == 1);
    json m = f.manifest();
    CHECK(m["status"] == "complete");
    REQUIRE(m["cdc"]["resume_failures"].size() == 1);
    CHECK(m["cdc"]["resume_failures"][0].get<std::string>().starts_with(kB + " ("));
    REQUIRE(m["hooks"].size() == 2);
    CHECK(m["hooks"][0]["stage"] == "on_error");
    CHECK(m["hooks"][1]["stage"] == "after_backup");
    auto hooks = f.hook_lines();
    REQUIRE(hooks.size() == 2);
    CHECK(hooks[0].starts_with("on_error cdc-resume-failed "));
    CHECK(hooks[1].starts_with("after cdc-resume-failed "));
    // The state file names exactly the connector that is still paused.
    auto state = cdc::read_cdc_state(f.state_file());
    REQUIRE(state);
    REQUIRE(state->connectors.size() == 1);
    CHECK(state->connectors[0].name == kB);

    f.emu.control("DELETE", "faults");
    auto r = f.backup({"--resume-cdc"});
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK(r.err.find("left connectors paused and did not resume them: " + kB) != std::string::npos);
    CHECK(f.emu.connector_state(kB) == "RUNNING");
    CHECK_FALSE(fs::exists(f.state_file()));
    CHECK(f.manifests().size() == 1);
}

TEST_CASE("connectors paused or stopped by someone else are left alone", "[integration][cdc]") {
    CdcFlow f;
    f.emu.control("POST", "connectors", {{"name", "paused-by-ops"}, {"tasks", 1}, {"state", "PAUSED"}});
    f.emu.control("POST", "connectors", {{"name", "stopped-by-ops"}, {"tasks", 1}, {"state", "STOPPED"}});
    f.cfg["cdc"]["kafka_connect"]["connectors"] = "all";
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    f.require_resumed(kA);
    f.require_resumed(kB);
    for (std::string other : {"paused-by-ops", "stopped-by-ops"}) {
        INFO(other);
        CHECK(f.emu.count("PUT", "/connectors/" + other + "/pause") == 0);
        CHECK(f.emu.count("PUT", "/connectors/" + other + "/resume") == 0);
        CHECK(f.emu.count("GET", "/connectors/" + other + "/status") == 1);
    }
    CHECK(f.emu.connector_state("paused-by-ops") == "PAUSED");
    CHECK(f.emu.connector_state("stopped-by-ops") == "STOPPED");
    json m = f.manifest();
    REQUIRE(m["cdc"]["connectors"].size() == 4);
    for (const auto& c : m["cdc"]["connectors"]) {
        if (c["name"] == "paused-by-ops" || c["name"] == "stopped-by-ops") {
            CHECK(c["action"] == "left-alone");
            CHECK(c["paused_by_us"] == false);
            CHECK(c["resumed_at"].is_null());
        }
    }
}

TEST_CASE("a FAILED connector is reported with its trace and never paused or resumed", "[integration][cdc]") {
    CdcFlow f;
    f.emu.control("POST", "fail", {{"connector", kB}, {"task", 1}});
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK(b.err.find(
              kB + " (" + f.emu.url() +
              ") is FAILED before the backup: task 1 FAILED: "
              "org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event "
              "producer. This connector will be stopped.") != std::string::npos);
    CHECK(f.emu.count("PUT", "/connectors/" + kB + "/pause") == 0);
    CHECK(f.emu.count("PUT", "/connectors/" + kB + "/resume") == 0);
    f.require_resumed(kA);
    json c = f.manifest()["cdc"]["connectors"][1];
    CHECK(c["action"] == "failed-left-alone");
    CHECK(c["status_before"]["tasks"][1]["state"] == "FAILED");
}

TEST_CASE("a SIGKILL between pause and resume is healed by the next run", "[integration][cdc]") {
    CdcFlow f;
    auto killed = f.backup({}, {"NIGHTJAR_FAILPOINT=cdc:paused"});
    INFO(killed.err);
    REQUIRE(killed.code == 128 + SIGKILL);
    CHECK(f.emu.connector_state(kA) == "PAUSED");
    CHECK(f.emu.connector_state(kB) == "PAUSED");
    auto state = cdc::read_cdc_state(f.state_file());
    REQUIRE(state);
    CHECK(state->connectors.size() == 2);
    CHECK(f.manifests().empty());

    f.emu.control("DELETE", "requests");
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK(b.err.find("WARN cdc: a previous run (backup " + state->backup_id) != std::string::npos);
    CHECK(b.err.find("left connectors paused and did not resume them: " + kA + " (" + f.emu.url() + "), " +
                     kB) != std::string::npos);
    f.require_resumed(kA);
    f.require_resumed(kB);
    // Resumed from the previous run, then paused and resumed by this one.
    CHECK(f.emu.count("PUT", "/connectors/" + kA + "/resume") == 2);
    json m = f.manifest();
    REQUIRE(m["cdc"]["resumed_from_previous_run"].size() == 2);
    CHECK(m["cdc"]["resumed_from_previous_run"][0]["result"] == "RUNNING");
    CHECK(m["cdc"]["resumed_from_previous_run"][0]["left_by"] == state->backup_id);
    CHECK_FALSE(fs::exists(f.state_file()));
}

TEST_CASE("on_pause_failure abort publishes nothing and leaves nothing paused", "[integration][cdc]") {
    CdcFlow f;
    f.cfg["cdc"]["pause_timeout_s"] = 1;
    f.emu.control("POST", "faults", {{"status_500_next", 1000}, {"endpoints", {"/" + kB + "/pause$"}}});
    auto b = f.backup();
    INFO(b.err);
    CHECK(b.code == 3);
    CHECK(b.err.find("cdc: pausing the connectors failed: pause " + kB) != std::string::npos);
    CHECK(b.err.find("nothing was backed up (cdc.on_pause_failure is \"abort\")") != std::string::npos);
    CHECK(f.manifests().empty());
    // kA had been paused before kB failed: it is resumed; kB was counted as ours (the 500 may hide an applied
    // pause), so it gets a resume too.
    f.require_resumed(kA);
    CHECK(f.emu.connector_state(kB) == "RUNNING");
    CHECK_FALSE(fs::exists(f.state_file()));
}

TEST_CASE("on_pause_failure continue backs up and says CDC was not paused", "[integration][cdc]") {
    CdcFlow f;
    f.cfg["cdc"]["pause_timeout_s"] = 1;
    f.cfg["cdc"]["on_pause_failure"] = "continue";
    f.emu.control("POST", "faults", {{"status_500_next", 1000}, {"endpoints", {"/" + kB + "/pause$"}}});
    auto b = f.backup();
    INFO(b.err);
    CHECK(b.code == 0);
    CHECK(b.err.find("backing up with CDC not paused (cdc.on_pause_failure is \"continue\")") !=
          std::string::npos);
    REQUIRE(f.manifests().size() == 1);
    json m = f.manifest();
    CHECK(m["status"] == "complete");
    CHECK(m["cdc"]["mode"] == "not-paused");
    CHECK(m["cdc"]["paused"] == false);
    CHECK(m["cdc"]["pause_failure"].get<std::string>().find("pause " + kB) != std::string::npos);
    f.require_resumed(kA);
    CHECK(f.emu.connector_state(kB) == "RUNNING");
    CHECK_FALSE(fs::exists(f.state_file()));
}

TEST_CASE("Kafka Connect refusing connections is retried within the pause timeout", "[integration][cdc]") {
    CdcFlow f;
    f.cfg["cdc"]["pause_timeout_s"] = 8;
    f.emu.control("POST", "refuse", {{"seconds", 1.5}});
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK(b.err.find("Kafka Connect did not answer") != std::string::npos);
    f.require_resumed(kA);
    f.require_resumed(kB);
}

TEST_CASE("hooks run in order with their environment and their exit codes are recorded",
          "[integration][hooks]") {
    SECTION("success: before, after; on_error does not run") {
        CdcFlow f;
        f.cfg["hooks"] = {{"before_backup", {f.hook("before")}},
                          {"after_backup", {f.hook("after", 5), f.hook("after2")}},
                          {"on_error", {f.hook("on_error")}}};
        auto b = f.backup();
        INFO(b.err);
        REQUIRE(b.code == 0);  // a failing after hook is recorded, not fatal
        json m = f.manifest();
        std::string id = m["id"];
        std::string published = (f.backups / ("manifest_" + id + ".json")).string();
        CHECK(f.manifests().at(0).string() == published);
        auto lines = f.hook_lines();
        REQUIRE(lines.size() == 3);
        CHECK(lines[0] ==
              "before running " + id + " " + f.backups.string() + " " + published + " PAUSED PAUSED PAUSED");
        CHECK(lines[1] == "after complete " + id + " " + f.backups.string() + " " + published +
                              " RUNNING RUNNING RUNNING");
        CHECK(lines[2].starts_with("after2 complete "));
        REQUIRE(m["hooks"].size() == 3);
        CHECK(m["hooks"][0]["stage"] == "before_backup");
        CHECK(m["hooks"][0]["exit_code"] == 0);
        CHECK(m["hooks"][1]["stage"] == "after_backup");
        CHECK(m["hooks"][1]["exit_code"] == 5);
        CHECK(m["hooks"][2]["exit_code"] == 0);
        CHECK(m["hooks"][0]["argv"][0] == "python3");
        CHECK(b.err.find("hook before_backup[0]: stdout: hello from before") != std::string::npos);
        CHECK(b.err.find("hook after_backup[0]: ") != std::string::npos);
        CHECK(b.err.find("failed with exit code 5") != std::string::npos);
    }
    SECTION("a failing before hook aborts after resuming; on_error then after run") {
        CdcFlow f;
        f.cfg["hooks"] = {{"before_backup", {f.hook("before", 4), f.hook("never")}},
                          {"after_backup", {f.hook("after")}},
                          {"on_error", {f.hook("on_error")}}};
        auto b = f.backup();
        INFO(b.err);
        CHECK(b.code == 3);
        CHECK(b.err.find("hook before_backup: python3 failed with exit code 4: the backup was not started") !=
              std::string::npos);
        CHECK(f.manifests().empty());
        f.require_resumed(kA);
        auto lines = f.hook_lines();
        REQUIRE(lines.size() == 3);
        CHECK(lines[0].starts_with("before running "));
        CHECK(lines[0].ends_with(" PAUSED PAUSED PAUSED"));
        CHECK(lines[1].starts_with("on_error failed "));
        CHECK(lines[1].ends_with(" RUNNING RUNNING RUNNING"));  // resumed before on_error runs
        CHECK(lines[2].starts_with("after failed "));
        CHECK(b.err.find("hook on_error[0]: exit code 0") != std::string::npos);
    }
    SECTION("a hook that outlives its timeout is killed and counts as failed") {
        CdcFlow f;
        f.cfg["hooks"] = {{"before_backup", {{{"argv", {"sleep", "30"}}, {"timeout_s", 0.5}}}}};
        auto b = f.backup();
        INFO(b.err);
        CHECK(b.code == 3);
        CHECK(b.err.find("timed out after 0.5 s") != std::string::npos);
        f.require_resumed(kA);
    }
}

TEST_CASE("a dry run checks workers and connectors and pauses nothing", "[integration][cdc]") {
    CdcFlow f;
    SECTION("all there") {
        auto b = f.backup({"--dry-run", "--json"});
        INFO(b.err);
        REQUIRE(b.code == 0);
        CHECK(b.err.find("plan: cdc: " + kA + " (" + f.emu.url() +
                         ") is RUNNING (tasks: 0 RUNNING, 1 RUNNING): would pause it") != std::string::npos);
        json s = json::parse(b.out);
        CHECK(s["cdc"]["clusters"][0]["version"] == "3.9.0");
        CHECK(s["cdc"]["clusters"][0]["connectors"].size() == 2);
    }
    SECTION("a connector that does not exist") {
        f.cfg["cdc"]["kafka_connect"]["connectors"] = {kA, "nope"};
        auto b = f.backup({"--dry-run"});
        INFO(b.err);
        CHECK(b.code == 3);
        CHECK(b.err.find("cdc: connector nope does not exist on " + f.emu.url()) != std::string::npos);
    }
    SECTION("a worker that does not answer") {
        f.cfg["cdc"]["kafka_connect"]["url"] = "http://127.0.0.1:1";
        auto b = f.backup({"--dry-run"});
        INFO(b.err);
        CHECK(b.code == 3);
        CHECK(b.err.find("cdc: Kafka Connect does not answer") != std::string::npos);
    }
    for (const auto& r : f.emu.requests()) CHECK(r["method"] == "GET");
    CHECK_FALSE(fs::exists(f.backups));
}

TEST_CASE("a backup with --skip-cdc does not touch connectors", "[integration][cdc]") {
    CdcFlow f;
    auto b = f.backup({"--skip-cdc"});
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK(f.emu.requests().empty());
    json m = f.manifest();
    CHECK(m["cdc"]["mode"] == "skipped");
    CHECK(m["cdc"]["paused"] == false);
    CHECK(m["options"]["skip_cdc"] == true);
}

TEST_CASE("a worker without the offsets endpoint records offsets as unavailable", "[integration][cdc]") {
    CdcFlow f;
    f.emu.control("POST", "config", {{"offsets_supported", false}});
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    for (const auto& c : f.manifest()["cdc"]["connectors"]) CHECK(c["offsets"] == "unavailable");
    f.require_resumed(kA);
}

TEST_CASE("log-format json lines about a connector carry its name as the connector field",
          "[integration][cdc]") {
    CdcFlow f;
    auto r = f.backup({"--log-format", "json"});
    REQUIRE(r.code == 0);
    std::istringstream in(r.err);
    bool paused = false, resumed = false;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] != '{') continue;
        json j = json::parse(line);
        const std::string message = j.value("message", "");
        if (message.find("resume requested for " + kA) != std::string::npos)
            resumed = j.value("connector", "") == kA;
        if (message.find("requested for " + kB) != std::string::npos &&
            message.find("resume") == std::string::npos)
            paused = j.value("connector", "") == kB;
    }
    CHECK(paused);
    CHECK(resumed);
}
