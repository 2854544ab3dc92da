#pragma once
// Fixtures of the CDC-after-restore tests (issue 18; cdc_replay_test.cpp, cdc_restore_test.cpp): a throwaway
// PostgreSQL database on the test server, and an emulated sink connector (kafka_connect_emulator.py) that
// upserts an in-emulator topic of row changes into a table of it, with the nightjar config that holds it.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "nightjar/components/postgres/connection.hpp"
#include "support/commands.hpp"
#include "support/kafka_connect_emulator.hpp"
#include "support/temp_dir.hpp"

namespace nightjar::test {

// A database of its own on the test server (NIGHTJAR_TEST_PG*), dropped at scope exit.
struct PgDatabase {
    std::string host = required_env("NIGHTJAR_TEST_PGHOST");
    std::string port = required_env("NIGHTJAR_TEST_PGPORT");
    std::string user = required_env("NIGHTJAR_TEST_PGUSER");
    std::string password = required_env("NIGHTJAR_TEST_PGPASSWORD");
    std::string bindir = required_env("NIGHTJAR_TEST_PG_BINDIR");
    std::string name;
    std::vector<std::string> also_drop;  // other databases a test created (a renamed restore's copy)

    explicit PgDatabase(const std::string& prefix) {
        static std::mt19937_64 rng{std::random_device{}()};
        name = prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(rng() % 1000000);
        ::setenv("PGPASSWORD", password.c_str(), 1);  // for libpq in this process
        psql("postgres", "CREATE DATABASE " + name);
    }
    ~PgDatabase() {
        also_drop.push_back(name);
        for (const auto& db : also_drop)
            run({bindir + "/psql", "-X", "-q", "-h", host, "-p", port, "-U", user, "-d", "postgres", "-c",
                 "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)"},
                env());
    }
    PgDatabase(const PgDatabase&) = delete;
    PgDatabase& operator=(const PgDatabase&) = delete;

    std::vector<std::string> env() const { return {"PGPASSWORD=" + password}; }
    std::string psql(const std::string& db, const std::string& sql) const {
        auto r = run({bindir + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p",
                      port, "-U", user, "-d", db, "-c", sql},
                     env());
        INFO("psql " << db << ": " << sql << "\n" << r.err);
        REQUIRE(r.code == 0);
        std::string out = r.out;
        while (!out.empty() && out.back() == '\n') out.pop_back();
        return out;
    }
    std::string sql(const std::string& s) const { return psql(name, s); }
    bool exists() const {
        return psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = '" + name + "'") == "1";
    }
    void drop() const { psql("postgres", "DROP DATABASE " + name + " WITH (FORCE)"); }
    postgres::PgTarget target() const {
        return postgres::PgTarget{
            .endpoint = {.host = host, .port = std::stoi(port), .user = user, .passfile = ""},
            .database = name,
            .connect_timeout = 10,
            .sslmode = ""};
    }
    std::string conninfo() const {
        return "host=" + host + " port=" + port + " user=" + user + " dbname=" + name +
               " password=" + password;
    }
};

// An emulated JDBC sink in upsert mode writing topic `topic` into public.items of `pg`, and the nightjar
// config (backup_dir, postgres, cdc with a short-timed journal and watchdog) that holds it around a backup
// and a restore.
struct SinkFixture {
    PgDatabase pg;
    TempDir dir;
    KafkaConnectEmulator emu;
    std::string sink = "jdbc-sink";
    std::string topic = "fcms.public.items";
    std::filesystem::path backups = dir / "backups";
    std::filesystem::path state_dir = dir / "cdc";
    std::filesystem::path config = dir / "nightjar.json";
    nlohmann::json cfg;

    // `profile`: the worker's Kafka Connect version profile ("3.4", "3.5", "3.6").
    explicit SinkFixture(const std::string& prefix, const std::string& profile = "3.6")
        : pg(prefix), emu({.connectors = {}, .tasks = 1, .transition_delay_s = 0.1}) {
        emu.control("POST", "config", {{"profile", profile}});
        pg.sql("CREATE TABLE public.items (id int PRIMARY KEY, qty int NOT NULL, note text)");
        emu.control("POST", "connectors",
                    {{"name", sink},
                     {"type", "sink"},
                     {"config", {{"topics", topic}, {"insert.mode", "upsert"}}},
                     {"sink", {{"conninfo", pg.conninfo()}, {"table", "public.items"}, {"key", {"id"}}}}});
        cfg = {
            {"backup_dir", backups.string()},
            {"postgres",
             {{"host", pg.host}, {"port", std::stoi(pg.port)}, {"user", pg.user}, {"databases", {pg.name}}}},
            {"cdc",
             {{"kafka_connect", {{"url", emu.url()}, {"connectors", {sink}}, {"request_timeout_s", 2}}},
              {"pause_timeout_s", 10},
              {"resume_timeout_s", 10},
              {"retry", {{"initial_backoff_s", 0.05}, {"max_backoff_s", 0.2}}},
              {"state_dir", state_dir.string()},
              {"watch",
               {{"check_interval_s", 0.2},
                {"probe_interval_s", 0.2},
                {"probe_timeout_s", 2},
                {"settle_s", 1},
                {"max_wait_min", 1},
                {"alert_repeat_min", 60},
                {"backoff", {{"initial_s", 0.3}, {"max_s", 1}}}}},
              {"restore", {{"hold_timeout_s", 10}}}}}};
    }

    // Change i of the topic: inserts and updates of 17 keys, every 11th a delete.
    static nlohmann::json change(int i) {
        int id = i % 17;
        if (i % 11 == 0) return {{"key", {{"id", id}}}, {"value", nullptr}};
        return {{"key", {{"id", id}}},
                {"value", {{"id", id}, {"qty", i}, {"note", "change " + std::to_string(i)}}}};
    }
    // Appends changes from..to (inclusive) to the topic.
    void publish(int from, int to) const {
        nlohmann::json records = nlohmann::json::array();
        for (int i = from; i <= to; ++i) records.push_back(change(i));
        emu.control("POST", "topics/" + topic, {{"records", records}});
    }
    // The sink's committed Kafka offset (the next record it consumes), -1 when none.
    int committed() const {
        auto o = emu.control("GET", "state")["connectors"][sink]["offsets"];
        return o.empty() ? -1 : o[0]["offset"]["kafka_offset"].get<int>();
    }
    bool wait_committed(int n) const {
        for (int i = 0; i < 300 && committed() != n; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return committed() == n;
    }
    // The table, row for row.
    std::string rows(const std::string& db = "") const {
        return pg.psql(
            db.empty() ? pg.name : db,
            "SELECT coalesce(string_agg(id || ':' || qty || ':' || coalesce(note, ''), ',' ORDER BY id), "
            "'') FROM public.items");
    }
    void write_config() const { write_file(config, cfg.dump(2)); }
    Outcome backup(std::vector<std::string> extra = {}) const {
        write_config();
        std::vector<std::string> args{"--config", config.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::backup(args, pg.env());
    }
    // nightjar-restore latest --config … --db <pg.name> --json, plus `extra`.
    Outcome restore(std::vector<std::string> extra = {}, std::vector<std::string> env = {}) const {
        write_config();
        std::vector<std::string> args{"latest", "--config", config.string(), "--db", pg.name, "--json"};
        args.insert(args.end(), extra.begin(), extra.end());
        for (const auto& e : pg.env()) env.push_back(e);
        return test::restore(args, env);
    }
    nlohmann::json last_manifest() const {
        return nlohmann::json::parse(read_file(published_manifests(backups).back()));
    }
    // Requests that change something (anything but GET) for connector `name`, "METHOD path body".
    std::vector<std::string> writes(const std::string& name) const {
        std::vector<std::string> out;
        for (const auto& r : emu.requests())
            if (r["method"] != "GET" && r["path"].get<std::string>().find("/connectors/" + name) == 0)
                out.push_back(r["method"].get<std::string>() + " " + r["path"].get<std::string>() +
                              (r["body"].is_string() ? " " + r["body"].get<std::string>() : std::string()));
        return out;
    }
};

}  // namespace nightjar::test
