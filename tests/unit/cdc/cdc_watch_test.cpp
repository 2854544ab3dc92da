// The pure parts of the CDC watchdog and backup windows: durations, window expiry, the watchdog's decisions,
// backoff and alert timing, the probe and cdc.watch config, and the TCP probe.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "nightjar/cdc/probe.hpp"
#include "nightjar/cdc/watchdog.hpp"
#include "nightjar/cdc/window.hpp"
#include "nightjar/run/config.hpp"
#include "support/matchers.hpp"

using namespace nightjar;
using test::IsError;
using namespace std::chrono_literals;

namespace {

Config with_watch(const std::string& watch) {
    return parse_config(
        R"({"backup_dir": "/b", "cdc": {"kafka_connect": {"url": "http://k:8083", "connectors": ["a"]}, "watch": )" +
            watch + "}}",
        "c.json");
}

cdc::KafkaConnectStatus status(const std::string& connector, std::vector<std::string> tasks) {
    cdc::KafkaConnectStatus s;
    s.name = "a";
    s.state = connector;
    if (connector == "FAILED") s.trace = "boom\n\tat x";
    for (std::size_t i = 0; i < tasks.size(); ++i)
        s.tasks.push_back({.id = static_cast<int>(i),
                           .state = tasks[i],
                           .worker_id = "w",
                           .trace = tasks[i] == "FAILED" ? "task boom" : ""});
    return s;
}

}  // namespace

TEST_CASE("parse_duration accepts unit-suffixed durations and nothing else", "[unit][cdc][window]") {
    CHECK(cdc::parse_duration("40m") == 2400s);
    CHECK(cdc::parse_duration("2h") == 7200s);
    CHECK(cdc::parse_duration("90s") == 90s);
    CHECK(cdc::parse_duration("1h30m") == 5400s);
    CHECK(cdc::parse_duration("1d") == 86400s);
    for (const char* bad : {"", "40", "m", "-5m", "0m", "1.5h", "40 m", "2w", "1h30"})
        REQUIRE_THROWS_MATCHES(cdc::parse_duration(bad), Error,
                               IsError(Kind::Usage,
                                       "duration: expected a positive duration such as 40m, 2h, 90s "
                                       "or 1h30m, got \"" +
                                           std::string(bad) + "\""));
}

TEST_CASE("parse_rfc3339_utc reads what rfc3339_utc writes", "[unit][cdc][window]") {
    CHECK(cdc::parse_rfc3339_utc("1970-01-01T00:00:00Z") == 0);
    CHECK(cdc::parse_rfc3339_utc("2026-11-25T02:30:00Z") == 1795573800);
    CHECK_FALSE(cdc::parse_rfc3339_utc("2026-11-25T02:30:00"));
    CHECK_FALSE(cdc::parse_rfc3339_utc("2026-11-25 02:30:00Z"));
    CHECK_FALSE(cdc::parse_rfc3339_utc("yesterday"));
}

TEST_CASE("a window is active until its end and one without a readable end has ended",
          "[unit][cdc][window]") {
    cdc::CdcPauseState s;
    s.owner = "window";
    s.window_until = "2026-11-25T02:30:00Z";
    const std::int64_t end = 1795573800;
    CHECK(cdc::window_active(s, end - 1));
    CHECK_FALSE(cdc::window_expired(s, end - 1));
    CHECK_FALSE(window_active(s, end));
    CHECK(window_expired(s, end));
    s.window_until = "garbage";
    CHECK_FALSE(window_active(s, 0));
    CHECK(window_expired(s, 0));
    s.window_until.reset();
    CHECK(window_expired(s, 0));
    s.owner = "backup";  // a backup run's file is never a window
    s.window_until = "2026-11-25T02:30:00Z";
    CHECK_FALSE(window_active(s, 0));
    CHECK_FALSE(window_expired(s, end + 1));
}

TEST_CASE("observe reads what a status means to the watchdog", "[unit][cdc][watch]") {
    CHECK(cdc::observe(status("RUNNING", {"RUNNING", "RUNNING"})) == cdc::Observed::Running);
    CHECK(observe(status("RUNNING", {"RUNNING", "FAILED"})) == cdc::Observed::Failed);
    CHECK(observe(status("FAILED", {"RUNNING"})) == cdc::Observed::Failed);
    // A PAUSED connector is someone's pause, even with a FAILED task.
    CHECK(observe(status("PAUSED", {"FAILED", "PAUSED"})) == cdc::Observed::Paused);
    CHECK(observe(status("STOPPED", {})) == cdc::Observed::Stopped);
    CHECK(observe(status("RUNNING", {"RESTARTING"})) == cdc::Observed::Transitional);
    CHECK(observe(status("UNASSIGNED", {"UNASSIGNED"})) == cdc::Observed::Transitional);
}

TEST_CASE("decide: the watchdog's state machine", "[unit][cdc][watch]") {
    using P = cdc::WatchPhase;
    using O = cdc::Observed;
    using S = cdc::WatchStep;
    SECTION("healthy: only a failure of its own is acted on") {
        CHECK(cdc::decide(P::Healthy, O::Failed, false, false) == S::Pause);
        for (O o : {O::Running, O::Paused, O::Stopped, O::Transitional, O::Missing, O::HeldByNightjar})
            CHECK(decide(P::Healthy, o, true, true) == S::Nothing);
    }
    SECTION("held: probe when due; someone else's actions end our care") {
        for (O o : {O::Failed, O::Paused, O::Transitional}) {
            CHECK(cdc::decide(P::Held, o, true, false) == S::Probe);
            CHECK(decide(P::Held, o, false, false) == S::Nothing);
        }
        CHECK(cdc::decide(P::Held, O::Running, false, false) == S::ResumedByOthers);
        CHECK(decide(P::Held, O::Stopped, true, false) == S::Release);
        CHECK(decide(P::Held, O::Missing, true, false) == S::Release);
        CHECK(decide(P::Held, O::HeldByNightjar, true, false) == S::Nothing);
    }
    SECTION("settling: a failure is a relapse; RUNNING through the settle period is healed") {
        CHECK(cdc::decide(P::Settling, O::Failed, false, false) == S::Relapse);
        CHECK(decide(P::Settling, O::Failed, false, true) == S::Relapse);
        CHECK(decide(P::Settling, O::Running, false, false) == S::Nothing);
        CHECK(decide(P::Settling, O::Running, false, true) == S::Healed);
        // Right after the resume a status may still say PAUSED: only a lasting pause is someone else's.
        CHECK(decide(P::Settling, O::Paused, false, false) == S::Nothing);
        CHECK(decide(P::Settling, O::Paused, false, true) == S::Release);
        CHECK(decide(P::Settling, O::Stopped, false, false) == S::Release);
        CHECK(decide(P::Settling, O::Transitional, false, true) == S::Nothing);
    }
}

TEST_CASE("relapse backoff doubles from initial_s up to max_s", "[unit][cdc][watch]") {
    cdc::WatchBackoff b{.initial_s = 60, .max_s = 900};
    CHECK(cdc::relapse_backoff(1, b) == 0ms);
    CHECK(relapse_backoff(2, b) == 60s);
    CHECK(relapse_backoff(3, b) == 120s);
    CHECK(relapse_backoff(4, b) == 240s);
    CHECK(relapse_backoff(6, b) == 900s);
    CHECK(relapse_backoff(60, b) == 900s);
}

TEST_CASE("alerts: the first after max_wait, then one per repeat interval", "[unit][cdc][watch]") {
    const cdc::WatchClock::time_point t0{};
    cdc::Incident i{.since = t0, .alerted = false, .last_alert = {}};
    CHECK_FALSE(cdc::alert_due(i, t0 + 29min, 30min, 60min));
    CHECK(alert_due(i, t0 + 30min, 30min, 60min));
    i.alerted = true;
    i.last_alert = t0 + 30min;
    CHECK_FALSE(alert_due(i, t0 + 31min, 30min, 60min));
    CHECK_FALSE(alert_due(i, t0 + 89min, 30min, 60min));
    CHECK(alert_due(i, t0 + 90min, 30min, 60min));
}

TEST_CASE("cdc.watch config: defaults, probes and errors", "[unit][cdc][watch]") {
    SECTION("defaults when absent") {
        Config c = parse_config(
            R"({"backup_dir": "/b", "cdc": {"kafka_connect": {"url": "http://k:8083", "connectors": ["a"]}}})",
            "c.json");
        const cdc::WatchConfig& w = c.cdc->watch;
        CHECK(w.check_interval_s == 60);
        CHECK(w.probe_interval_s == 60);
        CHECK(w.probe_timeout_s == 5);
        CHECK(w.settle_s == 120);
        CHECK(w.max_wait_min == 30);
        CHECK(w.probes.empty());
        CHECK(w.on_alert.empty());
    }
    SECTION("probes, hooks and short intervals") {
        Config c = with_watch(R"({"check_interval_s": 0.5, "max_wait_min": 0.05, "alert_repeat_min": 5,
            "backoff": {"initial_s": 1, "max_s": 4},
            "probes": {"a": {"tcp": "db.example:5432"},
                       "b": {"postgres": {"host": "db", "port": 5433, "user": "u", "dbname": "app",
                                          "passfile": "/etc/nightjar/pgpass"}}},
            "on_alert": [{"argv": ["/usr/local/bin/page", "cdc"], "timeout_s": 10}],
            "ping_url": "https://hc.example/ping/x/"})");
        const cdc::WatchConfig& w = c.cdc->watch;
        CHECK(w.check_interval_s == 0.5);
        CHECK(w.max_wait_min == 0.05);
        CHECK(w.backoff.max_s == 4);
        REQUIRE(w.probes.size() == 2);
        CHECK(w.probes.at("a").kind == "tcp");
        CHECK(w.probes.at("a").describe() == "tcp db.example:5432");
        CHECK(w.probes.at("b").kind == "postgres");
        CHECK(w.probes.at("b").postgres.port == 5433);
        CHECK(w.probes.at("b").dbname == "app");
        CHECK(w.probes.at("b").describe() == "postgres database \"app\" on db:5433");
        REQUIRE(w.on_alert.size() == 1);
        CHECK(w.on_alert[0].argv.at(1) == "cdc");
        CHECK(w.ping_url == "https://hc.example/ping/x");
    }
    SECTION("errors name the field") {
        REQUIRE_THROWS_MATCHES(with_watch(R"({"probes": {"a": {"tcp": "db"}}})"), Error,
                               IsError(Kind::Config, "/cdc/watch/probes/a/tcp: expected \"host:port\""));
        REQUIRE_THROWS_MATCHES(with_watch(R"({"probes": {"a": {}}})"), Error,
                               IsError(Kind::Config, "/cdc/watch/probes/a/tcp: give exactly one of tcp"));
        REQUIRE_THROWS_MATCHES(with_watch(R"({"probes": {"a": {"postgres": {"pass": "x"}}}})"), Error,
                               IsError(Kind::Config, "/cdc/watch/probes/a/postgres/pass"));
        REQUIRE_THROWS_MATCHES(with_watch(R"({"check_interval": 5})"), Error,
                               IsError(Kind::Config, "/cdc/watch/check_interval"));
        REQUIRE_THROWS_MATCHES(
            with_watch(R"({"backoff": {"initial_s": 5, "max_s": 1}})"), Error,
            IsError(Kind::Config, "/cdc/watch/backoff/max_s: must not be less than initial_s"));
    }
}

TEST_CASE("the TCP probe: a listener answers, a closed port does not", "[unit][cdc][watch]") {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    cdc::SourceProbe p;
    p.kind = "tcp";
    p.host = "127.0.0.1";
    p.port = ntohs(addr.sin_port);
    cdc::ProbeResult up = run_probe(p, 2000ms);
    CHECK(up.ok);
    CHECK(up.detail == "connected");
    ::close(fd);
    cdc::ProbeResult down = run_probe(p, 2000ms);
    CHECK_FALSE(down.ok);
    CHECK(down.detail == "Connection refused");
    p.kind = "none";
    CHECK(cdc::run_probe(p, 1ms).ok);
}
