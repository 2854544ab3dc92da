// The Redis flow through the real binaries against the real servers scripts/test.sh starts: capture over SYNC
// (diskless and disk forms), the BGSAVE fallback, verification, file and live restores, and the failures.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "nightjar/components/redis/client.hpp"
#include "nightjar/io/crc64.hpp"
#include "nightjar/io/process.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "support/commands.hpp"
#include "support/corrupt.hpp"
#include "support/manifests.hpp"
#include "support/ports.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int port_of(const char* env) {
    return std::stoi(test::required_env(env));
}

redis::Connection connect(int port, std::optional<std::string> password = std::nullopt,
                          std::string user = "") {
    redis::Endpoint ep;
    ep.port = port;
    ep.user = std::move(user);
    return redis::Connection(ep, password);
}

std::string digest(int port) {
    return connect(port).checked({"DEBUG", "DIGEST"}, "DEBUG DIGEST").str();
}

std::uint64_t dbsize(int port, int db) {
    auto c = connect(port);
    c.checked({"SELECT", std::to_string(db)}, "SELECT");
    return static_cast<std::uint64_t>(c.checked({"DBSIZE"}, "DBSIZE").integer());
}

// A stock redis-server of our own on `dir/file`, stopped when the object goes away.
struct OwnServer {
    int port = test::free_port();
    Subprocess proc;
    OwnServer(const fs::path& dir, const std::string& file, std::vector<std::string> extra = {})
        : proc(Subprocess::spawn(args(dir, file, extra), {})) {}
    std::vector<std::string> args(const fs::path& dir, const std::string& file,
                                  const std::vector<std::string>& extra) {
        std::vector<std::string> a{"redis-server",
                                   "--port",
                                   std::to_string(port),
                                   "--bind",
                                   "127.0.0.1",
                                   "--dir",
                                   dir.string(),
                                   "--dbfilename",
                                   file,
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--enable-debug-command",
                                   "local",
                                   "--logfile",
                                   (dir / "own.log").string()};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    // Connects once the file is loaded; nullopt when the server exited (it refused the file).
    bool ready() {
        for (int i = 0; i < 200; ++i) {
            if (proc.wait_for(std::chrono::milliseconds(0))) return false;
            try {
                connect(port);
                return true;
            } catch (const Error&) {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
        return false;
    }
};

struct Flow {
    test::TempDir dir;
    fs::path backups = dir / "backups";
    fs::path config = dir / "nightjar.json";
    int source = port_of("NIGHTJAR_TEST_REDIS_PORT");
    int target = port_of("NIGHTJAR_TEST_REDIS_TARGET_PORT");

    explicit Flow(json redis = json::object()) {
        if (!redis.contains("port")) redis["port"] = source;
        test::write_file(config, json{{"backup_dir", backups.string()}, {"redis", redis}}.dump(2));
    }
    test::Outcome backup(std::vector<std::string> env = {}) const {
        return test::backup({"--config", config.string()}, env);
    }
    test::Outcome restore(std::vector<std::string> extra) const {
        std::vector<std::string> args{"latest", "--backup-dir", backups.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::restore(args);
    }
    std::vector<fs::path> manifests() const {
        std::vector<fs::path> out;
        if (!fs::exists(backups)) return out;
        for (auto& e : fs::directory_iterator(backups))
            if (e.path().filename().string().rfind("manifest_", 0) == 0) out.push_back(e.path());
        return out;
    }
    json manifest() const { return json::parse(test::read_file(manifests().at(0))); }
};

void seed_every_type(redis::Connection& c) {
    c.checked({"FLUSHALL"}, "FLUSHALL");
    c.checked({"SET", "str", "hello"}, "SET");
    c.checked({"SET", "int", "12345"}, "SET");
    c.checked({"HSET", "hash", "a", "1", "b", "2", "c", std::string(200, 'h')}, "HSET");
    c.checked({"RPUSH", "list", "x", "y", "z", "x"}, "RPUSH");
    c.checked({"SADD", "set", "m1", "m2", "m3"}, "SADD");
    c.checked({"SADD", "intset", "1", "2", "3"}, "SADD");
    c.checked({"ZADD", "zset", "1.5", "one", "2.5", "two"}, "ZADD");
    c.checked({"XADD", "stream", "*", "field", "value"}, "XADD");
    c.checked({"XGROUP", "CREATE", "stream", "group1", "0"}, "XGROUP");
    c.checked({"SET", "ttl:long", "v", "PX", "3600000"}, "SET PX");
    c.checked({"HSET", "ttl:hash", "f", "v"}, "HSET");
    c.checked({"PEXPIRE", "ttl:hash", "7200000"}, "PEXPIRE");
    c.checked({"SET", std::string("bin\0key\r\n", 9), std::string("\0\xff\x01", 3)}, "SET binary");
    c.checked({"SELECT", "1"}, "SELECT");
    c.checked({"SET", "db1:key", "one"}, "SET");
    c.checked({"SELECT", "5"}, "SELECT");
    c.checked({"RPUSH", "db5:list", "a", "b"}, "RPUSH");
    c.checked({"SELECT", "0"}, "SELECT");
}

void flush(int port) {
    connect(port).checked({"FLUSHALL"}, "FLUSHALL");
}

}  // namespace

TEST_CASE("redis: every type, TTLs, several dbs, 200k keys and a 50 MB value round-trip live and as a file",
          "[integration][redis]") {
    Flow f;
    {
        auto c = connect(f.source);
        seed_every_type(c);
        c.checked({"DEBUG", "POPULATE", "200000", "many", "16"}, "DEBUG POPULATE");
        std::string big(50 << 20, '\0');
        std::uint64_t x = 88172645463325252ULL;  // xorshift64: incompressible for LZF and zstd
        for (char& ch : big) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ch = static_cast<char>(x);
        }
        c.checked({"SET", "big", big}, "SET big");
    }
    const std::string source_digest = digest(f.source);
    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    json m = f.manifest();
    REQUIRE(m["artifacts"].size() == 1);
    json src = m["artifacts"][0]["source"];
    CHECK(src["redis_version"] == "7.0.15");
    CHECK(src["rdb_version"] == 10);
    CHECK(src["role"] == "master");
    CHECK(src["master_replid"].get<std::string>().size() == 40);
    CHECK(src["method"] == "sync");
    CHECK(src["transfer"] == "diskless");
    CHECK(src["crc64"].get<std::string>().size() == 16);
    CHECK(src["keyspace"]["db0"]["keys"] == 200000 + 12);
    CHECK(src["keyspace"]["db0"]["expires"] == 2);
    CHECK(src["keyspace"]["db1"]["keys"] == 1);
    CHECK(src["keyspace"]["db5"]["keys"] == 1);
    CHECK(src["used_memory"].get<std::uint64_t>() > (50u << 20));
    CHECK(m["artifacts"][0]["content_size"].get<std::uint64_t>() > (50u << 20));

    // Without --redis-port the target is the server recorded in the manifest (the source, which holds keys):
    // the dry run names it first, and refuses as the restore would.
    auto recorded = f.restore({"--dry-run"});
    INFO(recorded.err);
    CHECK(recorded.code == 7);
    CHECK_THAT(recorded.err, Catch::Contains("target: redis redis -> redis 127.0.0.1:" +
                                             std::to_string(f.source) + " (recorded in the manifest)") &&
                                 Catch::Contains("holds " + std::to_string(200000 + 14) + " key(s)"));
    CHECK(recorded.err.find("target: ") < recorded.err.find("verify redis"));

    flush(f.target);
    auto dry = f.restore({"--dry-run", "--redis-port", std::to_string(f.target)});
    INFO(dry.err);
    CHECK(dry.code == 0);
    CHECK_THAT(dry.err,
               Catch::Contains("verify redis") && Catch::Contains("OK") && Catch::Contains("it is empty"));

    auto live = f.restore({"--redis-port", std::to_string(f.target)});
    INFO(live.err);
    REQUIRE(live.code == 0);
    CHECK(digest(f.target) == source_digest);
    auto pttl = connect(f.target).checked({"PTTL", "ttl:long"}, "PTTL").integer();
    CHECK(pttl > 3500000);
    CHECK(pttl <= 3600000);
    CHECK(dbsize(f.target, 5) == 1);

    SECTION("into a non-empty target: refused, then merged (--redis-merge), then flushed (--redis-flush)") {
        connect(f.target).checked({"SET", "stray", "x"}, "SET");
        connect(f.target).checked({"SET", "str", "changed since the backup"}, "SET");
        const std::string held = std::to_string(200000 + 14 + 1) + " key(s)";
        auto refused = f.restore({"--redis-port", std::to_string(f.target)});
        INFO(refused.err);
        CHECK(refused.code == 7);
        CHECK_THAT(refused.err, Catch::Contains("holds " + held + ": restore refused, nothing was written") &&
                                    Catch::Contains("--redis-merge") && Catch::Contains("--redis-flush"));
        CHECK(connect(f.target).checked({"GET", "str"}, "GET").str() == "changed since the backup");
        auto refused_plan = f.restore({"--dry-run", "--redis-port", std::to_string(f.target)});
        CHECK(refused_plan.code == 7);
        CHECK_THAT(refused_plan.err, Catch::Contains("would refuse: redis: ") && Catch::Contains(held));
        auto merge_plan = f.restore({"--dry-run", "--redis-merge", "--redis-port", std::to_string(f.target)});
        INFO(merge_plan.err);
        CHECK(merge_plan.code == 0);
        CHECK_THAT(merge_plan.err, Catch::Contains("merge: it holds " + held));
        auto flush_plan = f.restore({"--dry-run", "--redis-flush", "--redis-port", std::to_string(f.target)});
        CHECK(flush_plan.code == 0);
        CHECK_THAT(flush_plan.err, Catch::Contains("flush: its " + held + " are removed first"));
        CHECK(f.restore({"--redis-merge", "--redis-flush"}).code == 2);

        auto merged = f.restore({"--redis-merge", "--redis-port", std::to_string(f.target)});
        INFO(merged.err);
        CHECK(merged.code == 0);
        CHECK_THAT(merged.err, Catch::Contains("replaced by the backup's, 1 not in the backup left alone"));
        CHECK(connect(f.target).checked({"GET", "stray"}, "GET").str() == "x");
        CHECK(connect(f.target).checked({"GET", "str"}, "GET").str() == "hello");  // the backup's value won
        CHECK(digest(f.target) != source_digest);  // the stray key is still there
        auto flushed = f.restore({"--redis-port", std::to_string(f.target), "--redis-flush"});
        INFO(flushed.err);
        CHECK(flushed.code == 0);
        CHECK_THAT(flushed.err, Catch::Contains("FLUSHALL"));
        CHECK(digest(f.target) == source_digest);
    }
    SECTION("file mode writes an RDB a stock redis-server loads, and never overwrites without --force") {
        fs::path out = f.dir / "restored" / "dump.rdb";
        fs::create_directories(out.parent_path());
        auto file = f.restore({"--redis-rdb-path", out.string()});
        INFO(file.err);
        REQUIRE(file.code == 0);
        CHECK_THAT(file.err, Catch::Contains("appendonly yes") && Catch::Contains("appendonly no"));
        auto again = f.restore({"--redis-mode", "file", "--redis-rdb-path", out.string()});
        CHECK(again.code == 7);
        CHECK_THAT(again.err, Catch::Contains("--force"));
        CHECK(f.restore({"--redis-rdb-path", out.string(), "--force"}).code == 0);
        OwnServer stock(out.parent_path(), "dump.rdb");
        REQUIRE(stock.ready());
        CHECK(digest(stock.port) == source_digest);
    }
    flush(f.source);
    flush(f.target);
}

TEST_CASE("redis: a damaged snapshot fails the dry run with exit 4", "[integration][redis]") {
    // A backup whose stored digests are right but whose RDB is not: only the RDB check can catch it.
    auto c = connect(port_of("NIGHTJAR_TEST_REDIS_PORT"));
    seed_every_type(c);
    Flow f;
    REQUIRE(f.backup().code == 0);
    fs::path artifact = f.backups / f.manifest()["artifacts"][0]["path"].get<std::string>();
    std::string rdb;
    {
        PosixStorage disk(f.backups);
        RepositoryReader repo(disk);
        Manifest m = repo.load(repo.find("latest"));
        auto in = repo.open_artifact(m.artifacts[0]);
        io::ZstdReader z(*in, "a");
        std::vector<std::byte> buf(1 << 16);
        while (std::size_t n = z.read(buf)) rdb.append(io::as_chars(io::Bytes(buf.data(), n)));
    }
    REQUIRE(rdb.rfind("REDIS0010", 0) == 0);
    std::string expect;
    SECTION("one flipped byte in the middle") {
        rdb[rdb.size() / 2] ^= 0x40;
        expect = "CRC64 mismatch";
    }
    SECTION("truncated") {
        rdb.resize(rdb.size() - 20);
        expect = "truncated";
    }
    test::TempDir other;
    PosixStorage storage(other / "backups");
    RepositoryWriter repo(storage);
    auto lock = repo.lock();
    Staging staging = repo.begin("20240101_000000", {});
    auto w = staging.artifact("redis.rdb.zst");
    w->write(io::as_bytes(rdb));
    w->finish();
    Artifact a = w->artifact("redis", "redis", "rdb");
    a.source = f.manifest()["artifacts"][0]["source"];
    Manifest m = test::complete_manifest(staging.id(), {a});
    repo.publish(std::move(staging), m);
    auto dry = test::restore({"latest", "--backup-dir", (other / "backups").string(), "--dry-run"});
    CHECK(dry.code == 4);
    CHECK_THAT(dry.err, Catch::Contains(expect) && Catch::Contains("redis.rdb.zst"));
    auto real = test::restore(
        {"latest", "--backup-dir", (other / "backups").string(), "--redis-port", std::to_string(f.target)});
    CHECK(real.code == 4);
    CHECK(dbsize(f.target, 0) == 0);
    flush(f.source);
}

TEST_CASE("redis: password errors and a server that is down give clear errors and no Redis artifact",
          "[integration][redis]") {
    const std::string password = test::required_env("NIGHTJAR_TEST_REDIS_PASSWORD");
    Flow f(json{{"port", port_of("NIGHTJAR_TEST_REDIS_AUTH_PORT")}});
    SECTION("no password") {
        auto b = f.backup({"REDISCLI_AUTH="});
        CHECK(b.code == 3);
        CHECK_THAT(b.err, Catch::Contains("requires a password") && Catch::Contains("REDISCLI_AUTH"));
    }
    SECTION("wrong password") {
        auto b = f.backup({"REDISCLI_AUTH=not-the-password"});
        CHECK(b.code == 3);
        CHECK_THAT(b.err, Catch::Contains("authentication failed") && Catch::Contains("WRONGPASS"));
        CHECK_THAT(b.err, !Catch::Contains("not-the-password"));
    }
    SECTION("server down, beside a files component that works: partial, without a Redis artifact") {
        test::write_file(f.dir / "etc/app.conf", "x=1\n");
        test::write_file(f.config, json{{"backup_dir", f.backups.string()},
                                        {"files", {{"paths", {(f.dir / "etc").string()}}}},
                                        {"redis", {{"port", test::free_port()}}}}
                                       .dump());
        auto b = f.backup();
        CHECK(b.code == 6);
        CHECK_THAT(b.err, Catch::Contains("cannot connect") && Catch::Contains("is the server running"));
        json m = f.manifest();
        REQUIRE(m["artifacts"].size() == 1);
        CHECK(m["artifacts"][0]["component"] == "files");
        return;
    }
    CHECK(f.manifests().empty());
    // The right password, from a password file (REDISCLI_AUTH unset).
    test::write_file(f.dir / "pw", password + "\n");
    test::write_file(f.config, json{{"backup_dir", f.backups.string()},
                                    {"redis",
                                     {{"port", port_of("NIGHTJAR_TEST_REDIS_AUTH_PORT")},
                                      {"password_file", (f.dir / "pw").string()}}}}
                                   .dump());
    auto ok = f.backup({"REDISCLI_AUTH="});
    INFO(ok.err);
    CHECK(ok.code == 0);
    CHECK(test::read_file(f.manifests().at(0)).find(password) == std::string::npos);
    CHECK(ok.err.find(password) == std::string::npos);
}

TEST_CASE("redis: when SYNC is denied the backup falls back to BGSAVE, or says which permission is missing",
          "[integration][redis]") {
    const std::string password = test::required_env("NIGHTJAR_TEST_REDIS_ACL_PASSWORD");
    const int acl = port_of("NIGHTJAR_TEST_REDIS_ACL_PORT");
    {
        auto admin = connect(acl);
        seed_every_type(admin);
    }
    const std::string source_digest = digest(acl);
    SECTION("a user without SYNC but with BGSAVE: fallback") {
        Flow f(json{{"port", acl}, {"user", "nosync"}});
        auto b = f.backup({"REDISCLI_AUTH=" + password});
        INFO(b.err);
        REQUIRE(b.code == 0);
        CHECK_THAT(b.err, Catch::Contains("NOPERM") && Catch::Contains("falling back to BGSAVE"));
        json src = f.manifest()["artifacts"][0]["source"];
        CHECK(src["method"] == "bgsave");
        CHECK_THAT(src["sync_refused"].get<std::string>(), Catch::Contains("replconf"));
        flush(f.target);
        auto r = f.restore({"--redis-port", std::to_string(f.target)});
        INFO(r.err);
        REQUIRE(r.code == 0);
        CHECK(digest(f.target) == source_digest);
        flush(f.target);
    }
    SECTION("a user with neither: the missing permissions are named") {
        Flow f(json{{"port", acl}, {"user", "weak"}});
        auto b = f.backup({"REDISCLI_AUTH=" + password});
        CHECK(b.code == 3);
        CHECK_THAT(b.err, Catch::Contains("+replconf +sync +psync") && Catch::Contains("BGSAVE"));
        CHECK(f.manifests().empty());
    }
    SECTION("fallback none: fail at once") {
        Flow f(json{{"port", acl}, {"user", "nosync"}, {"fallback", "none"}});
        auto b = f.backup({"REDISCLI_AUTH=" + password});
        CHECK(b.code == 3);
        CHECK_THAT(b.err, Catch::Contains("+replconf +sync +psync"));
    }
    flush(acl);
}

TEST_CASE("redis: the shared RDB corpus round-trips through a server, over the sized (disk) SYNC form",
          "[integration][redis]") {
    fs::path corpus = test::shared_dir() / "corpus/redis-rdb";
    REQUIRE(fs::is_directory(corpus));
    const int target = port_of("NIGHTJAR_TEST_REDIS_TARGET_PORT");
    std::map<std::string, std::uint64_t> expected_keys{
        {"encodings.rdb", 13},         {"list-quicklist.rdb", 2}, {"hash-ziplist.rdb", 1},
        {"hash-zipmap.rdb", 1},        {"zset-ziplist.rdb", 1},   {"scriptbackup.rdb", 0},
        {"corrupt_empty_keys.rdb", 0}, {"corrupt_ziplist.rdb", 0}};
    for (const auto& [name, keys] : expected_keys) {
        INFO(name);
        test::TempDir dir;
        fs::copy_file(corpus / name, dir / "dump.rdb");
        fs::permissions(dir / "dump.rdb", fs::perms(0644));
        // Disk-backed replication: the server answers SYNC with "$<length>" instead of the end-mark form.
        OwnServer server(dir.path(), "dump.rdb", {"--repl-diskless-sync", "no"});
        if (name == "corrupt_ziplist.rdb") {
            CHECK_FALSE(server.ready());  // Redis itself refuses this file ("integrity check failed")
            continue;
        }
        REQUIRE(server.ready());
        CHECK(dbsize(server.port, 0) == keys);
        const std::string source_digest = digest(server.port);
        Flow f(json{{"port", server.port}});
        auto b = f.backup();
        INFO(b.err);
        REQUIRE(b.code == 0);
        CHECK(f.manifest()["artifacts"][0]["source"]["transfer"] == "disk");
        flush(target);
        CHECK(f.restore({"--dry-run", "--redis-port", std::to_string(target)}).code == 0);
        auto r = f.restore({"--redis-port", std::to_string(target)});
        INFO(r.err);
        REQUIRE(r.code == 0);
        CHECK(digest(target) == source_digest);
    }
    flush(target);
}

TEST_CASE(
    "redis: transfer auto asks a server that saves RDB files for the disk form, which skips the diskless "
    "delay",
    "[integration][redis]") {
    test::TempDir dir;
    // Saving on a schedule, with the default 5 s repl-diskless-sync-delay.
    OwnServer server(dir.path(), "dump.rdb", {"--save", "3600 1"});
    REQUIRE(server.ready());
    auto c = connect(server.port);
    for (int i = 0; i < 100; ++i) c.checked({"SET", "k" + std::to_string(i), "v"}, "SET");
    const std::string source_digest = digest(server.port);
    Flow automatic(json{{"port", server.port}});
    auto b = automatic.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK(automatic.manifest()["artifacts"][0]["source"]["transfer"] == "disk");
    const int target = automatic.target;
    flush(target);
    auto r = automatic.restore({"--redis-port", std::to_string(target)});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(digest(target) == source_digest);
    flush(target);
    // Asked for by name, the diskless form is what the server uses.
    Flow diskless(json{{"port", server.port}, {"transfer", "diskless"}});
    REQUIRE(diskless.backup().code == 0);
    CHECK(diskless.manifest()["artifacts"][0]["source"]["transfer"] == "diskless");
    // A server that saves nothing keeps the diskless form under auto (its dump file is not written).
    test::TempDir dir2;
    OwnServer nosave(dir2.path(), "dump.rdb");
    REQUIRE(nosave.ready());
    Flow quiet(json{{"port", nosave.port}});
    REQUIRE(quiet.backup().code == 0);
    CHECK(quiet.manifest()["artifacts"][0]["source"]["transfer"] == "diskless");
    CHECK_FALSE(fs::exists(dir2 / "dump.rdb"));
}
