// The CDC modules without a server: config parsing, Kafka Connect response handling, the state file, retries.
#include <catch2/catch.hpp>

#include "nightjar/cdc/kafka_connect.hpp"
#include "nightjar/cdc/retry.hpp"
#include "nightjar/cdc/state_file.hpp"
#include "nightjar/run/config.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using nlohmann::json;
using test::IsError;

namespace {

Config parse(const std::string& cdc) {
    return parse_config(R"({"backup_dir": "/b", "cdc": )" + cdc + "}", "c.json");
}

HttpResponse answer(long status, std::string body) {
    return HttpResponse{status, std::move(body), ""};
}

}  // namespace

TEST_CASE("cdc config: the issue's example with defaults", "[cdc][config]") {
    Config c =
        parse(R"({"kafka_connect": {"url": "http://127.0.0.1:8083/", "connectors": ["fcms-oracle-connector"],
                         "auth": {"user": "nj", "password_file": "/etc/nightjar/kc.pass"}, "request_timeout_s": 10},
                         "pause_timeout_s": 120, "resume_timeout_s": 60, "on_pause_failure": "continue"})");
    REQUIRE(c.cdc);
    REQUIRE(c.cdc->clusters.size() == 1);
    const auto& k = c.cdc->clusters[0];
    CHECK(k.urls == std::vector<std::string>{"http://127.0.0.1:8083"});
    CHECK(k.connectors == std::vector<std::string>{"fcms-oracle-connector"});
    CHECK_FALSE(k.all_connectors);
    REQUIRE(k.auth);
    CHECK(k.auth->user == "nj");
    CHECK(k.auth->password_file == "/etc/nightjar/kc.pass");
    CHECK(c.cdc->resume_timeout_s == 60);
    CHECK(c.cdc->on_pause_failure == "continue");
    CHECK(c.cdc->retry.initial_backoff_s == 0.5);

    Config d = parse(R"({"kafka_connect": [{"url": ["http://a:8083", "http://b:8083"], "connectors": "all"},
                                           {"urls": ["http://c:8083"], "connectors": ["x"]}]})");
    REQUIRE(d.cdc->clusters.size() == 2);
    CHECK(d.cdc->clusters[0].urls.size() == 2);
    CHECK(d.cdc->clusters[0].all_connectors);
    CHECK(d.cdc->clusters[1].urls == std::vector<std::string>{"http://c:8083"});
    CHECK(d.cdc->pause_timeout_s == 120);
    CHECK(d.cdc->on_pause_failure == "abort");
    CHECK_FALSE(parse_config(R"({"backup_dir": "/b"})", "c.json").cdc);
}

TEST_CASE("cdc config errors name the JSON pointer", "[cdc][config]") {
    SECTION("missing kafka_connect") {
        REQUIRE_THROWS_MATCHES(parse(R"({"pause_timeout_s": 5})"), Error,
                               IsError(Kind::Config, "/cdc/kafka_connect: required field is missing"));
    }
    SECTION("bad url") {
        REQUIRE_THROWS_MATCHES(
            parse(R"({"kafka_connect": {"url": "127.0.0.1:8083", "connectors": ["a"]}})"), Error,
            IsError(Kind::Config, "/cdc/kafka_connect/url: expected an http:// or https:// URL"));
    }
    SECTION("connectors neither a list nor all") {
        REQUIRE_THROWS_MATCHES(
            parse(R"({"kafka_connect": {"url": "http://h", "connectors": "some"}})"), Error,
            IsError(Kind::Config,
                    "/cdc/kafka_connect/connectors: expected a list of connector names or \"all\""));
    }
    SECTION("bad policy") {
        REQUIRE_THROWS_MATCHES(
            parse(
                R"({"kafka_connect": {"url": "http://h", "connectors": ["a"]}, "on_pause_failure": "ignore"})"),
            Error, IsError(Kind::Config, "/cdc/on_pause_failure: expected one of abort|continue"));
    }
    SECTION("relative password file") {
        REQUIRE_THROWS_MATCHES(
            parse(
                R"({"kafka_connect": {"url": "http://h", "connectors": ["a"], "auth": {"user": "u", "password_file": "p"}}})"),
            Error, IsError(Kind::Config, "/cdc/kafka_connect/auth/password_file: expected an absolute path"));
    }
    SECTION("a password in the config is an unknown field") {
        REQUIRE_THROWS_MATCHES(
            parse(
                R"({"kafka_connect": {"url": "http://h", "connectors": ["a"], "auth": {"user": "u", "password": "x"}}})"),
            Error, IsError(Kind::Config, "/cdc/kafka_connect/auth/password: unknown field"));
    }
}

TEST_CASE("hooks config", "[hooks][config]") {
    Config c = parse_config(R"({"hooks": {"before_backup": [{"argv": ["sh", "-c", "true"], "timeout_s": 5}],
                                          "on_error": [{"argv": ["/usr/bin/page-me"]}]}})",
                            "c.json");
    REQUIRE(c.hooks.before_backup.size() == 1);
    CHECK(c.hooks.before_backup[0].argv == std::vector<std::string>{"sh", "-c", "true"});
    CHECK(c.hooks.before_backup[0].timeout_s == 5);
    CHECK(c.hooks.after_backup.empty());
    CHECK(c.hooks.on_error[0].timeout_s == 300);
    REQUIRE_THROWS_MATCHES(
        parse_config(R"({"hooks": {"after_backup": [{"argv": []}]}})", "c.json"), Error,
        IsError(Kind::Config, "/hooks/after_backup/0/argv: expected a program and its arguments"));
    REQUIRE_THROWS_MATCHES(parse_config(R"({"hooks": {"after_backup": [{"cmd": "x"}]}})", "c.json"), Error,
                           IsError(Kind::Config, "/hooks/after_backup/0/cmd: unknown field"));
    REQUIRE_THROWS_MATCHES(parse_config(R"({"hooks": {"before": []}})", "c.json"), Error,
                           IsError(Kind::Config, "/hooks/before: unknown field"));
}

TEST_CASE("Kafka Connect error answers are classified by status and message", "[cdc][kafka-connect]") {
    const std::string req = "PUT http://w:8083/connectors/a/pause";
    SECTION("JSON error body: the worker's message") {
        auto e = cdc::kafka_connect_error(
            req, answer(404, R"({"error_code":404,"message":"Unknown connector a"})"));
        CHECK(e.status() == 404);
        CHECK_FALSE(e.transient());
        CHECK_FALSE(e.endpoint_unsupported());
        CHECK(e.api_message() == "Unknown connector a");
        CHECK(std::string(e.what()) ==
              req + ": HTTP 404 Unknown connector a: check the connector name and the worker URL");
        CHECK(e.kind() == Kind::SourceUnavailable);
    }
    SECTION("404 for an endpoint the worker does not have") {
        auto e = cdc::kafka_connect_error(
            req, answer(404, R"({"error_code":404,"message":"HTTP 404 Not Found"})"));
        CHECK(e.endpoint_unsupported());
    }
    SECTION("409 during a rebalance and 500 are transient") {
        auto c = cdc::kafka_connect_error(
            req,
            answer(
                409,
                R"j({"error_code":409,"message":"Cannot complete request because of a conflicting operation (e.g. worker rebalance)"})j"));
        CHECK(c.transient());
        CHECK(std::string(c.what()).find(
                  "HTTP 409 Cannot complete request because of a conflicting operation") !=
              std::string::npos);
        CHECK(cdc::kafka_connect_error(
                  req, answer(500, R"({"error_code":500,"message":"Error writing target state to Kafka"})"))
                  .transient());
    }
    SECTION("plain-text 401 from the basic auth filter") {
        auto e = cdc::kafka_connect_error(req, answer(401, "User cannot access the resource."));
        CHECK_FALSE(e.transient());
        CHECK(e.api_message() == "User cannot access the resource.");
        CHECK(std::string(e.what()).ends_with(
            "User cannot access the resource.: check cdc.kafka_connect.auth"));
    }
    SECTION("an HTML 502 from a proxy is transient and quoted by its title") {
        auto e = cdc::kafka_connect_error(
            req, answer(502, "<html><head><title>502 Bad Gateway</title></head><body>x</body></html>"));
        CHECK(e.transient());
        CHECK(e.api_message() == "502 Bad Gateway");
    }
    SECTION("an empty body") {
        auto e = cdc::kafka_connect_error(req, answer(503, ""));
        CHECK(e.transient());
        CHECK(std::string(e.what()) ==
              req + ": HTTP 503: the worker is busy or unhealthy; retried with backoff");
    }
}

TEST_CASE("connector status bodies are parsed, trace is optional", "[cdc][kafka-connect]") {
    json half = json::parse(R"({"name":"pg-cdc","connector":{"state":"PAUSED","worker_id":"connect-1:8083"},
        "tasks":[{"id":0,"state":"RUNNING","worker_id":"connect-2:8083"}],"type":"source"})");
    auto s = cdc::parse_connector_status(half, "GET x");
    CHECK(s.name == "pg-cdc");
    CHECK(s.state == "PAUSED");
    CHECK_FALSE(s.settled_in("PAUSED"));  // the task has not followed yet
    CHECK_FALSE(s.any_failed());
    CHECK(s.summary() == "PAUSED (tasks: 0 RUNNING)");

    json failed = json::parse(R"j({"name":"pg-cdc","connector":{"state":"RUNNING","worker_id":"c1"},
        "tasks":[{"id":0,"state":"FAILED","worker_id":"c1","trace":"org.apache.kafka.connect.errors.ConnectException: boom\n\tat x.y(Z.java:1)"}]})j");
    auto f = cdc::parse_connector_status(failed, "GET x");
    CHECK(f.any_failed());
    CHECK(f.failure() == "task 0 FAILED: org.apache.kafka.connect.errors.ConnectException: boom");
    CHECK(f.to_json()["tasks"][0]["trace"] == "org.apache.kafka.connect.errors.ConnectException: boom");
    CHECK(f.type.empty());

    auto stopped = cdc::parse_connector_status(
        json::parse(R"({"name":"s","connector":{"state":"STOPPED"},"tasks":[]})"), "x");
    CHECK(stopped.settled_in("STOPPED"));

    REQUIRE_THROWS_MATCHES(
        cdc::parse_connector_status(json::parse(R"({"name":"s"})"), "GET u"), cdc::KafkaConnectError,
        IsError(Kind::SourceUnavailable, "GET u: unexpected status body: no connector.state"));
    CHECK(cdc::url_path_segment("a b/c") == "a%20b%2Fc");
}

TEST_CASE("the cdc state file round-trips and a corrupt one is a CdcResume error", "[cdc][state-file]") {
    test::TempDir dir;
    auto file = cdc::cdc_state_path(dir.path());
    CHECK_FALSE(cdc::read_cdc_state(file));
    cdc::CdcPauseState s;
    s.pid = 42;
    s.backup_id = "20261125_015000";
    s.created_at = "2026-11-25T01:50:00Z";
    s.connectors.push_back({.urls = {"http://a:8083", "http://b:8083"},
                            .user = "nj",
                            .password_file = "/p",
                            .name = "x",
                            .paused_at = "2026-11-25T01:50:01Z"});
    cdc::write_cdc_state(file, s);
    CHECK_FALSE(std::filesystem::exists(file.string() + ".tmp"));
    auto r = cdc::read_cdc_state(file);
    REQUIRE(r);
    CHECK(r->owner == "backup");
    CHECK(r->pid == 42);
    CHECK(r->backup_id == s.backup_id);
    CHECK_FALSE(r->window_until);
    REQUIRE(r->connectors.size() == 1);
    CHECK(r->connectors[0].urls == s.connectors[0].urls);
    CHECK(r->connectors[0].password_file == "/p");
    CHECK(test::read_file(file).find("password\"") == std::string::npos);
    cdc::remove_cdc_state(file);
    CHECK_FALSE(std::filesystem::exists(file));
    cdc::remove_cdc_state(file);  // absent is fine

    test::write_file(file, "{\"version\": 1, \"connectors\": [");
    REQUIRE_THROWS_MATCHES(cdc::read_cdc_state(file), Error, IsError(Kind::CdcResume, "not valid JSON"));
    test::write_file(file, R"({"version": 1, "connectors": [{"urls": ["http://a"]}]})");
    REQUIRE_THROWS_MATCHES(cdc::read_cdc_state(file), Error,
                           IsError(Kind::CdcResume, "/connectors/0/name: required field is missing"));
}

TEST_CASE("retries: backoff doubles to its cap, only transient errors are retried", "[cdc][retry]") {
    using std::chrono::milliseconds;
    cdc::Backoff b{.initial = milliseconds(10), .max = milliseconds(35), .current = {}};
    CHECK(b.next() == milliseconds(10));
    CHECK(b.next() == milliseconds(20));
    CHECK(b.next() == milliseconds(35));
    CHECK(b.next() == milliseconds(35));

    auto options = [] {
        return cdc::RetryOptions{
            .deadline = cdc::SteadyClock::now() + std::chrono::seconds(5),
            .backoff = cdc::Backoff{.initial = milliseconds(1), .max = milliseconds(2), .current = {}},
            .interruptible = false,
            .on_retry = {}};
    };
    int calls = 0;
    int v = cdc::retry_transient(
        [&] {
            if (++calls < 3) throw cdc::KafkaConnectError("busy", 409, true, "");
            return 7;
        },
        options());
    CHECK(v == 7);
    CHECK(calls == 3);

    calls = 0;
    REQUIRE_THROWS_MATCHES(cdc::retry_transient(
                               [&]() -> int {
                                   ++calls;
                                   throw cdc::KafkaConnectError("Unknown connector a", 404, false, "");
                               },
                               options()),
                           cdc::KafkaConnectError, IsError(Kind::SourceUnavailable, "Unknown connector a"));
    CHECK(calls == 1);

    calls = 0;
    auto past = options();
    past.deadline = cdc::SteadyClock::now();
    REQUIRE_THROWS_AS(cdc::retry_transient(
                          [&]() -> int {
                              ++calls;
                              throw cdc::KafkaConnectError("down", 0, true, "");
                          },
                          past),
                      cdc::KafkaConnectError);
    CHECK(calls == 1);
}
