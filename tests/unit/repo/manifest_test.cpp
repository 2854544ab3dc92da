#include <catch2/catch.hpp>

#include "nightjar/io/sha256.hpp"
#include "nightjar/repo/manifest.hpp"
#include "support/matchers.hpp"

using namespace nightjar;
using nlohmann::json;
using test::IsError;

namespace {

Manifest sample() {
    Manifest m;
    m.id = "20240101_120000";
    m.started_at = "2024-01-01T12:00:00Z";
    m.finished_at = "2024-01-01T12:00:05Z";
    m.host = "db1";
    m.nightjar_version = "0.1.0";
    m.status = "complete";
    m.options = {{"skip", json::array()}};
    Artifact a;
    a.component = "files";
    a.name = "config";
    a.path = "20240101_120000/files.tar.zst";
    a.size = 123;
    a.sha256 = io::sha256_hex(std::string_view("stored"));
    a.content_size = 456;
    a.content_sha256 = io::sha256_hex(std::string_view("content"));
    a.format = "tar";
    a.compression = "zstd";
    a.source = {{"entries", json::array()}};
    m.artifacts.push_back(a);
    m.components.push_back({"files", "ok", "", {{"entries", 0}}});
    return m;
}

// Re-serialises after `edit` with a recomputed self-digest, so only the edited field is wrong.
std::string edited(const std::function<void(json&)>& edit) {
    json j = to_json_with_digest(sample());
    j.erase("manifest_sha256");
    edit(j);
    j["manifest_sha256"] = io::sha256_hex(j.dump());
    return j.dump();
}

}  // namespace

TEST_CASE("manifest round-trips through JSON", "[manifest]") {
    Manifest m = sample();
    Manifest back = parse_manifest(serialize(m), "m");
    CHECK(back.id == m.id);
    CHECK(back.status == "complete");
    REQUIRE(back.artifacts.size() == 1);
    CHECK(back.artifacts[0].sha256 == m.artifacts[0].sha256);
    CHECK(back.artifacts[0].content_size == 456);
    CHECK(back.components[0].details["entries"] == 0);
    CHECK(serialize(back) == serialize(m));
}

TEST_CASE("manifest validation names the field that is wrong", "[manifest]") {
    SECTION("missing field") {
        REQUIRE_THROWS_MATCHES(parse_manifest(edited([](json& j) { j.erase("host"); }), "m"), Error,
                               IsError(Kind::Verification, "m: /host: required field is missing"));
    }
    SECTION("wrong type") {
        REQUIRE_THROWS_MATCHES(
            parse_manifest(edited([](json& j) { j["artifacts"][0]["size"] = "big"; }), "m"), Error,
            IsError(Kind::Verification, "/artifacts/0/size: expected a non-negative integer"));
    }
    SECTION("unknown schema") {
        REQUIRE_THROWS_MATCHES(parse_manifest(edited([](json& j) { j["schema"] = 2; }), "m"), Error,
                               IsError(Kind::Verification, "/schema: unknown schema version 2"));
    }
    SECTION("absolute artifact path") {
        REQUIRE_THROWS_MATCHES(
            parse_manifest(edited([](json& j) { j["artifacts"][0]["path"] = "/etc/passwd"; }), "m"), Error,
            IsError(Kind::Verification, "/artifacts/0/path: artifact path escapes"));
    }
    SECTION("dot-dot artifact path") {
        REQUIRE_THROWS_MATCHES(
            parse_manifest(edited([](json& j) { j["artifacts"][0]["path"] = "a/../../x"; }), "m"), Error,
            IsError(Kind::Verification, "/artifacts/0/path: artifact path escapes"));
    }
    SECTION("malformed digest") {
        REQUIRE_THROWS_MATCHES(
            parse_manifest(edited([](json& j) { j["artifacts"][0]["sha256"] = "ABC"; }), "m"), Error,
            IsError(Kind::Verification, "/artifacts/0/sha256: malformed SHA-256"));
    }
    SECTION("unknown field") {
        REQUIRE_THROWS_MATCHES(parse_manifest(edited([](json& j) { j["extra"] = 1; }), "m"), Error,
                               IsError(Kind::Verification, "/extra: unknown field"));
    }
    SECTION("not JSON") {
        REQUIRE_THROWS_MATCHES(parse_manifest("{nope", "m"), Error,
                               IsError(Kind::Verification, "m: not valid JSON"));
    }
}

TEST_CASE("an edited manifest is detected by its self-digest", "[manifest]") {
    json j = json::parse(serialize(sample()));
    j["artifacts"][0]["size"] = 124;
    REQUIRE_THROWS_MATCHES(parse_manifest(j.dump(), "m"), Error, IsError(Kind::Verification, "self-digest"));
}

TEST_CASE("an artifact records its pipeline, and an older manifest without it reads as zstd",
          "[manifest][pipeline]") {
    SECTION("no pipeline field: today's zstd pipeline, and the document is written back unchanged") {
        Manifest m = sample();
        REQUIRE_FALSE(m.artifacts[0].pipeline.has_value());
        const std::string text = serialize(m);
        CHECK(json::parse(text)["artifacts"][0].count("pipeline") == 0);
        Manifest back = parse_manifest(text, "m");
        CHECK_FALSE(back.artifacts[0].pipeline.has_value());
        CHECK(back.artifacts[0].spec() == io::PipelineSpec::legacy(io::Codec::Zstd));
        CHECK(back.artifacts[0].spec().cipher == io::Cipher::None);
        CHECK(serialize(back) == text);
    }
    SECTION("compression none without a pipeline reads as no codec") {
        Manifest m = sample();
        m.artifacts[0].compression = "none";
        CHECK(parse_manifest(serialize(m), "m").artifacts[0].spec().codec == io::Codec::None);
    }
    SECTION("a recorded pipeline round-trips, beside compression") {
        Manifest m = sample();
        m.artifacts[0].set_pipeline({.codec = io::Codec::Zstd, .level = 7, .cipher = io::Cipher::Age});
        CHECK(m.artifacts[0].compression == "zstd");
        json j = json::parse(serialize(m));
        CHECK(j["artifacts"][0]["pipeline"] == json{{"codec", "zstd"}, {"level", 7}, {"cipher", "age"}});
        CHECK(j["artifacts"][0]["compression"] == "zstd");
        CHECK(j["schema"] == 1);
        Manifest back = parse_manifest(serialize(m), "m");
        REQUIRE(back.artifacts[0].pipeline.has_value());
        CHECK(back.artifacts[0].spec() ==
              io::PipelineSpec{.codec = io::Codec::Zstd, .level = 7, .cipher = io::Cipher::Age});
        CHECK(serialize(back) == serialize(m));
    }
    SECTION("unknown values and fields are refused with their JSON pointer") {
        auto with = [](json p) { return edited([&](json& j) { j["artifacts"][0]["pipeline"] = p; }); };
        REQUIRE_THROWS_MATCHES(
            parse_manifest(with({{"codec", "zstd"}, {"level", 3}, {"cipher", "rot13"}}), "m"), Error,
            IsError(Kind::Verification, "m: /artifacts/0/pipeline/cipher:"));
        REQUIRE_THROWS_MATCHES(parse_manifest(with({{"codec", "xz"}, {"level", 3}, {"cipher", "none"}}), "m"),
                               Error, IsError(Kind::Verification, "m: /artifacts/0/pipeline/codec:"));
        REQUIRE_THROWS_MATCHES(
            parse_manifest(with({{"codec", "zstd"}, {"level", 3}, {"cipher", "none"}, {"salt", 1}}), "m"),
            Error, IsError(Kind::Verification, "m: /artifacts/0/pipeline/salt: unknown field"));
        REQUIRE_THROWS_MATCHES(parse_manifest(with("zstd"), "m"), Error,
                               IsError(Kind::Verification, "m: /artifacts/0/pipeline:"));
        REQUIRE_THROWS_MATCHES(parse_manifest(with({{"codec", "none"}, {"cipher", "none"}}), "m"), Error,
                               IsError(Kind::Verification,
                                       "m: /artifacts/0/pipeline/codec: the pipeline's "
                                       "codec none contradicts the artifact's compression zstd"));
    }
}

TEST_CASE("backup ids", "[manifest]") {
    CHECK(is_backup_id("20240101_120000"));
    CHECK(is_backup_id("20240101_120000_2"));
    CHECK_FALSE(is_backup_id("20240101-120000"));
    CHECK_FALSE(is_backup_id("2024010_1120000"));
    CHECK_FALSE(is_backup_id("20240101_120000_"));
    CHECK(backup_id_for(1704110400) == "20240101_120000");
    CHECK(parse_backup_id_time("20240101_120000_3") == 1704110400);
    CHECK(manifest_file_name("20240101_120000") == "manifest_20240101_120000.json");
}
