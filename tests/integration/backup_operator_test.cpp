// What the backup tells an operator and what it leaves on disk: the dry run predicts the real run (a Redis
// user that may neither SYNC nor BGSAVE, a hook that cannot be run, large objects the role cannot read, a
// metrics directory that is not there; the ping reported, never sent), the summary carries the errors,
// --version, the permission modes, after_publish hooks.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "nightjar/components/redis/client.hpp"
#include "nightjar/io/process.hpp"
#include "support/commands.hpp"
#include "support/kafka_connect_emulator.hpp"
#include "support/listener.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A config with one small files component, and whatever `extra` adds.
struct Preflight {
    test::TempDir dir;
    fs::path backups = dir / "backups";
    fs::path config = dir / "nightjar.json";
    explicit Preflight(json extra = json::object(), bool with_files = true) {
        test::write_file(dir / "src/app.conf", "x = 1\n");
        json c{{"backup_dir", backups.string()}};
        if (with_files) c["files"] = {{"paths", {(dir / "src").string()}}};
        c.update(extra);
        test::write_file(config, c.dump(2));
    }
    test::Outcome backup(std::vector<std::string> extra = {}, std::vector<std::string> env = {}) const {
        std::vector<std::string> args{"--config", config.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::backup(args, env);
    }
    test::Outcome dry_run(std::vector<std::string> env = {}) const {
        return backup({"--dry-run", "--json"}, env);
    }
};

std::string unique_name(const std::string& prefix) {
    static std::mt19937_64 rng{std::random_device{}()};
    return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(rng() % 1000000);
}

struct Pg {
    std::string host = test::required_env("NIGHTJAR_TEST_PGHOST");
    std::string port = test::required_env("NIGHTJAR_TEST_PGPORT");
    std::string user = test::required_env("NIGHTJAR_TEST_PGUSER");
    std::string password = test::required_env("NIGHTJAR_TEST_PGPASSWORD");
    std::string bindir = test::required_env("NIGHTJAR_TEST_PG_BINDIR");
    test::Outcome psql_raw(const std::string& db, const std::string& sql) const {
        return test::run({bindir + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p",
                          port, "-U", user, "-d", db, "-c", sql},
                         {"PGPASSWORD=" + password});
    }
    std::string psql(const std::string& db, const std::string& sql) const {
        auto r = psql_raw(db, sql);
        INFO("psql " << db << ": " << sql << "\n" << r.err);
        REQUIRE(r.code == 0);
        return r.out;
    }
};

// A database and a login role that exist for one test.
struct DbAndRole {
    const Pg& pg;
    std::string db = unique_name("preflight");
    std::string role = unique_name("reader");
    std::string password = "pw-" + unique_name("x");
    explicit DbAndRole(const Pg& p) : pg(p) {
        pg.psql("postgres", "CREATE DATABASE " + db);
        pg.psql("postgres", "CREATE ROLE " + role + " LOGIN PASSWORD '" + password + "'");
    }
    ~DbAndRole() {
        pg.psql_raw("postgres", "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
        pg.psql_raw("postgres", "DROP ROLE IF EXISTS " + role);
    }
};

}  // namespace

TEST_CASE("backup dry run: a Redis user that may neither SYNC nor BGSAVE fails it as the real run fails",
          "[integration][preflight][redis]") {
    const std::string password = test::required_env("NIGHTJAR_TEST_REDIS_ACL_PASSWORD");
    const int acl = std::stoi(test::required_env("NIGHTJAR_TEST_REDIS_ACL_PORT"));
    const std::vector<std::string> env{"REDISCLI_AUTH=" + password};
    SECTION("user weak (PING and INFO only): the dry run names the missing permissions") {
        Preflight p(json{{"redis", {{"port", acl}, {"user", "weak"}}}}, false);
        auto d = p.dry_run(env);
        INFO(d.err);
        CHECK(d.code == 3);
        CHECK_THAT(d.err, Catch::Contains("+replconf +sync +psync") && Catch::Contains("BGSAVE") &&
                              Catch::Contains("no permissions"));
        CHECK_FALSE(json::parse(d.out)["ok"].get<bool>());
        CHECK_FALSE(fs::exists(p.backups));
        auto real = p.backup({}, env);
        CHECK(real.code == 3);  // the prediction holds
    }
    SECTION("user nosync with fallback none: the dry run fails on SYNC") {
        Preflight p(json{{"redis", {{"port", acl}, {"user", "nosync"}, {"fallback", "none"}}}}, false);
        auto d = p.dry_run(env);
        INFO(d.err);
        CHECK(d.code == 3);
        CHECK_THAT(d.err, Catch::Contains("refused") && Catch::Contains("/redis/fallback"));
        CHECK(p.backup({}, env).code == 3);
    }
    SECTION("user nosync with the BGSAVE fallback: the dry run passes and says the run will fall back") {
        Preflight p(json{{"redis", {{"port", acl}, {"user", "nosync"}}}}, false);
        auto d = p.dry_run(env);
        INFO(d.err);
        CHECK(d.code == 0);
        CHECK_THAT(d.err, Catch::Contains("fall back to BGSAVE"));
        auto real = p.backup({}, env);
        INFO(real.err);
        CHECK(real.code == 0);
    }
}

TEST_CASE("backup dry run: a hook whose program is not found or not executable fails it",
          "[integration][preflight][hooks]") {
    test::TempDir tools;
    fs::path plain = tools / "not-executable.sh";
    test::write_file(plain, "#!/bin/sh\nexit 0\n");
    ::chmod(plain.c_str(), 0644);
    SECTION("not on PATH") {
        Preflight p(
            json{{"hooks", {{"before_backup", {{{"argv", {"nightjar-no-such-hook-program", "x"}}}}}}}});
        auto d = p.dry_run();
        INFO(d.err);
        CHECK(d.code == 2);
        CHECK_THAT(d.err, Catch::Contains(
                              "hook before_backup[0]: nightjar-no-such-hook-program: not found on PATH"));
        CHECK_FALSE(json::parse(d.out)["ok"].get<bool>());
    }
    SECTION("an absolute path that does not exist") {
        Preflight p(json{{"hooks", {{"after_backup", {{{"argv", {(tools / "gone").string()}}}}}}}});
        auto d = p.dry_run();
        CHECK(d.code == 2);
        CHECK_THAT(d.err, Catch::Contains("hook after_backup[0]: " + (tools / "gone").string() +
                                          ": does not exist"));
    }
    SECTION("a file without the execute bit") {
        Preflight p(json{{"hooks", {{"on_error", {{{"argv", {plain.string()}}}}}}}});
        auto d = p.dry_run();
        CHECK(d.code == 2);
        CHECK_THAT(d.err, Catch::Contains(plain.string() + ": is not an executable file"));
    }
    SECTION("a program found on PATH passes") {
        Preflight p(json{{"hooks", {{"before_backup", {{{"argv", {"true"}}}}}}}});
        auto d = p.dry_run();
        INFO(d.err);
        CHECK(d.code == 0);
    }
}

TEST_CASE("backup dry run: large objects the role cannot read fail it as pg_dump would",
          "[integration][preflight][postgres]") {
    Pg pg;
    DbAndRole t(pg);
    pg.psql(t.db, "SELECT lo_from_bytea(0, 'secret'::bytea)");  // owned by the superuser
    test::TempDir dir;
    json c{{"backup_dir", (dir / "backups").string()},
           {"postgres",
            {{"host", pg.host}, {"port", std::stoi(pg.port)}, {"user", t.role}, {"databases", {t.db}}}}};
    test::write_file(dir / "nightjar.json", c.dump(2));
    const std::vector<std::string> env{"PGPASSWORD=" + t.password};
    auto d = test::backup({"--config", (dir / "nightjar.json").string(), "--dry-run"}, env);
    INFO(d.err);
    CHECK(d.code == 3);
    CHECK_THAT(d.err, Catch::Contains("1 large object(s) the role cannot read") && Catch::Contains(t.db));
    auto real = test::backup({"--config", (dir / "nightjar.json").string()}, env);
    CHECK(real.code == 3);  // the prediction holds
    CHECK_THAT(real.err, Catch::Contains("large object"));

    pg.psql(t.db, "SELECT lo_from_bytea(0, 'public'::bytea)");
    std::string oids = pg.psql(t.db, "SELECT string_agg(oid::text, ',') FROM pg_largeobject_metadata");
    while (!oids.empty() && oids.back() == '\n') oids.pop_back();
    std::string first = oids.substr(0, oids.find(','));
    pg.psql(t.db, "GRANT SELECT ON LARGE OBJECT " + first + " TO " + t.role);
    auto partly = test::backup({"--config", (dir / "nightjar.json").string(), "--dry-run"}, env);
    CHECK(partly.code == 3);
    CHECK_THAT(partly.err, Catch::Contains("1 large object(s) the role cannot read"));
    pg.psql(t.db, "ALTER LARGE OBJECT " + oids.substr(oids.find(',') + 1) + " OWNER TO " + t.role);
    auto ok = test::backup({"--config", (dir / "nightjar.json").string(), "--dry-run"}, env);
    INFO(ok.err);
    CHECK(ok.code == 0);
}

TEST_CASE("backup dry run: a missing metrics directory fails it and the ping is reported but never sent",
          "[integration][preflight][monitoring]") {
    test::HttpRecorder recorder;
    const std::string url = "http://127.0.0.1:" + std::to_string(recorder.port) + "/ping/abc";
    SECTION("metrics directory missing") {
        test::TempDir d;
        Preflight p(
            json{{"monitoring", {{"metrics_file", (d / "nope/nightjar.prom").string()}, {"ping_url", url}}}});
        auto r = p.dry_run();
        INFO(r.err);
        CHECK(r.code == 2);
        CHECK_THAT(r.err, Catch::Contains("/monitoring/metrics_file: the directory " + (d / "nope").string() +
                                          " does not exist"));
        CHECK_FALSE(json::parse(r.out)["ok"].get<bool>());
    }
    SECTION("metrics 'directory' is a file") {
        test::TempDir d;
        test::write_file(d / "file", "x");
        Preflight p(json{{"monitoring", {{"metrics_file", (d / "file/nightjar.prom").string()}}}});
        auto r = p.dry_run();
        CHECK(r.code == 2);
        CHECK_THAT(r.err, Catch::Contains("/monitoring/metrics_file"));
    }
    SECTION("everything in place: passes, the ping is only reported") {
        test::TempDir d;
        Preflight p(
            json{{"monitoring", {{"metrics_file", (d / "nightjar.prom").string()}, {"ping_url", url}}}});
        auto r = p.dry_run();
        INFO(r.err);
        CHECK(r.code == 0);
        CHECK_THAT(r.err,
                   Catch::Contains("would ping " + url + "/start") && Catch::Contains("sends nothing"));
        CHECK_FALSE(fs::exists(d / "nightjar.prom"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CHECK(recorder.log().empty());
}

TEST_CASE(
    "the --json summary and the /fail ping carry the error text of each failed component and of the run",
    "[integration][operator][monitoring]") {
    test::HttpRecorder recorder;
    const std::string url = "http://127.0.0.1:" + std::to_string(recorder.port) + "/ping/abc";
    SECTION("partial: one component fails") {
        // Nothing listens on port 1: the Redis component fails, the files component succeeds.
        Preflight p(
            json{{"redis", {{"port", 1}, {"connect_timeout", 2}}}, {"monitoring", {{"ping_url", url}}}});
        auto r = p.backup({"--json"});
        INFO(r.err);
        CHECK(r.code == 6);
        json j = json::parse(r.out);
        json redis_row;
        for (const auto& c : j["components"])
            if (c["kind"] == "redis") redis_row = c;
        CHECK(redis_row["status"] == "failed");
        CHECK_THAT(redis_row["error"].get<std::string>(), Catch::Contains("127.0.0.1:1: cannot connect"));
        CHECK_THAT(j["error"].get<std::string>(),
                   Catch::Contains("published as partial") && Catch::Contains("redis: redis 127.0.0.1:1"));
        std::string log = recorder.log();
        CHECK_THAT(log, Catch::Contains("/ping/abc/fail") && Catch::Contains("cannot connect"));
    }
    SECTION("failed: every component fails; the summary is still printed") {
        Preflight p(json{{"monitoring", {{"ping_url", url}}}});
        fs::remove_all(p.dir / "src");
        auto r = p.backup({"--json"});
        INFO(r.err);
        CHECK(r.code == 3);
        json j = json::parse(r.out);
        CHECK(j["exit_code"] == 3);
        REQUIRE(j["components"].size() == 1);
        CHECK(j["components"][0]["status"] == "failed");
        CHECK_FALSE(j["components"][0]["error"].get<std::string>().empty());
        CHECK(j["error"] == j["components"][0]["error"]);
        CHECK_THAT(recorder.log(), Catch::Contains("/ping/abc/fail") && Catch::Contains("\\\"error\\\""));
    }
}

TEST_CASE("both binaries: --version prints the version and git commit and the library versions",
          "[integration][operator][version]") {
    for (bool backup : {true, false}) {
        auto r = backup ? test::backup({"--version"}) : test::restore({"--version"});
        INFO(r.out << r.err);
        CHECK(r.code == 0);
        std::string program = backup ? "nightjar-backup" : "nightjar-restore";
        CHECK(std::regex_search(r.out, std::regex("^" + program + " " + NIGHTJAR_VERSION +
                                                  R"( \(commit ([0-9a-f]{12}|unknown)\)\n)")));
        for (const char* lib : {"\nlibpq 1", "\nhiredis ", "\nlibarchive 3", "\nlibzstd 1", "\nOpenSSL "})
            CHECK_THAT(r.out, Catch::Contains(lib));
    }
}

TEST_CASE("a configured passfile that is missing or group readable is named instead of no password supplied",
          "[integration][operator][postgres]") {
    Pg pg;
    test::TempDir dir;
    const fs::path passfile = dir / "pgpass";
    json c{{"backup_dir", (dir / "backups").string()},
           {"files", {{"paths", {(dir / "nightjar.json").string()}}}},
           {"postgres",
            {{"host", pg.host},
             {"port", std::stoi(pg.port)},
             {"user", pg.user},
             {"databases", {"postgres"}},
             {"passfile", passfile.string()}}}};
    test::write_file(dir / "nightjar.json", c.dump(2));
    const std::vector<std::string> args{"--config", (dir / "nightjar.json").string()};
    SECTION("missing") {
        auto d = test::backup({args[0], args[1], "--dry-run"});
        CHECK(d.code == 3);
        CHECK_THAT(d.err, Catch::Contains("the passfile " + passfile.string() +
                                          " (postgres.passfile) does not exist"));
        auto r = test::backup(args);
        CHECK(r.code == 6);  // the files component is published, postgres failed
        CHECK_THAT(r.err, Catch::Contains(passfile.string() + " (postgres.passfile) does not exist"));
        CHECK_THAT(r.err, !Catch::Contains("no password supplied"));
    }
    SECTION("group readable") {
        test::write_file(passfile, pg.host + ":" + pg.port + ":*:" + pg.user + ":" + pg.password + "\n");
        ::chmod(passfile.c_str(), 0640);
        auto r = test::backup(args);
        CHECK(r.code == 6);
        CHECK_THAT(r.err,
                   Catch::Contains("has mode 0640") && Catch::Contains("chmod 0600 " + passfile.string()));
        CHECK_THAT(r.err, !Catch::Contains("no password supplied"));
        ::chmod(passfile.c_str(), 0600);
        auto ok = test::backup(args);
        INFO(ok.err);
        CHECK(ok.code == 0);
    }
}

namespace {

// Every directory and file under `root` (root included) with its permission bits.
std::vector<std::pair<std::string, unsigned>> modes_under(const fs::path& root) {
    std::vector<std::pair<std::string, unsigned>> out;
    struct stat st {};
    ::lstat(root.c_str(), &st);
    out.emplace_back(root.string() + "/", st.st_mode & 07777);
    for (const auto& e : fs::recursive_directory_iterator(root)) {
        ::lstat(e.path().c_str(), &st);
        out.emplace_back(e.path().string() + (S_ISDIR(st.st_mode) ? "/" : ""), st.st_mode & 07777);
    }
    return out;
}

struct UmaskScope {
    mode_t old;
    explicit UmaskScope(mode_t m) : old(::umask(m)) {}
    ~UmaskScope() { ::umask(old); }
};

}  // namespace

TEST_CASE(
    "the backup dir and staging and artifact dirs are 0700 and files 0600 whatever the umask and "
    "repository.mode group gives 0750/0640",
    "[integration][operator][permissions]") {
    for (mode_t mask : {mode_t(0000), mode_t(0077), mode_t(0022)}) {
        for (std::string mode : {"private", "group"}) {
            INFO("umask " << mask << ", repository.mode " << mode);
            UmaskScope scope(mask);
            Preflight p(json{{"repository", {{"mode", mode}}}});
            // A backup dir two levels below an existing one: both created by nightjar.
            json c = json::parse(test::read_file(p.config));
            c["backup_dir"] = (p.dir / "nested/backups").string();
            test::write_file(p.config, c.dump(2));
            auto r = p.backup();
            INFO(r.err);
            REQUIRE(r.code == 0);
            const unsigned dir_mode = mode == "group" ? 0750 : 0700;
            const unsigned file_mode = mode == "group" ? 0640 : 0600;
            auto entries = modes_under(p.dir / "nested");
            CHECK(entries.size() >= 6);  // nested/, backups/, lock, <id>/, artifact, manifest
            for (const auto& [path, bits] : entries) {
                INFO(path);
                CHECK(bits == (path.back() == '/' ? dir_mode : file_mode));
            }
        }
    }
}

TEST_CASE(
    "after_publish hooks run once the manifest is published and their failure exits 6 but never unpublishes",
    "[integration][operator][hooks]") {
    test::TempDir out;
    const fs::path trace = out / "trace";
    auto record = [&](const std::string& label) {
        return json{{"argv",
                     {"sh", "-c",
                      "printf '%s %s %s\\n' " + label +
                          " \"$NIGHTJAR_STATUS\" \"$(test -f \"$NIGHTJAR_MANIFEST\" && echo "
                          "manifest-exists || echo no-manifest)\" >> " +
                          trace.string()}}};
    };
    SECTION("runs after after_backup, with NIGHTJAR_MANIFEST existing") {
        Preflight p(json{
            {"hooks",
             {{"after_backup", {record("after_backup")}}, {"after_publish", {record("after_publish")}}}}});
        auto r = p.backup({"--json"});
        INFO(r.err);
        CHECK(r.code == 0);
        CHECK(test::read_file(trace) ==
              "after_backup complete no-manifest\nafter_publish complete manifest-exists\n");
        json j = json::parse(r.out);
        CHECK(j["hooks"].size() == 2);
        CHECK(j["hooks"][1]["stage"] == "after_publish");
    }
    SECTION("a failing after_publish hook: exit 6, the backup stays published and listed") {
        Preflight p(json{
            {"hooks", {{"after_publish", {json{{"argv", {"sh", "-c", "echo copy failed >&2; exit 3"}}}}}}}});
        auto r = p.backup({"--json"});
        INFO(r.err);
        CHECK(r.code == 6);
        CHECK_THAT(r.err, Catch::Contains("hook after_publish: sh failed with exit code 3") &&
                              Catch::Contains("is published and stays"));
        json j = json::parse(r.out);
        CHECK(j["status"] == "complete");
        CHECK_THAT(j["error"].get<std::string>(), Catch::Contains("after_publish"));
        auto manifests = test::published_manifests(p.backups);
        REQUIRE(manifests.size() == 1);
        auto listed = test::restore({"--list", "--json", "--backup-dir", p.backups.string()});
        CHECK(json::parse(listed.out).size() == 1);
    }
}

namespace {

std::vector<std::string> lines_with(const std::string& text, const std::string& fragment) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.find(fragment) != std::string::npos) out.push_back(line);
    return out;
}

// JSON pointers of every null under `j`.
void nulls_in(const json& j, const std::string& at, std::vector<std::string>& out) {
    if (j.is_null()) out.push_back(at);
    if (j.is_object())
        for (const auto& [k, v] : j.items()) nulls_in(v, at + "/" + k, out);
    if (j.is_array())
        for (std::size_t i = 0; i < j.size(); ++i) nulls_in(j[i], at + "/" + std::to_string(i), out);
}

}  // namespace

TEST_CASE("Kafka Connect down: one error line with the connector count and retries and messages said once",
          "[integration][operator][cdc]") {
    std::vector<std::string> names;
    for (int i = 0; i < 6; ++i) names.push_back("conn-" + std::to_string(i));
    std::optional<test::KafkaConnectEmulator> emu;
    emu.emplace(test::EmulatorOptions{.connectors = names, .tasks = 1, .transition_delay_s = 0.05});
    const std::string url = emu->url();
    Preflight p(json{{"cdc",
                      {{"kafka_connect", {{"url", url}, {"connectors", names}, {"request_timeout_s", 1}}},
                       {"pause_timeout_s", 5},
                       {"resume_timeout_s", 2},
                       {"retry", {{"initial_backoff_s", 0.05}, {"max_backoff_s", 0.1}}}}}});
    auto killed = p.backup({}, {"NIGHTJAR_FAILPOINT=cdc:paused"});
    INFO(killed.err);
    REQUIRE(killed.code == 128 + SIGKILL);
    emu.reset();  // Kafka Connect is down now

    auto r = p.backup({"--resume-cdc"});
    INFO(r.err);
    CHECK(r.code == 8);
    auto summary_lines = lines_with(r.err, "connector(s) not resumed");
    REQUIRE(summary_lines.size() == 1);
    CHECK_THAT(summary_lines[0], Catch::Contains("6 connector(s) not resumed") && Catch::Contains("conn-5"));
    CHECK(lines_with(r.err, "attempt").size() <= names.size());  // at most the first failure of each
    CHECK(lines_with(r.err, "ERROR").size() == 2);               // the grouped line and the run's error
    CHECK_THAT(r.err, Catch::Contains("6 connectors (conn-0 (" + url + ")"));

    auto d = p.backup({"--dry-run"});
    CHECK(d.code == 3);
    CHECK(lines_with(d.err, "does not answer").size() == 1);
    CHECK_THAT(d.err, !Catch::Contains("did not answer: Kafka Connect did not answer") &&
                          !Catch::Contains("does not answer: Kafka Connect did not answer"));
}

TEST_CASE(
    "a backup with --skip-cdc warns only without -q and JSON summaries hold empty arrays and never null",
    "[integration][operator][cdc]") {
    test::KafkaConnectEmulator emu(
        test::EmulatorOptions{.connectors = {"c1"}, .tasks = 1, .transition_delay_s = 0.05});
    Preflight p(json{{"cdc", {{"kafka_connect", {{"url", emu.url()}, {"connectors", {"c1"}}}}}}});
    auto loud = p.backup({"--skip-cdc"});
    INFO(loud.err);
    CHECK(loud.code == 0);
    CHECK_THAT(loud.err, Catch::Contains("WARN cdc: --skip-cdc"));
    auto quiet = p.backup({"--skip-cdc", "-q", "--json"});
    INFO(quiet.err);
    CHECK(quiet.code == 0);
    CHECK_THAT(quiet.err, !Catch::Contains("--skip-cdc"));
    for (const auto& out : {quiet.out, p.backup({"--json"}).out, p.backup({"--dry-run", "--json"}).out,
                            p.backup({"--prune-only", "--dry-run", "--json"}).out}) {
        std::vector<std::string> nulls;
        nulls_in(json::parse(out), "", nulls);
        INFO(out);
        CHECK(nulls.empty());
    }
}
