// The CDC watchdog (`nightjar-backup cdc watch`), backup windows (`cdc pause --window` / `cdc resume`) and
// `cdc status`, through the real binary against the Kafka Connect emulator, with the real PostgreSQL of the
// test script as the probed source. The source is made "down" and "up" by a TCP gate in front of it
// (tests/support/tcp_gate.py): while its down-file exists every connection is closed at once.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <thread>

#include "nightjar/cdc/state_file.hpp"
#include "nightjar/core/clock.hpp"
#include "nightjar/core/http.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "support/commands.hpp"
#include "support/kafka_connect_emulator.hpp"
#include "support/listener.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string kA = "inventory-connector";
const std::string kB = "orders-connector";

struct WatchFlow {
    test::TempDir dir;
    fs::path backups = dir / "backups";
    fs::path state_dir = dir / "cdc-state";  // the host-wide journal's dir (cdc.state_dir): never /var/lib
    fs::path config = dir / "nightjar.json";
    fs::path hook_log = dir / "alerts.jsonl";
    fs::path log = dir / "watch.log";
    fs::path down = dir / "source-down";
    test::KafkaConnectEmulator emu;
    test::Listener gate;
    test::Listener pings;
    json cfg;

    explicit WatchFlow(test::EmulatorOptions options = {.connectors = {kA, kB},
                                                        .tasks = 2,
                                                        .transition_delay_s = 0.1})
        : emu(std::move(options)),
          gate({"python3", (test::source_dir() / "tests/support/tcp_gate.py").string(), "--target",
                test::required_env("NIGHTJAR_TEST_PGHOST") + ":" + test::required_env("NIGHTJAR_TEST_PGPORT"),
                "--down-file", (dir / "source-down").string()},
               true),
          pings({"python3", (test::source_dir() / "tests/support/http_recorder.py").string(), "--log",
                 (dir / "pings.jsonl").string()},
                true) {
        fs::path passfile = dir / "pgpass";
        test::write_file(passfile, "*:*:*:*:" + test::required_env("NIGHTJAR_TEST_PGPASSWORD") + "\n");
        ::chmod(passfile.c_str(), 0600);
        std::string hook =
            "import os,json\n"
            "open('" +
            hook_log.string() +
            "','a').write(json.dumps({k:v for k,v in os.environ.items() if "
            "k.startswith('NIGHTJAR_')})+'\\n')\n";
        cfg = json{
            {"backup_dir", backups.string()},
            {"monitoring", {{"ping_url", "http://127.0.0.1:" + std::to_string(pings.port) + "/ping/abc"}}},
            {"cdc",
             {{"kafka_connect", {{"url", emu.url()}, {"connectors", {kA, kB}}, {"request_timeout_s", 2}}},
              {"pause_timeout_s", 5},
              {"resume_timeout_s", 5},
              {"retry", {{"initial_backoff_s", 0.05}, {"max_backoff_s", 0.2}}},
              {"state_dir", state_dir.string()},
              {"watch",
               {{"check_interval_s", 0.2},
                {"probe_interval_s", 0.2},
                {"probe_timeout_s", 2},
                {"settle_s", 1},
                {"max_wait_min", 1},
                {"alert_repeat_min", 60},
                {"backoff", {{"initial_s", 0.5}, {"max_s", 1}}},
                {"probes",
                 {{kA,
                   {{"postgres",
                     {{"host", "127.0.0.1"},
                      {"port", gate.port},
                      {"user", test::required_env("NIGHTJAR_TEST_PGUSER")},
                      {"dbname", "postgres"},
                      {"passfile", passfile.string()}}}}}}},
                {"on_alert", {{{"argv", {"python3", "-c", hook}}, {"timeout_s", 30}}}}}}}}};
    }
    void source_up(bool up) const {
        if (up)
            fs::remove(down);
        else
            test::write_file(down, "");
    }
    void write_config() const { test::write_file(config, cfg.dump(2)); }
    fs::path journal() const { return cdc::cdc_journal_path(state_dir, {{emu.url()}}); }
    test::Outcome cdc(std::vector<std::string> args, std::vector<std::string> env = {}) const {
        write_config();
        args.insert(args.begin(), "cdc");
        args.insert(args.end(), {"--config", config.string()});
        return test::backup(args, env);
    }
    Subprocess watch() const {
        write_config();
        SpawnOptions o;
        o.capture_stderr = true;
        return Subprocess::spawn(
            {NIGHTJAR_BACKUP_BIN, "cdc", "watch", "--config", config.string(), "--log-file", log.string()},
            o);
    }
    std::string log_text() const { return fs::exists(log) ? test::read_file(log) : ""; }
    static int occurrences(const std::string& text, const std::string& needle) {
        int n = 0;
        for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
        return n;
    }
    // Waits until the watchdog's log has `needle` at least `count` times (fails after 30 s or if it exited).
    void wait_log(Subprocess& p, const std::string& needle, int count = 1) const {
        auto deadline = std::chrono::steady_clock::now() + 30s;
        while (occurrences(log_text(), needle) < count) {
            if (auto status = p.wait_for(20ms))
                FAIL("the watchdog exited with " << *status << ": " << log_text());
            if (std::chrono::steady_clock::now() > deadline)
                FAIL("no \"" << needle << "\" (x" << count << ") in the watchdog log: " << log_text());
        }
    }
    // SIGTERM; returns the exit code.
    int stop(Subprocess& p) const {
        p.kill(SIGTERM);
        return p.wait();
    }
    std::string last_log_line() const {
        std::string text = log_text();
        while (!text.empty() && text.back() == '\n') text.pop_back();
        return text.substr(text.rfind('\n') + 1);
    }
    std::vector<json> alerts() const { return test::read_jsonl(hook_log); }
    std::vector<json> ping_requests() const { return test::read_jsonl(dir / "pings.jsonl"); }
    std::string target(const std::string& name) const {
        return emu.control("GET", "state")["connectors"][name]["target_state"].get<std::string>();
    }
    // Requests that change something (anything but GET) for `name`.
    std::vector<std::string> writes(const std::string& name) const {
        std::vector<std::string> out;
        for (const auto& r : emu.requests())
            if (r["method"] != "GET" && r["path"].get<std::string>().find("/connectors/" + name + "/") == 0)
                out.push_back(r["method"].get<std::string>() + " " + r["path"].get<std::string>() + "?" +
                              r["query"].get<std::string>());
        return out;
    }
    void fail_task(const std::string& name, int task, bool after_resume = false) const {
        emu.control("POST", "fail",
                    {{"connector", name},
                     {"task", task},
                     {"after_resume", after_resume},
                     {"trace",
                      "org.apache.kafka.connect.errors.ConnectException: An exception occurred in the "
                      "change event producer. This connector will be stopped.\n\tat x\nCaused by: "
                      "org.postgresql.util.PSQLException: Connection refused"}});
    }
    void require_running(const std::string& name) const {
        INFO(name);
        CHECK(target(name) == "STARTED");
        CHECK(emu.wait_settled(name, "RUNNING"));
    }
};

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + "\n";
    return s;
}

}  // namespace

TEST_CASE("watchdog: a task FAILED while its source is down is paused, probed, restarted and resumed",
          "[integration][cdc][watch]") {
    bool old_worker = GENERATE(false, true);
    INFO("worker ignores restart parameters: " << old_worker);
    WatchFlow f;
    if (old_worker) f.emu.control("POST", "config", {{"restart_params_supported", false}});
    f.source_up(false);
    f.fail_task(kA, 1);
    Subprocess w = f.watch();
    f.wait_log(w, "task 1 FAILED: org.apache.kafka.connect.errors.ConnectException: An exception occurred");
    f.wait_log(w, kA + " (" + f.emu.url() + ") paused; probing its source");
    CHECK(f.target(kA) == "PAUSED");
    // Probed through libpq while the gate closes every connection: kept paused, never restarted.
    f.wait_log(w,
               "its source (postgres database \"postgres\" on 127.0.0.1:" + std::to_string(f.gate.port) +
                   ") does not answer",
               2);
    CHECK(f.emu.count("POST", "/connectors/" + kA + "/restart") == 0);
    CHECK(f.target(kA) == "PAUSED");

    f.source_up(true);
    f.wait_log(w, "answers (SELECT 1 answered by PostgreSQL");
    f.wait_log(w, kA + " (" + f.emu.url() + ") is healed: RUNNING");
    f.require_running(kA);
    auto writes = f.writes(kA);
    INFO(joined(writes));
    REQUIRE(writes.size() >= 3);
    CHECK(writes[0] == "PUT /connectors/" + kA + "/pause?");
    CHECK(writes[1] == "POST /connectors/" + kA + "/restart?includeTasks=true&onlyFailed=true");
    if (old_worker) {
        // The worker answered 204: each FAILED task is restarted on its own, then the connector resumed.
        REQUIRE(writes.size() == 4);
        CHECK(writes[2] == "POST /connectors/" + kA + "/tasks/1/restart?");
        CHECK(writes[3] == "PUT /connectors/" + kA + "/resume?");
        CHECK(f.occurrences(f.log_text(), "ignored includeTasks/onlyFailed") == 1);
    } else {
        REQUIRE(writes.size() == 3);
        CHECK(writes[2] == "PUT /connectors/" + kA + "/resume?");
        CHECK(f.emu.count("POST", "/connectors/" + kA + "/tasks/1/restart") == 0);
    }
    CHECK(f.writes(kB).empty());
    CHECK(f.alerts().empty());
    CHECK(f.stop(w) == 0);
    CHECK_THAT(f.last_log_line(), Catch::Contains("no connector is left paused by the watchdog"));
    CHECK_FALSE(fs::exists(f.backups / cdc::kCdcWatchStateFile));
}

TEST_CASE("watchdog: a relapse right after the resume is paused again and retried with backoff",
          "[integration][cdc][watch]") {
    WatchFlow f;
    f.source_up(true);
    f.fail_task(kA, 0);
    f.fail_task(kA, 0, /*after_resume=*/true);  // the deferred Debezium error: fails again once resumed
    Subprocess w = f.watch();
    f.wait_log(w, kA + " (" + f.emu.url() + ") relapsed after the resume: task 0 FAILED");
    f.wait_log(w, "paused again (failure 2 since");
    CHECK_THAT(f.log_text(), Catch::Contains("backing off: no restart for 0.5 s"));
    f.wait_log(w, kA + " (" + f.emu.url() + ") is healed: RUNNING");
    CHECK_THAT(f.log_text(), Catch::Contains("2 failure(s)"));
    f.require_running(kA);
    auto writes = f.writes(kA);
    INFO(joined(writes));
    const std::vector<std::string> once{
        "PUT /connectors/" + kA + "/pause?",
        "POST /connectors/" + kA + "/restart?includeTasks=true&onlyFailed=true",
        "PUT /connectors/" + kA + "/resume?"};
    std::vector<std::string> expected = once;
    expected.insert(expected.end(), once.begin(), once.end());
    CHECK(writes == expected);
    CHECK(f.stop(w) == 0);
}

TEST_CASE("watchdog: a source that stays down raises exactly one alert and the connector stays paused",
          "[integration][cdc][watch]") {
    WatchFlow f;
    f.cfg["cdc"]["watch"]["max_wait_min"] = 0.03;  // 1.8 s
    f.source_up(false);
    f.fail_task(kA, 0);
    Subprocess w = f.watch();
    f.wait_log(w, "ALERT: " + kA + " (" + f.emu.url() + ") has not healed");
    // Keep probing well past the alert: no second alert before alert_repeat_min (60 min).
    int probes = WatchFlow::occurrences(f.log_text(), "does not answer");
    f.wait_log(w, "does not answer", probes + 5);
    CHECK(f.stop(w) == 0);
    auto alerts = f.alerts();
    REQUIRE(alerts.size() == 1);
    CHECK(alerts[0]["NIGHTJAR_CDC_EVENT"] == "alert");
    CHECK(alerts[0]["NIGHTJAR_STATUS"] == "cdc-alert");
    CHECK(alerts[0]["NIGHTJAR_CDC_CONNECTOR"] == kA);
    CHECK(alerts[0]["NIGHTJAR_CDC_CLUSTER"] == f.emu.url());
    CHECK_THAT(alerts[0]["NIGHTJAR_CDC_STATE"].get<std::string>(), Catch::Contains("0 FAILED"));
    CHECK_THAT(alerts[0]["NIGHTJAR_CDC_TRACE"].get<std::string>(),
               Catch::Equals("task 0 FAILED: org.apache.kafka.connect.errors.ConnectException: An exception "
                             "occurred in the change event producer. This connector will be stopped."));
    auto pings = f.ping_requests();
    REQUIRE(pings.size() == 1);
    CHECK(pings[0]["path"] == "/ping/abc/fail");
    CHECK(json::parse(pings[0]["body"].get<std::string>())["connector"] == kA);
    // Kept paused, never restarted; the last log line names it, and the journal keeps it for the next start.
    CHECK(f.target(kA) == "PAUSED");
    CHECK(f.emu.count("POST", "/connectors/" + kA + "/restart") == 0);
    CHECK(f.emu.count("PUT", "/connectors/" + kA + "/resume") == 0);
    CHECK_THAT(f.last_log_line(), Catch::Contains("left paused because their source does not answer: " + kA));
    auto journal = cdc::read_cdc_state(f.backups / cdc::kCdcWatchStateFile);
    REQUIRE(journal);
    CHECK(journal->owner == "watch");
    REQUIRE(journal->connectors.size() == 1);
    CHECK(journal->connectors[0].name == kA);

    SECTION("a restarted watchdog takes it over and heals it once the source answers") {
        f.source_up(true);
        Subprocess again = f.watch();
        f.wait_log(again, "taking over " + kA + " (" + f.emu.url() + "), which a previous watchdog");
        f.wait_log(again, kA + " (" + f.emu.url() + ") is healed: RUNNING");
        f.require_running(kA);
        CHECK(f.stop(again) == 0);
        CHECK_FALSE(fs::exists(f.backups / cdc::kCdcWatchStateFile));
    }
}

TEST_CASE("watchdog: a failure healed after the alert sends a recovery notice", "[integration][cdc][watch]") {
    WatchFlow f;
    f.cfg["cdc"]["watch"]["max_wait_min"] = 0.02;
    f.source_up(false);
    f.fail_task(kA, 1);
    Subprocess w = f.watch();
    f.wait_log(w, "ALERT: " + kA);
    f.source_up(true);
    f.wait_log(w, "RECOVERED: " + kA + " (" + f.emu.url() + ") is healed");
    CHECK(f.stop(w) == 0);
    auto alerts = f.alerts();
    REQUIRE(alerts.size() == 2);
    CHECK(alerts[0]["NIGHTJAR_CDC_EVENT"] == "alert");
    CHECK(alerts[1]["NIGHTJAR_CDC_EVENT"] == "recovered");
    CHECK(alerts[1]["NIGHTJAR_CDC_CONNECTOR"] == kA);
    auto pings = f.ping_requests();
    REQUIRE(pings.size() == 2);
    CHECK(pings[0]["path"] == "/ping/abc/fail");
    // On the backup's own check the notice is only logged (/log): it must not mark a failed backup as fine.
    CHECK(pings[1]["path"] == "/ping/abc/log");
    f.require_running(kA);
}

TEST_CASE("watchdog: connectors someone else paused or stopped are never touched",
          "[integration][cdc][watch]") {
    WatchFlow f({.connectors = {}, .tasks = 2, .transition_delay_s = 0.1});
    f.emu.control("POST", "connectors", {{"name", kA}, {"tasks", 2}, {"state", "PAUSED"}});
    f.emu.control("POST", "connectors", {{"name", kB}, {"tasks", 2}, {"state", "STOPPED"}});
    f.fail_task(kA, 1);  // FAILED while paused by someone else
    f.source_up(true);
    Subprocess w = f.watch();
    f.wait_log(w, kA + " (" + f.emu.url() +
                      ") is PAUSED (tasks: 0 PAUSED, 1 FAILED) by someone else and task 1 "
                      "FAILED: org.apache.kafka.connect.errors.ConnectException");
    f.wait_log(w, kB + " (" + f.emu.url() + ") is STOPPED (tasks: none) by someone else: left alone");
    // Several more checks.
    auto checks = f.emu.count("GET", "/connectors/" + kA + "/status");
    while (f.emu.count("GET", "/connectors/" + kA + "/status") < checks + 5)
        std::this_thread::sleep_for(50ms);
    CHECK(f.stop(w) == 0);
    CHECK(f.writes(kA).empty());
    CHECK(f.writes(kB).empty());
    CHECK(f.target(kA) == "PAUSED");
    CHECK(f.target(kB) == "STOPPED");
    CHECK(f.alerts().empty());
}

TEST_CASE("watchdog: connectors a running backup holds paused are left alone", "[integration][cdc][watch]") {
    WatchFlow f;
    f.source_up(true);
    // A backup run in progress: it holds the repository lock and its state file names kA, which it paused.
    fs::create_directories(f.backups);
    fs::create_directories(f.state_dir);
    Lock lock(f.backups / kLockFile);
    cdc::CdcPauseState state;
    state.owner = "backup";
    state.pid = 4242;
    state.backup_id = "20261125_015000";
    state.created_at = "2026-11-25T01:50:00Z";
    state.connectors.push_back({.urls = {f.emu.url()},
                                .user = "",
                                .password_file = "",
                                .name = kA,
                                .paused_at = "2026-11-25T01:50:00Z"});
    cdc::write_cdc_state(f.journal(), state);
    test::KafkaConnectEmulator& emu = f.emu;
    // kA paused by that backup, and one of its tasks FAILED meanwhile.
    HttpClient http;
    REQUIRE(http.request("PUT", emu.url() + "/connectors/" + kA + "/pause").status == 202);
    REQUIRE(emu.wait_settled(kA, "PAUSED"));
    f.fail_task(kA, 0);
    emu.control("DELETE", "requests");
    Subprocess w = f.watch();
    f.wait_log(w, "a backup run holds connectors paused: they are left alone");
    f.wait_log(w, kA + " (" + emu.url() + ") is held paused by a running backup: left alone");
    auto checks = emu.count("GET", "/connectors/" + kA + "/status");
    while (emu.count("GET", "/connectors/" + kA + "/status") < checks + 5) std::this_thread::sleep_for(50ms);
    CHECK(f.stop(w) == 0);
    CHECK(f.writes(kA).empty());
    CHECK(f.target(kA) == "PAUSED");
    // The backup's journal is untouched: the watchdog never heals a pause whose owner holds the lock.
    auto after = cdc::read_cdc_state(f.journal());
    REQUIRE(after);
    CHECK(after->owner == "backup");
    CHECK(after->connectors.size() == 1);
}

TEST_CASE("watchdog: Kafka Connect unreachable gives backoff and one alert, nothing else",
          "[integration][cdc][watch]") {
    WatchFlow f;
    f.cfg["cdc"]["watch"]["max_wait_min"] = 0.02;  // 1.2 s
    f.source_up(true);
    Subprocess w = f.watch();
    f.wait_log(w, "cdc watch: watching 2 connector(s)");
    while (f.emu.count("GET", "/connectors/" + kB + "/status") < 2) std::this_thread::sleep_for(20ms);
    f.emu.control("POST", "refuse", {{"seconds", 4}});
    f.wait_log(w, "cdc watch: Kafka Connect " + f.emu.url() + " does not answer");
    f.wait_log(w, "ALERT: Kafka Connect " + f.emu.url() + " has not answered for");
    f.wait_log(w, "answers again after");
    f.wait_log(w, "RECOVERED: Kafka Connect " + f.emu.url() + " answers again");
    CHECK(f.stop(w) == 0);
    std::string text = f.log_text();
    // Backoff: the waits between attempts grow (0.5 s, then 1 s: backoff.max_s).
    CHECK_THAT(text, Catch::Contains("nothing is changed; next check in 0.5 s (backoff") &&
                         Catch::Contains("nothing is changed; next check in 1 s (backoff"));
    auto alerts = f.alerts();
    REQUIRE(alerts.size() == 2);
    CHECK(alerts[0]["NIGHTJAR_CDC_EVENT"] == "alert");
    CHECK(alerts[0]["NIGHTJAR_CDC_STATE"] == "UNREACHABLE");
    CHECK(alerts[0]["NIGHTJAR_CDC_CLUSTER"] == f.emu.url());
    CHECK(alerts[1]["NIGHTJAR_CDC_EVENT"] == "recovered");
    for (const auto& r : f.emu.requests()) CHECK(r["method"] == "GET");
}

TEST_CASE("cdc pause --window and cdc resume pause and resume exactly the connectors of the window",
          "[integration][cdc][window]") {
    WatchFlow f({.connectors = {kA}, .tasks = 2, .transition_delay_s = 0.1});
    f.emu.control("POST", "connectors", {{"name", kB}, {"tasks", 1}, {"state", "PAUSED"}});  // someone else's
    auto p = f.cdc({"pause", "--window", "40m"});
    INFO(p.err);
    REQUIRE(p.code == 0);
    CHECK(f.emu.wait_settled(kA, "PAUSED"));
    auto state = cdc::read_cdc_state(f.journal());
    REQUIRE(state);
    CHECK(state->owner == "window");
    REQUIRE(state->window_until);
    REQUIRE(state->connectors.size() == 1);
    CHECK(state->connectors[0].name == kA);
    CHECK_THAT(p.err, Catch::Contains(kA + " (" + f.emu.url() + ") paused until " + *state->window_until));

    auto s = f.cdc({"status", "--json"});
    INFO(s.err);
    REQUIRE(s.code == 0);
    json j = json::parse(s.out);
    REQUIRE(j["connectors"].size() == 2);
    CHECK(j["connectors"][0]["name"] == kA);
    CHECK(j["connectors"][0]["state"] == "PAUSED");
    CHECK(j["connectors"][0]["paused_by"] == "pause window until " + *state->window_until);
    CHECK(j["connectors"][1]["paused_by"].is_null());

    SECTION("a backup run during the window leaves CDC to it") {
        test::write_file(f.dir / "etc/app.conf", "x = 1\n");
        f.cfg["files"] = {{"paths", {(f.dir / "etc").string()}}};
        f.write_config();
        f.emu.control("DELETE", "requests");
        auto b = test::backup({"--config", f.config.string()});
        INFO(b.err);
        REQUIRE(b.code == 0);
        CHECK_THAT(b.err, Catch::Contains("this run leaves CDC to that window"));
        for (const auto& r : f.emu.requests()) CHECK(r["method"] == "GET");
        CHECK(f.target(kA) == "PAUSED");
        CHECK(cdc::read_cdc_state(f.journal())->owner == "window");
    }
    SECTION("cdc resume resumes exactly those") {
        f.emu.control("DELETE", "requests");
        auto r = f.cdc({"resume"});
        INFO(r.err);
        REQUIRE(r.code == 0);
        f.require_running(kA);
        CHECK(f.writes(kA) == std::vector<std::string>{"PUT /connectors/" + kA + "/resume?"});
        CHECK(f.writes(kB).empty());
        CHECK(f.target(kB) == "PAUSED");
        CHECK_FALSE(fs::exists(f.journal()));
        auto again = f.cdc({"resume"});
        CHECK(again.code == 0);
        CHECK_THAT(again.err, Catch::Contains("no pause window is open and nothing was left paused"));
    }
    SECTION("cdc resume while a backup holds the repository lock is refused") {
        Lock lock(f.backups / kLockFile);
        auto r = f.cdc({"resume"});
        CHECK(r.code == 5);
        CHECK_THAT(r.err, Catch::Contains("backup dir is locked by another nightjar run"));
        CHECK(f.target(kA) == "PAUSED");
    }
}

TEST_CASE("a pause window whose resume never comes is healed by the next invocation",
          "[integration][cdc][window]") {
    WatchFlow f({.connectors = {kA}, .tasks = 1, .transition_delay_s = 0.1});
    f.cfg["cdc"]["kafka_connect"]["connectors"] = {kA};
    f.source_up(true);
    // Without its guardian (issue 13 #9), so the lazy paths that remain the safety net are what heals it.
    auto p = f.cdc({"pause", "--window", "1s"}, {"NIGHTJAR_CDC_WINDOW_GUARDIAN=0"});
    INFO(p.err);
    REQUIRE(p.code == 0);
    CHECK(f.target(kA) == "PAUSED");
    auto until = cdc::read_cdc_state(f.journal())->window_until.value();
    // Wait until the window has ended (whole seconds in the state file).
    while (rfc3339_utc(std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count()) <= until)
        std::this_thread::sleep_for(100ms);
    const std::string loud = "ended at " + until + " and nobody ran `nightjar-backup cdc resume`: " + kA;

    SECTION("by cdc status") {
        auto s = f.cdc({"status"});
        INFO(s.err);
        CHECK(s.code == 0);
        CHECK_THAT(s.err, Catch::Contains(loud));
        CHECK_THAT(s.out, Catch::Contains(kA + " (" + f.emu.url() + "): RUNNING (tasks: 0 RUNNING)"));
    }
    SECTION("by a backup run") {
        test::write_file(f.dir / "etc/app.conf", "x = 1\n");
        f.cfg["files"] = {{"paths", {(f.dir / "etc").string()}}};
        f.write_config();
        auto b = test::backup({"--config", f.config.string()});
        INFO(b.err);
        CHECK(b.code == 0);
        CHECK_THAT(b.err, Catch::Contains(loud));
    }
    SECTION("by the watchdog") {
        Subprocess w = f.watch();
        f.wait_log(w, loud);
        f.wait_log(w, "which the pause window held paused");
        CHECK(f.stop(w) == 0);
    }
    f.require_running(kA);
    CHECK_FALSE(fs::exists(f.journal()));
}

TEST_CASE("cdc status shows states, first trace lines and problems", "[integration][cdc]") {
    WatchFlow f;
    f.fail_task(kB, 1);
    f.cfg["cdc"]["kafka_connect"]["connectors"] = {kA, kB, "ghost"};
    auto s = f.cdc({"status"});
    INFO(s.err);
    CHECK(s.code == 3);
    CHECK_THAT(s.out,
               Catch::Contains(kA + " (" + f.emu.url() + "): RUNNING (tasks: 0 RUNNING, 1 RUNNING)\n"));
    CHECK_THAT(s.out,
               Catch::Contains(kB + " (" + f.emu.url() + "): RUNNING (tasks: 0 RUNNING, 1 FAILED)\n" +
                               "    task 1 FAILED: org.apache.kafka.connect.errors.ConnectException: An "
                               "exception occurred in the change event producer. This connector will be "
                               "stopped.\n"));
    CHECK_THAT(s.out, Catch::Contains("ghost (" + f.emu.url() +
                                      "): does not exist (No status found for connector "
                                      "ghost): check cdc.kafka_connect.connectors"));
    CHECK_THAT(s.err, Catch::Contains("cdc status: ghost"));
    for (const auto& r : f.emu.requests()) CHECK(r["method"] == "GET");

    auto bad = f.cdc({"pause", "--window", "40"});
    CHECK(bad.code == 2);
    CHECK_THAT(bad.err,
               Catch::Contains("duration: expected a positive duration such as 40m, 2h, 90s or 1h30m, got "
                               "\"40\""));
    auto missing = f.cdc({"pause"});
    CHECK(missing.code == 2);
    CHECK_THAT(missing.err, Catch::Contains("--window is required"));
}
