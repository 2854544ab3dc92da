// Reading a backup dir written by an attacker: every manifest, config and artifact either reads or fails with
// a named error; nothing crashes, hangs or reads without bound.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "nightjar/core/clock.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/retention.hpp"
#include "nightjar/repo/verified_record.hpp"
#include "nightjar/repo/verify.hpp"
#include "nightjar/run/config.hpp"
#include "support/manifests.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using nlohmann::json;
using test::IsError;
namespace fs = std::filesystem;

namespace {

Manifest sample(const std::string& id = "20240101_120000") {
    Artifact a;
    a.component = "files";
    a.name = "config";
    a.path = id + "/files.tar.zst";
    a.size = 123;
    a.sha256 = io::sha256_hex(std::string_view("stored"));
    a.content_size = 456;
    a.content_sha256 = io::sha256_hex(std::string_view("content"));
    a.format = "tar";
    a.compression = "zstd";
    a.source = {{"entries", json::array()}};
    Manifest m = test::complete_manifest(id, {a});
    m.components.push_back({"files", "ok", "", {{"entries", 0}}});
    return m;
}

// A manifest document with a correct self-digest over whatever `j` now holds (what an attacker who knows
// the format writes).
std::string seal(json j) {
    j.erase("manifest_sha256");
    j["manifest_sha256"] = io::sha256_hex(j.dump());
    return j.dump();
}

std::string deep(std::size_t levels) {
    return std::string(levels, '[') + std::string(levels, ']');
}

// Kills the test binary (a loud failure) instead of letting a hang pass unnoticed.
struct HangGuard {
    explicit HangGuard(unsigned seconds) { ::alarm(seconds); }
    ~HangGuard() { ::alarm(0); }
};

}  // namespace

TEST_CASE("manifest parsing is total: size, nesting, NUL, trailing bytes, numbers", "[manifest][hostile]") {
    const std::string good = serialize(sample());
    REQUIRE(parse_manifest(good, "m").id == "20240101_120000");
    SECTION("100,000 levels of nesting: an error before any tree is built, no stack overflow") {
        REQUIRE_THROWS_MATCHES(parse_manifest(deep(100000), "m"), Error,
                               IsError(Kind::Verification, "m: /0/0/0"));
        REQUIRE_THROWS_MATCHES(parse_manifest(deep(100000), "m"), Error,
                               IsError(Kind::Verification, "nested deeper than 256 levels"));
        json j = to_json_with_digest(sample());
        std::string text = seal(j);
        text.insert(text.find("\"entries\":[]") + 11, deep(100000).substr(1, 199998));
        REQUIRE_THROWS_MATCHES(parse_manifest(text, "m"), Error,
                               IsError(Kind::Verification, "m: /artifacts/0/source/entries/0/0"));
    }
    SECTION("a number out of range names its field") {
        std::string text = seal(to_json_with_digest(sample()));
        std::size_t at = text.find("\"size\":123");
        REQUIRE(at != std::string::npos);
        text.replace(at, 10, "\"size\":1e400");
        REQUIRE_THROWS_MATCHES(
            parse_manifest(text, "m"), Error,
            IsError(Kind::Verification, "m: /artifacts/0/size: number out of range: 1e400"));
        json j = to_json_with_digest(sample());
        j["schema"] = 1e300;  // finite, whole, far outside int64: an error, not undefined behaviour
        REQUIRE_THROWS_MATCHES(parse_manifest(seal(j), "m"), Error,
                               IsError(Kind::Verification, "/schema: expected integer"));
    }
    SECTION("bytes after the document, after a NUL or not, are an error") {
        REQUIRE_THROWS_MATCHES(parse_manifest(good + std::string("\0garbage", 8), "m"), Error,
                               IsError(Kind::Verification, "m: not valid JSON: a NUL byte at byte " +
                                                               std::to_string(good.size())));
        REQUIRE_THROWS_MATCHES(parse_manifest(good + "{}", "m"), Error,
                               IsError(Kind::Verification, "m: not valid JSON"));
        CHECK(parse_manifest(good + "\n\n", "m").id == "20240101_120000");  // whitespace is part of JSON
    }
    SECTION("a path with an embedded NUL is rejected, not truncated") {
        json j = to_json_with_digest(sample());
        j["artifacts"][0]["path"] = std::string("20240101_120000/files.tar.zst\0/../../etc/shadow", 47);
        REQUIRE_THROWS_MATCHES(parse_manifest(seal(j), "m"), Error,
                               IsError(Kind::Verification, "m: /artifacts/0/path: contains a NUL byte"));
        CHECK_FALSE(is_safe_relative(std::string("a\0b", 3)));
    }
    SECTION("over 64 MiB is refused before parsing") {
        std::string huge = good;
        huge.append(kManifestMaxBytes, ' ');
        REQUIRE_THROWS_MATCHES(parse_manifest(huge, "m"), Error,
                               IsError(Kind::Verification, "m: larger than the 64 MiB a manifest may have"));
    }
}

TEST_CASE("config parsing is total and config reading is bounded", "[config][hostile]") {
    SECTION("a number out of range is a field error of the config") {
        REQUIRE_THROWS_MATCHES(
            parse_config(R"({"compression": {"level": 1e400}})", "c.json"), Error,
            IsError(Kind::Config, "config c.json: /compression/level: number out of range: 1e400"));
        REQUIRE_THROWS_MATCHES(parse_config(R"({"retention": {"days": 1e300}})", "c.json"), Error,
                               IsError(Kind::Config, "/retention/days: expected integer 1-100000"));
    }
    SECTION("deep nesting, trailing bytes, NUL") {
        REQUIRE_THROWS_MATCHES(parse_config(R"({"hooks": )" + deep(100000) + "}", "c.json"), Error,
                               IsError(Kind::Config, "config c.json: /hooks/0/0"));
        REQUIRE_THROWS_MATCHES(parse_config(R"({"backup_dir": "/b"} {"backup_dir": "/c"})", "c.json"), Error,
                               IsError(Kind::Config, "config c.json: not valid JSON"));
        REQUIRE_THROWS_MATCHES(parse_config(std::string("{\"backup_dir\": \"/b\"}\0{", 22), "c.json"), Error,
                               IsError(Kind::Config, "a NUL byte at byte 20"));
        REQUIRE_THROWS_MATCHES(parse_config(R"({"backup_dir": "/b\u0000/x"})", "c.json"), Error,
                               IsError(Kind::Config, "/backup_dir: contains a NUL byte"));
        REQUIRE_THROWS_MATCHES(parse_config(R"({"files": {"paths": ["/etc\u0000x"]}})", "c.json"), Error,
                               IsError(Kind::Config, "/files/paths/0: contains a NUL byte"));
        // Comments stay allowed in configs.
        CHECK(parse_config("// nightly\n{\"backup_dir\": \"/b\"}\n", "c.json").backup_dir == "/b");
    }
    SECTION("/dev/zero fails fast at the 1 MiB limit instead of reading without bound") {
        HangGuard guard(60);
        REQUIRE_THROWS_MATCHES(load_config("/dev/zero"), Error,
                               IsError(Kind::Config, "config /dev/zero: larger than the 1 MiB"));
        test::TempDir dir;
        test::write_file(dir / "big.json", "{\"backup_dir\": \"/b\"}" + std::string((1u << 20) + 1, ' '));
        REQUIRE_THROWS_MATCHES(load_config(dir / "big.json"), Error,
                               IsError(Kind::Config, "larger than the 1 MiB"));
    }
}

TEST_CASE("artifacts are read only as regular files of their recorded size", "[repository][hostile]") {
    test::TempDir dir;
    PosixStorage storage(dir.path());
    RepositoryWriter repo(storage);
    Lock lock = repo.lock();
    const std::string id = "20240101_000000";
    Manifest m;
    {
        Staging staging = repo.begin(id, {});
        auto w = staging.artifact("data.bin");
        w->write(io::as_bytes(std::string_view("payload")));
        w->finish();
        m = test::complete_manifest(id, {w->artifact("files", "data", "raw")});
        repo.publish(std::move(staging), m);
    }
    const fs::path file = dir / (id + "/data.bin");
    REQUIRE(verify_stored_bytes(repo, m.artifacts[0]).ok());
    HangGuard guard(60);  // both cases hung verify and restore for ever
    SECTION("a FIFO") {
        fs::remove(file);
        REQUIRE(::mkfifo(file.c_str(), 0600) == 0);
        VerifyOutcome v = verify_stored_bytes(repo, m.artifacts[0]);
        CHECK(v.status == VerifyStatus::Missing);
        CHECK_THAT(v.detail,
                   Catch::Contains(id + "/data.bin") && Catch::Contains("is a FIFO, not a regular file"));
        v = verify_artifact(repo, m.artifacts[0], [](io::Reader&) { return VerifyOutcome{}; });
        CHECK_THAT(v.detail, Catch::Contains("is a FIFO"));
        REQUIRE_THROWS_MATCHES(repo.open_artifact(m.artifacts[0]), Error,
                               IsError(Kind::Verification, "artifact " + id + "/data.bin"));
        REQUIRE_THROWS_MATCHES(open_verified_content(repo, m.artifacts[0]), Error,
                               IsError(Kind::Verification, "a FIFO, not a regular file"));
    }
    SECTION("a symlink to /dev/zero whose lstat size matches the manifest") {
        fs::remove(file);
        fs::create_symlink("/dev/zero", file);
        m.artifacts[0].size = std::string_view("/dev/zero").size();
        REQUIRE(repo.stat_artifact(m.artifacts[0])->size == m.artifacts[0].size);  // lstat agrees
        VerifyOutcome v = verify_stored_bytes(repo, m.artifacts[0]);
        CHECK(v.status == VerifyStatus::Missing);
        CHECK_THAT(v.detail, Catch::Contains("is a symbolic link, not a regular file"));
        REQUIRE_THROWS_MATCHES(open_unchecked_content(repo, m.artifacts[0]), Error,
                               IsError(Kind::Verification, "artifact " + id + "/data.bin"));
    }
    SECTION("the size is that of the opened file") {
        test::write_file(file, "payloaX!");
        VerifyOutcome v = verify_stored_bytes(repo, m.artifacts[0]);
        CHECK(v.status == VerifyStatus::SizeMismatch);
        REQUIRE_THROWS_MATCHES(repo.open_artifact(m.artifacts[0]), Error,
                               IsError(Kind::Verification, "size is 8 bytes, the manifest says"));
    }
    SECTION("a manifest that is a FIFO is damaged, not a hang") {
        fs::remove(dir / manifest_file_name(id));
        REQUIRE(::mkfifo((dir / manifest_file_name(id)).c_str(), 0600) == 0);
        REQUIRE_THROWS_MATCHES(repo.load(repo.list().at(0)), Error,
                               IsError(Kind::Verification, "is a FIFO, not a regular file"));
    }
}

TEST_CASE("full verification for retention is recorded and the record is not trusted blindly",
          "[repository][retention][hostile]") {
    test::TempDir dir;
    PosixStorage storage(dir.path());
    RepositoryWriter repo(storage);
    Lock lock = repo.lock();
    const std::string id = "20240101_000000";
    Manifest m;
    {
        Staging staging = repo.begin(id, {});
        auto w = staging.artifact("data.bin");
        w->write(io::as_bytes(std::string(100000, 'x')));
        w->finish();
        m = test::complete_manifest(id, {w->artifact("files", "data", "raw")});
        repo.publish(std::move(staging), m);
    }
    const fs::path record = dir / verified_record_name(id);
    StoredVerification first = verify_backup_stored(repo, m, {.record_to = &storage});
    CHECK(first.ok);
    CHECK_FALSE(first.from_record);
    REQUIRE(fs::exists(record));
    StoredVerification second = verify_backup_stored(repo, m, {.record_to = &storage});
    CHECK(second.ok);
    CHECK(second.from_record);  // same bytes: not hashed again
    SECTION("a flipped byte of the same size is found again") {
        // File times tick in jiffies: let the rewrite below get a later mtime/ctime than the record saw.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::string bytes = test::read_file(dir / (id + "/data.bin"));
        bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0xff);
        test::write_file(dir / (id + "/data.bin"), bytes);
        StoredVerification v = verify_backup_stored(repo, m, {.record_to = &storage});
        CHECK_FALSE(v.ok);
        CHECK_FALSE(v.from_record);
        CHECK_THAT(v.problem, Catch::Contains("data (" + id + "/data.bin): digest-mismatch"));
        CHECK_FALSE(verify_backup_stored(repo, m).ok);  // the failure is recorded as such
    }
    SECTION("a record older than a week is stale") {
        json old = json::parse(test::read_file(record));
        old["verified_unix"] = unix_now() - 8 * 86400;
        test::write_file(record, old.dump());
        CHECK_FALSE(verify_backup_stored(repo, m).from_record);
    }
    SECTION("a forged or hostile record is ignored") {
        json forged = json::parse(test::read_file(record));
        forged["state"]["artifacts"][0]["stamp"] = "1:2:3";
        test::write_file(record, forged.dump());
        CHECK_FALSE(verify_backup_stored(repo, m).from_record);
        for (const std::string& text : {deep(100000), std::string("{\"ok\": true}"), std::string("\0", 1),
                                        std::string("{\"ok\": 1e400}")}) {
            test::write_file(record, text);
            StoredVerification v = verify_backup_stored(repo, m);
            CHECK(v.ok);
            CHECK_FALSE(v.from_record);
        }
    }
}

TEST_CASE("retention keeps a pinned backup and one it could not read", "[retention]") {
    std::vector<BackupInfo> backups{
        {"20240101_000000", 1704067200, "complete", true, "", ""},
        {"20240102_000000", 1704153600, "partial", true, "", "published by this run"},
        {"20231201_000000", 1701388800, "unreadable", false, "EIO", ""}};
    RetentionPolicy policy;
    policy.keep_last = 1;
    auto ds = plan_retention(backups, policy, 1704153600);
    REQUIRE(ds.size() == 3);
    CHECK(ds[0].id == "20240102_000000");
    CHECK(ds[0].keep);
    CHECK(ds[0].reasons.front() == "published by this run");
    CHECK(ds[1].keep);
    CHECK(ds[2].keep);
    CHECK_THAT(ds[2].reasons.front(), Catch::Contains("manifest could not be read (EIO)"));
}

TEST_CASE("fuzz: mutated and sealed manifests give a value or a named error, never a crash",
          "[manifest][repository][hostile][fuzz]") {
    std::mt19937_64 rng(20261201);
    auto pick = [&rng](std::size_t n) { return static_cast<std::size_t>(rng() % (n ? n : 1)); };
    const std::vector<std::string> inserts{"1e400",    "-1e400",   std::string("\0", 1),
                                           "\\u0000",  "[[[[[[[[", "}",
                                           "\"",       "\\",       "99999999999999999999999",
                                           "\xff\xfe", "null",     deep(300),
                                           "{\"a\":",  "/*",       "//"};
    Manifest base = sample();
    base.artifacts[0].source = {{"entries", json::array({{{"path", "etc/a"}, {"type", "file"}}})}};
    const std::string good = serialize(base);
    std::size_t tried = 0, values = 0, errors = 0, escaped = 0;
    auto mutate = [&](std::string s) {
        int rounds = 1 + static_cast<int>(pick(4));
        for (int r = 0; r < rounds; ++r) {
            switch (pick(6)) {
                case 0:
                    if (!s.empty()) s[pick(s.size())] = static_cast<char>(rng());
                    break;
                case 1:
                    s.insert(pick(s.size() + 1), inserts[pick(inserts.size())]);
                    break;
                case 2:
                    if (!s.empty()) s.erase(pick(s.size()), 1 + pick(16));
                    break;
                case 3: {
                    std::size_t from = pick(s.size()), len = pick(64);
                    s.insert(pick(s.size() + 1), s.substr(from, len));
                    break;
                }
                case 4:
                    s.append(inserts[pick(inserts.size())]);
                    break;
                default:
                    if (!s.empty()) s.resize(pick(s.size()));
            }
        }
        return s;
    };
    // A mutation that is still JSON gets a correct self-digest half the time, so the field checks run too.
    auto maybe_sealed = [&](const std::string& s) {
        if (pick(2) == 0) return s;
        try {
            json j = parse_json_document(s, "fuzz", Kind::Verification);
            if (!j.is_object()) return s;
            return seal(j);
        } catch (const Error&) {
            return s;
        }
    };
    auto judge = [&](const std::function<void()>& f) {
        ++tried;
        try {
            f();
            ++values;
        } catch (const Error& e) {
            ++errors;
            if (e.kind() != Kind::Verification) {
                ++escaped;
                FAIL_CHECK("not a verification error: " << e.what());
            }
        } catch (const std::exception& e) {
            ++escaped;
            FAIL_CHECK("escaped as " << e.what());
        }
    };
    for (int i = 0; i < 4000; ++i) {
        std::string text = maybe_sealed(mutate(good));
        judge([&] { parse_manifest(text, "fuzz"); });
    }
    // Sealed structural edits: values of the wrong type or range at every field.
    json doc = to_json_with_digest(base);
    const std::vector<json> values_to_try{nullptr,
                                          1e300,
                                          -1,
                                          "x",
                                          json::array(),
                                          json::object(),
                                          std::string("a\0b", 3),
                                          18446744073709551615ull,
                                          true};
    std::vector<json::json_pointer> pointers;
    const json flat = doc.flatten();
    for (const auto& el : flat.items()) pointers.emplace_back(el.key());
    for (const auto& p : pointers)
        for (const auto& v : values_to_try) {
            json j = doc;
            j[p] = v;
            std::string text = seal(j);
            judge([&] { parse_manifest(text, "fuzz"); });
        }
    // Through the repository reader, from disk.
    test::TempDir dir;
    PosixStorage storage(dir.path());
    RepositoryReader repo(storage);
    for (int i = 0; i < 300; ++i) {
        test::write_file(dir / "manifest_20240101_120000.json", maybe_sealed(mutate(good)));
        judge([&] { repo.load(repo.list().at(0)); });
    }
    WARN("fuzz: " << tried << " hostile manifests tried: " << values << " read, " << errors
                  << " named errors, " << escaped << " escaped, 0 crashed, 0 hung");
    CHECK(escaped == 0);
    CHECK(errors > tried / 2);
}
