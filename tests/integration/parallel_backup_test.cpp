// The components of a backup run concurrently (parallel), and CDC connectors held only until the snapshots
// are taken (cdc.hold "snapshot"), through the real nightjar-backup against PostgreSQL, Redis and the Kafka
// Connect emulator. pg_dump is wrapped (postgres.bin_dir) so that it starts reading its snapshot 2 s after
// the snapshot was exported and writes when it started and ended: what ran beside it is then visible.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <sstream>

#include "support/commands.hpp"
#include "support/kafka_connect_emulator.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Pg {
    std::string host = test::required_env("NIGHTJAR_TEST_PGHOST");
    std::string port = test::required_env("NIGHTJAR_TEST_PGPORT");
    std::string user = test::required_env("NIGHTJAR_TEST_PGUSER");
    std::string password = test::required_env("NIGHTJAR_TEST_PGPASSWORD");
    std::string bindir = test::required_env("NIGHTJAR_TEST_PG_BINDIR");

    void psql(const std::string& db, const std::string& sql) const {
        auto r = test::run({bindir + "/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port,
                            "-U", user, "-d", db, "-c", sql},
                           {"PGPASSWORD=" + password});
        INFO("psql " << db << ": " << sql << "\n" << r.err);
        REQUIRE(r.code == 0);
    }
};

std::string unique_name(const std::string& prefix) {
    static std::mt19937_64 rng{std::random_device{}()};
    return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(rng() % 1000000);
}

struct Parallel {
    Pg pg;
    test::TempDir dir;
    fs::path backups = dir / "backups";
    fs::path config = dir / "nightjar.json";
    fs::path wrapper_dir = dir / "pg" / "bin";  // postgres.bin_dir: the pg_dump wrapper
    fs::path dump_started = dir / "pg_dump.started";
    fs::path dump_ended = dir / "pg_dump.ended";
    fs::path metrics = dir / "metrics" / "nightjar.prom";
    std::string db = unique_name("nj_parallel");
    json cfg;

    Parallel() {
        pg.psql("postgres", "CREATE DATABASE " + db);
        pg.psql(db,
                "CREATE TABLE t (id int PRIMARY KEY, v text); "
                "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g");
        test::write_file(dir / "etc" / "app.conf", "listen = 8080\n");
        fs::create_directories(wrapper_dir);
        fs::create_directories(metrics.parent_path());
        // The real pg_dump, 2 s after it was started: the snapshot it imports is held open meanwhile.
        const fs::path w = wrapper_dir / "pg_dump";
        test::write_file(w,
                         "#!/bin/sh\n"
                         "case \"$1\" in --version) exec " +
                             pg.bindir + "/pg_dump \"$@\";; esac\n" + "date +%s.%N > " +
                             dump_started.string() + "\nsleep 2\n" + pg.bindir + "/pg_dump \"$@\"\nrc=$?\n" +
                             "date +%s.%N > " + dump_ended.string() + "\nexit $rc\n");
        ::chmod(w.c_str(), 0755);
        cfg = json{{"backup_dir", backups.string()},
                   {"files", {{"paths", {(dir / "etc").string()}}}},
                   {"postgres",
                    {{"host", pg.host},
                     {"port", std::stoi(pg.port)},
                     {"user", pg.user},
                     {"databases", {db}},
                     {"bin_dir", wrapper_dir.string()}}},
                   {"redis", {{"port", std::stoi(test::required_env("NIGHTJAR_TEST_REDIS_PORT"))}}},
                   {"monitoring", {{"metrics_file", metrics.string()}}}};
    }
    ~Parallel() {
        test::run({pg.bindir + "/psql", "-X", "-q", "-h", pg.host, "-p", pg.port, "-U", pg.user, "-d",
                   "postgres", "-c", "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)"},
                  {"PGPASSWORD=" + pg.password});
    }
    test::Outcome backup() const {
        test::write_file(config, cfg.dump(2));
        return test::backup({"--config", config.string(), "--json", "--log-format", "json"},
                            {"PGPASSWORD=" + pg.password});
    }
    json manifest() const {
        auto all = test::published_manifests(backups);
        REQUIRE_FALSE(all.empty());
        return json::parse(test::read_file(all.back()));
    }
    double read_time(const fs::path& p) const {
        REQUIRE(fs::exists(p));
        return std::stod(test::read_file(p));
    }
};

// The JSON log lines of a run, in order.
std::vector<json> log_lines(const std::string& err) {
    std::vector<json> out;
    std::istringstream in(err);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] != '{') continue;
        out.push_back(json::parse(line));
    }
    return out;
}

// The index of the first log line whose message starts with `prefix` (-1 when none).
long first_line(const std::vector<json>& lines, const std::string& prefix) {
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (lines[i].value("message", "").rfind(prefix, 0) == 0) return static_cast<long>(i);
    return -1;
}

std::vector<std::string> components_of(const json& m) {
    std::vector<std::string> out;
    for (const auto& a : m["artifacts"]) out.push_back(a["component"]);
    return out;
}

}  // namespace

TEST_CASE("parallel backup: files, PostgreSQL and Redis run at once, recorded in config order",
          "[integration][parallel]") {
    Parallel f;
    f.cfg["parallel"] = 3;
    auto r = f.backup();
    INFO(r.err);
    REQUIRE(r.code == 0);
    const auto lines = log_lines(r.err);
    // Redis started its capture while pg_dump was still held 2 s: with the components one after another
    // it starts only after the PostgreSQL dump has ended.
    const long redis_start = first_line(lines, "redis: capturing a snapshot");
    const long pg_done = first_line(lines, "postgres: db-" + f.db);
    REQUIRE(redis_start >= 0);
    REQUIRE(pg_done >= 0);
    CHECK(redis_start < pg_done);
    // Each line keeps its thread's fields.
    CHECK(lines[static_cast<std::size_t>(redis_start)].value("component", "") == "redis");
    CHECK(lines[static_cast<std::size_t>(pg_done)].value("component", "") == "postgres");
    CHECK(lines[static_cast<std::size_t>(redis_start)].contains("backup_id"));
    CHECK(lines[static_cast<std::size_t>(pg_done)].contains("backup_id"));
    const json m = f.manifest();
    CHECK(m["status"] == "complete");
    CHECK(components_of(m) == std::vector<std::string>{"files", "postgres", "redis"});
    CHECK(m["options"]["parallel"] == 3);
    const json report = json::parse(r.out);
    REQUIRE(report["components"].size() == 3);
    CHECK(report["components"][0]["kind"] == "files");
    CHECK(report["components"][1]["kind"] == "postgres");
    CHECK(report["components"][2]["kind"] == "redis");

    // parallel 1: one after another, as before.
    f.cfg["parallel"] = 1;
    auto seq = f.backup();
    INFO(seq.err);
    REQUIRE(seq.code == 0);
    const auto seq_lines = log_lines(seq.err);
    CHECK(first_line(seq_lines, "postgres: db-" + f.db) <
          first_line(seq_lines, "redis: capturing a snapshot"));
    CHECK(components_of(f.manifest()) == std::vector<std::string>{"files", "postgres", "redis"});
}

TEST_CASE("parallel backup: cdc.hold snapshot resumes the connectors while the dump reads its snapshot",
          "[integration][parallel][cdc]") {
    Parallel f;
    test::KafkaConnectEmulator emu(
        {.connectors = {"inventory-connector"}, .tasks = 1, .transition_delay_s = 0.05});
    emu.control("POST", "connectors",
                {{"name", "jdbc-sink"}, {"type", "sink"}, {"config", {{"topics", "app.rows"}}}});
    f.cfg.erase("redis");  // the hold then waits for the PostgreSQL snapshot alone
    f.cfg["cdc"] = {
        {"kafka_connect", {{"url", emu.url()}, {"connectors", {"inventory-connector", "jdbc-sink"}}}},
        {"pause_timeout_s", 10},
        {"resume_timeout_s", 10},
        {"retry", {{"initial_backoff_s", 0.05}, {"max_backoff_s", 0.2}}},
        {"state_dir", (f.dir / "cdc-state").string()}};
    auto time_of = [&](const std::string& method, const std::string& path) {
        for (const auto& e : emu.requests())
            if (e["method"] == method && e["path"] == path) return e["time"].get<double>();
        return -1.0;
    };
    auto held_of = [](const json& m, const std::string& name) {
        for (const auto& c : m["cdc"]["connectors"])
            if (c["name"] == name) return c;
        return json();
    };

    SECTION("default: the sink is held until the snapshot, the source for the whole run") {
        const auto t0 = std::chrono::steady_clock::now();
        auto r = f.backup();
        const double run_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        INFO(r.err);
        REQUIRE(r.code == 0);
        const double sink_resumed = time_of("PUT", "/connectors/jdbc-sink/resume");
        const double source_resumed = time_of("PUT", "/connectors/inventory-connector/resume");
        REQUIRE(sink_resumed > 0);
        REQUIRE(source_resumed > 0);
        // The sink came back before pg_dump even began to read (its wrapper waits 2 s), so before the dump
        // ended; the source only after it ended.
        CHECK(sink_resumed < f.read_time(f.dump_started) + 2);
        CHECK(sink_resumed < f.read_time(f.dump_ended));
        CHECK(source_resumed > f.read_time(f.dump_ended));
        CHECK(emu.count("PUT", "/connectors/jdbc-sink/resume") == 1);
        CHECK(emu.count("PUT", "/connectors/inventory-connector/resume") == 1);
        CHECK(emu.wait_settled("jdbc-sink", "RUNNING"));
        CHECK(emu.wait_settled("inventory-connector", "RUNNING"));
        const json m = f.manifest();
        const json sink = held_of(m, "jdbc-sink"), source = held_of(m, "inventory-connector");
        CHECK(sink["hold"] == "snapshot");
        CHECK(source["hold"] == "backup");
        REQUIRE(sink["held_seconds"].is_number());
        REQUIRE(source["held_seconds"].is_number());
        // Held for less than the whole run: the 2 s of pg_dump's reading at least are not in it.
        CHECK(sink["held_seconds"].get<double>() + 2 < run_s);
        CHECK(sink["held_seconds"].get<double>() < source["held_seconds"].get<double>());
        CHECK(sink["offsets"] != nullptr);
        const std::string prom = test::read_file(f.metrics);
        CHECK_THAT(prom, Catch::Contains("nightjar_cdc_held_seconds{connector=\"jdbc-sink\"} "));
        CHECK_THAT(prom, Catch::Contains("nightjar_cdc_held_seconds{connector=\"inventory-connector\"} "));
    }
    SECTION("cdc.hold snapshot for every connector") {
        f.cfg["cdc"]["hold"] = "snapshot";
        auto r = f.backup();
        INFO(r.err);
        REQUIRE(r.code == 0);
        const double source_resumed = time_of("PUT", "/connectors/inventory-connector/resume");
        REQUIRE(source_resumed > 0);
        CHECK(source_resumed < f.read_time(f.dump_ended));
        CHECK(held_of(f.manifest(), "inventory-connector")["hold"] == "snapshot");
        CHECK(emu.count("PUT", "/connectors/inventory-connector/resume") == 1);
        CHECK(emu.count("PUT", "/connectors/jdbc-sink/resume") == 1);
    }
    SECTION("cdc.hold backup: every connector held until the dumps have ended") {
        f.cfg["cdc"]["hold"] = "backup";
        auto r = f.backup();
        INFO(r.err);
        REQUIRE(r.code == 0);
        CHECK(time_of("PUT", "/connectors/jdbc-sink/resume") > f.read_time(f.dump_ended));
        CHECK(held_of(f.manifest(), "jdbc-sink")["hold"] == "backup");
    }
}
