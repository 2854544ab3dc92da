// Redis over TLS through the real binaries: a test CA and certificates from tests/support/make_test_certs.sh,
// two TLS-only redis-servers (--port 0 --tls-port N, client certificates required), capture over SYNC and a
// live restore through the TLS bridge, and the failures: a wrong CA, a wrong server name, a key file others
// can read, an unknown key.
#include <sys/stat.h>
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

struct Certs {
    fs::path dir;
    explicit Certs(const fs::path& d) : dir(d) {
        auto r = test::run(
            {"bash", (test::source_dir() / "tests/support/make_test_certs.sh").string(), d.string()});
        INFO(r.err);
        REQUIRE(r.code == 0);
    }
    fs::path operator/(const std::string& name) const { return dir / name; }
};

json tls_json(const Certs& c, const std::string& ca = "ca.crt") {
    return {{"ca_file", (c / ca).string()},
            {"cert_file", (c / "client.crt").string()},
            {"key_file", (c / "client.key").string()},
            {"server_name", "localhost"}};
}

redis::TlsConfig tls_config(const Certs& c) {
    return {.ca_file = (c / "ca.crt").string(),
            .cert_file = (c / "client.crt").string(),
            .key_file = (c / "client.key").string(),
            .server_name = "localhost",
            .verify = true};
}

// A TLS-only redis-server that wants a client certificate; stopped when the object goes away.
struct TlsServer {
    int port = test::free_port();
    Subprocess proc;
    TlsServer(const Certs& c, const fs::path& dir)
        : proc(Subprocess::spawn({"redis-server",
                                  "--port",
                                  "0",
                                  "--tls-port",
                                  std::to_string(port),
                                  "--bind",
                                  "127.0.0.1",
                                  "--tls-cert-file",
                                  (c / "server.crt").string(),
                                  "--tls-key-file",
                                  (c / "server.key").string(),
                                  "--tls-ca-cert-file",
                                  (c / "ca.crt").string(),
                                  "--tls-auth-clients",
                                  "yes",
                                  "--dir",
                                  dir.string(),
                                  "--save",
                                  "",
                                  "--appendonly",
                                  "no",
                                  "--enable-debug-command",
                                  "local",
                                  "--logfile",
                                  (dir / ("tls-" + std::to_string(port) + ".log")).string()},
                                 {})) {}
};

redis::Connection connect_tls(const Certs& c, int port) {
    redis::Endpoint ep;
    ep.port = port;
    ep.tls = tls_config(c);
    for (int i = 0;; ++i) {
        try {
            return redis::Connection(ep, std::nullopt);
        } catch (const Error&) {
            if (i > 100) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
}

std::string digest(redis::Connection& c) {
    return c.checked({"DEBUG", "DIGEST"}, "DEBUG DIGEST").str();
}

std::uint64_t dbsize(redis::Connection& c) {
    return static_cast<std::uint64_t>(c.checked({"DBSIZE"}, "DBSIZE").integer());
}

void seed(redis::Connection& c) {
    c.checked({"FLUSHALL"}, "FLUSHALL");
    for (int batch = 0; batch < 20; ++batch) {
        for (int i = 0; i < 1000; ++i) {
            std::string k = "k:" + std::to_string(batch * 1000 + i);
            c.append({"SET", k, "value-" + k + std::string(static_cast<std::size_t>(i % 200), 'v')});
        }
        for (int i = 0; i < 1000; ++i) REQUIRE_FALSE(c.get_reply().is_error());
    }
    c.checked({"HSET", "hash", "a", "1", "b", "2"}, "HSET");
    c.checked({"RPUSH", "list", "x", "y", "z"}, "RPUSH");
    c.checked({"SET", "ttl", "soon", "EX", "3600"}, "SET EX");
    c.checked({"SET", "big", std::string(3 << 20, 'B')}, "SET big");  // several TLS records per read
    c.checked({"SELECT", "3"}, "SELECT");
    c.checked({"SET", "in-db3", "x"}, "SET");
    c.checked({"SELECT", "0"}, "SELECT");
}

struct TlsFlow {
    test::TempDir dir;
    Certs certs{dir / "certs"};
    fs::path backups = dir / "backups";
    fs::path config = dir / "nightjar.json";
    TlsServer source{certs, dir.path()};
    TlsServer target{certs, dir.path()};

    void write_config(const json& tls, int port) const {
        test::write_file(config, json{{"backup_dir", backups.string()},
                                      {"redis", {{"host", "127.0.0.1"}, {"port", port}, {"tls", tls}}}}
                                     .dump(2));
    }
    test::Outcome backup() const { return test::backup({"--config", config.string()}); }
    test::Outcome restore(std::vector<std::string> extra) const {
        std::vector<std::string> args{"latest",        "--backup-dir", backups.string(),           "--config",
                                      config.string(), "--redis-port", std::to_string(target.port)};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::restore(args);
    }
};

}  // namespace

TEST_CASE("redis over TLS: capture and live restore through the real binaries, with a client certificate",
          "[integration][redis][tls]") {
    TlsFlow f;
    auto src = connect_tls(f.certs, f.source.port);
    seed(src);
    const std::string want = digest(src);
    f.write_config(tls_json(f.certs), f.source.port);

    auto b = f.backup();
    INFO(b.err);
    REQUIRE(b.code == 0);
    auto manifests = test::published_manifests(f.backups);
    REQUIRE(manifests.size() == 1);
    json m = json::parse(test::read_file(manifests[0]));
    REQUIRE(m["artifacts"].size() == 1);
    CHECK(m["artifacts"][0]["source"]["method"] == "sync");
    CHECK(m["artifacts"][0]["source"]["tls"] == true);
    CHECK(m["artifacts"][0]["source"]["keyspace"]["db0"]["keys"] == 20004);

    SECTION("into an empty target") {
        auto r = f.restore({});
        INFO(r.err << r.out);
        REQUIRE(r.code == 0);
    }
    SECTION("into a target that holds keys, with --redis-flush") {
        auto tgt = connect_tls(f.certs, f.target.port);
        tgt.checked({"SET", "stale", "x"}, "SET");
        auto r = f.restore({"--redis-flush"});
        INFO(r.err << r.out);
        REQUIRE(r.code == 0);
    }
    auto tgt = connect_tls(f.certs, f.target.port);
    CHECK(digest(tgt) == want);
    CHECK(dbsize(tgt) == 20004);
    long long ttl = tgt.checked({"TTL", "ttl"}, "TTL").integer();
    CHECK(ttl > 3500);
    CHECK(ttl <= 3600);
}

TEST_CASE("redis over TLS: a wrong CA, a wrong name or a readable key fail clearly and write nothing",
          "[integration][redis][tls]") {
    TlsFlow f;
    auto src = connect_tls(f.certs, f.source.port);
    seed(src);
    const std::string endpoint = "redis 127.0.0.1:" + std::to_string(f.source.port) + " (TLS)";

    SECTION("a CA that did not sign the server's certificate: exit 3, no backup") {
        f.write_config(tls_json(f.certs, "other-ca.crt"), f.source.port);
        auto b = f.backup();
        CHECK(b.code == 3);
        CHECK_THAT(b.err, Catch::Contains(endpoint) && Catch::Contains("certificate failed verification") &&
                              (Catch::Contains("self-signed certificate in certificate chain") ||
                               Catch::Contains("unable to get local issuer certificate")) &&
                              Catch::Contains("/redis/tls/ca_file"));
        CHECK(test::published_manifests(f.backups).empty());
    }
    SECTION("a server name the certificate does not carry: exit 3") {
        json tls = tls_json(f.certs);
        tls["server_name"] = "redis.example.org";
        f.write_config(tls, f.source.port);
        auto b = f.backup();
        CHECK(b.code == 3);
        CHECK_THAT(b.err, Catch::Contains(endpoint) && Catch::Contains("hostname mismatch") &&
                              Catch::Contains("redis.example.org"));
        CHECK(test::published_manifests(f.backups).empty());
    }
    SECTION("a key file others can read: exit 2, naming the file") {
        ::chmod((f.certs / "client.key").c_str(), 0644);
        f.write_config(tls_json(f.certs), f.source.port);
        auto b = f.backup();
        CHECK(b.code == 2);
        CHECK_THAT(b.err, Catch::Contains((f.certs / "client.key").string()));
        CHECK(test::published_manifests(f.backups).empty());
    }
    SECTION("without a client certificate, which the server requires: exit 3") {
        json tls = tls_json(f.certs);
        tls.erase("cert_file");
        tls.erase("key_file");
        f.write_config(tls, f.source.port);
        auto b = f.backup();
        CHECK(b.code == 3);
        CHECK_THAT(b.err, Catch::Contains(endpoint));
        CHECK(test::published_manifests(f.backups).empty());
    }
    SECTION("an unknown key in redis.tls: exit 2") {
        json tls = tls_json(f.certs);
        tls["ca_path"] = "/etc/ssl";
        f.write_config(tls, f.source.port);
        auto b = f.backup();
        CHECK(b.code == 2);
        CHECK_THAT(b.err, Catch::Contains("/redis/tls/ca_path"));
    }
    SECTION("a live restore with the wrong CA: exit 3, the target untouched") {
        f.write_config(tls_json(f.certs), f.source.port);
        REQUIRE(f.backup().code == 0);
        auto tgt = connect_tls(f.certs, f.target.port);
        tgt.checked({"SET", "mine", "x"}, "SET");
        f.write_config(tls_json(f.certs, "other-ca.crt"), f.source.port);
        auto r = f.restore({"--redis-flush"});
        CHECK(r.code == 3);
        CHECK_THAT(r.err, Catch::Contains("redis 127.0.0.1:" + std::to_string(f.target.port) + " (TLS)") &&
                              Catch::Contains("certificate failed verification"));
        CHECK(dbsize(tgt) == 1);
    }
}
