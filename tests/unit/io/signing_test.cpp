#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "nightjar/core/process.hpp"
#include "nightjar/io/secret_file.hpp"
#include "nightjar/io/signing.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using namespace nightjar::io;
using test::IsError;
namespace fs = std::filesystem;

namespace {

unsigned mode_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

std::string error_text(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    FAIL("no error thrown");
    return "";
}

}  // namespace

TEST_CASE("signing: Ed25519 signatures verify and refuse any change", "[signing]") {
    auto key = SigningKey::generate();
    std::string msg = "index bytes";
    auto sig = key.sign(as_bytes(msg));
    CHECK(verify_signature(key.public_key(), as_bytes(msg), sig));
    // Deterministic (Ed25519 is), and a changed message, signature or key does not verify.
    CHECK(key.sign(as_bytes(msg)) == sig);
    CHECK_FALSE(verify_signature(key.public_key(), as_bytes(std::string("index bytez")), sig));
    auto bad = sig;
    bad[10] ^= std::byte{1};
    CHECK_FALSE(verify_signature(key.public_key(), as_bytes(msg), bad));
    CHECK_FALSE(verify_signature(SigningKey::generate().public_key(), as_bytes(msg), sig));
    CHECK_FALSE(verify_signature(key.public_key(), as_bytes(msg), Bytes(sig.data(), 63)));
    // Text forms round-trip.
    auto text = key.public_key().str();
    CHECK(text.rfind("ed25519:", 0) == 0);
    CHECK(text.size() == 8 + 43);
    CHECK(SigningPublicKey::parse(text) == key.public_key());
    auto fp = key.public_key().fingerprint();
    CHECK(fp.rfind("SHA256:", 0) == 0);
    CHECK(fp.size() == 7 + 43);
    CHECK(fp != SigningKey::generate().public_key().fingerprint());
    CHECK(parse_signature(signature_str(sig)) == sig);
    CHECK_FALSE(parse_signature(signature_str(sig).substr(1)));
    CHECK_FALSE(parse_signature(signature_str(sig) + "A"));
    CHECK_THROWS_MATCHES(SigningPublicKey::parse(text.substr(8)), Error, IsError(Kind::Config, "ed25519:"));
    CHECK_THROWS_MATCHES(SigningPublicKey::parse(text + "AA"), Error, IsError(Kind::Config, "32 bytes"));
    CHECK_THROWS_MATCHES(SigningPublicKey::parse("ed25519:!!"), Error, IsError(Kind::Config, "base64"));
}

TEST_CASE("signing: RFC 8032 test vector 1 (empty message)", "[signing]") {
    // Secret 9d61b19d…7f60, public d75a9801…511a, signature e5564300…100b (RFC 8032 section 7.1, TEST 1).
    test::TempDir dir;
    // The key file holds the seed in unpadded base64.
    const std::string seed_b64 = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    create_secret_file(dir / "key", "# test\n" + std::string(kSigningSecretPrefix) + seed_b64 + "\n");
    auto key = SigningKey::load(dir / "key");
    auto expect_pub = SigningPublicKey::parse("ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    CHECK(key.public_key() == expect_pub);
    auto sig = key.sign({});
    const std::string expect_sig =
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25b"
        "f5f0595bbe"
        "24655141438e7a100b";
    std::string hex;
    for (auto b : sig) {
        char h[3];
        std::snprintf(h, sizeof h, "%02x", std::to_integer<unsigned>(b));
        hex += h;
    }
    CHECK(hex == expect_sig);
}

TEST_CASE("signing: key file created once with mode 0600, never overwritten, loaded back", "[signing]") {
    test::TempDir dir;
    auto path = dir / "nightjar-signing.key";
    bool created = false;
    auto first = SigningKey::load_or_create(path, &created);
    CHECK(created);
    CHECK(mode_of(path) == 0600);
    auto text = test::read_file(path);
    CHECK(text.find("# public key: " + first.public_key().str() + "\n") != std::string::npos);
    auto again = SigningKey::load_or_create(path, &created);
    CHECK_FALSE(created);
    CHECK(again.public_key() == first.public_key());
    CHECK(test::read_file(path) == text);
    // create() refuses an existing file and leaves it as it was, with no temporary left behind.
    CHECK_THROWS_MATCHES(SigningKey::create(path), Error, IsError(Kind::Storage, "already exists"));
    CHECK(test::read_file(path) == text);
    std::size_t entries = 0;
    for (auto& e : fs::directory_iterator(dir.path())) entries += e.is_regular_file();
    CHECK(entries == 1);
    // A signature made with the loaded key verifies under the first one's public key.
    auto sig = again.sign(as_bytes(std::string("m")));
    CHECK(verify_signature(first.public_key(), as_bytes(std::string("m")), sig));
}

TEST_CASE("signing: a key file others can read, a damaged one, or a directory is refused without echoing",
          "[signing]") {
    test::TempDir dir;
    auto path = dir / "key";
    auto key = SigningKey::create(path);
    auto secret_line = test::read_file(path).substr(test::read_file(path).find(kSigningSecretPrefix));
    REQUIRE(::chmod(path.c_str(), 0640) == 0);
    CHECK_THROWS_MATCHES(SigningKey::load(path), Error, IsError(Kind::Config, "mode 0640"));
    REQUIRE(::chmod(path.c_str(), 0400) == 0);
    CHECK(SigningKey::load(path).public_key() == key.public_key());
    CHECK_THROWS_MATCHES(SigningKey::load(dir / "missing"), Error, IsError(Kind::Config, "cannot open"));
    CHECK_THROWS_MATCHES(SigningKey::load(dir.path()), Error, IsError(Kind::Config, "not a regular file"));
    // Damaged: a truncated secret; two secret lines; the message never quotes the file.
    std::string damaged = secret_line.substr(0, secret_line.size() - 5) + "\n";
    create_secret_file(dir / "damaged", damaged);
    auto msg = error_text([&] { SigningKey::load(dir / "damaged"); });
    CHECK(msg.find("not a nightjar Ed25519 signing key") != std::string::npos);
    CHECK(msg.find(damaged.substr(kSigningSecretPrefix.size(), 20)) == std::string::npos);
    create_secret_file(dir / "twice", secret_line + secret_line);
    CHECK_THROWS_MATCHES(SigningKey::load(dir / "twice"), Error, IsError(Kind::Config, "signing key"));
    create_secret_file(dir / "big", std::string(5000, '#'));
    CHECK_THROWS_MATCHES(SigningKey::load(dir / "big"), Error, IsError(Kind::Config, "larger than"));
}

TEST_CASE("signing: our signatures verify with the openssl CLI", "[signing]") {
    test::TempDir dir;
    auto key = SigningKey::generate();
    std::string msg = "nightjar-backup-index-v1\n{\"id\":\"x\"}";
    test::write_file(dir / "msg", msg);
    auto sig = key.sign(as_bytes(msg));
    test::write_file(dir / "sig", std::string(as_chars(Bytes(sig))));
    // SubjectPublicKeyInfo for Ed25519 (RFC 8410): a fixed 12-byte DER prefix, then the key.
    std::string der("\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00", 12);
    der += as_chars(Bytes(key.public_key().key));
    test::write_file(dir / "pub.der", der);
    auto verify = [&](const std::string& sig_file) {
        return run_capture({"openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey",
                            (dir / "pub.der").string(), "-rawin", "-in", (dir / "msg").string(), "-sigfile",
                            (dir / sig_file).string()});
    };
    auto good = verify("sig");
    INFO(good.err << good.out);
    CHECK(good.status == 0);
    sig[0] ^= std::byte{0x80};
    test::write_file(dir / "bad", std::string(as_chars(Bytes(sig))));
    CHECK(verify("bad").status != 0);
}

TEST_CASE("secret files: create-only, 0600 under any umask, read only when private", "[signing]") {
    test::TempDir dir;
    auto old = ::umask(0);
    create_secret_file(dir / "s", "secret\n");
    ::umask(old);
    CHECK(mode_of(dir / "s") == 0600);
    CHECK(read_secret_file(dir / "s") == "secret\n");
    CHECK_THROWS_MATCHES(create_secret_file(dir / "s", "other"), Error,
                         IsError(Kind::Storage, "already exists"));
    CHECK(read_secret_file(dir / "s") == "secret\n");
    CHECK_THROWS_MATCHES(create_secret_file(dir / "nodir" / "s", "x"), Error,
                         IsError(Kind::Storage, "nodir"));
    REQUIRE(::chmod((dir / "s").c_str(), 0604) == 0);
    auto msg = error_text([&] { read_secret_file(dir / "s", {.what = "identity file"}); });
    CHECK(msg.find("identity file " + (dir / "s").string()) != std::string::npos);
    CHECK(msg.find("chmod 0600") != std::string::npos);
    // The content is never in it.
    CHECK(msg.find("secret\n") == std::string::npos);
    REQUIRE(::chmod((dir / "s").c_str(), 0600) == 0);
    CHECK_THROWS_MATCHES(read_secret_file(dir / "s", {.max_bytes = 3, .kind = Kind::Verification}), Error,
                         IsError(Kind::Verification, "larger than 3 bytes"));
    // A symlink to a private file is followed (the target's mode and owner are what count).
    fs::create_symlink(dir / "s", dir / "link");
    CHECK(read_secret_file(dir / "link") == "secret\n");
    if (::geteuid() != 0) {
        // Owned by someone else: /etc/passwd is root's (and world-readable, so either check refuses it).
        CHECK_THROWS_AS(read_secret_file("/etc/passwd"), Error);
    }
}
