// The pure parts of the PostgreSQL component: its config section, the custom-archive reader, tool choice and
// the argv/env given to pg_dump and pg_restore (never a password).
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "nightjar/components/postgres/archive.hpp"
#include "nightjar/components/postgres/archive_walker.hpp"
#include "nightjar/components/postgres/postgres_component.hpp"
#include "nightjar/components/postgres/tools.hpp"
#include "nightjar/run/config.hpp"
#include "support/matchers.hpp"
#include "support/pg_archive.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using test::ArchiveBytes;
using test::IsError;

namespace {

Config pg(const std::string& section) {
    return parse_config(R"({"postgres": )" + section + "}", "c.json");
}

std::string sample_archive(int minor = 14) {
    ArchiveBytes a;
    a.header(minor, 3);
    a.entry(1, "TABLE", "shop", "customers", 3);
    a.entry(2, "TABLE DATA", "shop", "customers", 1);
    a.entry(3, "INDEX", "shop", "customers_name_idx", 3);
    return a.b;
}

}  // namespace

TEST_CASE("postgres config section", "[postgres][config]") {
    SECTION("defaults and a list of databases") {
        Config c = pg(R"({"host": "db1", "port": 5433, "user": "backup", "databases": ["app", "crm"]})");
        REQUIRE(c.postgres);
        CHECK(c.postgres->databases == std::vector<std::string>{"app", "crm"});
        CHECK(c.postgres->endpoint.host == "db1");
        CHECK(c.postgres->endpoint.port == 5433);
        CHECK_FALSE(c.postgres->globals);
        CHECK_FALSE(c.postgres->fail_fast);
        CHECK(c.postgres->maintenance_db == "postgres");
        CHECK(c.postgres->connect_timeout == 10);
        CHECK_FALSE(c.postgres->all_databases());
    }
    SECTION("\"all\" and per-database overrides") {
        Config c = pg(R"({"host": "db1", "user": "backup", "databases": "all", "globals": true,
                         "overrides": {"crm": {"host": "db2", "port": 6432, "passfile": "/etc/nightjar/crm.pgpass"}}})");
        CHECK(c.postgres->all_databases());
        CHECK(c.postgres->globals);
        postgres::PgEndpoint crm = c.postgres->endpoint_for("crm");
        CHECK(crm.host == "db2");
        CHECK(crm.port == 6432);
        CHECK(crm.user == "backup");  // inherited
        CHECK(crm.passfile == "/etc/nightjar/crm.pgpass");
        CHECK(c.postgres->endpoint_for("app").host == "db1");
    }
    SECTION("--db-host/--db-port override every endpoint") {
        Config c = pg(
            R"({"host": "db1", "port": 5432, "databases": ["a", "b"], "overrides": {"b": {"host": "db2"}}})");
        c.postgres->override_endpoint("10.0.0.9", 7000);
        CHECK(c.postgres->endpoint_for("a").host == "10.0.0.9");
        CHECK(c.postgres->endpoint_for("b").host == "10.0.0.9");
        CHECK(c.postgres->endpoint_for("b").port == 7000);
        c.postgres->override_endpoint("", 0);  // flags not given: nothing changes
        CHECK(c.postgres->endpoint_for("a").host == "10.0.0.9");
    }
    SECTION("errors name the field") {
        REQUIRE_THROWS_MATCHES(pg(R"({"databases": ["a"], "password": "x"})"), Error,
                               IsError(Kind::Config, "/postgres/password: unknown field"));
        REQUIRE_THROWS_MATCHES(
            pg(R"({"databases": ["a"], "port": "54x2"})"), Error,
            IsError(Kind::Config, "/postgres/port: expected integer 1-65535, got \"54x2\""));
        REQUIRE_THROWS_MATCHES(pg(R"({"host": "h"})"), Error,
                               IsError(Kind::Config, "/postgres/databases: required field is missing"));
        REQUIRE_THROWS_MATCHES(
            pg(R"({"databases": []})"), Error,
            IsError(Kind::Config, "/postgres/databases: expected \"all\" or at least one"));
        REQUIRE_THROWS_MATCHES(pg(R"({"databases": ["all", "x"]})"), Error,
                               IsError(Kind::Config, "/postgres/databases/0: \"all\" cannot be combined"));
        REQUIRE_THROWS_MATCHES(
            pg(R"({"databases": ["a"], "overrides": {"b": {"port": 1}}})"), Error,
            IsError(Kind::Config, "/postgres/overrides/b: not one of the configured databases"));
        REQUIRE_THROWS_MATCHES(pg(R"({"databases": ["a"], "overrides": {"a": {"password": "x"}}})"), Error,
                               IsError(Kind::Config, "/postgres/overrides/a/password: unknown field"));
        REQUIRE_THROWS_MATCHES(pg(R"({"databases": ["a"], "passfile": "pgpass"})"), Error,
                               IsError(Kind::Config, "/postgres/passfile: expected an absolute path"));
        REQUIRE_THROWS_MATCHES(pg(R"({"databases": ["a"], "sslmode": "maybe"})"), Error,
                               IsError(Kind::Config, "/postgres/sslmode: expected one of disable|"));
    }
}

TEST_CASE("database renames parse as OLD=NEW", "[postgres]") {
    CHECK(postgres::parse_rename("app=app_restored") ==
          std::make_pair(std::string("app"), std::string("app_restored")));
    CHECK(postgres::parse_rename("a=b=c") == std::make_pair(std::string("a"), std::string("b=c")));
    CHECK_FALSE(postgres::parse_rename("app"));
    CHECK_FALSE(postgres::parse_rename("=x"));
    CHECK_FALSE(postgres::parse_rename("x="));
}

TEST_CASE("custom archive header and TOC", "[postgres][archive]") {
    SECTION("a complete head parses") {
        std::string bytes = sample_archive() + "data blocks follow";
        auto a = postgres::parse_pg_archive(io::as_bytes(bytes), "t");
        REQUIRE(a);
        CHECK(a->version() == "1.14.0");
        CHECK(a->format == 1);
        CHECK(a->uncompressed());
        CHECK(a->database == "shopdb");
        CHECK(a->dump_version == "15.18 (Debian)");
        REQUIRE(a->toc.size() == 3);
        CHECK(a->toc[1].desc == "TABLE DATA");
        CHECK(a->toc[1].schema == "shop");
        CHECK(a->toc[1].tag == "customers");
        CHECK(a->toc[1].has_data);
        CHECK_FALSE(a->toc[0].has_data);
        CHECK(a->toc_end == sample_archive().size());
    }
    SECTION("1.15 keeps the compression algorithm in one byte") {
        auto a = postgres::parse_pg_archive(io::as_bytes(sample_archive(15)), "t");
        REQUIRE(a);
        CHECK(a->version() == "1.15.0");
        CHECK(a->toc.size() == 3);
    }
    SECTION("every cut before the end of the TOC asks for more bytes") {
        std::string bytes = sample_archive();
        for (std::size_t n = 0; n < bytes.size(); n += 7)
            CHECK_FALSE(postgres::parse_pg_archive(io::as_bytes(std::string_view(bytes).substr(0, n)), "t"));
    }
    SECTION("garbage is refused, naming the artifact") {
        REQUIRE_THROWS_MATCHES(
            postgres::parse_pg_archive(io::as_bytes(std::string("PK\x03\x04 not a dump")),
                                       "artifact x/db.zst"),
            Error, IsError(Kind::Verification, "artifact x/db.zst: not a readable pg_dump archive"));
        std::string future = sample_archive();
        future[6] = 40;  // 1.40
        REQUIRE_THROWS_MATCHES(postgres::parse_pg_archive(io::as_bytes(future), "t"), Error,
                               IsError(Kind::Verification, "unsupported archive version 1.40.0"));
        std::string dir_format = sample_archive();
        dir_format[10] = 3;
        REQUIRE_THROWS_MATCHES(postgres::parse_pg_archive(io::as_bytes(dir_format), "t"), Error,
                               IsError(Kind::Verification, "is not the custom format"));
    }
}

TEST_CASE("pg tools are chosen by server version", "[postgres][tools]") {
    test::TempDir root;
    for (const char* v : {"13", "15", "16"}) {
        test::write_file(root / (std::string(v) + "/bin/pg_dump"), "#!/bin/sh\n");
        ::chmod((root / (std::string(v) + "/bin/pg_dump")).c_str(), 0755);
    }
    CHECK(postgres::find_pg_tool("pg_dump", 14, postgres::PgToolPick::OldestFitting, "", root.path()).major ==
          15);
    CHECK(find_pg_tool("pg_dump", 15, postgres::PgToolPick::OldestFitting, "", root.path()).major == 15);
    CHECK(find_pg_tool("pg_dump", 12, postgres::PgToolPick::Newest, "", root.path()).major == 16);
    CHECK(find_pg_tool("pg_dump", 14, postgres::PgToolPick::OldestFitting, "", root.path()).path ==
          root / "15/bin/pg_dump");
    REQUIRE_THROWS_MATCHES(find_pg_tool("pg_dump", 17, postgres::PgToolPick::OldestFitting, "", root.path()),
                           Error, IsError(Kind::SourceUnavailable, "no pg_dump of version 17 or newer"));
    REQUIRE_THROWS_MATCHES(
        find_pg_tool("pg_dump", 16, postgres::PgToolPick::OldestFitting, (root / "13/bin").string()), Error,
        IsError(Kind::SourceUnavailable, "is version 13, older than the server (16)"));
    REQUIRE_THROWS_MATCHES(
        find_pg_tool("pg_restore", 15, postgres::PgToolPick::Newest, "", root.path(), Kind::Verification),
        Error, IsError(Kind::Verification, "no pg_restore of version 15"));
}

TEST_CASE("argv for the dump tools never holds a password", "[postgres][tools]") {
    ::setenv("PGPASSWORD", "s3cret-in-env", 1);
    postgres::PgTarget t{{"db1", 5433, "backup", "/etc/nightjar/pgpass"}, "it's a db", 10, "require"};
    postgres::PgTool tool{"/usr/lib/postgresql/15/bin/pg_dump", 15};
    auto argv = postgres::pg_dump_argv(tool, t, "00000003-00000185-1");
    CHECK(argv == std::vector<std::string>{"/usr/lib/postgresql/15/bin/pg_dump", "--format=custom",
                                           "--compress=0", "--snapshot=00000003-00000185-1", "--host=db1",
                                           "--port=5433", "--username=backup", "--no-password",
                                           "--dbname=dbname='it\\'s a db'"});
    auto env = t.child_env();
    CHECK(std::find(env.begin(), env.end(), "PGPASSFILE=/etc/nightjar/pgpass") != env.end());
    CHECK(std::find(env.begin(), env.end(), "PGSSLMODE=require") != env.end());
    for (const auto& list : {argv, env, postgres::pg_dumpall_globals_argv(tool, t, false),
                             postgres::pg_restore_argv(tool, t, 2, "/tmp/x")})
        for (const auto& a : list) CHECK(a.find("s3cret") == std::string::npos);
    ::unsetenv("PGPASSWORD");

    auto globals = postgres::pg_dumpall_globals_argv(tool, t, false);
    CHECK(std::find(globals.begin(), globals.end(), "--no-role-passwords") != globals.end());
    auto super = pg_dumpall_globals_argv(tool, t, true);
    CHECK(std::find(super.begin(), super.end(), "--no-role-passwords") == super.end());
    auto parallel = postgres::pg_restore_argv(tool, t, 4, "/tmp/spool");
    CHECK(std::find(parallel.begin(), parallel.end(), "--jobs=4") != parallel.end());
    CHECK(parallel.back() == "/tmp/spool");
    auto piped = pg_restore_argv(tool, t, 4, "");  // from stdin: pg_restore cannot run jobs there
    CHECK(std::find(piped.begin(), piped.end(), "--jobs=4") == piped.end());
    CHECK(postgres::pg_restore_check_argv(tool) ==
          std::vector<std::string>{tool.path.string(), "--file=/dev/null"});
}

TEST_CASE("pg_restore's stderr is read for ignored errors", "[postgres][tools]") {
    std::string err =
        "pg_restore: while PROCESSING TOC:\n"
        "pg_restore: error: could not execute query: ERROR:  role \"app\" does not exist\n"
        "Command was: ALTER TABLE public.t OWNER TO app;\n"
        "pg_restore: error: could not execute query: ERROR:  relation \"t\" already exists\n"
        "pg_restore: warning: errors ignored on restore: 2\n";
    CHECK(postgres::pg_restore_ignored_errors(err) == 2);
    CHECK(postgres::pg_restore_ignored_errors("pg_restore: error: could not open input file") == 0);
    auto lines = postgres::pg_error_lines(err, 5);
    REQUIRE(lines.size() == 2);
    CHECK_THAT(lines[0], Catch::Contains("role \"app\" does not exist"));
    CHECK(postgres::pg_error_lines(err, 1).size() == 1);
}

TEST_CASE("database names become distinct, safe file names", "[postgres]") {
    CHECK(postgres::pg_file_name_part("app_db-1.v2") == "app_db-1.v2");
    CHECK(postgres::pg_file_name_part("a b") == "a%20b");
    CHECK(postgres::pg_file_name_part("a_b") != postgres::pg_file_name_part("a b"));
    CHECK(postgres::pg_file_name_part("../etc") == "%2E.%2Fetc");  // no ".." and no "/" survive
    CHECK(postgres::pg_file_name_part("Ünï") == "%C3%9Cn%C3%AF");
}

namespace {

// sample_archive() followed by its one data block (entry 2: two chunks), as pg_dump writes it to a pipe.
std::string archive_with_data() {
    ArchiveBytes a;
    a.b = sample_archive();
    a.block(2, {"1\tAda", "2\tGrace\n"});
    return a.b;
}

std::string walk(const std::string& bytes, std::size_t step) {
    postgres::PgArchiveWalker w("artifact x/db.zst", 1 << 20);
    for (std::size_t pos = 0; pos < bytes.size(); pos += step)
        w.feed(io::as_bytes(std::string_view(bytes).substr(pos, step)));
    return w.finish();
}

}  // namespace

TEST_CASE("the archive walker frames every data block and finds its offset", "[postgres][archive]") {
    const std::string bytes = archive_with_data();
    const std::size_t block = sample_archive().size();
    SECTION("whole, or a byte at a time, the walk is the same") {
        for (std::size_t step : {bytes.size(), std::size_t{1}, std::size_t{3}}) {
            postgres::PgArchiveWalker w("t", 1 << 20);
            for (std::size_t pos = 0; pos < bytes.size(); pos += step)
                w.feed(io::as_bytes(std::string_view(bytes).substr(pos, step)));
            CHECK(w.finish() == "");
            REQUIRE(w.archive());
            CHECK(w.block_offsets() == std::map<int, std::uint64_t>{{2, block}});
        }
    }
    SECTION("a large-object block: (oid, chunks) pairs ended by oid 0") {
        ArchiveBytes a;
        a.b = bytes;
        // Turn entry 3 into the BLOBS entry: rebuild with a data state of 1 for it.
        std::string head = sample_archive();
        auto at = head.rfind(std::string("\x03", 1) + std::string(8, '\0'));
        REQUIRE(at != std::string::npos);
        a.b[at] = '\x01';
        a.byte(3);  // BLK_BLOBS
        a.integer(3);
        a.integer(16400);  // oid
        a.integer(4);
        a.b += "blob";
        a.integer(0);
        a.integer(0);  // no more blobs
        CHECK(walk(a.b, 5) == "");
        postgres::PgArchiveWalker w("t", 1 << 20);
        w.feed(io::as_bytes(a.b));
        CHECK(w.block_offsets().at(3) == bytes.size());
    }
    SECTION("what pg_restore would stumble on is named") {
        CHECK(walk(sample_archive().substr(0, 40), 7) ==
              "the archive ends before its table of contents does");
        CHECK(walk(bytes.substr(0, bytes.size() - 1), 4) ==
              "the archive is cut short inside the data block of entry 2");
        CHECK(walk(bytes.substr(0, bytes.size() - 9), 4) ==
              "the archive is cut short inside the data block of entry 2");
        CHECK(walk(sample_archive(), 4) ==
              "the archive has no data block for TABLE DATA shop.customers (entry 2)");
        ArchiveBytes other;
        other.b = bytes;
        other.byte(1);
        other.integer(3);  // entry 3 (an INDEX) has no data
        REQUIRE_THROWS_MATCHES(walk(other.b, 4), Error,
                               IsError(Kind::Verification, "belongs to entry 3, which has no data"));
        ArchiveBytes twice;
        twice.b = bytes + bytes.substr(block);
        REQUIRE_THROWS_MATCHES(walk(twice.b, 4), Error,
                               IsError(Kind::Verification, "entry 2 has two data blocks"));
        std::string bad_type = bytes;
        bad_type[block] = '\x07';
        REQUIRE_THROWS_MATCHES(walk(bad_type, 4), Error,
                               IsError(Kind::Verification,
                                       "artifact x/db.zst: not a readable pg_dump archive: "
                                       "unknown data block type 7"));
    }
}
