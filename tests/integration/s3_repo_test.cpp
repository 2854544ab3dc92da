// The backup and restore runs on an S3 repository, through the real binaries against the real Ceph radosgw:
// every component backed up into the store and restored from it with no local copy, listing and dry runs
// there, pruning remote backups, a run killed with SIGKILL mid-upload (nothing half-published, the next run
// aborts what it left), and copies of a local backup to the store (a failing copy makes the run partial).
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <regex>
#include <thread>

#include "nightjar/core/clock.hpp"
#include "nightjar/io/process.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/s3/s3_storage.hpp"
#include "nightjar/run/config.hpp"
#include "nightjar/run/repository_config.hpp"
#include "support/commands.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string unique(const std::string& what) {
    static std::mt19937_64 rng{std::random_device{}()};
    return what + "-" + std::to_string(::getpid()) + "-" + std::to_string(rng() % 1000000000);
}

std::string secret() {
    std::string s = test::read_file(test::required_env("NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE"));
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
}

// An `encryption` section with a fresh age key pair from Debian's age-keygen (identity in dir/key.txt).
json age_encryption(const fs::path& dir) {
    const fs::path identity = dir / "key.txt";
    auto k = test::run({"age-keygen", "-o", identity.string()});
    INFO(k.err);
    REQUIRE(k.code == 0);
    std::smatch m;
    const std::string key_text = test::read_file(identity);
    REQUIRE(std::regex_search(key_text, m, std::regex("public key: (age1[0-9a-z]+)")));
    return {{"recipients", {m[1].str()}}, {"identity_file", identity.string()}};
}

// The repository section of a config on the test bucket under `prefix`.
json s3_section(const std::string& prefix, const std::string& endpoint = "") {
    return {{"type", "s3"},
            {"endpoint", endpoint.empty() ? test::required_env("NIGHTJAR_TEST_S3_ENDPOINT") : endpoint},
            {"region", test::required_env("NIGHTJAR_TEST_S3_REGION")},
            {"bucket", test::required_env("NIGHTJAR_TEST_S3_BUCKET")},
            {"prefix", prefix},
            {"access_key_id", test::required_env("NIGHTJAR_TEST_S3_ACCESS_KEY_ID")},
            {"secret_access_key_file", test::required_env("NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE")},
            {"part_size_mib", 5},
            {"parallel_parts", 2}};
}

// The standard environment instead of a config: what `--backup-dir s3://...` reads.
std::vector<std::string> s3_env() {
    return {"NIGHTJAR_S3_ENDPOINT=" + test::required_env("NIGHTJAR_TEST_S3_ENDPOINT"),
            "AWS_REGION=" + test::required_env("NIGHTJAR_TEST_S3_REGION"),
            "AWS_ACCESS_KEY_ID=" + test::required_env("NIGHTJAR_TEST_S3_ACCESS_KEY_ID"),
            "AWS_SECRET_ACCESS_KEY=" + secret()};
}

std::string location(const std::string& prefix) {
    return "s3://" + test::required_env("NIGHTJAR_TEST_S3_BUCKET") + "/" + prefix;
}

// The store under `prefix`, opened as the runs open it.
std::unique_ptr<Storage> store(const std::string& prefix) {
    RepositoryConfig c;
    c.type = "s3";
    c.s3 = {.endpoint = test::required_env("NIGHTJAR_TEST_S3_ENDPOINT"),
            .region = test::required_env("NIGHTJAR_TEST_S3_REGION"),
            .bucket = test::required_env("NIGHTJAR_TEST_S3_BUCKET"),
            .prefix = prefix,
            .access_key_id = test::required_env("NIGHTJAR_TEST_S3_ACCESS_KEY_ID"),
            .secret_access_key_file = test::required_env("NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE")};
    return open_repository(location(prefix), c);
}

std::vector<std::string> keys(const Storage& s, const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& e : s.list_prefix(prefix)) out.push_back(e.name);
    return out;
}

std::string pseudo_random(std::size_t n, std::uint64_t seed) {
    std::string out(n, '\0');
    std::mt19937_64 rng(seed);
    for (auto& c : out) c = static_cast<char>(rng() >> 13);
    return out;
}

struct Pg {
    std::string host = test::required_env("NIGHTJAR_TEST_PGHOST");
    std::string port = test::required_env("NIGHTJAR_TEST_PGPORT");
    std::string user = test::required_env("NIGHTJAR_TEST_PGUSER");
    std::string password = test::required_env("NIGHTJAR_TEST_PGPASSWORD");
    std::string bindir = test::required_env("NIGHTJAR_TEST_PG_BINDIR");
    std::vector<std::string> drop;
    std::string psql(const std::string& db, const std::string& sql) const {
        auto r = test::run({bindir + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host,
                            "-p", port, "-U", user, "-d", db, "-c", sql},
                           {"PGPASSWORD=" + password});
        INFO("psql " << db << ": " << sql << "\n" << r.err);
        REQUIRE(r.code == 0);
        std::string out = r.out;
        while (!out.empty() && out.back() == '\n') out.pop_back();
        return out;
    }
    ~Pg() {
        for (const auto& db : drop)
            test::run({bindir + "/psql", "-X", "-q", "-h", host, "-p", port, "-U", user, "-d", "postgres",
                       "-c", "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)"},
                      {"PGPASSWORD=" + password});
    }
};

struct FaultProxy {
    test::TempDir dir;
    std::optional<Subprocess> proc;
    int port = 0;
    FaultProxy(const std::string& plan, const std::string& match) {
        std::string target = test::required_env("NIGHTJAR_TEST_S3_ENDPOINT");
        target = target.substr(target.find("://") + 3);
        SpawnOptions o;
        o.capture_stderr = true;
        proc.emplace(
            Subprocess::spawn({"python3", (test::source_dir() / "tests/support/s3_fault_proxy.py").string(),
                               "--target", target, "--plan", plan, "--match", match, "--log",
                               (dir / "log").string(), "--port-file", (dir / "port").string()},
                              o));
        for (int i = 0; i < 400 && !fs::exists(dir / "port"); ++i) std::this_thread::sleep_for(25ms);
        REQUIRE(fs::exists(dir / "port"));
        port = std::stoi(test::read_file(dir / "port"));
    }
    ~FaultProxy() {
        proc->kill(SIGTERM);
        proc->wait();
    }
    std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port); }
    int count(const std::string& fault) const {
        if (!fs::exists(dir / "log")) return 0;
        std::string log = test::read_file(dir / "log");
        int n = 0;
        for (std::size_t p = 0; (p = log.find(fault + " ", p)) != std::string::npos; ++p)
            if (p == 0 || log[p - 1] == '\n') ++n;
        return n;
    }
};

}  // namespace

TEST_CASE("s3 repo: files, postgres and redis backed up into the store, listed, proven and restored from it",
          "[integration][s3]") {
    const std::string redis_port = test::required_env("NIGHTJAR_TEST_REDIS_PORT");
    Pg pg;
    const std::string db = "nj_s3_" + std::to_string(::getpid());
    const std::string copy = db + "_copy";
    pg.drop = {db, copy};
    pg.psql("postgres", "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    pg.psql("postgres", "CREATE DATABASE " + db);
    pg.psql(db,
            "CREATE TABLE t(id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM "
            "generate_series(1, 5000) g");
    test::TempDir dir;
    const std::string prefix = unique("repo");
    test::write_file(dir / "src/app.conf", "x = 1\n");
    test::write_file(dir / "src/big.bin", pseudo_random(7u << 20, 3));  // more than one 5 MiB part
    json cfg{{"repository", s3_section(prefix)},
             {"files", {{"paths", {(dir / "src").string()}}}},
             {"redis", {{"host", "127.0.0.1"}, {"port", std::stoi(redis_port)}}},
             {"postgres",
              {{"host", pg.host}, {"port", std::stoi(pg.port)}, {"user", pg.user}, {"databases", {db}}}}};
    const fs::path config = dir / "nightjar.json";
    test::write_file(config, cfg.dump(2));

    auto b = test::backup({"--config", config.string(), "--json"}, {"PGPASSWORD=" + pg.password});
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK_THAT(b.err, Catch::Contains("into " + location(prefix)));
    CHECK(b.err.find(secret()) == std::string::npos);
    CHECK(b.out.find(secret()) == std::string::npos);
    const std::string id = json::parse(b.out).at("id");

    // Published in the store, nothing on disk: no manifest anywhere under the test dir.
    auto s = store(prefix);
    CHECK(s->stat("manifest_" + id + ".json"));
    CHECK(keys(*s, "runs/").empty());  // the run's journal is gone with the run
    for (const auto& e : fs::recursive_directory_iterator(dir.path()))
        CHECK(e.path().filename().string().rfind("manifest_", 0) == std::string::npos);

    auto list = test::restore({"--list", "--config", config.string(), "--json"});
    INFO(list.err);
    REQUIRE(list.code == 0);
    json rows = json::parse(list.out);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["id"] == id);
    CHECK(rows[0]["status"] == "complete");
    CHECK(rows[0]["components"] == "files,postgres,redis");

    // The same through --backup-dir s3://... and the standard environment, no config.
    auto by_url = test::restore({"--list", "--backup-dir", location(prefix)}, s3_env());
    INFO(by_url.err);
    CHECK(by_url.code == 0);
    CHECK_THAT(by_url.out, Catch::Contains(id));

    auto dry = test::restore(
        {"latest", "--config", config.string(), "--dry-run", "--target-dir", (dir / "restored").string(),
         "--redis-rdb-path", (dir / "dump.rdb").string(), "--db-name", db + "=" + copy},
        {"PGPASSWORD=" + pg.password});
    INFO(dry.err);
    CHECK(dry.code == 0);

    const fs::path target = dir / "restored";
    auto r = test::restore({"latest", "--config", config.string(), "--target-dir", target.string(),
                            "--redis-rdb-path", (dir / "dump.rdb").string(), "--db-name", db + "=" + copy},
                           {"PGPASSWORD=" + pg.password});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(test::read_file(target / (dir / "src/app.conf").relative_path()) == "x = 1\n");
    CHECK(test::read_file(target / (dir / "src/big.bin").relative_path()) == pseudo_random(7u << 20, 3));
    CHECK(test::read_file(dir / "dump.rdb").rfind("REDIS", 0) == 0);
    CHECK(pg.psql(copy, "SELECT count(*) || ':' || md5(string_agg(v, ',' ORDER BY id)) FROM t") ==
          pg.psql(db, "SELECT count(*) || ':' || md5(string_agg(v, ',' ORDER BY id)) FROM t"));

    // A drill straight from the store (issue 17): throwaway servers, the record written back into the store,
    // and --list reads it from there. The state dir directly under /tmp for the postgres service user.
    const fs::path state = fs::path("/tmp") / ("nightjar-s3-drill-" + std::to_string(::getpid()));
    auto drill = test::restore({"drill", "latest", "--config", config.string(), "--json"},
                               {"NIGHTJAR_DRILL_DIR=" + state.string()});
    std::error_code ec;
    fs::remove_all(state, ec);
    INFO(drill.err);
    REQUIRE(drill.code == 0);
    json report = json::parse(drill.out);
    CHECK(report["ok"] == true);
    CHECK(report["backup_id"] == id);
    CHECK(report["components"].size() == 3);
    const std::string record = report["record"];
    CHECK(record.rfind("drills/" + id + "/", 0) == 0);
    CHECK(s->stat(record));
    auto drilled = test::restore({"--list", "--config", config.string(), "--json"});
    INFO(drilled.err);
    REQUIRE(drilled.code == 0);
    json drilled_rows = json::parse(drilled.out);
    REQUIRE(drilled_rows.size() == 1);
    REQUIRE(drilled_rows[0].contains("last_drill"));
    CHECK(drilled_rows[0]["last_drill"]["passed"] == true);

    s->remove_tree(id);  // every artifact gone, the manifest left: the dry run must name them missing
    auto gone = test::restore(
        {"latest", "--config", config.string(), "--dry-run", "--target-dir", (dir / "restored").string(),
         "--redis-rdb-path", (dir / "dump.rdb").string(), "--db-name", db + "=" + copy},
        {"PGPASSWORD=" + pg.password});
    CHECK(gone.code == 4);
}

TEST_CASE("s3 repo: prune applies the retention to the remote backups", "[integration][s3]") {
    test::TempDir dir;
    const std::string prefix = unique("prune");
    test::write_file(dir / "src/a.conf", "a\n");
    json cfg{{"repository", s3_section(prefix)}, {"files", {{"paths", {(dir / "src").string()}}}}};
    test::write_file(dir / "nightjar.json", cfg.dump());
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        auto b = test::backup({"--config", (dir / "nightjar.json").string(), "--json"});
        INFO(b.err);
        REQUIRE(b.code == 0);
        ids.push_back(json::parse(b.out).at("id"));
    }
    auto p = test::backup(
        {"--config", (dir / "nightjar.json").string(), "--prune-only", "--keep-last", "1", "--json"});
    INFO(p.err);
    REQUIRE(p.code == 0);
    CHECK(json::parse(p.out).at("deleted") == 2);
    auto s = store(prefix);
    CHECK(keys(*s, "manifest_") == std::vector<std::string>{"manifest_" + ids[2] + ".json"});
    CHECK(keys(*s, ids[0] + "/").empty());
    CHECK(keys(*s, ids[1] + "/").empty());
    CHECK_FALSE(keys(*s, ids[2] + "/").empty());
}

TEST_CASE("s3 repo: a run killed mid-upload publishes nothing and the next run aborts what it left",
          "[integration][s3]") {
    test::TempDir dir;
    const std::string prefix = unique("crash");
    test::write_file(dir / "src/big.bin", pseudo_random(12u << 20, 5));
    json cfg{{"repository", s3_section(prefix)}, {"files", {{"paths", {(dir / "src").string()}}}}};
    test::write_file(dir / "nightjar.json", cfg.dump());
    auto killed =
        test::backup({"--config", (dir / "nightjar.json").string()}, {"NIGHTJAR_FAILPOINT=s3:part-uploaded"});
    INFO(killed.err);
    REQUIRE(killed.code == 128 + SIGKILL);

    auto s = store(prefix);
    auto* s3 = dynamic_cast<s3::S3Storage*>(s.get());
    REQUIRE(s3);
    CHECK(keys(*s, "manifest_").empty());
    REQUIRE(keys(*s, "runs/").size() == 1);
    CHECK_FALSE(s3->client().list_multipart_uploads(s3->bucket(), s3->prefix()).empty());
    auto list = test::restore({"--list", "--config", (dir / "nightjar.json").string(), "--json"});
    CHECK(list.code == 0);
    CHECK(json::parse(list.out).empty());

    auto next = test::backup({"--config", (dir / "nightjar.json").string(), "--json"});
    INFO(next.err);
    REQUIRE(next.code == 0);
    CHECK_THAT(next.err, Catch::Contains("was interrupted: aborted 1 unfinished upload(s)"));
    CHECK(s3->client().list_multipart_uploads(s3->bucket(), s3->prefix()).empty());
    CHECK(keys(*s, "runs/").empty());
    const std::string id = json::parse(next.out).at("id");
    CHECK(keys(*s, "manifest_") == std::vector<std::string>{"manifest_" + id + ".json"});
    for (const auto& k : keys(*s, "")) CHECK((k.rfind(id, 0) == 0 || k.rfind("manifest_" + id, 0) == 0));
}

TEST_CASE("s3 repo: the journal a killed run left under this second's id does not stop the next run",
          "[integration][s3]") {
    test::TempDir dir;
    const std::string prefix = unique("same-second");
    test::write_file(dir / "src/a.conf", "a = 1\n");
    json cfg{{"repository", s3_section(prefix)}, {"files", {{"paths", {(dir / "src").string()}}}}};
    test::write_file(dir / "nightjar.json", cfg.dump());
    // A pid that is gone, and journals of this host under the ids of the next few seconds: whatever second
    // the run starts in, a killed run of that same second left its journal there.
    Subprocess child = Subprocess::spawn({"true"});
    const std::int64_t dead_pid = child.pid();
    child.wait();
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    auto s = store(prefix);
    const std::int64_t now = unix_now();
    for (std::int64_t t = now; t < now + 6; ++t) {
        auto w = s->open_write("runs/" + backup_id_for(t) + ".json", {.create_only = true});
        w->write(
            io::as_bytes(json{{"host", host}, {"pid", dead_pid}, {"backup_id", backup_id_for(t)}}.dump()));
        w->finish();
    }
    auto b = test::backup({"--config", (dir / "nightjar.json").string(), "--json"});
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK_THAT(b.err, Catch::Contains("was interrupted"));
    CHECK(keys(*s, "runs/").empty());
    const std::string id = json::parse(b.out).at("id");
    CHECK(keys(*s, "manifest_") == std::vector<std::string>{"manifest_" + id + ".json"});
}

TEST_CASE("s3 repo: an encrypted run killed around its publish: the next run keeps what was published",
          "[integration][s3][encryption]") {
    test::TempDir dir;
    const std::string prefix = unique("crash-enc");
    test::write_file(dir / "src/a.conf", "a = 1\n");
    json cfg{{"repository", s3_section(prefix)},
             {"files", {{"paths", {(dir / "src").string()}}}},
             {"encryption", age_encryption(dir.path())}};
    test::write_file(dir / "nightjar.json", cfg.dump());
    const std::string config = (dir / "nightjar.json").string();
    auto s = store(prefix);

    // Killed after its signed index (the commit record) was written: published, so the next run keeps it.
    auto after = test::backup({"--config", config}, {"NIGHTJAR_FAILPOINT=publish:after-manifest"});
    INFO(after.err);
    REQUIRE(after.code == 128 + SIGKILL);
    const auto published = keys(*s, "index_");
    REQUIRE(published.size() == 1);
    const std::string kept = published[0].substr(6, published[0].size() - 6 - 5);
    const auto kept_objects = keys(*s, kept + "/");
    REQUIRE_FALSE(kept_objects.empty());

    // Killed between its encrypted manifest and its index: not published, so the next run removes it all.
    auto before = test::backup({"--config", config}, {"NIGHTJAR_FAILPOINT=publish:before-index"});
    INFO(before.err);
    REQUIRE(before.code == 128 + SIGKILL);
    // That run began by healing the first one's journal: published, so its artifacts stay.
    CHECK_THAT(before.err, Catch::Contains("its manifest was published, so it stays"));
    CHECK(keys(*s, kept + "/") == kept_objects);
    REQUIRE(keys(*s, "manifest_").size() == 2);  // both encrypted manifests; one index

    auto next = test::backup({"--config", config, "--json"});
    INFO(next.err);
    REQUIRE(next.code == 0);
    CHECK_THAT(next.err, Catch::Contains("unpublished object(s)"));
    const std::string id = json::parse(next.out).at("id");
    CHECK(keys(*s, kept + "/") == kept_objects);
    CHECK(keys(*s, "index_") == std::vector<std::string>{"index_" + kept + ".json", "index_" + id + ".json"});
    CHECK(keys(*s, "manifest_") ==
          std::vector<std::string>{"manifest_" + kept + ".json.age", "manifest_" + id + ".json.age"});
    CHECK(keys(*s, "runs/").empty());
}

TEST_CASE("s3 repo: copies ship the local backup to the store and a failing copy makes the run partial",
          "[integration][s3]") {
    test::TempDir dir;
    const std::string prefix = unique("copy");
    test::write_file(dir / "src/a.conf", "a = 1\n");
    test::write_file(dir / "src/big.bin", pseudo_random(6u << 20, 9));
    FaultProxy proxy("503,503,503", "");
    json copy = s3_section(prefix, proxy.endpoint());
    json cfg{{"backup_dir", (dir / "backups").string()},
             {"repository", {{"copies", {copy}}}},
             {"files", {{"paths", {(dir / "src").string()}}}}};
    test::write_file(dir / "nightjar.json", cfg.dump());
    auto b = test::backup({"--config", (dir / "nightjar.json").string(), "--json"});
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK(proxy.count("503") == 3);  // the copy went on through a 503 burst
    const std::string id = json::parse(b.out).at("id");
    CHECK(test::published_manifests(dir / "backups").size() == 1);
    CHECK(store(prefix)->stat("manifest_" + id + ".json"));
    // The copy restores on its own.
    auto dry = test::restore({"latest", "--backup-dir", location(prefix), "--dry-run"}, s3_env());
    INFO(dry.err);
    CHECK(dry.code == 0);
    const fs::path target = dir / "t";
    auto r = test::restore({"latest", "--backup-dir", location(prefix), "--target-dir", target.string()},
                           s3_env());
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK(test::read_file(target / (dir / "src/big.bin").relative_path()) == pseudo_random(6u << 20, 9));

    // A copy to a bucket that is not there: the local backup is published, the run is partial (exit 6).
    copy["bucket"] = "nightjar-no-such-bucket";
    cfg["repository"]["copies"] = {copy};
    test::write_file(dir / "nightjar.json", cfg.dump());
    auto failed = test::backup({"--config", (dir / "nightjar.json").string(), "--json"});
    INFO(failed.err);
    CHECK(failed.code == 6);
    CHECK_THAT(failed.err, Catch::Contains("copy to s3://nightjar-no-such-bucket/" + prefix) &&
                               Catch::Contains("was not copied") && Catch::Contains("NoSuchBucket"));
    CHECK_THAT(json::parse(failed.out).at("error").get<std::string>(),
               Catch::Contains("copy to s3://nightjar-no-such-bucket/"));
    CHECK(test::published_manifests(dir / "backups").size() == 2);
}

TEST_CASE("s3 repo: an encrypted backup is copied whole: encrypted manifest then the signed index last",
          "[integration][s3][encryption]") {
    test::TempDir dir;
    const std::string prefix = unique("copy-enc");
    test::write_file(dir / "src/a.conf", "secret_marker = nightjar-plaintext-canary\n");
    json cfg{{"backup_dir", (dir / "backups").string()},
             {"repository", {{"copies", {s3_section(prefix)}}}},
             {"files", {{"paths", {(dir / "src").string()}}}},
             {"encryption", age_encryption(dir.path())},
             {"retention", {{"keep_last", 1}}}};
    test::write_file(dir / "nightjar.json", cfg.dump());
    auto b = test::backup({"--config", (dir / "nightjar.json").string(), "--json"});
    INFO(b.err);
    REQUIRE(b.code == 0);
    const std::string id = json::parse(b.out).at("id");
    auto s = store(prefix);
    CHECK(s->stat("index_" + id + ".json"));
    CHECK(s->stat("manifest_" + id + ".json.age"));
    CHECK_FALSE(s->stat("manifest_" + id + ".json"));
    std::smatch signer;
    REQUIRE(std::regex_search(b.err, signer, std::regex("ed25519:[A-Za-z0-9+/]+")));
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    cfg["encryption"]["trusted_hosts"] = {{host, {signer[0].str()}}};
    test::write_file(dir / "nightjar.json", cfg.dump());

    // A second backup: the copy's retention (keep_last 1) removes the first one whole from the store.
    auto b2 = test::backup({"--config", (dir / "nightjar.json").string(), "--json"});
    INFO(b2.err);
    REQUIRE(b2.code == 0);
    const std::string id2 = json::parse(b2.out).at("id");
    CHECK(s->stat("index_" + id2 + ".json"));
    CHECK_FALSE(s->stat("index_" + id + ".json"));
    CHECK_FALSE(s->stat("manifest_" + id + ".json.age"));

    // The copy restores on its own, with the identity.
    const fs::path target = dir / "t";
    auto r = test::restore({"latest", "--backup-dir", location(prefix), "--config",
                            (dir / "nightjar.json").string(), "--target-dir", target.string()},
                           s3_env());
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK(test::read_file(target / (dir / "src/a.conf").relative_path()) ==
          "secret_marker = nightjar-plaintext-canary\n");
}

TEST_CASE("s3 repo: two hosts share a bucket and --list --all-hosts shows each with its last success",
          "[integration][s3]") {
    test::TempDir dir;
    const std::string a = unique("fleet-a"), b = unique("fleet-b");
    test::write_file(dir / "src/a.conf", "a\n");
    std::string id_a;
    for (const auto& prefix : {a, b}) {
        json cfg{{"repository", s3_section(prefix)}, {"files", {{"paths", {(dir / "src").string()}}}}};
        test::write_file(dir / "nightjar.json", cfg.dump());
        auto r = test::backup({"--config", (dir / "nightjar.json").string(), "--json"});
        INFO(r.err);
        REQUIRE(r.code == 0);
        if (id_a.empty()) id_a = json::parse(r.out).at("id");
    }
    auto list = test::restore({"--list", "--all-hosts", "--backup-dir", location(a), "--json"}, s3_env());
    INFO(list.err);
    REQUIRE(list.code == 0);
    json rows = json::parse(list.out);
    int seen = 0;
    for (const auto& row : rows) {
        if (row["host"] == a) {
            ++seen;
            CHECK(row["backups"] == 1);
            CHECK(row["last_success"] == id_a);
        }
        if (row["host"] == b) ++seen;
    }
    CHECK(seen == 2);
    auto text = test::restore({"--list", "--all-hosts", "--backup-dir", location(a)}, s3_env());
    CHECK_THAT(text.out, Catch::Contains("HOST") && Catch::Contains(a) && Catch::Contains(b));
    // A local backup dir has no hosts to list.
    auto local = test::restore({"--list", "--all-hosts", "--backup-dir", (dir / "x").string()});
    CHECK(local.code == 2);
    CHECK_THAT(local.err, Catch::Contains("is not an S3 repository"));
}

TEST_CASE("s3 repo: two runs at once on one host: one backs up, the other stops at the lease with exit 5",
          "[integration][s3]") {
    test::TempDir dir;
    const std::string prefix = unique("lease");
    test::write_file(dir / "src/a.conf", "a\n");
    // The first run sits in its before_backup hook, holding the lease, until the second has tried.
    json cfg{{"repository", s3_section(prefix)},
             {"files", {{"paths", {(dir / "src").string()}}}},
             {"hooks", {{"before_backup", {{{"argv", {"sleep", "4"}}}}}}}};
    test::write_file(dir / "first.json", cfg.dump());
    cfg.erase("hooks");
    test::write_file(dir / "second.json", cfg.dump());
    auto s = store(prefix);
    const std::string lease = "leases/" + local_host_name() + ".json";
    Subprocess first =
        Subprocess::spawn({NIGHTJAR_BACKUP_BIN, "--config", (dir / "first.json").string()}, SpawnOptions{});
    for (int i = 0; i < 200 && !s->stat(lease); ++i) std::this_thread::sleep_for(25ms);
    REQUIRE(s->stat(lease));
    auto second = test::backup({"--config", (dir / "second.json").string()});
    INFO(second.err);
    CHECK(second.code == 5);
    CHECK_THAT(second.err, Catch::Contains("backup lease s3://") &&
                               Catch::Contains("is held by host " + local_host_name()) &&
                               Catch::Contains("another run of this host is backing up"));
    const int first_code = first.wait();
    INFO(first.stderr_text());
    CHECK(first_code == 0);
    CHECK(keys(*s, "manifest_").size() == 1);
    CHECK_FALSE(s->stat(lease));  // released at the end of the run
    // Now free: the second config backs up.
    CHECK(test::backup({"--config", (dir / "second.json").string()}).code == 0);
}
