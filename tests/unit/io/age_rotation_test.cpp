#include <catch2/catch.hpp>
#include <cstring>
#include <random>

#include "nightjar/core/process.hpp"
#include "nightjar/io/age.hpp"
#include "nightjar/io/age_rotation.hpp"
#include "nightjar/io/filter.hpp"
#include "nightjar/io/sha256.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using namespace nightjar::io;
using test::IsError;
namespace fs = std::filesystem;

namespace {

struct StringWriter final : Writer {
    std::string data;
    void write(Bytes b) override { data.append(as_chars(b)); }
    void finish() override {}
};

// Hands out at most `piece` bytes a read, to exercise every boundary.
struct StringReader final : Reader {
    std::string data;
    std::size_t pos = 0;
    std::size_t piece;
    explicit StringReader(std::string d, std::size_t p = 1 << 20) : data(std::move(d)), piece(p) {}
    std::size_t read(MutableBytes buf) override {
        std::size_t n = std::min({buf.size(), data.size() - pos, piece});
        std::memcpy(buf.data(), data.data() + pos, n);
        pos += n;
        return n;
    }
};

std::string random_string(std::size_t n, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
}

std::string encrypt(const std::string& plain, const std::vector<AgeRecipient>& to) {
    FilterChain chain;
    chain.add<AgeEncryptFilter>(to);
    StringWriter out;
    FilteredWriter w(chain, out);
    w.write(as_bytes(plain));
    w.finish();
    return out.data;
}

AgeIdentities only(const AgeIdentity& id) {
    AgeIdentities ids;
    ids.x25519.push_back(id);
    return ids;
}

// Decrypts what `src` yields, read in 1000-byte pieces.
std::string decrypt_reader(Reader& src, AgeIdentities ids) {
    StringWriter out;
    AgeDecryptWriter w(std::move(ids), out);
    std::vector<std::byte> buf(1000);
    while (std::size_t n = src.read(buf)) w.write(Bytes(buf.data(), n));
    w.finish();
    return out.data;
}

std::string rotated_plain(const std::string& header, const std::string& artifact, const AgeIdentity& id,
                          std::size_t piece) {
    StringReader h(header, piece), a(artifact, piece);
    RotatedArtifactReader r(h, a);
    return decrypt_reader(r, only(id));
}

std::size_t header_length(const std::string& file) {
    auto mac = file.find("\n--- ");
    REQUIRE(mac != std::string::npos);
    return file.find('\n', mac + 1) + 1;
}

std::string run_ok(const std::vector<std::string>& argv) {
    auto r = run_capture(argv);
    INFO(argv[0] << " " << (argv.size() > 2 ? argv[2] : "") << ": " << r.err);
    REQUIRE(r.status == 0);
    return r.out;
}

std::string rewrap(const std::string& artifact, const AgeIdentity& id, const std::vector<AgeRecipient>& add,
                   RewrapOptions options = {}) {
    StringReader r(artifact, 333);
    return rewrap_age_header(r, only(id), add, options);
}

}  // namespace

TEST_CASE("age rotation: a new header opens the untouched payload, with us and with the age CLI",
          "[age][rotation]") {
    test::TempDir dir;
    auto old_id = AgeIdentity::generate();
    auto new_id = AgeIdentity::generate();
    test::write_file(dir / "new.key", new_id.secret_str() + "\n");
    test::write_file(dir / "old.key", old_id.secret_str() + "\n");
    // 0 bytes, exactly one chunk (the last-chunk edge), and several chunks with a short last one.
    for (std::size_t size : {std::size_t{0}, kAgeChunkSize, 3 * kAgeChunkSize + 123}) {
        DYNAMIC_SECTION("plaintext of " << size << " bytes") {
            auto plain = random_string(size, static_cast<unsigned>(size));
            auto artifact = encrypt(plain, {old_id.recipient()});
            const auto artifact_sha = sha256_hex(std::string_view(artifact));
            auto header = rewrap(artifact, old_id, {new_id.recipient()});
            // Only a header: version line ... MAC line, no payload nonce.
            CHECK(header.rfind("age-encryption.org/v1\n", 0) == 0);
            CHECK(header.size() == header_length(header));
            CHECK(std::count(header.begin(), header.end(), '>') == 2);  // the old stanza and the new one
            CHECK(header.substr(0, header_length(artifact) - 48) ==
                  artifact.substr(0, header_length(artifact) - 48));  // old stanza kept byte for byte
            // Our reader: new identity and old identity, through the rotated header, any read size.
            CHECK(rotated_plain(header, artifact, new_id, 7) == plain);
            CHECK(rotated_plain(header, artifact, new_id, 1 << 20) == plain);
            CHECK(rotated_plain(header, artifact, old_id, 4096) == plain);
            // The age CLI: cat newheader payload | age -d -i newkey.
            test::write_file(dir / "artifact.age", artifact);
            test::write_file(dir / "artifact.age.age-header.1", header);
            test::write_file(dir / "payload", artifact.substr(header_length(artifact)));
            // (To stdout: age -o creates no file for an empty plaintext.)
            auto cli = run_ok({"sh", "-c", "cat \"$1\" \"$2\" | age -d -i \"$3\"", "sh",
                               (dir / "artifact.age.age-header.1").string(), (dir / "payload").string(),
                               (dir / "new.key").string()});
            CHECK(cli.size() == plain.size());
            CHECK(cli == plain);
            // The new key alone cannot open the original artifact: only the new header wraps the key for it.
            CHECK(
                run_capture({"age", "-d", "-i", (dir / "new.key").string(), (dir / "artifact.age").string()})
                    .status != 0);
            // The artifact itself is unchanged (rotation only reads it).
            CHECK(sha256_hex(std::string_view(test::read_file(dir / "artifact.age"))) == artifact_sha);
        }
    }
}

TEST_CASE("age rotation: an artifact the age CLI wrote is re-wrapped for a new recipient",
          "[age][rotation]") {
    test::TempDir dir;
    run_ok({"age-keygen", "-o", (dir / "old.key").string()});
    auto old_ids = read_identity_file(dir / "old.key");
    REQUIRE(old_ids.size() == 1);
    auto new_id = AgeIdentity::generate();
    test::write_file(dir / "new.key", new_id.secret_str() + "\n");
    auto plain = random_string(200000, 7);
    test::write_file(dir / "plain", plain);
    run_ok({"age", "-r", old_ids[0].recipient().str(), "-r", AgeIdentity::generate().recipient().str(), "-o",
            (dir / "theirs.age").string(), (dir / "plain").string()});
    auto artifact = test::read_file(dir / "theirs.age");
    auto header = rewrap(artifact, old_ids[0], {new_id.recipient()}, {.keep_existing = false});
    CHECK(std::count(header.begin(), header.end(), '>') == 1);
    CHECK(rotated_plain(header, artifact, new_id, 65536) == plain);
    // keep_existing = false: the old identity no longer opens the rotated file.
    try {
        rotated_plain(header, artifact, old_ids[0], 65536);
        FAIL("the old identity opened a header without its stanza");
    } catch (const AgeError& e) {
        CHECK(e.failure() == AgeFailure::NoMatch);
    }
    test::write_file(dir / "h", header);
    test::write_file(dir / "payload", artifact.substr(header_length(artifact)));
    run_ok({"sh", "-c", "cat \"$1\" \"$2\" | age -d -i \"$3\" -o \"$4\"", "sh", (dir / "h").string(),
            (dir / "payload").string(), (dir / "new.key").string(), (dir / "out").string()});
    CHECK(test::read_file(dir / "out") == plain);
}

TEST_CASE("age rotation: wrong identity, damaged headers and bad requests are refused", "[age][rotation]") {
    auto id = AgeIdentity::generate();
    auto other = AgeIdentity::generate();
    auto artifact = encrypt("hello", {id.recipient()});
    auto fail_of = [&](const std::string& file, const AgeIdentity& with) -> std::optional<AgeFailure> {
        try {
            rewrap(file, with, {other.recipient()});
        } catch (const AgeError& e) {
            CHECK(e.kind() == Kind::Verification);
            return e.failure();
        }
        return std::nullopt;
    };
    CHECK(fail_of(artifact, other) == AgeFailure::NoMatch);
    // A flipped MAC character: the key opens but the header does not authenticate.
    auto bad_mac = artifact;
    auto mac_at = bad_mac.find("\n--- ") + 6;
    bad_mac[mac_at] = bad_mac[mac_at] == 'A' ? 'B' : 'A';
    CHECK(fail_of(bad_mac, id) == AgeFailure::Hmac);
    CHECK(fail_of(artifact.substr(0, 30), id) == AgeFailure::Header);
    CHECK(fail_of("not age at all\n", id) == AgeFailure::Header);
    CHECK_THROWS_MATCHES(rewrap(artifact, id, {}), Error, IsError(Kind::Config, "no recipient to add"));
    {
        StringReader r(artifact);
        CHECK_THROWS_MATCHES(rewrap_age_header(r, AgeIdentities{}, {other.recipient()}), Error,
                             IsError(Kind::Config, "no identity"));
    }
    // A damaged rotation header fails in the decrypter like any damaged header.
    auto header = rewrap(artifact, id, {other.recipient()});
    auto tampered = header;
    tampered[header.find("-> X25519 ", 30) + 12] ^= 1;
    try {
        rotated_plain(tampered, artifact, id, 4096);
        FAIL("a tampered rotation header decrypted");
    } catch (const AgeError& e) {
        CHECK((e.failure() == AgeFailure::Hmac || e.failure() == AgeFailure::Header));
    }
    // A rotation header over another artifact's payload: the file key differs, so the payload fails.
    auto unrelated = encrypt("other data", {id.recipient()});
    try {
        rotated_plain(header, unrelated, other, 4096);
        FAIL("a rotation header opened another artifact's payload");
    } catch (const AgeError& e) {
        CHECK(e.failure() == AgeFailure::Payload);
    }
    // The artifact's own header must still parse: it is skipped, not trusted.
    CHECK_THROWS_AS(rotated_plain(header, "garbage\n", other, 4096), AgeError);
    // The key-less check of a stored header object: well formed, and nothing after the MAC line.
    {
        StringReader good(header, 10);
        CHECK(check_age_header_object(good) == std::vector<std::string>{"X25519", "X25519"});
        auto header_failure = [](const std::string& text) -> std::optional<AgeFailure> {
            StringReader r(text, 10);
            try {
                check_age_header_object(r);
            } catch (const AgeError& e) {
                return e.failure();
            }
            return std::nullopt;
        };
        CHECK(header_failure(header + "x") == AgeFailure::Header);
        CHECK(header_failure(artifact) == AgeFailure::Header);  // a whole age file is not a header object
        CHECK(header_failure(header.substr(0, header.size() - 10)) == AgeFailure::Header);
        CHECK(header_failure("") == AgeFailure::Header);
    }
    CHECK(age_header_object_name("20261201_010000/pg-app.pgdump.zst.age", 2) ==
          "20261201_010000/pg-app.pgdump.zst.age.age-header.2");
    CHECK_THROWS_AS(age_header_object_name("x", 0), Error);
}

TEST_CASE("age rotation: a passphrase header is rotated only into a header of its own", "[age][rotation]") {
    // The CCTV "scrypt" vector (passphrase "password", work factor 10): an scrypt header must stay alone.
    const fs::path scrypt_vector = NIGHTJAR_SOURCE_DIR "/../shared/corpus/age-vectors/scrypt";
    REQUIRE(fs::exists(scrypt_vector));
    auto text = test::read_file(scrypt_vector);
    // The vector file: headers (passphrase: …), a blank line, then the age file.
    auto blank = text.find("\n\n");
    REQUIRE(blank != std::string::npos);
    auto meta = text.substr(0, blank);
    auto pass_at = meta.find("passphrase: ");
    REQUIRE(pass_at != std::string::npos);
    std::string passphrase = meta.substr(pass_at + 12, meta.find('\n', pass_at) - pass_at - 12);
    std::string file = text.substr(blank + 2);
    AgeIdentities ids;
    ids.passphrase = passphrase;
    auto id = AgeIdentity::generate();
    {
        StringReader r(file);
        CHECK_THROWS_MATCHES(rewrap_age_header(r, ids, {id.recipient()}), Error,
                             IsError(Kind::Config, "scrypt"));
    }
    StringReader r(file);
    auto header = rewrap_age_header(r, ids, {id.recipient()}, {.keep_existing = false});
    StringWriter plain_ref;
    {
        AgeDecryptWriter w(ids, plain_ref);
        w.write(as_bytes(file));
        w.finish();
    }
    CHECK(rotated_plain(header, file, id, 100) == plain_ref.data);
}
