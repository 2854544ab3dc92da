#include <catch2/catch.hpp>
#include <random>

#include "nightjar/io/sha256.hpp"
#include "nightjar/io/signing.hpp"
#include "nightjar/repo/backup_index.hpp"
#include "nightjar/repo/manifest.hpp"
#include "support/matchers.hpp"

using namespace nightjar;
using nlohmann::json;
using test::IsError;

namespace {

const std::string kWhat = "index /b/index_20261201_013000.json";

BackupIndex sample() {
    BackupIndex x;
    x.id = "20261201_013000";
    x.status = "complete";
    x.started_at = "2026-12-01T01:30:00Z";
    x.finished_at = "2026-12-01T01:31:07Z";
    x.host = "db1";
    x.encryption = "age";
    x.manifest = {"manifest_20261201_013000.json.age", 2048, io::sha256_hex(std::string_view("m"))};
    x.artifacts = {
        {"20261201_013000/pg-app.pgdump.zst.age", 123456789, io::sha256_hex(std::string_view("a"))},
        {"20261201_013000/files.tar.zst.age", 42, io::sha256_hex(std::string_view("b"))}};
    x.recipients = {io::key_fingerprint(io::SigningKey::generate().public_key().key)};
    return x;
}

std::string parse_error(const std::string& text) {
    try {
        parse_index(text, kWhat);
    } catch (const Error& e) {
        CHECK(e.kind() == Kind::Verification);
        return e.what();
    }
    FAIL("parsed: " << text.substr(0, 200));
    return "";
}

std::string with(const std::function<void(json&)>& edit, const BackupIndex& x = sample()) {
    json j = to_json(x);
    edit(j);
    return j.dump();
}

}  // namespace

TEST_CASE("backup index: signed, serialized, parsed back and verified under a pinned key", "[index]") {
    auto key = io::SigningKey::generate();
    auto x = sample();
    sign_index(x, key);
    CHECK(x.is_signed());
    CHECK(x.signer == key.public_key().str());
    auto text = serialize(x);
    auto back = parse_index(text, kWhat);
    CHECK(serialize(back) == text);
    io::TrustedSigners trusted{{"db1", {io::SigningKey::generate().public_key(), key.public_key()}}};
    CHECK(verify_index(back, trusted) == IndexTrust::Signed);
    CHECK(verify_index(back, trusted, {.allow_unsigned = true}) == IndexTrust::Signed);
    // The id its file name gives must be the one it signs: a signed index copied over another is refused.
    CHECK(verify_index(back, trusted, {.expected_id = "20261201_013000"}) == IndexTrust::Signed);
    CHECK_THROWS_MATCHES(
        verify_index(back, trusted, {.expected_id = "20261202_013000"}), Error,
        IsError(Kind::Verification, "backup 20261202_013000: its index names backup 20261201_013000"));
    CHECK(index_file_name(x.id) == "index_20261201_013000.json");
    // Nothing about content: exactly these fields, and the artifacts carry only path, size and digest.
    json j = json::parse(text);
    std::vector<std::string> keys;
    for (auto& [k, v] : j.items()) keys.push_back(k);
    CHECK(keys == std::vector<std::string>{"artifacts", "encryption", "finished_at", "host", "id", "manifest",
                                           "recipients", "schema", "signature", "signer", "started_at",
                                           "status"});
    for (auto& a : j["artifacts"]) {
        std::vector<std::string> ak;
        for (auto& [k, v] : a.items()) ak.push_back(k);
        CHECK(ak == std::vector<std::string>{"path", "sha256", "size"});
    }
}

TEST_CASE("backup index: any edited field breaks the signature", "[index]") {
    auto key = io::SigningKey::generate();
    io::TrustedSigners trusted{{"db1", {key.public_key()}}, {"db2", {key.public_key()}}};
    auto x = sample();
    sign_index(x, key);
    std::vector<std::pair<std::string, std::function<void(json&)>>> edits = {
        {"status", [](json& j) { j["status"] = "partial"; }},
        {"id", [](json& j) { j["id"] = "20261201_013001"; }},
        {"finished_at", [](json& j) { j["finished_at"] = "2026-12-01T01:31:08Z"; }},
        {"host", [](json& j) { j["host"] = "db2"; }},  // pinned with the same key: still the content changed
        {"artifact size", [](json& j) { j["artifacts"][0]["size"] = 123456788; }},
        {"artifact digest",
         [](json& j) { j["artifacts"][1]["sha256"] = io::sha256_hex(std::string_view("c")); }},
        {"artifact path", [](json& j) { j["artifacts"][1]["path"] = "20261201_013000/files2.tar.zst.age"; }},
        {"artifact dropped", [](json& j) { j["artifacts"].erase(1); }},
        {"manifest digest", [](json& j) { j["manifest"]["sha256"] = io::sha256_hex(std::string_view("n")); }},
        {"recipients", [](json& j) { j["recipients"].push_back(j["recipients"][0]); }},
        {"encryption",
         [](json& j) {
             j["encryption"] = "none";
             j["recipients"] = json::array();
         }},
    };
    for (auto& [name, edit] : edits) {
        DYNAMIC_SECTION("edited " << name) {
            auto edited = parse_index(with(edit, x), kWhat);  // still well formed
            CHECK_THROWS_MATCHES(verify_index(edited, trusted, {.allow_unsigned = true}), Error,
                                 IsError(Kind::Verification, "signature does not verify"));
        }
    }
    SECTION("a flipped signature bit") {
        auto sig = io::parse_signature(x.signature);
        (*sig)[5] ^= std::byte{4};
        auto y = x;
        y.signature = io::signature_str(*sig);
        CHECK_THROWS_MATCHES(
            verify_index(parse_index(serialize(y), kWhat), trusted), Error,
            IsError(Kind::Verification, "backup 20261201_013000 (host db1): the index signature"));
    }
}

TEST_CASE("backup index: an unpinned signer or an unsigned index is refused with the host named", "[index]") {
    auto key = io::SigningKey::generate();
    auto x = sample();
    sign_index(x, key);
    // Not pinned at all; pinned for another host only; another key pinned for this host.
    CHECK_THROWS_MATCHES(verify_index(x, {}), Error,
                         IsError(Kind::Verification, "a key not pinned for host db1"));
    CHECK_THROWS_MATCHES(verify_index(x, {{"db2", {key.public_key()}}}), Error,
                         IsError(Kind::Verification, "not pinned for host db1"));
    CHECK_THROWS_MATCHES(verify_index(x, {{"db1", {io::SigningKey::generate().public_key()}}}), Error,
                         IsError(Kind::Verification, "signed by " + key.public_key().fingerprint()));
    try {
        verify_index(x, {});
    } catch (const Error& e) {
        // The message tells the operator the exact key to pin if it is genuine.
        CHECK(std::string(e.what()).find(key.public_key().str()) != std::string::npos);
    }
    // An attacker who re-signs with their own key gets the same refusal.
    auto forged = x;
    forged.status = "partial";
    sign_index(forged, io::SigningKey::generate());
    CHECK_THROWS_MATCHES(verify_index(forged, {{"db1", {key.public_key()}}}), Error,
                         IsError(Kind::Verification, "not pinned for host db1"));
    // Unsigned (legacy): refused unless allowed; stripping a signature is the same as never having one.
    auto legacy = sample();
    auto parsed = parse_index(serialize(legacy), kWhat);
    CHECK_FALSE(parsed.is_signed());
    CHECK_THROWS_MATCHES(verify_index(parsed, {{"db1", {key.public_key()}}}), Error,
                         IsError(Kind::Verification, "(host db1): the index is not signed"));
    CHECK(verify_index(parsed, {}, {.allow_unsigned = true}) == IndexTrust::Unsigned);
    CHECK_THROWS_MATCHES(check_unindexed_backup("20240101_000000", {}), Error,
                         IsError(Kind::Verification, "backup 20240101_000000: has no signed index"));
    CHECK_NOTHROW(check_unindexed_backup("20240101_000000", {.allow_unsigned = true}));
}

TEST_CASE("backup index: hostile documents are refused with the JSON pointer named", "[index]") {
    auto key = io::SigningKey::generate();
    auto x = sample();
    sign_index(x, key);
    const std::string ok = serialize(x);
    REQUIRE_NOTHROW(parse_index(ok, kWhat));
    struct Case {
        std::string name;
        std::string text;
        std::string fragment;
    };
    auto w = [&](const std::function<void(json&)>& edit) { return with(edit, x); };
    std::vector<Case> cases = {
        {"empty", "", kWhat},
        {"not an object", "[]", "expected an object"},
        {"trailing bytes", ok + "{}", kWhat},
        {"NUL byte", ok.substr(0, 10) + std::string(1, '\0') + ok.substr(10), kWhat},
        {"deep nesting", std::string(100000, '[') + std::string(100000, ']'), kWhat},
        {"too large", std::string(kIndexMaxBytes + 1, ' '), "larger than the 16 MiB"},
        {"unknown field", w([](json& j) { j["tables"] = json::array({"users"}); }), "/tables"},
        {"unknown artifact field", w([](json& j) { j["artifacts"][0]["rows"] = 10; }), "/artifacts/0/rows"},
        {"schema 2", w([](json& j) { j["schema"] = 2; }), "/schema: unknown index schema 2"},
        {"schema missing", w([](json& j) { j.erase("schema"); }), "/schema: required"},
        {"bad id", w([](json& j) { j["id"] = "../../etc"; }), "/id: malformed backup id"},
        {"bad status", w([](json& j) { j["status"] = "done"; }), "/status"},
        {"empty time", w([](json& j) { j["started_at"] = ""; }), "/started_at"},
        {"control char in time", w([](json& j) { j["finished_at"] = "2026\n"; }), "/finished_at"},
        {"host with a slash", w([](json& j) { j["host"] = "db1/../x"; }), "/host: not a host name"},
        {"host too long", w([](json& j) { j["host"] = std::string(300, 'a'); }), "/host"},
        {"encryption unknown", w([](json& j) { j["encryption"] = "rot13"; }), "/encryption"},
        {"age without recipients", w([](json& j) { j["recipients"] = json::array(); }), "/recipients"},
        {"bad fingerprint", w([](json& j) { j["recipients"][0] = "MD5:xx"; }), "/recipients/0"},
        {"recipients not a list", w([](json& j) { j["recipients"] = "x"; }), "/recipients"},
        {"absolute path", w([](json& j) { j["artifacts"][0]["path"] = "/etc/passwd"; }), "/artifacts/0/path"},
        {"dot-dot path", w([](json& j) { j["artifacts"][1]["path"] = "a/../../x"; }), "/artifacts/1/path"},
        {"manifest path escapes", w([](json& j) { j["manifest"]["path"] = "../m"; }), "/manifest/path"},
        {"negative size", w([](json& j) { j["artifacts"][0]["size"] = -1; }), "/artifacts/0/size"},
        {"huge number", w([](json& j) { j["artifacts"][0]["size"] = 1e300; }), "/artifacts/0/size"},
        {"number out of range",
         ok.substr(0, ok.find("123456789")) + "1" + std::string(400, '9') +
             ok.substr(ok.find("123456789") + 9),
         kWhat},
        {"uppercase digest", w([](json& j) {
             std::string s = j["artifacts"][0]["sha256"];
             for (auto& c : s) c = static_cast<char>(std::toupper(c));
             j["artifacts"][0]["sha256"] = s;
         }),
         "/artifacts/0/sha256"},
        {"artifacts not a list", w([](json& j) { j["artifacts"] = json::object(); }), "/artifacts"},
        {"artifact not an object", w([](json& j) { j["artifacts"][0] = 7; }), "/artifacts/0"},
        {"signer without signature", w([](json& j) { j.erase("signature"); }),
         "/signature: signer and signature"},
        {"signature without signer", w([](json& j) { j.erase("signer"); }), "/signer: signer and signature"},
        {"bad signer", w([](json& j) { j["signer"] = "ssh-ed25519 AAAA"; }), "/signer: signing key"},
        {"short signature", w([](json& j) { j["signature"] = "AAAA"; }), "/signature: expected 64 bytes"},
        {"signature wrong type", w([](json& j) { j["signature"] = 5; }), "/signature"},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.name) {
            auto msg = parse_error(c.text);
            CHECK(msg.rfind(kWhat, 0) == 0);
            CHECK(msg.find(c.fragment) != std::string::npos);
        }
    }
    SECTION("too many artifacts") {
        auto big = sample();
        big.artifacts.assign(kIndexMaxArtifacts + 1, big.artifacts[0]);
        auto msg = parse_error(to_json(big).dump());  // compact: under the size cap
        INFO(msg);
        CHECK(msg.find("/artifacts: more than 100000") != std::string::npos);
    }
}

TEST_CASE("backup index: random damage gives an index or a verification error, nothing else", "[index]") {
    auto x = sample();
    sign_index(x, io::SigningKey::generate());
    const std::string ok = serialize(x);
    std::mt19937 rng(15);
    int refused = 0;
    for (int i = 0; i < 3000; ++i) {
        std::string t = ok;
        int flips = 1 + static_cast<int>(rng() % 4);
        for (int f = 0; f < flips; ++f) {
            std::size_t at = rng() % t.size();
            switch (rng() % 3) {
                case 0:
                    t[at] = static_cast<char>(rng() & 0xff);
                    break;
                case 1:
                    t.erase(at, 1 + rng() % 8);
                    break;
                default:
                    t.insert(at, 1, "{}[]\",:0e-\\u"[rng() % 13]);
            }
        }
        try {
            parse_index(t, kWhat);
        } catch (const Error& e) {
            REQUIRE(e.kind() == Kind::Verification);
            ++refused;
        }
    }
    CHECK(refused > 2000);
}

TEST_CASE("backup index: made from a manifest, it keeps stored facts and drops every content detail",
          "[index]") {
    Manifest m;
    m.id = "20261201_013000";
    m.started_at = "2026-12-01T01:30:00Z";
    m.finished_at = "2026-12-01T01:31:07Z";
    m.host = "db1.example.org";
    m.nightjar_version = "0.1.0";
    m.status = "partial";
    Artifact a;
    a.component = "postgres";
    a.name = "db-payroll";
    a.path = "20261201_013000/pg-payroll.pgdump.zst.age";
    a.size = 999;
    a.sha256 = io::sha256_hex(std::string_view("stored"));
    a.content_size = 123456;
    a.content_sha256 = io::sha256_hex(std::string_view("content"));
    a.format = "pg_dump-custom";
    a.compression = "zstd";
    a.source = {{"tables", {"salaries"}}, {"rows", 4242}};
    m.artifacts = {a};
    m.components = {{"postgres", "ok", "", {{"databases", {"payroll"}}}}};
    IndexObject mo{"manifest_20261201_013000.json.age", 4096, io::sha256_hex(std::string_view("manifest"))};
    auto fp = io::key_fingerprint(io::SigningKey::generate().public_key().key);
    auto x = make_index(m, mo, {fp});
    CHECK(x.id == m.id);
    CHECK(x.status == "partial");
    CHECK(x.host == "db1.example.org");
    CHECK(x.started_at == m.started_at);
    CHECK(x.finished_at == m.finished_at);
    CHECK(x.encryption == "age");
    CHECK(x.recipients == std::vector<std::string>{fp});
    CHECK(x.manifest.path == mo.path);
    REQUIRE(x.artifacts.size() == 1);
    CHECK(x.artifacts[0].path == a.path);
    CHECK(x.artifacts[0].size == 999);
    CHECK(x.artifacts[0].sha256 == a.sha256);
    auto key = io::SigningKey::generate();
    sign_index(x, key);
    auto text = serialize(x);
    for (const std::string& secret :
         std::vector<std::string>{"db-payroll", "salaries", "4242", "123456", a.content_sha256,
                                  "pg_dump-custom", "databases", "postgres\"", "0.1.0"})
        CHECK(text.find(secret) == std::string::npos);
    CHECK(verify_index(parse_index(text, kWhat), {{"db1.example.org", {key.public_key()}}},
                       {.expected_id = m.id}) == IndexTrust::Signed);
    CHECK(make_index(m, mo, {}).encryption == "none");
    m.host = "bad host";
    CHECK_THROWS_MATCHES(make_index(m, mo, {fp}), Error, IsError(Kind::Config, "cannot be pinned"));
}
