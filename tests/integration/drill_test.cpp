// Restore drills against the throwaway servers of scripts/lib/services.sh: a real backup (files, PostgreSQL,
// Redis) drilled into servers the drill starts itself, and each way a backup can be unrestorable.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "nightjar/components/postgres/connection.hpp"
#include "nightjar/components/postgres/expectations.hpp"
#include "nightjar/components/redis/rdb_check.hpp"
#include "nightjar/core/clock.hpp"
#include "nightjar/io/crc64.hpp"
#include "nightjar/io/process.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/repo/drill_record.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/run/drill.hpp"
#include "nightjar/run/drill_servers.hpp"
#include "support/commands.hpp"
#include "support/corrupt.hpp"
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
    std::vector<std::string> env() const { return {"PGPASSWORD=" + password}; }
    void psql(const std::string& db, const std::string& sql) const {
        auto r = test::run({bindir + "/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port,
                            "-U", user, "-d", db, "-c", sql},
                           env());
        INFO("psql " << db << ": " << sql << "\n" << r.err);
        REQUIRE(r.code == 0);
    }
};

std::string unique_name(const std::string& prefix) {
    static std::mt19937_64 rng{std::random_device{}()};
    return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(rng() % 1000000);
}

struct Database {
    const Pg& pg;
    std::string name;
    Database(const Pg& p, const std::string& prefix) : pg(p), name(unique_name(prefix)) {
        pg.psql("postgres", "CREATE DATABASE " + name);
    }
    ~Database() {
        test::run({pg.bindir + "/psql", "-X", "-q", "-h", pg.host, "-p", pg.port, "-U", pg.user, "-d",
                   "postgres", "-c", "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"},
                  pg.env());
    }
};

void redis_cmd(const std::string& port, const std::vector<std::string>& args) {
    std::vector<std::string> argv{"redis-cli", "-p", port, "-n", "7"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = test::run(argv);
    INFO("redis-cli " << args.front() << ": " << r.out << r.err);
    REQUIRE(r.code == 0);
    REQUIRE(r.out.find("ERR") == std::string::npos);
}

// A child python HTTP listener that records requests (the monitoring pings).
struct Recorder {
    test::TempDir dir;
    Subprocess proc;
    int port = 0;
    Recorder()
        : proc(Subprocess::spawn({"python3", (test::source_dir() / "tests/support/http_recorder.py").string(),
                                  "--port-file", (dir / "port").string(), "--log", (dir / "log").string()})) {
        for (int i = 0; i < 200 && !fs::exists(dir / "port"); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        REQUIRE(fs::exists(dir / "port"));
        port = std::stoi(test::read_file(dir / "port"));
    }
    ~Recorder() { proc.kill(SIGTERM); }
    // The request paths, in order.
    std::vector<std::string> paths() const {
        std::vector<std::string> out;
        if (!fs::exists(dir / "log")) return out;
        std::istringstream in(test::read_file(dir / "log"));
        std::string line;
        while (std::getline(in, line)) out.push_back(json::parse(line)["path"]);
        return out;
    }
    std::string log() const { return fs::exists(dir / "log") ? test::read_file(dir / "log") : ""; }
};

// A state dir directly under /tmp, so the postgres service user can reach it when the tests run as root.
struct StateDir {
    fs::path path = fs::path("/tmp") / unique_name("nightjar-drill-test");
    ~StateDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::vector<fs::path> drills() const {
        std::vector<fs::path> out;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(path, ec))
            if (e.path().filename().string().rfind("drill-", 0) == 0) out.push_back(e.path());
        return out;
    }
};

struct Fixture {
    Pg pg;
    std::string redis_port = test::required_env("NIGHTJAR_TEST_REDIS_PORT");
    test::TempDir dir;
    fs::path backups = dir / "backups";
    fs::path config = dir / "nightjar.json";
    StateDir state;
    Database db{pg, "drill"};

    Fixture() {
        test::write_file(dir / "src/app.conf", "listen = 8080\n");
        test::write_file(dir / "src/sub/keys.txt", std::string(5000, 'k'));
        fs::create_symlink("app.conf", dir / "src/link.conf");
        pg.psql(db.name,
                "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric, seen timestamptz, tags "
                "text[]);"
                "INSERT INTO items SELECT g, 'item ' || g, g * 1.5, '2026-01-01 00:00:00+00'::timestamptz + "
                "g * interval '1 hour', ARRAY['a', 'b' || g] FROM generate_series(1, 500) g;"
                "CREATE TABLE pairs (a int, b text, v float8, PRIMARY KEY (b, a));"
                "INSERT INTO pairs SELECT g % 7, 'k' || (g / 7), g / 3.0 FROM generate_series(1, 300) g;"
                "CREATE TABLE log_lines (line text);"
                "INSERT INTO log_lines SELECT 'line ' || g FROM generate_series(1, 40) g;");
        redis_cmd(redis_port, {"FLUSHDB"});
        redis_cmd(redis_port, {"SET", "greeting", "hello"});
        redis_cmd(redis_port, {"RPUSH", "queue", "a", "b", "c"});
        redis_cmd(redis_port, {"SADD", "members", "x", "y", "z"});
        redis_cmd(redis_port, {"ZADD", "board", "1", "one", "2.5", "two"});
        redis_cmd(redis_port, {"HSET", "user:1", "name", "ada", "lang", "en"});
        redis_cmd(redis_port, {"XADD", "events", "1-1", "kind", "start"});
        redis_cmd(redis_port, {"SET", "session", "s1", "EX", "86400"});
        json cfg{
            {"backup_dir", backups.string()},
            {"files", {{"paths", {(dir / "src").string()}}}},
            {"postgres",
             {{"host", pg.host}, {"port", std::stoi(pg.port)}, {"user", pg.user}, {"databases", {db.name}}}},
            {"redis", {{"host", "127.0.0.1"}, {"port", std::stoi(redis_port)}}}};
        test::write_file(config, cfg.dump(2));
    }
    ~Fixture() { test::run({"redis-cli", "-p", redis_port, "-n", "7", "FLUSHDB"}); }

    std::string backup() const {
        auto b = test::backup({"--config", config.string()}, pg.env());
        INFO(b.err);
        REQUIRE(b.code == 0);
        return json::parse(test::read_file(test::published_manifests(backups).back()))["id"];
    }
    DrillRequest request(const std::string& which = "latest") const {
        DrillRequest r;
        r.backup_dir = backups;
        r.which = which;
        r.servers.state_dir = state.path;
        r.monitoring.metrics_file = dir / "metrics.prom";
        return r;
    }
    fs::path manifest_of(const std::string& id) const { return backups / manifest_file_name(id); }
};

std::string all_checks(const DrillReport& r) {
    std::string s = "reason: " + r.reason + "\n";
    for (const auto& c : r.components) {
        s += c.component + (c.ok ? " ok" : " FAILED") + " " + c.error + "\n";
        for (const auto& k : c.checks)
            s += "  " + std::string(k.ok ? "ok   " : "FAIL ") + k.what + ": " + k.detail + "\n";
    }
    return s;
}

const DrillComponent& component(const DrillReport& r, const std::string& kind) {
    for (const auto& c : r.components)
        if (c.component == kind) return c;
    FAIL("no component " << kind << " in the drill report\n" << all_checks(r));
    throw std::logic_error("unreachable");
}

// Re-seals a manifest after an edit: a correct self-digest, so only the drill can notice.
void reseal(const fs::path& file, const std::function<void(Manifest&)>& edit) {
    Manifest m = parse_manifest(test::read_file(file), file.string());
    edit(m);
    test::write_file(file, serialize(m));
}

Artifact& artifact(Manifest& m, const std::string& component, const std::string& format = "") {
    for (auto& a : m.artifacts)
        if (a.component == component && (format.empty() || a.format == format)) return a;
    FAIL("no " << component << " artifact");
    throw std::logic_error("unreachable");
}

// The Prometheus text format, checked line by line (promtool's rules that matter here).
void check_metrics_format(const std::string& text) {
    const std::regex sample(
        R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)$)");
    const std::regex type_line(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter|untyped)$)");
    const std::regex help_line(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
    // promtool's rules: one TYPE (and HELP) per family, before its samples; a family's lines together (a
    // family seen again after another one is "second TYPE line" / "out of order"); no series twice.
    std::set<std::string> typed, helped, series, finished;
    std::string current;  // the family whose lines are being read
    auto enter = [&](const std::string& family) {
        if (family == current) return;
        CHECK_FALSE(finished.count(family));
        if (!current.empty()) finished.insert(current);
        current = family;
    };
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        INFO("metrics line: " << line);
        std::smatch m;
        if (std::regex_match(line, m, type_line)) {
            enter(m[1]);
            CHECK(typed.insert(m[1]).second);
        } else if (std::regex_match(line, m, help_line)) {
            enter(m[1]);
            CHECK_FALSE(typed.count(m[1]));  // HELP before TYPE, as nightjar writes them
            CHECK(helped.insert(m[1]).second);
        } else {
            REQUIRE(std::regex_match(line, m, sample));
            enter(m[1]);
            CHECK(typed.count(m[1]));
            CHECK(series.insert(m[1].str() + m[2].str()).second);
        }
    }
    if (::access("/usr/bin/promtool", X_OK) == 0) {
        test::TempDir t;
        test::write_file(t / "m.prom", text);
        auto r = test::run({"sh", "-c", "promtool check metrics < " + (t / "m.prom").string()});
        INFO(r.out << r.err);
        CHECK(r.code == 0);
    }
}

}  // namespace

TEST_CASE("a drill of a good backup passes with every check listed, and leaves evidence",
          "[integration][drill]") {
    Fixture f;
    const std::string id = f.backup();
    json source = json::parse(test::read_file(f.manifest_of(id)));
    for (const auto& a : source["artifacts"]) {
        if (a["format"] == "pg_dump-custom") {
            REQUIRE(a["source"].contains("expectations"));
            CHECK(a["source"]["expectations"]["tables"].size() ==
                  2);  // items and pairs; log_lines has no key
        }
        if (a["component"] == "redis") REQUIRE(a["source"]["expectations"]["dbs"].contains("db7"));
    }
    test::write_file(
        f.dir / "metrics.prom",
        "# HELP nightjar_backups_kept x\n# TYPE nightjar_backups_kept gauge\nnightjar_backups_kept 3\n");

    DrillReport r = run_drill(f.request());
    INFO(all_checks(r));
    CHECK(r.ok);
    CHECK(r.exit_code == 0);
    CHECK(r.backup_id == id);
    REQUIRE(r.components.size() == 3);
    std::set<std::string> names;
    for (const auto& c : r.components) {
        CHECK(c.ok);
        CHECK_FALSE(c.checks.empty());
        CHECK(c.bytes > 0);
        for (const auto& k : c.checks) {
            CHECK(k.ok);
            names.insert(k.what);
        }
    }
    CHECK(names.count("postgres db-" + f.db.name + ": public.items rows"));
    CHECK(names.count("postgres db-" + f.db.name + ": public.log_lines rows"));
    CHECK(names.count("postgres db-" + f.db.name + ": public.items sample of 32 rows"));
    CHECK(names.count("postgres db-" + f.db.name + ": public.pairs sample of 32 rows"));
    // The exact counts are the restore's own, made right after loading, not a second scan of each table.
    for (const auto& k : component(r, "postgres").checks)
        if (k.what.ends_with(" rows") && k.what.find(" sample of ") == std::string::npos)
            CHECK_THAT(k.detail, Catch::EndsWith("(counted by the restore)"));
    CHECK(names.count("redis db7 keys"));
    CHECK(names.count("files config: entries"));
    REQUIRE(r.tools.contains("postgres"));
    // The server's version alone ("15.18"), not the packager's suffix of `postgres --version`.
    CHECK(std::regex_match(r.tools["postgres"].get<std::string>(), std::regex(R"(\d+(\.\d+)*)")));
    CHECK(r.tools.contains("redis_server"));
    CHECK(r.seconds > 0);

    // The evidence: a record beside the backup, the last drill of that backup.
    REQUIRE_FALSE(r.record.empty());
    json record = json::parse(test::read_file(f.backups / r.record));
    CHECK(record["ok"] == true);
    CHECK(record["backup_id"] == id);
    CHECK(record["components"].size() == 3);
    PosixStorage storage(f.backups);
    auto last = last_drill(storage, id);
    REQUIRE(last);
    CHECK(last->passed);
    // Nothing left running or on disk.
    CHECK(f.state.drills().empty());

    // Metrics: the drill's lines beside the backup's, in the text format.
    std::string metrics = test::read_file(f.dir / "metrics.prom");
    CHECK_THAT(metrics, Catch::Contains("nightjar_backups_kept 3"));
    CHECK_THAT(metrics, Catch::Contains("nightjar_drill_status 0"));
    CHECK_THAT(metrics, Catch::Contains("nightjar_drill_duration_seconds{component=\"postgres\"}"));
    CHECK_THAT(metrics, Catch::Contains("nightjar_drill_last_success_timestamp_seconds " +
                                        std::to_string(r.finished_unix)));
    check_metrics_format(metrics);
    // The first drill kept its fresh cluster as a template; a copy cut short is cleared by the next drill.
    std::vector<fs::path> templates;
    for (const auto& e : fs::directory_iterator(f.state.path))
        if (e.path().filename().string().rfind("template-pg-", 0) == 0) templates.push_back(e.path());
    REQUIRE(templates.size() == 1);
    CHECK(fs::exists(templates[0] / "PG_VERSION"));
    const fs::path cut_short = templates[0].string() + ".tmp-99999";
    fs::create_directories(cut_short / "base");
    // A second drill of the same backup (its server copied from the template) writes a second record,
    // never over the first.
    DrillReport again = run_drill(f.request(id));
    INFO(all_checks(again));
    CHECK(again.ok);
    CHECK_FALSE(fs::exists(cut_short));
    CHECK(again.record != r.record);
    CHECK(fs::exists(f.backups / r.record));
    check_metrics_format(test::read_file(f.dir / "metrics.prom"));

    // The same through the binary: nightjar-restore drill <id> --json.
    auto cli = test::restore({"drill", id, "--backup-dir", f.backups.string(), "--json"},
                             {"NIGHTJAR_DRILL_DIR=" + f.state.path.string()});
    INFO(cli.err);
    CHECK(cli.code == 0);
    CHECK_THAT(cli.err, Catch::Contains("drill: PostgreSQL cluster copied from the template"));
    json out = json::parse(cli.out);
    CHECK(out["ok"] == true);
    CHECK(out["backup_id"] == id);
    CHECK(out["components"].size() == 3);
    CHECK(f.state.drills().empty());

    // --list shows each backup's last drill; --json carries its record.
    auto listed = test::restore({"--list", "--json", "--backup-dir", f.backups.string()});
    INFO(listed.err);
    REQUIRE(listed.code == 0);
    json rows = json::parse(listed.out);
    REQUIRE(rows.size() == 1);
    REQUIRE(rows[0].contains("last_drill"));
    CHECK(rows[0]["last_drill"]["passed"] == true);
    CHECK(rows[0]["last_drill"]["record"].get<std::string>().rfind("drills/" + id + "/", 0) == 0);
    auto table = test::restore({"--list", "--backup-dir", f.backups.string()});
    CHECK_THAT(table.out, Catch::Contains("drill passed"));
}

TEST_CASE("a drill of a backup with a flipped byte fails at verification", "[integration][drill]") {
    Fixture f;
    const std::string id = f.backup();
    json m = json::parse(test::read_file(f.manifest_of(id)));
    for (const auto& a : m["artifacts"])
        if (a["format"] == "pg_dump-custom") test::flip_byte(f.backups / a["path"].get<std::string>(), 100);
    test::write_file(f.dir / "metrics.prom", "nightjar_drill_last_success_timestamp_seconds 1234\n");
    DrillReport r = run_drill(f.request());
    INFO(all_checks(r));
    CHECK_FALSE(r.ok);
    CHECK(r.exit_code == 4);
    CHECK_FALSE(component(r, "postgres").ok);
    CHECK_THAT(r.reason, Catch::Contains("postgres: restore failed") && Catch::Contains("exit 4"));
    CHECK(component(r, "files").ok);
    PosixStorage storage(f.backups);
    auto last = last_drill(storage, id);
    REQUIRE(last);
    CHECK_FALSE(last->passed);
    std::string metrics = test::read_file(f.dir / "metrics.prom");
    CHECK_THAT(metrics, Catch::Contains("nightjar_drill_status 4"));
    CHECK_THAT(metrics, Catch::Contains("nightjar_drill_last_success_timestamp_seconds 1234"));
    CHECK(f.state.drills().empty());
    auto cli = test::restore({"drill", "latest", "--backup-dir", f.backups.string()},
                             {"NIGHTJAR_DRILL_DIR=" + f.state.path.string()});
    CHECK(cli.code == 4);
    CHECK_THAT(cli.err, Catch::Contains("drill: backup " + id + " FAILED"));
    auto table = test::restore({"--list", "--backup-dir", f.backups.string()});
    CHECK_THAT(table.out, Catch::Contains(id) && Catch::Contains("drill FAILED"));
}

TEST_CASE("a dump that verifies but does not restore fails the drill", "[integration][drill]") {
    Fixture f;
    // A CHECK constraint that reads another table: pg_dump's data order loads a_checked before z_allowed,
    // so pg_restore rejects its rows, although every byte of the dump is sound.
    f.pg.psql(f.db.name,
              "CREATE TABLE z_allowed (v int PRIMARY KEY); INSERT INTO z_allowed VALUES (1), (2);"
              "CREATE FUNCTION is_allowed(x int) RETURNS bool LANGUAGE sql STABLE AS "
              "'SELECT EXISTS (SELECT 1 FROM public.z_allowed WHERE v = x)';"
              "CREATE TABLE a_checked (x int PRIMARY KEY CHECK (public.is_allowed(x)));"
              "INSERT INTO a_checked VALUES (1), (2);");
    const std::string id = f.backup();
    DrillReport r = run_drill(f.request());
    INFO(all_checks(r));
    CHECK_FALSE(r.ok);
    CHECK(r.exit_code == 7);
    CHECK_FALSE(component(r, "postgres").ok);
    CHECK_THAT(r.reason, Catch::Contains("postgres: restore failed"));
    CHECK(component(r, "redis").ok);
    CHECK(f.state.drills().empty());
}

TEST_CASE("a drill names the expectation a re-sealed manifest no longer meets", "[integration][drill]") {
    Fixture f;
    const std::string id = f.backup();
    reseal(f.manifest_of(id), [](Manifest& m) {
        Artifact& pg = artifact(m, "postgres", "pg_dump-custom");
        for (auto& t : pg.source["expectations"]["tables"])
            if (t["name"] == "items") t["fingerprint"] = std::string(64, '0');
        Artifact& rd = artifact(m, "redis");
        rd.source["expectations"]["dbs"]["db7"]["sample"][0]["digest"] = std::string(64, 'f');
    });
    DrillReport r = run_drill(f.request());
    INFO(all_checks(r));
    CHECK_FALSE(r.ok);
    CHECK(r.exit_code == 7);
    CHECK_THAT(r.reason, Catch::Contains("public.items sample of 32 rows") &&
                             Catch::Contains("expected fingerprint 0000000000000000"));
    bool redis_named = false, pairs_ok = false;
    for (const auto& k : component(r, "redis").checks)
        if (k.what == "redis db7 sample of 7 keys" && !k.ok &&
            k.detail.find("has another value") != std::string::npos)
            redis_named = true;
    for (const auto& k : component(r, "postgres").checks)
        if (k.what.find("public.pairs sample") != std::string::npos) pairs_ok = k.ok;
    CHECK(redis_named);
    CHECK(pairs_ok);
}

TEST_CASE("a drill fails on an RDB that redis-server refuses, although it verifies", "[integration][drill]") {
    Fixture f;
    const std::string id = f.backup();
    // An unknown value type (0x7f) before the EOF opcode, the CRC64 trailer recomputed: the structure check
    // and the digests pass, redis-server refuses to load it.
    reseal(f.manifest_of(id), [&](Manifest& m) {
        Artifact& a = artifact(m, "redis");
        const fs::path stored = f.backups / a.path;
        auto d = test::run({"zstd", "-dcq", stored.string()});
        REQUIRE(d.code == 0);
        std::string rdb = d.out;
        REQUIRE(rdb.size() > 9 + 9);
        std::string body = rdb.substr(0, rdb.size() - 9);  // without EOF and trailer
        body += std::string(
            "\x7f\x03"
            "bad\x03"
            "bad",
            9);
        body += '\xff';
        std::uint64_t crc = io::crc64_redis(0, io::as_bytes(std::string_view(body)));
        for (int i = 0; i < 8; ++i) body += static_cast<char>((crc >> (8 * i)) & 0xff);
        redis::RdbCheck check;
        check.update(io::as_bytes(std::string_view(body)));
        REQUIRE(check.summary().ok());
        test::write_file(f.dir / "new.rdb", body);
        fs::remove(stored);
        REQUIRE(test::run({"zstd", "-q", "-o", stored.string(), (f.dir / "new.rdb").string()}).code == 0);
        a.content_size = body.size();
        a.content_sha256 = io::sha256_hex(std::string_view(body));
        std::string z = test::read_file(stored);
        a.size = z.size();
        a.sha256 = io::sha256_hex(std::string_view(z));
        a.source["crc64"] = check.summary().crc_text();
    });
    DrillReport r = run_drill(f.request());
    INFO(all_checks(r));
    CHECK_FALSE(r.ok);
    CHECK(r.exit_code == 7);
    CHECK_FALSE(component(r, "redis").ok);
    CHECK_THAT(r.reason, Catch::Contains("redis: restore failed") && Catch::Contains("redis-server"));
    CHECK(component(r, "postgres").ok);
}

TEST_CASE("a drill killed midway leaves nothing behind after the next drill", "[integration][drill]") {
    Fixture f;
    f.backup();
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        try {
            drill::ServerOptions so;
            so.state_dir = f.state.path;
            so.postgres = true;
            so.redis = true;
            drill::DrillServers servers(so);
            std::ofstream(f.state.path / "ready") << "1";
            ::raise(SIGKILL);
        } catch (...) {
        }
        ::_exit(1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(fs::exists(f.state.path / "ready"));
    auto left = f.state.drills();
    REQUIRE(left.size() == 1);
    auto pid_in = [](const fs::path& file) {
        std::ifstream in(file);
        long pid = 0;
        in >> pid;
        return static_cast<pid_t>(pid);
    };
    auto running = [](pid_t pid) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
        std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto close = stat.rfind(')');
        return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] != 'Z';
    };
    const pid_t postmaster = pid_in(left[0] / "pg" / "postmaster.pid");
    const pid_t redis = pid_in(left[0] / "redis" / "redis.pid");
    REQUIRE(postmaster > 0);
    REQUIRE(redis > 0);
    CHECK(running(postmaster));
    CHECK(running(redis));

    DrillReport r = run_drill(f.request());
    INFO(all_checks(r));
    CHECK(r.ok);
    REQUIRE(r.cleaned.size() >= 2);
    CHECK_FALSE(running(postmaster));
    CHECK_FALSE(running(redis));
    CHECK(f.state.drills().empty());
}

TEST_CASE("random drills a complete backup not drilled recently", "[integration][drill]") {
    Fixture f;
    const std::string first = f.backup();
    ::sleep(1);
    const std::string second = f.backup();
    REQUIRE(first != second);
    DrillRequest req = f.request(first);
    DrillReport r1 = run_drill(req);
    INFO(all_checks(r1));
    REQUIRE(r1.ok);
    PosixStorage storage(f.backups);
    RepositoryReader repo(storage);
    for (std::uint64_t seed = 1; seed < 20; ++seed)
        CHECK(select_drill_backup(repo, "random", 7, unix_now(), seed) == second);
    // Once both were drilled, the least recently drilled one.
    ::sleep(1);
    REQUIRE(run_drill(f.request(second)).ok);
    CHECK(select_drill_backup(repo, "random", 7, unix_now(), 3) == first);
    CHECK(select_drill_backup(repo, "latest", 7, unix_now(), 3) == second);
}

namespace {

// The fixture's config with drill.after_backup, monitoring (metrics and pings) and `extra` merged in.
void after_backup_config(const Fixture& f, const std::string& ping_url, const json& extra = json::object()) {
    json cfg = json::parse(test::read_file(f.config));
    cfg["drill"] = {{"after_backup", true}};
    cfg["monitoring"] = {{"metrics_file", (f.dir / "metrics.prom").string()}, {"ping_url", ping_url}};
    cfg.merge_patch(extra);
    test::write_file(f.config, cfg.dump(2));
}

test::Outcome backup_with_drill(const Fixture& f) {
    std::vector<std::string> env = f.pg.env();
    env.push_back("NIGHTJAR_DRILL_DIR=" + f.state.path.string());
    return test::backup({"--config", f.config.string(), "--json"}, env);
}

}  // namespace

TEST_CASE("drill.after_backup: the nightly run reports backed up and proven", "[integration][drill]") {
    Fixture f;
    Recorder recorder;
    after_backup_config(f, "http://127.0.0.1:" + std::to_string(recorder.port) + "/ping/abc");
    auto r = backup_with_drill(f);
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.err, Catch::Contains("backed up and proven: backup "));
    json out = json::parse(r.out);
    const std::string id = out["id"];
    CHECK(out["exit_code"] == 0);
    REQUIRE(out.contains("drill"));
    CHECK(out["drill"]["ok"] == true);
    CHECK(out["drill"]["backup_id"] == id);
    CHECK(out["drill"]["components"].size() == 3);
    CHECK_FALSE(out.contains("error"));
    // The evidence beside the backup, and retention sees it.
    PosixStorage storage(f.backups);
    auto last = last_drill(storage, id);
    REQUIRE(last);
    CHECK(last->passed);
    CHECK(out["drill"]["record"] == last->file);
    CHECK(f.state.drills().empty());
    // One textfile with the backup's lines and the drill's.
    const std::string metrics = test::read_file(f.dir / "metrics.prom");
    CHECK_THAT(metrics, Catch::Contains("nightjar_last_run_status 0"));
    CHECK_THAT(metrics, Catch::Contains("nightjar_drill_status 0"));
    CHECK_THAT(metrics, Catch::Contains("nightjar_drill_last_success_timestamp_seconds " +
                                        std::to_string(last->time)));
    check_metrics_format(metrics);
    // The run pings start and success once each; the drill does not ping on its own.
    const auto paths = recorder.paths();
    CHECK(paths == std::vector<std::string>{"/ping/abc/start", "/ping/abc"});
    CHECK_THAT(recorder.log(), Catch::Contains("\\\"drill\\\""));
}

TEST_CASE("drill.after_backup: a backup that does not restore exits 7, stays published, and pings /fail",
          "[integration][drill]") {
    Fixture f;
    Recorder recorder;
    // Sound bytes that pg_restore rejects (as in "a dump that verifies but does not restore").
    f.pg.psql(f.db.name,
              "CREATE TABLE z_allowed (v int PRIMARY KEY); INSERT INTO z_allowed VALUES (1), (2);"
              "CREATE FUNCTION is_allowed(x int) RETURNS bool LANGUAGE sql STABLE AS "
              "'SELECT EXISTS (SELECT 1 FROM public.z_allowed WHERE v = x)';"
              "CREATE TABLE a_checked (x int PRIMARY KEY CHECK (public.is_allowed(x)));"
              "INSERT INTO a_checked VALUES (1), (2);");
    // An older backup that retention would delete: a failed drill leaves the prune out.
    const std::string older = f.backup();
    ::sleep(1);
    after_backup_config(f, "http://127.0.0.1:" + std::to_string(recorder.port) + "/ping/abc",
                        json{{"retention", {{"keep_last", 1}}}});
    auto r = backup_with_drill(f);
    INFO(r.err);
    CHECK(r.code == 7);
    json out = json::parse(r.out);
    const std::string id = out["id"];
    CHECK(out["exit_code"] == 7);
    CHECK(out["status"] == "complete");
    REQUIRE(out.contains("drill"));
    CHECK(out["drill"]["ok"] == false);
    CHECK(out["drill"]["exit_code"] == 7);
    CHECK_THAT(out["drill"]["reason"].get<std::string>(), Catch::Contains("postgres: restore failed"));
    CHECK_THAT(out["error"].get<std::string>(),
               Catch::Contains("backup " + id + " is published, but its restore drill FAILED") &&
                   Catch::Contains("postgres: restore failed"));
    CHECK_THAT(r.err, Catch::Contains("restore drill FAILED"));
    // Published, with the failed drill as its evidence; the older backup is not pruned.
    CHECK(json::parse(test::read_file(f.manifest_of(id)))["status"] == "complete");
    CHECK(fs::exists(f.manifest_of(older)));
    CHECK_THAT(r.err, Catch::Contains("prune: skipped"));
    PosixStorage storage(f.backups);
    auto last = last_drill(storage, id);
    REQUIRE(last);
    CHECK_FALSE(last->passed);
    const std::string metrics = test::read_file(f.dir / "metrics.prom");
    CHECK_THAT(metrics, Catch::Contains("nightjar_last_run_status 7"));
    CHECK_THAT(metrics, Catch::Contains("nightjar_drill_status 7"));
    check_metrics_format(metrics);
    const auto paths = recorder.paths();
    CHECK(paths == std::vector<std::string>{"/ping/abc/start", "/ping/abc/fail"});
    CHECK_THAT(recorder.log(), Catch::Contains("restore drill FAILED"));
    CHECK(f.state.drills().empty());
}

TEST_CASE("a drill as root without the service user refuses with a clear message", "[integration][drill]") {
    Fixture f;
    const std::string id = f.backup();
    DrillRequest req = f.request(id);
    req.servers.pg_user = "nightjar-no-such-user";
    DrillReport r = run_drill(req);
    INFO(all_checks(r));
    if (::geteuid() == 0) {
        // initdb and postgres refuse to run as root: the drill names the user it would drop to.
        CHECK_FALSE(r.ok);
        CHECK(r.exit_code == 2);
        CHECK_THAT(r.reason,
                   Catch::Contains("running as root, and there is no \"nightjar-no-such-user\" user") &&
                       Catch::Contains("run the drill as an unprivileged user"));
        CHECK(f.state.drills().empty());
        auto last = last_drill(PosixStorage(f.backups), id);
        REQUIRE(last);
        CHECK_FALSE(last->passed);
    } else {
        // Not root: the servers run as us, the service user is never needed.
        CHECK(r.ok);
    }
}

TEST_CASE("postgres samples picked by either method compare equal on the same rows and differ on a change",
          "[integration][drill]") {
    Pg pg;
    Database db{pg, "samples"};
    pg.psql(db.name,
            "CREATE TABLE items(id int PRIMARY KEY, v text); INSERT INTO items SELECT g, md5(g::text) FROM "
            "generate_series(1, 3000) g; CREATE TABLE pairs(a int, b text, PRIMARY KEY (a, b)); INSERT INTO "
            "pairs SELECT g % 50, g::text FROM generate_series(1, 500) g");
    ::setenv("PGPASSWORD", pg.password.c_str(), 1);
    const postgres::PgTarget target{{pg.host, std::stoi(pg.port), pg.user, ""}, db.name, 10, ""};
    const std::vector<postgres::TableName> tables{{"public", "items"}, {"public", "pairs"}};
    auto capture = [&](std::optional<postgres::SampleMethod> method) {
        postgres::PgConnection conn(target);
        conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
        json e = postgres::capture_expectations(conn, tables, {.seed = 42, .rows = 32, .method = method});
        conn.exec("COMMIT");
        return json{{"expectations", e}};
    };
    auto all_ok = [&](const json& source) {
        auto checks = postgres::compare_expectations(target, source, "t");
        REQUIRE(checks.size() == 2);
        bool ok = true;
        for (const auto& c : checks) {
            INFO(c.what << ": " << c.detail);
            ok = ok && c.ok;
        }
        return ok;
    };
    json md5 = capture(postgres::SampleMethod::Md5);
    json hte = capture(std::nullopt);  // the default on PostgreSQL 11+
    CHECK(md5["expectations"]["method"] == "md5");
    CHECK(hte["expectations"]["method"] == "hashtextextended");
    CHECK_FALSE(hte["expectations"]["probe"].get<std::string>().empty());
    CHECK(md5["expectations"]["tables"][0]["fingerprint"] != hte["expectations"]["tables"][0]["fingerprint"]);
    CHECK(all_ok(md5));
    CHECK(all_ok(hte));
    // A backup from before the method was recorded: md5, read as such.
    json legacy = md5;
    legacy["expectations"].erase("method");
    CHECK(all_ok(legacy));

    // One row changed: both methods notice (all 3000 rows are sampled candidates, the 32 picked may or may
    // not hold it, so change every row's text instead).
    pg.psql(db.name, "UPDATE items SET v = v || 'x'");
    CHECK_FALSE(all_ok(md5));
    CHECK_FALSE(all_ok(hte));

    // A server that hashes text differently (another byte order) cannot compare hashtextextended samples,
    // and says so rather than reporting a mismatch of the data.
    json other = hte;
    other["expectations"]["probe"] = "12345";
    auto checks = postgres::compare_expectations(target, other, "t");
    REQUIRE(checks.size() == 2);
    CHECK_FALSE(checks[0].ok);
    CHECK_THAT(checks[0].detail, Catch::Contains("hashes text differently") &&
                                     Catch::Contains("the samples cannot be compared"));
}
