// The PostgreSQL flow through the real binaries against the throwaway server of scripts/test.sh: round trip,
// source failures, corrupted dumps, and the restore's refusals.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <sstream>

#include "nightjar/components/postgres/archive.hpp"
#include "nightjar/components/postgres/postgres_component.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/verify.hpp"
#include "support/commands.hpp"
#include "support/corrupt.hpp"
#include "support/ports.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Server {
    std::string host = test::required_env("NIGHTJAR_TEST_PGHOST");
    std::string port = test::required_env("NIGHTJAR_TEST_PGPORT");
    std::string user = test::required_env("NIGHTJAR_TEST_PGUSER");
    std::string password = test::required_env("NIGHTJAR_TEST_PGPASSWORD");
    std::string bindir = test::required_env("NIGHTJAR_TEST_PG_BINDIR");

    std::vector<std::string> env() const { return {"PGPASSWORD=" + password}; }
    // psql as the test superuser; fails the test on any SQL error.
    std::string psql(const std::string& db, const std::string& sql, const std::string& user_override = "",
                     const std::string& password_override = "") const {
        auto r =
            test::run({bindir + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p",
                       port, "-U", user_override.empty() ? user : user_override, "-d", db, "-c", sql},
                      {"PGPASSWORD=" + (password_override.empty() ? password : password_override)});
        INFO("psql " << db << ": " << sql << "\n" << r.err);
        REQUIRE(r.code == 0);
        std::string out = r.out;
        while (!out.empty() && out.back() == '\n') out.pop_back();
        return out;
    }
    void psql_file(const std::string& db, const fs::path& file) const {
        auto r = test::run({bindir + "/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port,
                            "-U", user, "-d", db, "-f", file.string()},
                           env());
        INFO(r.err);
        REQUIRE(r.code == 0);
    }
    // The schema as pg_dump prints it, without the per-run \restrict keys of patched releases.
    std::string schema(const std::string& db) const {
        auto r = test::run(
            {bindir + "/pg_dump", "--schema-only", "-h", host, "-p", port, "-U", user, "-d", db}, env());
        REQUIRE(r.code == 0);
        std::string out, line;
        std::istringstream in(r.out);
        while (std::getline(in, line))
            if (line.rfind("\\restrict", 0) != 0 && line.rfind("\\unrestrict", 0) != 0) out += line + "\n";
        return out;
    }
};

std::string unique_name(const std::string& prefix) {
    static std::mt19937_64 rng{std::random_device{}()};
    return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(rng() % 1000000);
}

// A database that exists for one test and is dropped afterwards, with any copies the test made.
struct Database {
    const Server& server;
    std::string name;
    std::vector<std::string> also_drop;
    Database(const Server& s, const std::string& prefix) : server(s), name(unique_name(prefix)) {
        server.psql("postgres", "CREATE DATABASE " + name);
    }
    ~Database() {
        also_drop.push_back(name);
        for (const auto& db : also_drop)
            test::run(
                {server.bindir + "/psql", "-X", "-q", "-h", server.host, "-p", server.port, "-U", server.user,
                 "-d", "postgres", "-c", "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)"},
                server.env());
    }
};

struct Flow {
    Server server;
    test::TempDir dir;
    fs::path backups = dir / "backups";
    fs::path config = dir / "nightjar.json";

    void write_config(json postgres, json extra = json::object()) const {
        postgres["host"] = server.host;
        postgres["port"] = std::stoi(server.port);
        postgres["user"] = server.user;
        json j{{"backup_dir", backups.string()}, {"postgres", postgres}};
        j.update(extra);
        test::write_file(config, j.dump(2));
    }
    test::Outcome backup(std::vector<std::string> extra = {}, std::vector<std::string> env = {}) const {
        std::vector<std::string> args{"--config", config.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        if (env.empty()) env = server.env();
        return test::backup(args, env);
    }
    test::Outcome restore(std::vector<std::string> extra) const { return restore_which("latest", extra); }
    test::Outcome restore_which(const std::string& which, std::vector<std::string> extra,
                                std::vector<std::string> env = {}) const {
        std::vector<std::string> args{which, "--backup-dir", backups.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::restore(args, env.empty() ? server.env() : env);
    }
    std::vector<fs::path> manifests() const { return test::published_manifests(backups); }
    json manifest() const { return json::parse(test::read_file(manifests().back())); }
    json artifact(const std::string& name) const {
        json m = manifest();
        for (const auto& a : m["artifacts"])
            if (a["name"] == name) return a;
        FAIL("no artifact " << name);
        return {};
    }
};

// Per-table digests of the data, plus the sequence position and the large object.
std::map<std::string, std::string> data_digests(const Server& s, const std::string& db) {
    std::map<std::string, std::string> out;
    std::string tables = s.psql(db,
                                "SELECT string_agg(format('%I.%I', schemaname, tablename), ' ' ORDER BY 1) "
                                "FROM pg_tables WHERE schemaname = 'shop'");
    std::istringstream in(tables);
    std::string t;
    while (in >> t)
        out[t] = s.psql(
            db, "SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM " + t + " x");
    out["sequence"] = s.psql(db, "SELECT last_value FROM shop.order_no");
    out["large object"] = s.psql(db, "SELECT md5(lo_get(body)) FROM shop.documents");
    out["view"] = s.psql(db, "SELECT count(*) FROM shop.big_spenders");
    out["materialized view"] = s.psql(db,
                                      "SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM "
                                      "shop.order_totals x");
    out["comment"] = s.psql(db, "SELECT obj_description('shop.customers'::regclass, 'pg_class')");
    return out;
}

}  // namespace

TEST_CASE("a database round-trips: schema and every table's data equal the source",
          "[integration][postgres]") {
    Flow f;
    Database src(f.server, "nj_src");
    const std::string copy = src.name + "_copy";
    src.also_drop.push_back(copy);
    f.server.psql_file(src.name, test::source_dir() / "samples/postgres/seed.sql");
    f.write_config({{"databases", {src.name}}, {"globals", true}});

    auto b = f.backup({"--json"});
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK(json::parse(b.out)["status"] == "complete");
    json a = f.artifact("db-" + src.name);
    CHECK(a["format"] == "pg_dump-custom");
    CHECK(a["compression"] == "zstd");
    json source = a["source"];
    CHECK(source["database"] == src.name);
    CHECK(source["server_version_num"].get<int>() >= 150000);
    CHECK(source["in_recovery"] == false);
    CHECK(source["wal_lsn"].get<std::string>().find('/') != std::string::npos);
    CHECK(source["snapshot"].get<std::string>().size() > 5);
    CHECK(source["encoding"] == "UTF8");
    CHECK(source["database_size"].get<std::int64_t>() > 0);
    CHECK(source["replication_slots"].is_array());
    std::map<std::string, std::int64_t> rows;
    for (const auto& t : source["tables"])
        rows[t["schema"].get<std::string>() + "." + t["name"].get<std::string>()] = t["rows"];
    CHECK(rows == std::map<std::string, std::int64_t>{{"shop.customers", 500},
                                                      {"shop.documents", 1},
                                                      {"shop.empty_table", 0},
                                                      {"shop.orders_2023", 729},
                                                      {"shop.orders_2024", 471}});
    CHECK(f.artifact("pg-globals")["format"] == "pg_dumpall-globals-sql");
    const std::string manifest_text = test::read_file(f.manifests().back());
    CHECK(manifest_text.find(f.server.password) ==
          std::string::npos);  // the password is nowhere in the manifest
    CHECK(b.err.find(f.server.password) == std::string::npos);

    auto dry = f.restore({"--dry-run", "--db-name", src.name + "=" + copy});
    INFO(dry.err);
    CHECK(dry.code == 0);
    CHECK_THAT(dry.err, Catch::Contains("does not exist and would be created"));
    CHECK(f.server.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = '" + copy + "'") ==
          "0");

    auto before = data_digests(f.server, src.name);
    // A renamed restore leaves roles alone unless --globals asks for them.
    auto r = f.restore({"--db-name", src.name + "=" + copy, "--globals"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.err, Catch::Contains("globals restored") && Catch::Contains("5 of 5 tables match"));
    CHECK(f.server.schema(copy) == f.server.schema(src.name));
    CHECK(data_digests(f.server, copy) == before);
    CHECK(data_digests(f.server, src.name) == before);  // --db-name left the original untouched

    SECTION("restoring over a database that has tables is refused without --clean, naming it") {
        f.server.psql(copy, "INSERT INTO shop.empty_table VALUES (42)");
        auto refused = f.restore({"--db-name", src.name + "=" + copy, "--skip-globals"});
        CHECK(refused.code == 7);
        CHECK_THAT(refused.err, Catch::Contains("database \"" + copy + "\"") && Catch::Contains("--clean"));
        CHECK(f.server.psql(copy, "SELECT count(*) FROM shop.empty_table") == "1");  // nothing was written
        auto plan = f.restore({"--db-name", src.name + "=" + copy, "--dry-run"});
        CHECK(plan.code == 7);
        CHECK_THAT(plan.err, Catch::Contains("would refuse"));

        auto clean =
            f.restore({"--db-name", src.name + "=" + copy, "--skip-globals", "--clean", "--jobs", "1"});
        INFO(clean.err);
        CHECK(clean.code == 0);
        CHECK(f.server.psql(copy, "SELECT count(*) FROM shop.empty_table") == "0");
        CHECK(data_digests(f.server, copy) == before);
    }
    SECTION("a table that lost rows after the restore is a failed check") {
        // The same dump under a manifest that recorded one row less: the post-restore count must object.
        PosixStorage storage(f.backups);
        RepositoryWriter repo(storage);
        Manifest m = repo.load(repo.find("latest"));
        auto lock = repo.lock();
        Staging staging = repo.begin("20200101_000000", {});
        const Artifact* art = m.find("db-" + src.name);
        REQUIRE(art);
        auto content = open_verified_content(repo, *art);
        auto w = staging.artifact("pg.pgdump.zst");
        io::pump(*content, *w);
        w->finish();
        Artifact edited = w->artifact("postgres", art->name, art->format);
        edited.source = art->source;
        for (auto& t : edited.source["tables"])
            if (t["name"] == "customers") t["rows"] = 499;
        m.artifacts = {edited};
        m.id = staging.id();
        repo.publish(std::move(staging), m);
        auto r2 = test::restore({(f.backups / "manifest_20200101_000000.json").string(), "--skip-globals",
                                 "--db-name", src.name + "=" + copy, "--clean"},
                                f.server.env());
        CHECK(r2.code == 7);
        CHECK_THAT(r2.err,
                   Catch::Contains(
                       "row count of shop.customers is 500 after the restore, the manifest recorded 499"));
    }
}

TEST_CASE("a source that cannot be dumped fails clearly and is never claimed", "[integration][postgres]") {
    Flow f;
    Database good(f.server, "nj_good");
    f.server.psql(good.name, "CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g");

    SECTION("wrong password") {
        f.write_config({{"databases", {good.name}}});
        auto r = f.backup({}, {"PGPASSWORD=wrong-password"});
        CHECK(r.code == 3);
        CHECK_THAT(r.err, Catch::Contains("database \"" + good.name + "\"") &&
                              Catch::Contains("password authentication failed"));
        CHECK(r.err.find("wrong-password") == std::string::npos);
        CHECK(f.manifests().empty());
    }
    SECTION("unknown database") {
        f.write_config({{"databases", {"nj_no_such_db"}}});
        auto r = f.backup();
        CHECK(r.code == 3);
        CHECK_THAT(r.err, Catch::Contains("database \"nj_no_such_db\" does not exist"));
        CHECK(f.manifests().empty());
        CHECK(f.backup({"--dry-run"}).code == 3);
    }
    SECTION("server down") {
        f.write_config({{"databases", {good.name}}, {"connect_timeout", 3}});
        json cfg = json::parse(test::read_file(f.config));
        cfg["postgres"]["port"] = test::free_port();  // nothing listens there
        test::write_file(f.config, cfg.dump());
        auto r = f.backup();
        CHECK(r.code == 3);
        CHECK_THAT(r.err, Catch::Contains("cannot connect to database \"" + good.name + "\"") &&
                              Catch::Contains("Connection refused"));
        CHECK(f.manifests().empty());
    }
    SECTION("one bad database of two: partial backup, the good one kept, the bad one named") {
        f.write_config({{"databases", {good.name, "nj_no_such_db"}}});
        auto r = f.backup();
        CHECK(r.code == 6);
        REQUIRE(f.manifests().size() == 1);
        json m = f.manifest();
        CHECK(m["status"] == "partial");
        REQUIRE(m["artifacts"].size() == 1);
        CHECK(m["artifacts"][0]["name"] == "db-" + good.name);
        CHECK(m["components"][0]["status"] == "failed");
        CHECK_THAT(m["components"][0]["error"].get<std::string>(), Catch::Contains("nj_no_such_db"));
        CHECK(m["components"][0]["details"]["databases"]["nj_no_such_db"]["status"] == "failed");
        // `latest` is the newest complete backup: there is none.
        auto latest = f.restore({"--dry-run"});
        CHECK(latest.code == 2);
        CHECK_THAT(latest.err, Catch::Contains("no complete backup") && Catch::Contains("postgres failed") &&
                                   Catch::Contains("latest-any"));
        // latest-any takes it, but the failed database is selected (every database is, by default).
        auto any = f.restore_which("latest-any", {"--dry-run"});
        CHECK(any.code == 2);
        CHECK_THAT(any.err, Catch::Contains("component postgres failed at capture") &&
                                Catch::Contains("nj_no_such_db") && Catch::Contains("--skip-db"));
        // With only the good database selected, restoring over it (it has a table) is refused.
        auto good_only = f.restore_which("latest-any", {"--dry-run", "--db", good.name});
        INFO(good_only.err);
        CHECK(good_only.code == 7);
        CHECK_THAT(good_only.err, Catch::Contains("--clean"));
    }
    SECTION("other components still run; fail_fast stops the whole run") {
        test::write_file(f.dir / "etc/app.conf", "x = 1\n");
        json files{{"files", {{"paths", {(f.dir / "etc").string()}}}}};
        f.write_config({{"databases", {"nj_no_such_db"}}}, files);
        auto r = f.backup();
        CHECK(r.code == 6);
        REQUIRE(f.manifests().size() == 1);
        CHECK(f.manifest()["status"] == "partial");
        CHECK(f.manifest()["artifacts"].size() == 1);
        CHECK(f.manifest()["artifacts"][0]["component"] == "files");

        f.write_config({{"databases", {"nj_no_such_db"}}, {"fail_fast", true}}, files);
        auto ff = f.backup();
        CHECK(ff.code == 3);
        CHECK_THAT(ff.err, Catch::Contains("fail_fast"));
        CHECK(f.manifests().size() == 1);  // no second backup was published
    }
    SECTION("pg_dump itself fails: its stderr is quoted and the database named") {
        const std::string role = unique_name("nj_reader");
        f.server.psql("postgres", "CREATE ROLE " + role + " LOGIN PASSWORD 'reader-pw'");
        f.server.psql(good.name, "GRANT USAGE ON SCHEMA public TO " + role);
        json cfg{{"databases", {good.name}}};
        f.write_config(cfg);
        json j = json::parse(test::read_file(f.config));
        j["postgres"]["user"] = role;
        test::write_file(f.config, j.dump());
        auto r = f.backup({}, {"PGPASSWORD=reader-pw"});
        f.server.psql(good.name, "REVOKE ALL ON SCHEMA public FROM " + role);
        f.server.psql("postgres", "DROP ROLE " + role);
        CHECK(r.code == 3);
        CHECK_THAT(r.err, Catch::Contains("pg_dump failed for database \"" + good.name + "\"") &&
                              Catch::Contains("permission denied for table t"));
        CHECK(f.manifests().empty());
    }
}

TEST_CASE("a corrupted dump is caught by the dry run", "[integration][postgres]") {
    Flow f;
    Database src(f.server, "nj_corrupt");
    f.server.psql_file(src.name, test::source_dir() / "samples/postgres/seed.sql");
    f.write_config({{"databases", {src.name}}});
    REQUIRE(f.backup().code == 0);
    json a = f.artifact("db-" + src.name);
    fs::path file = f.backups / a["path"].get<std::string>();

    SECTION("a flipped byte on disk") {
        test::flip_byte(file, static_cast<std::int64_t>(fs::file_size(file) / 2));
        auto r = f.restore({"--dry-run"});
        CHECK(r.code == 4);
        CHECK_THAT(r.err, Catch::Contains(a["path"].get<std::string>()) && Catch::Contains("digest"));
        // A real restore proves the stored bytes beside its start and writes nothing: no database appears.
        const std::string target = src.name + "_flipped";
        src.also_drop.push_back(target);
        auto real = f.restore({"--db-name", src.name + "=" + target});
        INFO(real.err);
        CHECK(real.code == 4);
        CHECK_THAT(real.err, Catch::Contains("digest-mismatch") && Catch::Contains("nothing was restored"));
        CHECK(f.server.psql("postgres",
                            "SELECT count(*) FROM pg_database WHERE datname = '" + target + "'") == "0");
    }
    SECTION("a truncated file on disk") {
        test::truncate_to(file, fs::file_size(file) * 2 / 3);
        auto r = f.restore({"--dry-run"});
        CHECK(r.code == 4);
        CHECK_THAT(r.err, Catch::Contains(a["path"].get<std::string>()));
    }
    // The next two rewrite the artifact with matching digests, so only the format check can catch them.
    auto republish = [&](const std::string& id,
                         const std::function<std::string(const std::string&)>& edit_bytes,
                         const std::function<void(json&)>& edit_source) {
        PosixStorage storage(f.backups);
        RepositoryWriter repo(storage);
        Manifest m = repo.load(repo.find("latest"));
        Artifact original = m.artifacts.at(0);
        std::string content;
        {
            auto in = open_verified_content(repo, original);
            std::vector<std::byte> buf(1 << 16);
            while (std::size_t n = in->read(buf)) content.append(io::as_chars(io::Bytes(buf.data(), n)));
        }
        auto lock = repo.lock();
        Staging staging = repo.begin(id, {});
        auto w = staging.artifact("db.pgdump.zst");
        w->write(io::as_bytes(edit_bytes(content)));
        w->finish();
        Artifact edited = w->artifact("postgres", original.name, original.format);
        edited.source = original.source;
        edit_source(edited.source);
        Manifest copy = m;
        copy.id = id;
        copy.artifacts = {edited};
        repo.publish(std::move(staging), copy);
        return test::restore({(f.backups / manifest_file_name(id)).string(), "--dry-run"}, f.server.env());
    };
    // A real restore of backup `id` into a new database `target` (dropped at the end of the test).
    auto restore_into = [&](const std::string& id, const std::string& target) {
        src.also_drop.push_back(target);
        return test::restore(
            {(f.backups / manifest_file_name(id)).string(), "--db-name", src.name + "=" + target},
            f.server.env());
    };
    auto database_count = [&](const std::string& name) {
        return f.server.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = '" + name + "'");
    };
    SECTION("truncated past the table of contents, digests recomputed") {
        std::string kept;
        auto r = republish(
            "20200101_000001",
            [&](const std::string& content) {
                auto archive = postgres::parse_pg_archive(io::as_bytes(content), "test");
                REQUIRE(archive);
                std::size_t cut = archive->toc_end + (content.size() - archive->toc_end) / 2;
                REQUIRE(cut > archive->toc_end);
                return kept = content.substr(0, cut);
            },
            [](json&) {});
        CHECK(r.code == 4);
        CHECK_THAT(r.err, Catch::Contains("pg_restore cannot read the archive to its end"));
        // The table of contents is intact, so pg_restore --list alone would have called it fine.
        CHECK(postgres::parse_pg_archive(io::as_bytes(kept), "t"));

        // A real restore streams the archive into pg_restore and finds the cut only when the stream ends,
        // after part of it was applied: the database it created is dropped again.
        auto real = restore_into("20200101_000001", src.name + "_cut");
        INFO(real.err);
        CHECK(real.code == 4);
        CHECK_THAT(real.err, Catch::Contains("cut short") && Catch::Contains("was dropped again"));
        CHECK(database_count(src.name + "_cut") == "0");
    }
    SECTION("a table the manifest counted is missing from the archive") {
        auto r = republish(
            "20200101_000002", [](const std::string& content) { return content; },
            [](json& source) {
                source["tables"].push_back({{"schema", "shop"}, {"name", "ghost"}, {"rows", 3}});
            });
        CHECK(r.code == 4);
        CHECK_THAT(r.err, Catch::Contains("no data for table shop.ghost"));

        // A real restore reads the table of contents first and refuses before it creates anything.
        auto real = restore_into("20200101_000002", src.name + "_ghost");
        INFO(real.err);
        CHECK(real.code == 4);
        CHECK_THAT(real.err, Catch::Contains("no data for table shop.ghost") &&
                                 Catch::Contains("nothing was restored"));
        CHECK(database_count(src.name + "_ghost") == "0");
    }
}

namespace {

// The globals artifact of the newest backup, as text.
std::string globals_text(const fs::path& backups, Manifest& manifest) {
    PosixStorage storage(backups);
    RepositoryReader repo(storage);
    manifest = repo.load(repo.find("latest"));
    const Artifact* g = manifest.find("pg-globals");
    REQUIRE(g);
    std::string text;
    auto in = open_verified_content(repo, *g);
    std::vector<std::byte> buf(1 << 16);
    while (std::size_t n = in->read(buf)) text.append(io::as_chars(io::Bytes(buf.data(), n)));
    return text;
}

// Publishes backup `id` holding only a globals artifact with this text (digests correct).
void publish_globals(const fs::path& backups, const Manifest& base, const std::string& id,
                     const std::string& text) {
    PosixStorage storage(backups);
    RepositoryWriter repo(storage);
    const Artifact* g = base.find("pg-globals");
    REQUIRE(g);
    auto lock = repo.lock();
    Staging staging = repo.begin(id, {});
    auto w = staging.artifact("pg-globals.sql.zst");
    w->write(io::as_bytes(text));
    w->finish();
    Artifact edited = w->artifact("postgres", g->name, g->format);
    edited.source = g->source;
    Manifest copy = base;
    copy.id = id;
    copy.artifacts = {edited};
    repo.publish(std::move(staging), copy);
}

}  // namespace

TEST_CASE("globals are data: meta-commands, COPY and smuggled statements are refused and nothing runs",
          "[integration][postgres][globals]") {
    Flow f;
    Database src(f.server, "nj_gsrc");
    f.server.psql(src.name, "CREATE TABLE t AS SELECT g FROM generate_series(1, 3) g");
    f.write_config({{"databases", {src.name}}, {"globals", true}});
    REQUIRE(f.backup().code == 0);
    Manifest base;
    const std::string original = globals_text(f.backups, base);
    const std::string header = "--\n-- PostgreSQL database cluster dump\n--\n\n";
    REQUIRE(original.rfind(header, 0) == 0);
    const std::string tag = unique_name("nj");
    const fs::path shell_marker = f.dir / "shell-ran";
    const fs::path out_marker = f.dir / "o-written";
    const std::string program_marker = "/tmp/" + tag + "-copy-program-ran";
    const std::string first = tag + "_first", second = tag + "_second";
    auto roles = [&] {
        return f.server.psql(
            "postgres", "SELECT count(*) FROM pg_roles WHERE rolname IN ('" + first + "', '" + second + "')");
    };
    struct Case {
        const char* name;
        std::string lines;  // inserted after the header, before pg_dumpall's own \restrict
        int bad_line;
    };
    const std::vector<Case> cases{
        {"shell escape", "CREATE ROLE " + first + ";\n\\! touch " + shell_marker.string() + "\n", 6},
        {"output redirection", "\\o " + out_marker.string() + "\nCREATE ROLE " + first + ";\n", 5},
        {"COPY … TO PROGRAM",
         "CREATE ROLE " + first + ";\nCOPY (SELECT 1) TO PROGRAM 'touch " + program_marker + "';\n", 6},
        {"a second statement after ';' on a role line",
         "CREATE ROLE " + first + "; CREATE ROLE " + second + " SUPERUSER LOGIN;\n", 5},
    };
    int n = 0;
    for (const auto& c : cases) {
        INFO(c.name);
        const std::string id = "20200101_00000" + std::to_string(n++);
        publish_globals(f.backups, base, id, header + c.lines + original.substr(header.size()));
        const std::string manifest = (f.backups / manifest_file_name(id)).string();
        const std::string where = "globals line " + std::to_string(c.bad_line) + ": ";
        auto dry = test::restore({manifest, "--dry-run"}, f.server.env());
        INFO(dry.err);
        CHECK(dry.code == 4);
        CHECK_THAT(dry.err, Catch::Contains(where) && Catch::Contains("refused"));
        auto real = test::restore({manifest}, f.server.env());
        INFO(real.err);
        CHECK(real.code == 4);
        CHECK_THAT(real.err, Catch::Contains(where) && Catch::Contains("nothing was restored"));
        CHECK_FALSE(fs::exists(shell_marker));
        CHECK_FALSE(fs::exists(out_marker));
        CHECK_FALSE(fs::exists(program_marker));
        CHECK(roles() == "0");  // not even the statement before the bad one ran
    }
    // The control: the same harness with an accepted statement does run it.
    publish_globals(f.backups, base, "20200101_000009",
                    header + "CREATE ROLE " + first + ";\n" + original.substr(header.size()));
    auto ok = test::restore({(f.backups / manifest_file_name("20200101_000009")).string()}, f.server.env());
    INFO(ok.err);
    CHECK(ok.code == 0);
    CHECK_THAT(ok.err, Catch::Contains("roles: 1 created (" + first + ")"));
    CHECK(roles() == "1");
    f.server.psql("postgres", "DROP ROLE IF EXISTS " + first);
}

TEST_CASE(
    "globals: left alone by a side-by-side restore unless --globals, existing roles keep their password and "
    "attributes unless --globals=replace",
    "[integration][postgres][globals]") {
    Flow f;
    Database src(f.server, "nj_gl");
    f.server.psql(src.name, "CREATE TABLE t AS SELECT g FROM generate_series(1, 3) g");
    const std::string kept = unique_name("nj_kept"), gone = unique_name("nj_gone");
    f.server.psql("postgres", "CREATE ROLE " + kept + " LOGIN PASSWORD 'at-backup' CONNECTION LIMIT 3");
    f.server.psql("postgres", "CREATE ROLE " + gone + " NOLOGIN");
    f.write_config({{"databases", {src.name}}, {"globals", true}});
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    auto state = [&] {
        return f.server.psql(
            "postgres",
            "SELECT rolpassword || ' ' || rolconnlimit FROM pg_authid WHERE rolname = '" + kept + "'");
    };
    auto exists = [&](const std::string& role) {
        return f.server.psql("postgres", "SELECT count(*) FROM pg_roles WHERE rolname = '" + role + "'");
    };
    const std::string at_backup = state();
    f.server.psql("postgres", "ALTER ROLE " + kept + " PASSWORD 'changed-since' CONNECTION LIMIT 7");
    f.server.psql("postgres", "DROP ROLE " + gone);
    const std::string changed = state();
    REQUIRE(changed != at_backup);
    auto copy = [&](int i) {
        std::string name = src.name + "_c" + std::to_string(i);
        src.also_drop.push_back(name);
        return src.name + "=" + name;
    };

    auto side = f.restore({"--db-name", copy(1)});
    INFO(side.err);
    CHECK(side.code == 0);
    CHECK_THAT(side.err, Catch::Contains("globals) are not restored") && Catch::Contains("--globals"));
    CHECK(exists(gone) == "0");
    auto selected = f.restore({"--db", src.name, "--db-name", copy(2)});
    CHECK(selected.code == 0);
    CHECK_THAT(selected.err, Catch::Contains("globals) are not restored"));
    CHECK(exists(gone) == "0");

    auto plan = f.restore({"--db-name", copy(3), "--globals", "--dry-run"});
    INFO(plan.err);
    CHECK(plan.code == 0);
    CHECK_THAT(plan.err, Catch::Contains("would restore roles and tablespaces") &&
                             Catch::Contains("roles: 1 created (" + gone + "), 0 altered") &&
                             Catch::Contains("left as they are") && Catch::Contains(kept));
    CHECK(exists(gone) == "0");

    auto create = f.restore({"--db-name", copy(3), "--globals"});
    INFO(create.err);
    CHECK(create.code == 0);
    CHECK_THAT(create.err, Catch::Contains("roles: 1 created (" + gone + "), 0 altered") &&
                               Catch::Contains("--globals=replace alters them"));
    CHECK(exists(gone) == "1");
    CHECK(state() == changed);  // the existing role's password and connection limit are untouched

    auto replace = f.restore({"--db-name", copy(4), "--globals=replace"});
    INFO(replace.err);
    CHECK(replace.code == 0);
    CHECK_THAT(replace.err, Catch::Contains("roles: 0 created, ") && Catch::Contains(" altered (") &&
                                Catch::Contains(kept));
    CHECK(state() == at_backup);
    CHECK(f.restore({"--db-name", copy(5), "--globals", "--skip-globals"}).code == 2);
    f.server.psql("postgres", "DROP ROLE IF EXISTS " + kept);
    f.server.psql("postgres", "DROP ROLE IF EXISTS " + gone);
}

TEST_CASE("database selection: --db app restores app beside crm and leaves crm untouched",
          "[integration][postgres]") {
    Flow f;
    Database app(f.server, "nj_app");
    Database crm(f.server, "nj_crm");
    f.server.psql(app.name, "CREATE TABLE t AS SELECT g FROM generate_series(1, 3) g");
    f.server.psql(crm.name, "CREATE TABLE c AS SELECT g FROM generate_series(1, 5) g");
    f.write_config({{"databases", {app.name, crm.name}}});
    REQUIRE(f.backup().code == 0);
    f.server.psql(crm.name, "INSERT INTO c VALUES (100)");  // production moved on after the backup
    const std::string restored = app.name + "_restored";
    app.also_drop.push_back(restored);
    auto db_count = [&](const std::string& name) {
        return f.server.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = '" + name + "'");
    };

    // Without --db every database is restored; crm exists, and the refusal never suggests --clean for it.
    auto all = f.restore({"--db-name", app.name + "=" + restored});
    INFO(all.err);
    CHECK(all.code == 7);
    CHECK_THAT(all.err, Catch::Contains("database \"" + crm.name + "\"") && Catch::Contains("--db NAME") &&
                            Catch::Contains("--db-name " + crm.name + "=NEWNAME"));
    CHECK(all.err.find("--clean") == std::string::npos);
    CHECK(db_count(restored) == "0");

    auto dry = f.restore({"--db", app.name, "--db-name", app.name + "=" + restored, "--dry-run"});
    INFO(dry.err);
    CHECK(dry.code == 0);
    CHECK_THAT(dry.err, Catch::Contains("target: postgres db-" + app.name + " -> database \"" + app.name +
                                        "\" into database \"" + restored + "\""));
    CHECK(dry.err.find("target: ") < dry.err.find("verify "));
    CHECK(dry.err.find(crm.name) == std::string::npos);

    auto one = f.restore({"--db", app.name, "--db-name", app.name + "=" + restored});
    INFO(one.err);
    CHECK(one.code == 0);
    CHECK(f.server.psql(restored, "SELECT count(*) FROM t") == "3");
    CHECK(f.server.psql(crm.name, "SELECT count(*) FROM c") == "6");  // untouched

    auto unknown = f.restore({"--db", "nj_nowhere", "--dry-run"});
    CHECK(unknown.code == 2);
    CHECK_THAT(unknown.err, Catch::Contains("holds no database named \"nj_nowhere\""));
    auto unselected = f.restore({"--db", app.name, "--db-name", crm.name + "=x", "--dry-run"});
    CHECK(unselected.code == 2);
    CHECK_THAT(unselected.err, Catch::Contains("add --db " + crm.name));
}

TEST_CASE("a restore whose database target cannot be checked fails with exit 3, dry run included",
          "[integration][postgres]") {
    Flow f;
    Database src(f.server, "nj_unreach");
    f.server.psql(src.name, "CREATE TABLE t AS SELECT g FROM generate_series(1, 3) g");
    f.write_config({{"databases", {src.name}}});
    REQUIRE(f.backup().code == 0);
    const std::string target = src.name + "_x";
    src.also_drop.push_back(target);

    auto dry = f.restore_which("latest", {"--dry-run", "--db-name", src.name + "=" + target},
                               {"PGPASSWORD=wrong-password"});
    INFO(dry.err);
    CHECK(dry.code == 3);
    CHECK_THAT(dry.err, Catch::Contains("a target cannot be checked") &&
                            Catch::Contains("password authentication failed"));
    CHECK(dry.err.find("every artifact verified") == std::string::npos);
    auto real =
        f.restore_which("latest", {"--db-name", src.name + "=" + target}, {"PGPASSWORD=wrong-password"});
    INFO(real.err);
    CHECK(real.code == 3);
    CHECK_THAT(real.err, Catch::Contains("nothing was written"));
    auto down = f.restore(
        {"--dry-run", "--db-name", src.name + "=" + target, "--db-port", std::to_string(test::free_port())});
    CHECK(down.code == 3);
    CHECK(f.server.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = '" + target + "'") ==
          "0");
}
