// CDC back in step after a restore (issue 18) with real PostgreSQL: the dump's exact position from a
// temporary logical slot, and the end-to-end replay of an emulated sink: the sink applies 1..N, the backup
// holds it and records N, the sink applies N+1..M, the database is lost, nightjar-restore --db restores it,
// and the replay (cdc/restore_hold, called here around the real restore until the restore run calls it)
// brings the table to the state after M, row for row.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>
#include <thread>

#include "nightjar/cdc/cdc_config.hpp"
#include "nightjar/cdc/restore_hold.hpp"
#include "nightjar/components/postgres/connection.hpp"
#include "nightjar/components/postgres/dump_position.hpp"
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
    std::string name;

    explicit Pg(const std::string& prefix) {
        static std::mt19937_64 rng{std::random_device{}()};
        name = prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(rng() % 1000000);
        ::setenv("PGPASSWORD", password.c_str(), 1);  // for libpq in this process
        psql("postgres", "CREATE DATABASE " + name);
    }
    ~Pg() {
        test::run({bindir + "/psql", "-X", "-q", "-h", host, "-p", port, "-U", user, "-d", "postgres", "-c",
                   "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"},
                  env());
    }
    std::vector<std::string> env() const { return {"PGPASSWORD=" + password}; }
    std::string psql(const std::string& db, const std::string& sql) const {
        auto r = test::run({bindir + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host,
                            "-p", port, "-U", user, "-d", db, "-c", sql},
                           env());
        INFO("psql " << db << ": " << sql << "\n" << r.err);
        REQUIRE(r.code == 0);
        std::string out = r.out;
        while (!out.empty() && out.back() == '\n') out.pop_back();
        return out;
    }
    std::string sql(const std::string& s) const { return psql(name, s); }
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

bool lsn_le(const Pg& pg, const std::string& a, const std::string& b) {
    return pg.sql("SELECT '" + a + "'::pg_lsn <= '" + b + "'::pg_lsn") == "t";
}

}  // namespace

TEST_CASE("dump position: the temporary slot's consistent point is bracketed and exact",
          "[integration][cdc][postgres]") {
    Pg pg("nj_slot");
    pg.sql(
        "CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'v' || g FROM "
        "generate_series(1, 100) g");
    const std::string before = pg.sql("SELECT pg_current_wal_lsn()");
    postgres::PgConnection conn(pg.target());
    postgres::DumpPosition position = postgres::DumpPosition::open(pg.target(), conn);
    const std::string after = pg.sql("SELECT pg_current_wal_lsn()");
    INFO(position.to_json().dump());
    REQUIRE(position.method() == "replication-slot");
    CHECK(position.fallback_reason().empty());
    CHECK(lsn_le(pg, before, position.lsn()));
    CHECK(lsn_le(pg, position.lsn(), after));
    // While held, pg_replication_slots shows the temporary slot at that point.
    CHECK(pg.sql("SELECT temporary, slot_type, confirmed_flush_lsn::text FROM pg_replication_slots "
                 "WHERE slot_name = '" +
                 position.slot_name() + "'") == "t|logical|" + position.lsn());
    // Rows committed after the point are not in the snapshot: not on our connection, not in pg_dump.
    pg.sql(
        "INSERT INTO items SELECT g, 'late' FROM generate_series(101, 150) g; DELETE FROM items WHERE id <= "
        "10");
    CHECK(conn.scalar("SELECT count(*) FROM items") == "100");
    auto dump = test::run({pg.bindir + "/pg_dump", "-h", pg.host, "-p", pg.port, "-U", pg.user, "-d", pg.name,
                           "--data-only", "--table=items", "--snapshot=" + position.snapshot()},
                          pg.env());
    INFO(dump.err);
    REQUIRE(dump.code == 0);
    CHECK(dump.out.find("1\tv1\n") != std::string::npos);
    CHECK(dump.out.find("100\tv100\n") != std::string::npos);
    CHECK(dump.out.find("late") == std::string::npos);
    conn.exec("COMMIT");
    const std::string slot = position.slot_name();
    position.release();
    // Gone with its connection (temporary).
    for (int i = 0; i < 50 && pg.sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + slot +
                                     "'") != "0";
         ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(pg.sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + slot + "'") == "0");
}

TEST_CASE("dump position: a running transaction makes the time-boxed slot fall back",
          "[integration][cdc][postgres]") {
    Pg pg("nj_slotbox");
    pg.sql("CREATE TABLE t (id int)");
    postgres::PgConnection blocker(pg.target());
    blocker.exec("BEGIN");
    blocker.exec("INSERT INTO t VALUES (1)");  // an xid that slot creation must wait for
    postgres::PgConnection conn(pg.target());
    auto started = std::chrono::steady_clock::now();
    postgres::DumpPosition position = postgres::DumpPosition::open(
        pg.target(), conn, {.timeout = std::chrono::milliseconds(700), .use_slot = true});
    auto took = std::chrono::steady_clock::now() - started;
    INFO(position.to_json().dump());
    CHECK(position.method() == "exported-snapshot");
    CHECK_THAT(position.fallback_reason(), Catch::Contains("still waiting for running transactions"));
    CHECK(took < std::chrono::seconds(5));
    CHECK(position.snapshot().size() > 5);
    CHECK(position.lsn().find('/') != std::string::npos);
    CHECK(position.to_json()["method"] == "exported-snapshot");
    conn.exec("COMMIT");
    blocker.exec("ROLLBACK");
    // No slot is left behind by the cancelled creation.
    for (int i = 0; i < 50 && pg.sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE "
                                     "'nightjar_dump_%'") != "0";
         ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(pg.sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'nightjar_dump_%'") == "0");
}

TEST_CASE("replay: a restored sink database converges to the present, row for row", "[integration][cdc]") {
    Pg pg("nj_replay");
    test::TempDir dir;
    pg.sql("CREATE TABLE public.items (id int PRIMARY KEY, qty int NOT NULL, note text)");
    test::KafkaConnectEmulator emu({.connectors = {}, .tasks = 1, .transition_delay_s = 0.1});
    const std::string topic = "fcms.public.items";
    emu.control("POST", "connectors",
                {{"name", "jdbc-sink"},
                 {"type", "sink"},
                 {"config", {{"topics", topic}, {"insert.mode", "upsert"}}},
                 {"sink", {{"conninfo", pg.conninfo()}, {"table", "public.items"}, {"key", {"id"}}}}});
    auto committed = [&] {
        auto o = emu.control("GET", "state")["connectors"]["jdbc-sink"]["offsets"];
        return o.empty() ? -1 : o[0]["offset"]["kafka_offset"].get<int>();
    };
    auto wait_committed = [&](int n) {
        for (int i = 0; i < 300 && committed() != n; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return committed() == n;
    };
    // Changes 1..N: inserts, updates of the same keys, a delete.
    auto change = [](int i) -> json {
        int id = i % 17;
        if (i % 11 == 0) return {{"key", {{"id", id}}}, {"value", nullptr}};
        return {{"key", {{"id", id}}},
                {"value", {{"id", id}, {"qty", i}, {"note", "change " + std::to_string(i)}}}};
    };
    const int N = 60, M = 140;
    json first = json::array();
    for (int i = 1; i <= N; ++i) first.push_back(change(i));
    emu.control("POST", "topics/" + topic, {{"records", first}});
    REQUIRE(wait_committed(N));

    // The backup holds the sink (with stop: it is a sink on a 3.9 worker) and records offset N.
    fs::path config = dir / "nightjar.json";
    json cfg{
        {"backup_dir", (dir / "backups").string()},
        {"postgres",
         {{"host", pg.host}, {"port", std::stoi(pg.port)}, {"user", pg.user}, {"databases", {pg.name}}}},
        {"cdc",
         {{"kafka_connect", {{"url", emu.url()}, {"connectors", {"jdbc-sink"}}, {"request_timeout_s", 2}}},
          {"pause_timeout_s", 10},
          {"resume_timeout_s", 10},
          {"retry", {{"initial_backoff_s", 0.05}, {"max_backoff_s", 0.2}}},
          {"state_dir", (dir / "cdc").string()}}}};
    test::write_file(config, cfg.dump(2));
    auto b = test::backup({"--config", config.string()}, pg.env());
    INFO(b.err);
    REQUIRE(b.code == 0);
    json manifest = json::parse(test::read_file(test::published_manifests(dir / "backups").back()));
    const json& rec = manifest["cdc"]["connectors"][0];
    CHECK(rec["held_with"] == "stop");
    CHECK(rec["offsets"][0]["offset"]["kafka_offset"] == N);
    CHECK(emu.count("PUT", "/connectors/jdbc-sink/stop") == 1);
    CHECK(emu.count("PUT", "/connectors/jdbc-sink/pause") == 0);
    const std::string at_backup = pg.sql(
        "SELECT string_agg(id || ':' || qty || ':' || coalesce(note, ''), ',' "
        "ORDER BY id) FROM items");
    // The dump's exact position is in the manifest too.
    bool exact = false;
    for (const auto& a : manifest["artifacts"])
        if (a.contains("source") && a["source"].contains("consistent_point"))
            exact = a["source"]["consistent_point"]["method"] == "replication-slot";
    CHECK(exact);

    // After the backup the sink applies N+1..M.
    json second = json::array();
    for (int i = N + 1; i <= M; ++i) second.push_back(change(i));
    emu.control("POST", "topics/" + topic, {{"records", second}});
    REQUIRE(wait_committed(M));
    const std::string present = pg.sql(
        "SELECT string_agg(id || ':' || qty || ':' || coalesce(note, ''), ',' "
        "ORDER BY id) FROM items");
    REQUIRE(present != at_backup);

    // The database is lost (the sink is idle: nothing new on its topic).
    pg.psql("postgres", "DROP DATABASE " + pg.name + " WITH (FORCE)");

    cdc::CdcConfig cdc;
    {
        cdc::KafkaConnectClusterConfig k;
        k.urls = {emu.url()};
        k.connectors = {"jdbc-sink"};
        k.request_timeout_s = 2;
        cdc.clusters = {k};
        cdc.resume_timeout_s = 10;
        cdc.retry = {.initial_backoff_s = 0.05, .max_backoff_s = 0.2};
        cdc.state_dir = (dir / "cdc").string();
    }
    cdc::CdcRestoreHold hold(cdc, {},
                             {.databases = {pg.name},
                              .renamed = false,
                              .cdc = std::nullopt,
                              .backup_id = manifest.value("id", ""),
                              .backup_time = 0,
                              .manifest_cdc = manifest["cdc"],
                              .connect = {}});
    hold.hold();
    CHECK(emu.connector_state("jdbc-sink") == "STOPPED");
    auto r = test::restore({"latest", "--backup-dir", (dir / "backups").string(), "--db", pg.name}, pg.env());
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(pg.sql("SELECT string_agg(id || ':' || qty || ':' || coalesce(note, ''), ',' ORDER BY id) FROM "
                 "items") == at_backup);
    hold.bring_back(true);
    INFO(hold.report().dump(2));
    CHECK(hold.exit_code() == 0);
    REQUIRE(wait_committed(M));
    CHECK(pg.sql("SELECT string_agg(id || ':' || qty || ':' || coalesce(note, ''), ',' ORDER BY id) FROM "
                 "items") == present);
    json entry = hold.report()["connectors"][0];
    CHECK(entry["offsets_recorded"][0]["offset"]["kafka_offset"] == N);
    CHECK(entry["offsets_after"][0]["offset"]["kafka_offset"] == N);
    CHECK(entry["final_state"]["state"] == "RUNNING");
}

TEST_CASE("reanchor: a leftover slot is dropped and execute-snapshot signals are written",
          "[integration][cdc]") {
    Pg pg("nj_reanchor");
    test::TempDir dir;
    pg.sql(
        "CREATE TABLE public.debezium_signal (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, "
        "data varchar(2048))");
    const std::string slot = "dbz_" + pg.name;
    pg.sql("SELECT pg_create_logical_replication_slot('" + slot + "', 'pgoutput')");  // left over
    test::KafkaConnectEmulator emu({.connectors = {}, .tasks = 1, .transition_delay_s = 0.1});
    emu.control("POST", "connectors",
                {{"name", "pg-src"},
                 {"config", {{"slot.name", slot}, {"table.include.list", "public.items, public.orders"}}}});
    cdc::CdcConfig cdc;
    cdc::KafkaConnectClusterConfig k;
    k.urls = {emu.url()};
    k.connectors = {"pg-src"};
    cdc.clusters = {k};
    cdc.resume_timeout_s = 10;
    cdc.retry = {.initial_backoff_s = 0.05, .max_backoff_s = 0.2};
    cdc.state_dir = (dir / "cdc").string();
    cdc::CdcRestoreConnector spec;
    spec.name = "pg-src";
    spec.database = pg.name;
    spec.role = "source";
    spec.mode = "reanchor";
    spec.reanchor = "signal";
    spec.signal_table = "public.debezium_signal";
    spec.drop_slot = true;
    cdc::CdcRestoreConfig config;
    config.connectors = {spec};
    cdc::CdcRestoreHold hold(cdc, config,
                             {.databases = {pg.name},
                              .renamed = false,
                              .cdc = std::nullopt,
                              .backup_id = "20261201T000000Z",
                              .backup_time = 0,
                              .manifest_cdc = nullptr,
                              .connect = [&](const std::string& db) {
                                  CHECK(db == pg.name);
                                  return std::make_unique<postgres::PgConnection>(pg.target());
                              }});
    hold.hold();
    CHECK(emu.connector_state("pg-src") == "STOPPED");
    hold.bring_back(true);
    INFO(hold.report().dump(2));
    CHECK(hold.exit_code() == 0);
    CHECK(emu.wait_settled("pg-src", "RUNNING"));
    CHECK(pg.sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + slot + "'") == "0");
    CHECK(pg.sql("SELECT type || ' ' || data FROM public.debezium_signal") ==
          R"(execute-snapshot {"data-collections":["public.items","public.orders"],"type":"incremental"})");
    CHECK(emu.count("DELETE", "/connectors/pg-src/offsets") == 0);  // signalled, not reset
}
