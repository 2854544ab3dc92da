// Issue 13, "CDC never left paused": each defect an independent Kafka Connect emulator found, reproduced with
// the project's own emulator (tests/support/kafka_connect_emulator.py) through the real nightjar-backup.
#include <signal.h>

#include <catch2/catch.hpp>
#include <ctime>
#include <iostream>
#include <thread>

#include "nightjar/core/http.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "support/cdc_rig.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string& kA = test::kConnectorA;
const std::string& kB = test::kConnectorB;

struct Heal : test::CdcRig {
    explicit Heal(test::EmulatorOptions options = two_connectors(1)) : CdcRig(std::move(options)) {}
    // Resumed by nightjar (target STARTED) and settled RUNNING, connector and tasks.
    bool running(const std::string& name) const {
        json state = emu.control("GET", "state")["connectors"][name];
        UNSCOPED_INFO(name << ": " << state.dump());
        return state["target_state"] == "STARTED" && emu.wait_settled(name, "RUNNING", 2s);
    }
    std::string target(const std::string& name) const {
        return emu.control("GET", "state")["connectors"][name]["target_state"].get<std::string>();
    }
    // A request to the Kafka Connect API as an operator would send it.
    long operator_put(const std::string& path) const {
        HttpClient http(HttpOptions{.timeout = 5s, .user = "", .password = ""});
        return http.request("PUT", emu.url() + path).status;
    }
    json hook_sleep(double seconds) const {
        return {{"argv", {"python3", "-c", "import time; time.sleep(" + std::to_string(seconds) + ")"}},
                {"timeout_s", 60}};
    }
    // A before_backup hook that resumes `name` behind nightjar's back (an operator, a Strimzi revert).
    json hook_resume(const std::string& name) const {
        std::string script =
            "import urllib.request,time\n"
            "r=urllib.request.Request('" +
            emu.url() + "/connectors/" + name +
            "/resume',method='PUT')\n"
            "urllib.request.urlopen(r)\n"
            "time.sleep(1)\n";
        return {{"argv", {"python3", "-c", script}}, {"timeout_s", 60}};
    }
};

std::optional<std::int64_t> parse_rfc3339_utc_for_test(const std::string& text) {
    std::tm tm{};
    if (!strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) return std::nullopt;
    return static_cast<std::int64_t>(timegm(&tm));
}

std::int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

TEST_CASE("issue 13 #1: a pause window that ends during a backup is resumed by that backup before it exits",
          "[integration][cdc][heal]") {
    Heal f({.connectors = {kA}, .tasks = 1, .transition_delay_s = 0.1});
    f.cfg["cdc"]["kafka_connect"]["connectors"] = {kA};
    // Its guardian is off here: what is tested is the backup healing the window itself.
    auto p = f.cdc({"pause", "--window", "2s"}, {"NIGHTJAR_CDC_WINDOW_GUARDIAN=0"});
    INFO(p.err);
    REQUIRE(p.code == 0);
    REQUIRE(f.target(kA) == "PAUSED");
    const std::string until = cdc::read_cdc_state(f.journal())->window_until.value();
    // The backup starts inside the window and outlives it.
    f.cfg["hooks"] = {{"before_backup", {f.hook_sleep(3.5)}}};
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK_THAT(b.err, Catch::Contains("this run leaves CDC to that window"));
    CHECK_THAT(b.err, Catch::Contains("ended at " + until + " while this backup ran"));
    CHECK(f.target(kA) == "STARTED");
    CHECK(f.emu.wait_settled(kA, "RUNNING"));
    CHECK_FALSE(fs::exists(f.journal()));
    json m = f.manifest();
    CHECK(m["cdc"]["mode"] == "window");
    CHECK(m["cdc"]["window_ended_during_run"] == true);
    REQUIRE(m["cdc"]["resumed_from_previous_run"].size() == 1);
    CHECK(m["cdc"]["resumed_from_previous_run"][0]["result"] == "RUNNING");
}

TEST_CASE("issue 13 #2: SIGTERM during cdc pause --window resumes what it paused and exits 143",
          "[integration][cdc][heal]") {
    Heal f({.connectors = {kA, kB}, .tasks = 2, .transition_delay_s = 3});
    f.cfg["cdc"]["pause_timeout_s"] = 60;
    f.cfg["cdc"]["resume_timeout_s"] = 30;
    f.write_config();
    fs::path log = f.dir / "pause.log";
    SpawnOptions spawn;
    spawn.capture_stderr = true;
    Subprocess p = Subprocess::spawn({NIGHTJAR_BACKUP_BIN, "cdc", "pause", "--window", "1h", "--config",
                                      f.config.string(), "--log-file", log.string()},
                                     spawn);
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (f.emu.count("PUT", "/connectors/" + kA + "/pause") == 0 ||
           f.emu.count("PUT", "/connectors/" + kB + "/pause") == 0) {
        REQUIRE_FALSE(p.wait_for(20ms));
        REQUIRE(std::chrono::steady_clock::now() < deadline);
    }
    std::this_thread::sleep_for(300ms);  // waiting for PAUSED now
    p.kill(SIGTERM);
    int code = p.wait();
    std::string err = p.stderr_text();
    INFO(err);
    CHECK(code == 143);
    CHECK_THAT(err, Catch::Contains("cdc: interrupted while pausing; resuming what was paused"));
    CHECK_THAT(err, Catch::Contains("interrupted by signal 15"));
    CHECK(f.target(kA) == "STARTED");
    CHECK(f.target(kB) == "STARTED");
    CHECK(f.emu.wait_settled(kA, "RUNNING", 10s));
    CHECK(f.emu.wait_settled(kB, "RUNNING", 10s));
    CHECK_FALSE(fs::exists(f.journal()));
}

TEST_CASE("issue 13 #4: an aborted pause leaves no connector in the journal that nightjar did not pause",
          "[integration][cdc][heal]") {
    Heal f;
    f.cfg["cdc"]["pause_timeout_s"] = 2;
    f.emu.control("POST", "faults", {{"status_500_next", 1000}, {"endpoints", {"/" + kA + "/pause$"}}});
    auto b = f.backup();
    INFO(b.err);
    CHECK(b.code == 3);
    CHECK_THAT(b.err, Catch::Contains("cdc: pausing the connectors failed"));
    CHECK(f.manifests().empty());
    // Whatever was paused is resumed; nothing is left in the journal.
    CHECK(f.target(kA) == "STARTED");
    CHECK(f.target(kB) == "STARTED");
    CHECK_FALSE(fs::exists(f.journal()));
    // An operator now pauses kB; no nightjar command may undo that.
    f.emu.control("DELETE", "faults");
    REQUIRE(f.operator_put("/connectors/" + kB + "/pause") == 202);
    REQUIRE(f.emu.wait_settled(kB, "PAUSED"));
    f.emu.control("DELETE", "requests");
    auto s = f.cdc({"status"});
    INFO(s.err);
    CHECK(s.code == 0);
    CHECK(f.emu.count("PUT", "/connectors/" + kB + "/resume") == 0);
    CHECK(f.target(kB) == "PAUSED");
}

TEST_CASE("issue 13 #5: a connector whose pause keeps failing does not starve the others of their retries",
          "[integration][cdc][heal]") {
    Heal f;
    f.cfg["cdc"]["pause_timeout_s"] = 3;
    f.emu.control("POST", "faults", {{"status_500_next", 1000}, {"endpoints", {"/" + kA + "/pause$"}}});
    f.emu.control("POST", "faults", {{"status_500_next", 2}, {"endpoints", {"/" + kB + "/pause$"}}});
    auto b = f.backup();
    INFO(b.err);
    CHECK(b.code == 3);
    // kB got its three attempts within the deadline (the third was accepted), so it was really paused by
    // nightjar and is resumed again.
    auto lines = f.emu.request_lines();
    CHECK(std::count(lines.begin(), lines.end(), "PUT /connectors/" + kB + "/pause 500") == 2);
    CHECK(std::count(lines.begin(), lines.end(), "PUT /connectors/" + kB + "/pause 202") == 1);
    CHECK(f.emu.count("PUT", "/connectors/" + kA + "/pause") >= 3);
    CHECK(f.target(kB) == "STARTED");
    CHECK_FALSE(fs::exists(f.journal()));
}

TEST_CASE("issue 13 #5: a connector whose resume keeps failing does not starve the others of their retries",
          "[integration][cdc][heal]") {
    Heal f;
    f.cfg["cdc"]["resume_timeout_s"] = 3;
    f.emu.control("POST", "faults", {{"status_500_next", 1000}, {"endpoints", {"/" + kA + "/resume$"}}});
    f.emu.control("POST", "faults", {{"status_500_next", 2}, {"endpoints", {"/" + kB + "/resume$"}}});
    auto b = f.backup();
    INFO(b.err);
    CHECK(b.code == 8);
    CHECK_THAT(b.err, Catch::Contains("after the resume: " + kA + " (" + f.emu.url() + "): resume failed"));
    CHECK_THAT(b.err, !Catch::Contains(kB + " (" + f.emu.url() + "): resume failed"));
    CHECK(f.target(kA) == "PAUSED");
    CHECK(f.target(kB) == "STARTED");
    CHECK(f.emu.wait_settled(kB, "RUNNING"));
    auto state = cdc::read_cdc_state(f.journal());
    REQUIRE(state);
    REQUIRE(state->connectors.size() == 1);
    CHECK(state->connectors[0].name == kA);
}

TEST_CASE("issue 13 #5: a hanging worker cannot stretch the resume phase beyond resume_timeout_s",
          "[integration][cdc][heal]") {
    Heal f({.connectors = {kA, kB, "c3", "c4", "c5"}, .tasks = 1, .transition_delay_s = 0.1});
    f.cfg["cdc"]["kafka_connect"]["connectors"] = {kA, kB, "c3", "c4", "c5"};
    f.cfg["cdc"]["resume_timeout_s"] = 3;
    // Every resume hangs for longer than the request timeout (2 s), then lands.
    f.emu.control("POST", "faults", {{"slow_next", 1000}, {"delay_s", 6}, {"endpoints", {"/resume$"}}});
    auto t0 = std::chrono::steady_clock::now();
    auto b = f.backup();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO(b.err);
    INFO("the backup took " << seconds << " s");
    CHECK(b.code == 8);
    // Every connector got its resume requests concurrently, each cut to what is left of the 3 s: a first one
    // that hangs for the 2 s request timeout, and a retry in the second left. Serially, the first connector
    // took both tries and every other one got a single request, each adding 2 s to the phase.
    for (const std::string& name : {kA, kB, std::string("c3"), std::string("c4"), std::string("c5")})
        CHECK(f.emu.count("PUT", "/connectors/" + name + "/resume") >= 2);
    f.emu.control("DELETE", "faults");
}

TEST_CASE("issue 13 #6: a connector that turns FAILED while nightjar waits for PAUSED is left alone at once",
          "[integration][cdc][heal]") {
    Heal f({.connectors = {kA, kB}, .tasks = 1, .transition_delay_s = 0.4});
    f.cfg["cdc"]["pause_timeout_s"] = 60;  // the old code waited all of it, then gave up the backup
    f.emu.control("POST", "fail", {{"connector", kB}, {"on_pause", true}});
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK_THAT(b.err,
               Catch::Contains(kB + " (" + f.emu.url() + ") turned FAILED while nightjar waited for PAUSED"));
    json m = f.manifest();
    CHECK(m["status"] == "complete");
    CHECK(m["cdc"]["paused"] == true);
    json a = m["cdc"]["connectors"][0];
    json c = m["cdc"]["connectors"][1];
    CHECK(a["action"] == "paused");
    CHECK(c["name"] == kB);
    CHECK(c["action"] == "failed-left-alone");
    CHECK_THAT(c["problem"].get<std::string>(),
               Catch::StartsWith("turned FAILED while nightjar waited for PAUSED"));
    CHECK(m["cdc"]["resume_failures"].empty());
    // Its pause was taken back, so a restart brings it up RUNNING, not PAUSED.
    CHECK(f.target(kB) == "STARTED");
    CHECK(f.emu.connector_state(kB) == "FAILED");
    CHECK(f.target(kA) == "STARTED");
    CHECK_FALSE(fs::exists(f.journal()));
}

TEST_CASE("issue 13 #7: a connector someone resumed during the backup is recorded as not held",
          "[integration][cdc][heal]") {
    Heal f;
    f.cfg["hooks"] = {{"before_backup", {f.hook_resume(kB)}}};
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK_THAT(b.err, Catch::Contains("someone resumed it while the backup ran"));
    json m = f.manifest();
    CHECK(m["cdc"]["paused"] == false);
    json a = m["cdc"]["connectors"][0];
    json c = m["cdc"]["connectors"][1];
    CHECK(a["held"] == true);
    CHECK(a["held_s"].is_number());
    CHECK(a["status_before_resume"]["state"] == "PAUSED");
    CHECK(c["name"] == kB);
    CHECK(c["held"] == false);
    CHECK(c["held_s"].is_null());
    CHECK(c["status_before_resume"]["state"] == "RUNNING");
    CHECK(m["cdc"]["resume_failures"].empty());
    CHECK(f.target(kA) == "STARTED");
    CHECK(f.target(kB) == "STARTED");
}

TEST_CASE("issue 13 #7: a connector someone stopped during the backup is not started by the resume",
          "[integration][cdc][heal]") {
    Heal f;
    std::string script =
        "import urllib.request\n"
        "urllib.request.urlopen(urllib.request.Request('" +
        f.emu.url() + "/connectors/" + kB +
        "/stop',method='PUT'))\n"
        "import time; time.sleep(1)\n";
    f.cfg["hooks"] = {{"before_backup", {{{"argv", {"python3", "-c", script}}, {"timeout_s", 30}}}}};
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK(f.emu.count("PUT", "/connectors/" + kB + "/resume") == 0);
    CHECK(f.target(kB) == "STOPPED");
    json c = f.manifest()["cdc"]["connectors"][1];
    CHECK(c["held"] == false);
    CHECK(c["problem"] == "STOPPED by someone else while the backup ran: not resumed");
    CHECK_FALSE(fs::exists(f.journal()));
}

TEST_CASE("issue 13 #8: offsets are read again just before the resume, and the later reading is the point",
          "[integration][cdc][heal]") {
    Heal f({.connectors = {kA}, .tasks = 1, .transition_delay_s = 0.1});
    f.cfg["cdc"]["kafka_connect"]["connectors"] = {kA};
    json first = f.emu.control("GET", "state")["connectors"][kA]["offsets"];
    json later =
        json::array({{{"partition", {{"server", kA}}}, {"offset", {{"lsn", 99999999}, {"txId", 777}}}}});
    // The periodic offset commit lands about 1.5 s from now: after PAUSED, before the resume.
    f.emu.control("POST", "offsets", {{"connector", kA}, {"offsets", later}, {"delay_s", 1.5}});
    f.cfg["hooks"] = {{"before_backup", {f.hook_sleep(3)}}};
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    json c = f.manifest()["cdc"]["connectors"][0];
    CHECK(c["offsets_at_pause"] == first);
    CHECK(c["offsets_before_resume"] == later);
    CHECK(c["offsets"] == later);
    auto lines = f.emu.request_lines();
    CHECK(std::count(lines.begin(), lines.end(), "GET /connectors/" + kA + "/offsets 200") == 2);
}

TEST_CASE("issue 13 #10: a damaged state file is moved aside with one alert and later runs proceed",
          "[integration][cdc][heal]") {
    Heal f;
    test::write_file(f.journal(), "{\"version\": 1, \"owner\": \"backup\", \"connectors\": [{\"name\": \"" +
                                      kA + "\", \"urls\": [");
    // What the damaged journal held: kA is PAUSED; kB RUNNING.
    REQUIRE(f.operator_put("/connectors/" + kA + "/pause") == 202);
    REQUIRE(f.emu.wait_settled(kA, "PAUSED"));
    auto b = f.backup();
    INFO(b.err);
    CHECK(b.code == 8);
    CHECK_THAT(b.err, Catch::Contains("cdc state file " + f.journal().string() + " was damaged"));
    CHECK_THAT(b.err, Catch::Contains("moved aside to " + f.journal().string() + ".damaged-"));
    CHECK_THAT(b.err, Catch::Contains("it might have held " + kA + " (" + f.emu.url() + "), " + kB));
    CHECK_THAT(b.err, Catch::Contains("resumed " + kA + " (PAUSED and claimed by nothing else)"));
    // The backup itself ran and was published; everything is RUNNING.
    REQUIRE(f.manifests().size() == 1);
    json m = f.manifest();
    CHECK(m["status"] == "complete");
    CHECK(m["cdc"]["damaged_state_file"]["moved_to"].get<std::string>().starts_with(f.journal().string() +
                                                                                    ".damaged-"));
    CHECK(f.target(kA) == "STARTED");
    CHECK(f.target(kB) == "STARTED");
    int aside = 0;
    for (const auto& e : fs::directory_iterator(f.state_dir))
        aside += e.path().filename().string().starts_with(f.journal().filename().string() + ".damaged-");
    CHECK(aside == 1);
    CHECK_FALSE(fs::exists(f.journal()));

    auto again = f.backup();
    INFO(again.err);
    CHECK(again.code == 0);
    CHECK(f.manifests().size() == 2);
}

TEST_CASE("issue 13 #3 and #9: a run killed with --backup-dir OTHER is healed by ExecStopPost's --resume-cdc",
          "[integration][cdc][heal]") {
    Heal f;
    fs::path other = f.dir / "other-backups";
    auto killed = f.backup({"--backup-dir", other.string()}, {"NIGHTJAR_FAILPOINT=cdc:paused"});
    const auto t_killed = std::chrono::steady_clock::now();
    INFO(killed.err);
    REQUIRE(killed.code == 128 + SIGKILL);
    REQUIRE(f.target(kA) == "PAUSED");
    REQUIRE(f.target(kB) == "PAUSED");
    // The journal is host-wide: not in either backup dir.
    REQUIRE(fs::exists(f.journal()));
    CHECK_FALSE(fs::exists(cdc::cdc_state_path(other)));
    CHECK_FALSE(fs::exists(cdc::cdc_state_path(f.backups)));
    auto state = cdc::read_cdc_state(f.journal());
    REQUIRE(state);
    CHECK(state->connectors.size() == 2);

    SECTION("ExecStopPost= runs the unit's --resume-cdc, without --backup-dir") {
        auto r = f.backup({"--resume-cdc"});
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t_killed).count();
        INFO(r.err);
        CHECK(r.code == 0);
        CHECK_THAT(r.err, Catch::Contains("left connectors paused and did not resume them: " + kA));
        CHECK(f.running(kA));
        CHECK(f.running(kB));
        // The measured latency from the SIGKILL to RUNNING (README: "never left paused").
        std::cerr
            << "measured: SIGKILL of the backup -> ExecStopPost --resume-cdc -> every connector RUNNING: "
            << seconds << " s\n";
    }
    SECTION("cdc status (no --backup-dir) sees and heals it") {
        auto s = f.cdc({"status"});
        INFO(s.err);
        CHECK(s.code == 0);
        CHECK_THAT(s.err, Catch::Contains("left connectors paused and did not resume them: " + kA));
        CHECK(f.running(kA));
    }
    SECTION("the next normal backup (default backup dir) heals it instead of taking it for someone else's") {
        auto b = f.backup();
        INFO(b.err);
        CHECK(b.code == 0);
        json m = f.manifest();
        CHECK(m["cdc"]["resumed_from_previous_run"].size() == 2);
        CHECK(m["cdc"]["connectors"][0]["action"] == "paused");
        CHECK(m["cdc"]["connectors"][1]["action"] == "paused");
        CHECK(f.running(kA));
        CHECK(f.running(kB));
    }
    CHECK_FALSE(fs::exists(f.journal()));
}

TEST_CASE("issue 13 #3: a journal in its old place in the backup dir is migrated and healed",
          "[integration][cdc][heal]") {
    Heal f;
    REQUIRE(f.operator_put("/connectors/" + kA + "/pause") == 202);  // what the old run paused
    REQUIRE(f.emu.wait_settled(kA, "PAUSED"));
    fs::create_directories(f.backups);
    cdc::CdcPauseState old;
    old.owner = "backup";
    old.pid = 4242;
    old.backup_id = "20261125_015000";
    old.created_at = "2026-11-25T01:50:00Z";
    old.connectors.push_back({.urls = {f.emu.url()},
                              .user = "",
                              .password_file = "",
                              .name = kA,
                              .paused_at = "2026-11-25T01:50:00Z"});
    cdc::write_cdc_state(cdc::cdc_state_path(f.backups), old);
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK_THAT(b.err,
               Catch::Contains("moved the crash journal from its old place " +
                               cdc::cdc_state_path(f.backups).string() + " to " + f.journal().string()));
    CHECK_THAT(b.err, Catch::Contains("a previous run (backup 20261125_015000, pid 4242"));
    CHECK(f.running(kA));
    CHECK_FALSE(fs::exists(cdc::cdc_state_path(f.backups)));
    CHECK_FALSE(fs::exists(f.journal()));
}

TEST_CASE("issue 13 #3: a run into another backup dir holds the journal: nothing it paused is resumed",
          "[integration][cdc][heal]") {
    Heal f;
    fs::create_directories(f.state_dir);
    fs::path lock_file = f.journal();
    lock_file.replace_extension(".lock");
    Lock running(lock_file);  // a backup into another backup dir, running
    REQUIRE(f.operator_put("/connectors/" + kA + "/pause") == 202);
    cdc::CdcPauseState state;
    state.owner = "backup";
    state.pid = 4242;
    state.connectors.push_back({.urls = {f.emu.url()},
                                .user = "",
                                .password_file = "",
                                .name = kA,
                                .paused_at = "2026-11-25T01:50:00Z"});
    cdc::write_cdc_state(f.journal(), state);
    f.emu.control("DELETE", "requests");
    auto s = f.cdc({"status"});
    INFO(s.err);
    CHECK(s.code == 0);
    auto b = f.backup();
    INFO(b.err);
    CHECK(b.code == 5);
    CHECK_THAT(b.err, Catch::Contains("cdc: the journal " + f.journal().string() +
                                      " is in use by another nightjar run"));
    CHECK(f.emu.count("PUT", "/connectors/" + kA + "/resume") == 0);
    CHECK(f.target(kA) == "PAUSED");
    CHECK(fs::exists(f.journal()));
}

TEST_CASE("issue 13 #9: cdc pause --window arranges its own end: the guardian resumes after a SIGKILL",
          "[integration][cdc][heal]") {
    Heal f({.connectors = {kA, kB}, .tasks = 1, .transition_delay_s = 1.5});
    f.cfg["cdc"]["pause_timeout_s"] = 60;
    f.write_config();
    fs::path log = f.dir / "pause.log";
    SpawnOptions spawn;
    spawn.capture_stderr = true;
    Subprocess p = Subprocess::spawn({NIGHTJAR_BACKUP_BIN, "cdc", "pause", "--window", "3s", "--config",
                                      f.config.string(), "--log-file", log.string()},
                                     spawn);
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (f.emu.count("PUT", "/connectors/" + kA + "/pause") == 0 ||
           f.emu.count("PUT", "/connectors/" + kB + "/pause") == 0) {
        REQUIRE_FALSE(p.wait_for(20ms));
        REQUIRE(std::chrono::steady_clock::now() < deadline);
    }
    p.kill(SIGKILL);  // while it waits for PAUSED
    CHECK(p.wait() == 128 + SIGKILL);
    const auto t_killed = std::chrono::steady_clock::now();
    CHECK_THAT(test::read_file(log),
               Catch::Contains("a detached guardian process resumes the window's connectors"));
    auto state = cdc::read_cdc_state(f.journal());
    REQUIRE(state);
    CHECK(state->owner == "window");
    const std::string until = state->window_until.value();
    // Nobody runs anything: the guardian resumes both when the window ends.
    deadline = std::chrono::steady_clock::now() + 30s;
    while (!(f.running(kA) && f.running(kB))) {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(20ms);
    }
    const double after_kill =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_killed).count();
    const double after_end = static_cast<double>(now_s() - *parse_rfc3339_utc_for_test(until));
    std::cerr << "measured: SIGKILL of cdc pause --window 3s -> guardian -> every connector RUNNING: "
              << after_kill << " s (window end -> RUNNING: about " << after_end << " s, whole seconds)\n";
    deadline = std::chrono::steady_clock::now() + 10s;
    while (fs::exists(f.journal()) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    CHECK_FALSE(fs::exists(f.journal()));
    // The guardian logs its last line after it has removed the journal: wait for that line too.
    const std::string ended = "window guardian: the pause window has ended and its connectors are resumed";
    deadline = std::chrono::steady_clock::now() + 10s;
    while (test::read_file(log).find(ended) == std::string::npos &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    CHECK_THAT(test::read_file(log), Catch::Contains(ended));
}
