#include <catch2/catch.hpp>
#include <cstdlib>

#include "nightjar/components/redis/config.hpp"
#include "nightjar/run/config.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;

TEST_CASE("the redis config section", "[unit][redis][config]") {
    SECTION("defaults") {
        Config c = parse_config(R"({"backup_dir": "/b", "redis": {}})", "t.json");
        REQUIRE(c.redis);
        CHECK(c.redis->endpoint.host == "127.0.0.1");
        CHECK(c.redis->endpoint.port == 6379);
        CHECK(c.redis->fallback == "bgsave");
        CHECK(c.redis->endpoint.commands.sync == "SYNC");
    }
    SECTION("every field") {
        Config c =
            parse_config(R"({"backup_dir": "/b", "redis": {"host": "r1", "port": 7000, "user": "backup",
            "password_file": "/etc/p", "socket": "/run/r.sock", "connect_timeout": 2, "io_timeout": 90,
            "fallback": "none", "bgsave_timeout": 30, "commands": {"sync": "SYNC_x", "config": "CFG"}}})",
                         "t.json");
        CHECK(c.redis->endpoint.describe() == "redis /run/r.sock");
        CHECK(c.redis->endpoint.user == "backup");
        CHECK(c.redis->endpoint.commands.sync == "SYNC_x");
        CHECK(c.redis->endpoint.commands.config == "CFG");
        CHECK(c.redis->endpoint.io_timeout_s == 90);
        CHECK(c.redis->fallback == "none");
    }
    SECTION("bad values name the field") {
        CHECK_THROWS_MATCHES(parse_config(R"({"redis": {"port": 0}})", "t.json"), Error,
                             test::IsError(Kind::Config, "/redis/port"));
        CHECK_THROWS_MATCHES(parse_config(R"({"redis": {"password": "x"}})", "t.json"), Error,
                             test::IsError(Kind::Config, "/redis/password"));
        CHECK_THROWS_MATCHES(parse_config(R"({"redis": {"commands": {"sync": "a b"}}})", "t.json"), Error,
                             test::IsError(Kind::Config, "/redis/commands/sync"));
        CHECK_THROWS_MATCHES(parse_config(R"({"redis": {"fallback": "maybe"}})", "t.json"), Error,
                             test::IsError(Kind::Config, "/redis/fallback"));
    }
}

TEST_CASE("the redis password comes from REDISCLI_AUTH or the password file", "[unit][redis][config]") {
    test::TempDir dir;
    test::write_file(dir / "pw", "s3cret\n");
    redis::Endpoint ep;
    ::unsetenv("REDISCLI_AUTH");
    CHECK_FALSE(redis::resolve_password(ep));
    ep.password_file = (dir / "pw").string();
    CHECK(redis::resolve_password(ep) == "s3cret");
    ::setenv("REDISCLI_AUTH", "fromenv", 1);
    CHECK(redis::resolve_password(ep) == "fromenv");
    ::unsetenv("REDISCLI_AUTH");
    ep.password_file = (dir / "missing").string();
    CHECK_THROWS_MATCHES(redis::resolve_password(ep), Error, test::IsError(Kind::Config, "password file"));
}

TEST_CASE("the redis tls section", "[unit][redis][config][tls]") {
    SECTION("absent: plain TCP") {
        Config c = parse_config(R"({"backup_dir": "/b", "redis": {"port": 7000}})", "t.json");
        CHECK_FALSE(c.redis->endpoint.tls);
        CHECK(c.redis->endpoint.describe() == "redis 127.0.0.1:7000");
    }
    SECTION("empty: TLS on, verified against the system store") {
        Config c = parse_config(R"({"backup_dir": "/b", "redis": {"port": 7000, "tls": {}}})", "t.json");
        REQUIRE(c.redis->endpoint.tls);
        CHECK(c.redis->endpoint.tls->verify);
        CHECK(c.redis->endpoint.tls->ca_file.empty());
        CHECK(c.redis->endpoint.describe() == "redis 127.0.0.1:7000 (TLS)");
    }
    SECTION("every field") {
        Config c = parse_config(R"({"backup_dir": "/b", "redis": {"tls": {"ca_file": "/etc/ca.pem",
            "cert_file": "/etc/c.pem", "key_file": "/etc/k.pem", "server_name": "redis.internal",
            "verify": false}}})",
                                "t.json");
        const auto& t = *c.redis->endpoint.tls;
        CHECK(t.ca_file == "/etc/ca.pem");
        CHECK(t.cert_file == "/etc/c.pem");
        CHECK(t.key_file == "/etc/k.pem");
        CHECK(t.server_name == "redis.internal");
        CHECK_FALSE(t.verify);
    }
    SECTION("bad values name the field") {
        CHECK_THROWS_MATCHES(parse_config(R"({"redis": {"tls": {"ca": "/x"}}})", "t.json"), Error,
                             test::IsError(Kind::Config, "/redis/tls/ca"));
        CHECK_THROWS_MATCHES(parse_config(R"({"redis": {"tls": {"cert_file": "/c.pem"}}})", "t.json"), Error,
                             test::IsError(Kind::Config, "/redis/tls/key_file"));
        CHECK_THROWS_MATCHES(parse_config(R"({"redis": {"tls": {"key_file": "/k.pem"}}})", "t.json"), Error,
                             test::IsError(Kind::Config, "/redis/tls/cert_file"));
        CHECK_THROWS_MATCHES(parse_config(R"({"redis": {"tls": {"ca_file": ""}}})", "t.json"), Error,
                             test::IsError(Kind::Config, "/redis/tls/ca_file"));
        CHECK_THROWS_MATCHES(parse_config(R"({"redis": {"tls": {"verify": "no"}}})", "t.json"), Error,
                             test::IsError(Kind::Config, "/redis/tls/verify"));
        CHECK_THROWS_MATCHES(parse_config(R"({"redis": {"socket": "/r.sock", "tls": {}}})", "t.json"), Error,
                             test::IsError(Kind::Config, "/redis/tls"));
        CHECK_THROWS_MATCHES(parse_config(R"({"redis": {"tls": true}})", "t.json"), Error,
                             test::IsError(Kind::Config, "/redis/tls"));
    }
}
