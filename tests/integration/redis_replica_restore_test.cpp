// The live Redis restore by replication (--redis-flush into a master on this host): the target is pointed at
// the temporary server, does one full sync and is detached; key-for-key equality, TTLs, and its own
// replication settings (role, masterauth, masteruser) back as they were. And the fallback to DUMP/RESTORE,
// with the reason, when the target is itself a replica.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>
#include "nightjar/components/redis/client.hpp"

#include "nightjar/io/process.hpp"
#include "support/commands.hpp"
#include "support/ports.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

redis::Connection connect(int port) {
    redis::Endpoint ep;
    ep.port = port;
    for (int i = 0;; ++i) {
        try {
            return redis::Connection(ep, std::nullopt);
        } catch (const Error&) {
            if (i > 100) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
}

struct Server {
    int port = test::free_port();
    Subprocess proc;
    Server(const fs::path& dir, std::vector<std::string> extra = {})
        : proc(Subprocess::spawn(args(dir, extra), {})) {}
    std::vector<std::string> args(const fs::path& dir, const std::vector<std::string>& extra) const {
        fs::create_directories(dir);
        std::vector<std::string> a{"redis-server", "--port",    std::to_string(port),
                                   "--bind",       "127.0.0.1", "--dir",
                                   dir.string(),   "--save",    "",
                                   "--appendonly", "no",        "--enable-debug-command",
                                   "local",        "--logfile", (dir / "redis.log").string()};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
};

std::string digest(redis::Connection& c) {
    return c.checked({"DEBUG", "DIGEST"}, "DEBUG DIGEST").str();
}

std::string config_get(redis::Connection& c, const std::string& name) {
    return c.checked({"CONFIG", "GET", name}, "CONFIG GET").element(1).str();
}

void seed(redis::Connection& c) {
    c.checked({"FLUSHALL"}, "FLUSHALL");
    for (int db : {0, 2}) {
        c.checked({"SELECT", std::to_string(db)}, "SELECT");
        for (int i = 0; i < 30000; ++i)
            c.append({"SET", "key:" + std::to_string(i), "v" + std::to_string(i * db)});
        for (int i = 0; i < 30000; ++i) REQUIRE_FALSE(c.get_reply().is_error());
    }
    c.checked({"SELECT", "0"}, "SELECT");
    c.checked({"HSET", "hash", "a", "1", "b", std::string(300, 'b')}, "HSET");
    c.checked({"RPUSH", "list", "x", "y", "z"}, "RPUSH");
    c.checked({"SADD", "set", "m1", "m2"}, "SADD");
    c.checked({"ZADD", "zset", "1.5", "a", "2", "b"}, "ZADD");
    c.checked({"XADD", "stream", "1-1", "f", "v"}, "XADD");
    c.checked({"SET", "ttl:long", "x", "EX", "7200"}, "SET EX");
    c.checked({"SET", "ttl:ms", "x", "PX", "3600000"}, "SET PX");
}

struct Flow {
    test::TempDir dir;
    fs::path backups = dir / "backups";
    fs::path config = dir / "nightjar.json";
    Server source{dir / "source"};

    Flow() {
        auto src = connect(source.port);
        seed(src);
        test::write_file(config,
                         json{{"backup_dir", backups.string()}, {"redis", {{"port", source.port}}}}.dump(2));
        auto b = test::backup({"--config", config.string()});
        INFO(b.err);
        REQUIRE(b.code == 0);
    }
    test::Outcome restore(int port, std::vector<std::string> extra) const {
        std::vector<std::string> args{"latest", "--backup-dir", backups.string(), "--redis-port",
                                      std::to_string(port)};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::restore(args);
    }
};

void check_same_data(redis::Connection& want, redis::Connection& got) {
    CHECK(digest(got) == digest(want));
    for (int db : {0, 2}) {
        want.checked({"SELECT", std::to_string(db)}, "SELECT");
        got.checked({"SELECT", std::to_string(db)}, "SELECT");
        CHECK(got.checked({"DBSIZE"}, "DBSIZE").integer() == want.checked({"DBSIZE"}, "DBSIZE").integer());
    }
    got.checked({"SELECT", "0"}, "SELECT");
    CHECK(got.checked({"GET", "key:123"}, "GET").str() == "v0");
    long long ttl = got.checked({"TTL", "ttl:long"}, "TTL").integer();
    CHECK(ttl > 7000);
    CHECK(ttl <= 7200);
    long long pttl = got.checked({"PTTL", "ttl:ms"}, "PTTL").integer();
    CHECK(pttl > 3500000);
    CHECK(pttl <= 3600000);
    CHECK(got.checked({"TTL", "hash"}, "TTL").integer() == -1);
}

}  // namespace

TEST_CASE("redis: --redis-flush loads a master on this host by replication and puts its settings back",
          "[integration][redis][replication]") {
    Flow f;
    Server target{f.dir / "target"};
    auto tgt = connect(target.port);
    tgt.checked({"SET", "stale", "x"}, "SET");
    tgt.checked({"CONFIG", "SET", "masterauth", "their-own-secret"}, "CONFIG SET");
    tgt.checked({"CONFIG", "SET", "masteruser", "their-user"}, "CONFIG SET");

    auto r = f.restore(target.port, {"--redis-flush"});
    INFO(r.err << r.out);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.err, Catch::Contains("loaded by replication") && Catch::Contains("it held 1 keys"));
    CHECK(r.err.find("their-own-secret") == std::string::npos);

    auto src = connect(f.source.port);
    check_same_data(src, tgt);
    CHECK(tgt.checked({"EXISTS", "stale"}, "EXISTS").integer() == 0);
    auto repl = tgt.info("replication");
    CHECK(repl["role"] == "master");
    CHECK(repl.count("master_host") == 0);
    CHECK(config_get(tgt, "masterauth") == "their-own-secret");
    CHECK(config_get(tgt, "masteruser") == "their-user");
    // The target takes writes again.
    CHECK_FALSE(tgt.command({"SET", "after", "1"}).is_error());
}

TEST_CASE(
    "redis: a target that is itself a replica is loaded key by key, with the reason, and stays a replica",
    "[integration][redis][replication]") {
    Flow f;
    Server upstream{f.dir / "upstream"};
    Server target{f.dir / "target", {"--replica-read-only", "no"}};
    auto tgt = connect(target.port);
    tgt.checked({"REPLICAOF", "127.0.0.1", std::to_string(upstream.port)}, "REPLICAOF");
    for (int i = 0; i < 200 && tgt.info("replication")["master_link_status"] != "up"; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(tgt.info("replication")["master_link_status"] == "up");

    auto r = f.restore(target.port, {"--redis-flush"});
    INFO(r.err << r.out);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.err,
               Catch::Contains("not by replication") && Catch::Contains("the target is itself a replica"));
    auto src = connect(f.source.port);
    check_same_data(src, tgt);
    auto repl = tgt.info("replication");
    CHECK(repl["role"] == "slave");
    CHECK(repl["master_port"] == std::to_string(upstream.port));
}

TEST_CASE("redis: a merge (--redis-merge) copies key by key, keeps the target's other keys and their TTLs",
          "[integration][redis][replication]") {
    Flow f;
    Server target{f.dir / "target"};
    auto tgt = connect(target.port);
    tgt.checked({"SET", "theirs", "kept", "EX", "5000"}, "SET");
    tgt.checked({"SET", "key:5", "old"}, "SET");
    auto r = f.restore(target.port, {"--redis-merge"});
    INFO(r.err << r.out);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.err,
               Catch::Contains("1 replaced by the backup's") && Catch::Contains("1 not in the backup"));
    CHECK(tgt.checked({"GET", "theirs"}, "GET").str() == "kept");
    CHECK(tgt.checked({"TTL", "theirs"}, "TTL").integer() > 4900);
    CHECK(tgt.checked({"GET", "key:5"}, "GET").str() == "v0");
    tgt.checked({"DEL", "theirs"}, "DEL");
    auto src = connect(f.source.port);
    check_same_data(src, tgt);
}
