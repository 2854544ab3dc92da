#include <catch2/catch.hpp>
#include <cstdlib>

#include "nightjar/repo/s3/s3_storage.hpp"
#include "nightjar/run/config.hpp"
#include "nightjar/run/repository_config.hpp"
#include "support/matchers.hpp"

using namespace nightjar;
using test::IsError;

namespace {
Config parse(const std::string& repository, const std::string& extra = "") {
    return parse_config(R"({"files": {"paths": ["/etc"]}, "repository": )" + repository + extra + "}",
                        "c.json");
}
}  // namespace

TEST_CASE("repository: local by default, s3 with every key", "[config][s3]") {
    Config local = parse_config(R"({"backup_dir": "/b", "repository": {"mode": "group"}})", "c.json");
    CHECK(local.repository.type == "local");
    CHECK(local.repository.mode == "group");
    CHECK(local.repository.copies.empty());

    Config c = parse(R"({"type": "s3", "endpoint": "http://127.0.0.1:7480/", "region": "eu-1",
        "bucket": "backups", "prefix": "web1/", "access_key_id": "AK", "secret_access_key_file": "/etc/s",
        "path_style": false, "part_size_mib": 8, "parallel_parts": 2, "bandwidth_limit": "50MiB/s",
        "object_lock": {"mode": "governance", "days": 30}})");
    const S3RepositoryConfig& s = c.repository.s3;
    CHECK(c.repository.type == "s3");
    CHECK(c.backup_dir == "s3://backups/web1");
    CHECK(s.endpoint == "http://127.0.0.1:7480");
    CHECK(s.region == "eu-1");
    CHECK(s.access_key_id == "AK");
    CHECK(s.secret_access_key_file == "/etc/s");
    CHECK(s.path_style == std::optional<bool>(false));
    CHECK(s.part_size_mib == 8);
    CHECK(s.parallel_parts == 2);
    CHECK(s.bandwidth_limit == 50u << 20);
    CHECK(s.object_lock.mode == "governance");
    CHECK(s.object_lock.days == 30);

    // The prefix defaults to this host's name.
    Config d = parse(R"({"type": "s3", "bucket": "backups"})");
    CHECK(d.backup_dir == "s3://backups/" + local_host_name());
    CHECK(d.repository.s3.part_size_mib == 16);
    CHECK(d.repository.s3.parallel_parts == 4);
    CHECK_FALSE(d.repository.s3.path_style);
    CHECK(d.repository.lease_stale_minutes == 360);
    CHECK(parse(R"({"type": "s3", "bucket": "bkt", "lease_stale_minutes": 5})")
              .repository.lease_stale_minutes == 5);
}

TEST_CASE("repository: copies after a local backup dir", "[config][s3]") {
    Config c = parse_config(R"({"backup_dir": "/b", "repository": {"copies": [
        {"type": "s3", "bucket": "offsite", "prefix": "h1", "endpoint": "https://s3.example"}]}})",
                            "c.json");
    REQUIRE(c.repository.copies.size() == 1);
    CHECK(c.repository.copies[0].bucket == "offsite");
    CHECK(s3_location(c.repository.copies[0]) == "s3://offsite/h1");
    CHECK(c.backup_dir == "/b");
}

TEST_CASE("repository: errors name the field", "[config][s3]") {
    CHECK_THROWS_MATCHES(parse(R"({"type": "ftp"})"), Error,
                         IsError(Kind::Config, "/repository/type: expected one of local|s3"));
    CHECK_THROWS_MATCHES(parse(R"({"type": "s3"})"), Error,
                         IsError(Kind::Config, "/repository/bucket: required field is missing"));
    CHECK_THROWS_MATCHES(parse(R"({"type": "s3", "bucket": "Ab"})"), Error,
                         IsError(Kind::Config, "/repository/bucket: expected an S3 bucket name"));
    CHECK_THROWS_MATCHES(parse(R"({"type": "s3", "bucket": "bkt", "endpoint": "ftp://x"})"), Error,
                         IsError(Kind::Config, "/repository/endpoint: expected an http:// or https:// URL"));
    CHECK_THROWS_MATCHES(parse(R"({"type": "s3", "bucket": "bkt", "bandwidth_limit": "fast"})"), Error,
                         IsError(Kind::Config, "/repository/bandwidth_limit: expected bytes per second"));
    CHECK_THROWS_MATCHES(parse(R"({"type": "s3", "bucket": "bkt", "part_size_mib": 1})"), Error,
                         IsError(Kind::Config, "/repository/part_size_mib: expected integer 5-5120"));
    CHECK_THROWS_MATCHES(parse(R"({"type": "s3", "bucket": "bkt", "access_key_id": "AK"})"), Error,
                         IsError(Kind::Config, "/repository/secret_access_key_file: access_key_id and"));
    CHECK_THROWS_MATCHES(parse(R"({"type": "s3", "bucket": "bkt", "object_lock": {"mode": "compliance"}})"),
                         Error, IsError(Kind::Config, "/repository/object_lock/days: required field"));
    CHECK_THROWS_MATCHES(parse(R"({"bucket": "bkt"})"), Error,
                         IsError(Kind::Config, "/repository/bucket: unknown field"));
    CHECK_THROWS_MATCHES(parse(R"({"type": "s3", "bucket": "bkt"})", R"(, "backup_dir": "/b")"), Error,
                         IsError(Kind::Config, "/backup_dir: repository.type is \"s3\""));
    CHECK_THROWS_MATCHES(parse(R"({"copies": [{"bucket": "bkt"}]})"), Error,
                         IsError(Kind::Config, "/repository/copies/0/type: required: \"s3\""));
}

TEST_CASE("repository: bandwidth limits and s3:// locations", "[config][s3]") {
    CHECK(parse_bandwidth("50MiB/s") == std::optional<std::uint64_t>(50u << 20));
    CHECK(parse_bandwidth("800KiB/s") == std::optional<std::uint64_t>(800u << 10));
    CHECK(parse_bandwidth("1GB/s") == std::optional<std::uint64_t>(1000000000));
    CHECK(parse_bandwidth("1000") == std::optional<std::uint64_t>(1000));
    CHECK_FALSE(parse_bandwidth("MiB/s"));
    CHECK_FALSE(parse_bandwidth("5 MiB/s"));
    CHECK_FALSE(parse_bandwidth("5TiB/s"));

    CHECK(is_s3_location("s3://bucket/prefix"));
    CHECK_FALSE(is_s3_location("/var/backups"));
    CHECK(absolute_location("s3://bucket/p") == "s3://bucket/p");
    CHECK(absolute_location("rel").is_absolute());
    CHECK(parse_config(R"({"backup_dir": "s3://bkt/h"})", "c.json").backup_dir == "s3://bkt/h");
}

TEST_CASE("repository: open_repository names what is missing, never the secret", "[config][s3]") {
    ::unsetenv("NIGHTJAR_S3_ENDPOINT");
    RepositoryConfig none;
    CHECK_THROWS_MATCHES(open_repository("s3://bucket/p", none), Error,
                         IsError(Kind::Config, "repository s3://bucket/p: no S3 endpoint"));
    ::setenv("NIGHTJAR_S3_ENDPOINT", "http://127.0.0.1:1", 1);
    ::setenv("AWS_ACCESS_KEY_ID", "AKTEST", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value", 1);
    auto s = open_repository("s3://bucket/p/", none);
    auto* s3 = dynamic_cast<s3::S3Storage*>(s.get());
    REQUIRE(s3);
    CHECK(s3->key("manifest_x.json") == "p/manifest_x.json");
    CHECK(s3->client().options().endpoint == "http://127.0.0.1:1");
    CHECK(s3->client().options().path_style);
    CHECK(s->describe("a").find("very-secret-value") == std::string::npos);
    CHECK_THROWS_MATCHES(open_repository("s3://bucket/../x", none), Error,
                         IsError(Kind::Config, "may not contain \"..\""));
    auto local = open_repository("/tmp/x", none);
    CHECK(dynamic_cast<PosixStorage*>(local.get()));
    ::unsetenv("NIGHTJAR_S3_ENDPOINT");
    ::unsetenv("AWS_ACCESS_KEY_ID");
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
}
