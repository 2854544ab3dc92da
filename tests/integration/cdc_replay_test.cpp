// CDC back in step after a restore (issue 18) with real PostgreSQL, library level: the dump's exact position
// from a temporary logical slot, and a reanchor's SQL (a leftover slot dropped, execute-snapshot signals).
// The end-to-end replay and the other restores through the real nightjar-restore: cdc_restore_test.cpp.
#include <catch2/catch.hpp>
#include <thread>

#include "nightjar/cdc/cdc_config.hpp"
#include "nightjar/cdc/restore_hold.hpp"
#include "nightjar/components/postgres/connection.hpp"
#include "nightjar/components/postgres/dump_position.hpp"
#include "support/cdc_sink.hpp"
#include "support/commands.hpp"
#include "support/kafka_connect_emulator.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Pg = test::PgDatabase;

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
