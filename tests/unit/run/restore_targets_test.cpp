// The one rule for restore targets: the endpoint recorded in the manifest, unless a flag overrides it.
#include <catch2/catch.hpp>

#include "nightjar/components/postgres/postgres_component.hpp"
#include "nightjar/components/registry.hpp"

using namespace nightjar;
using nlohmann::json;

namespace {

Artifact artifact(const std::string& component, const std::string& format, json source) {
    Artifact a;
    a.component = component;
    a.name = component == "redis" ? "redis" : "db-app";
    a.path = "20260101_000000/x";
    a.format = format;
    a.source = std::move(source);
    return a;
}

}  // namespace

TEST_CASE("redis restores to the endpoint recorded in the manifest unless --redis-host/--redis-port",
          "[restore][targets]") {
    ComponentRestoreOptions o;
    const RestoreContext context;
    auto redis = [&o] { return make_restore_component("redis", o); };
    SECTION("recorded host and port") {
        auto a = artifact("redis", "rdb",
                          {{"endpoint", "redis 10.0.0.5:6380"}, {"host", "10.0.0.5"}, {"port", 6380}});
        CHECK(redis()->describe_target(a, context) == "redis 10.0.0.5:6380 (recorded in the manifest)");
        o.redis.port = 7000;
        CHECK(redis()->describe_target(a, context) == "redis 10.0.0.5:7000 (--redis-host/--redis-port)");
        o.redis.host = "127.0.0.1";
        CHECK(redis()->describe_target(a, context) == "redis 127.0.0.1:7000 (--redis-host/--redis-port)");
    }
    SECTION("older manifests: only the endpoint text") {
        auto a = artifact("redis", "rdb", {{"endpoint", "redis 10.0.0.7:6390"}});
        CHECK(redis()->describe_target(a, context) == "redis 10.0.0.7:6390 (recorded in the manifest)");
        auto s = artifact("redis", "rdb", {{"endpoint", "redis /run/redis/redis.sock"}});
        CHECK(redis()->describe_target(s, context) ==
              "redis /run/redis/redis.sock (recorded in the manifest)");
        o.redis.port = 6379;  // a flag replaces the socket with TCP
        CHECK(redis()->describe_target(s, context) == "redis 127.0.0.1:6379 (--redis-host/--redis-port)");
    }
    SECTION("a recorded socket") {
        auto a = artifact("redis", "rdb",
                          {{"endpoint", "redis /run/r.sock"},
                           {"host", "127.0.0.1"},
                           {"port", 6379},
                           {"socket", "/run/r.sock"}});
        CHECK(redis()->describe_target(a, context) == "redis /run/r.sock (recorded in the manifest)");
    }
    SECTION("file mode") {
        o.redis.mode = redis::RedisRestoreMode::File;
        o.redis.rdb_path = "/srv/dump.rdb";
        CHECK(redis()->describe_target(artifact("redis", "rdb", {{"endpoint", "redis x:1"}}), context) ==
              "an RDB file at /srv/dump.rdb (--redis-rdb-path)");
    }
}

TEST_CASE("postgres restores to the server recorded in the manifest unless --db-host/--db-port/--db-user",
          "[restore][targets]") {
    ComponentRestoreOptions o;
    const RestoreContext context;
    auto pg = [&o] { return make_restore_component("postgres", o); };
    auto a = artifact("postgres", postgres::kPgDumpFormat,
                      {{"database", "app"},
                       {"host", "db1"},
                       {"port", 5433},
                       {"user", "backup"},
                       {"tables", json::array()}});
    CHECK(pg()->describe_target(a, context) ==
          "database \"app\" into database \"app\" on db1:5433 (recorded in the manifest)");
    o.postgres.rename["app"] = "app_restored";
    o.postgres.port = 5434;
    CHECK(pg()->describe_target(a, context) ==
          "database \"app\" into database \"app_restored\" on db1:5434 (--db-name) "
          "(--db-host/--db-port/--db-user)");
    CHECK(postgres::pg_artifact_database(a) == "app");
}
