#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "nightjar/core/json_fields.hpp"
#include "nightjar/io/age.hpp"
#include "nightjar/io/secret_file.hpp"
#include "nightjar/io/signing.hpp"
#include "nightjar/run/encryption_config.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using nlohmann::json;
using test::IsError;

namespace {

const std::filesystem::path kSource = "/etc/nightjar/nightjar.json";

EncryptionConfig parse(const json& j) {
    return parse_encryption_config(j, "config " + kSource.string(), "/encryption", kSource);
}

std::string error_of(const json& j) {
    try {
        parse(j);
    } catch (const Error& e) {
        CHECK(e.kind() == Kind::Config);
        return e.what();
    }
    FAIL("parsed: " << j.dump());
    return "";
}

}  // namespace

TEST_CASE("encryption config: recipients, files, identities, pinned hosts and the signing key path",
          "[encryption_config]") {
    test::TempDir dir;
    auto a = io::AgeIdentity::generate(), b = io::AgeIdentity::generate(), c = io::AgeIdentity::generate();
    test::write_file(dir / "recipients", "# backup recipients\n\n  " + b.recipient().str() + "  \n# old:\n" +
                                             c.recipient().str() + "\r\n" + a.recipient().str() + "\n");
    io::create_secret_file(
        dir / "id.key", "# created: x\n# public key: " + a.recipient().str() + "\n" + a.secret_str() + "\n");
    auto db1 = io::SigningKey::generate(), db1b = io::SigningKey::generate(),
         db2 = io::SigningKey::generate();
    auto cfg = parse({{"recipients", {a.recipient().str()}},
                      {"recipients_file", (dir / "recipients").string()},
                      {"identity_file", (dir / "id.key").string()},
                      {"trusted_hosts",
                       {{"db1.example.org", {db1.public_key().str(), db1b.public_key().str()}},
                        {"db2", db2.public_key().str()}}}});
    // The inline recipient first, then the file's, duplicates dropped.
    REQUIRE(cfg.recipients.size() == 3);
    CHECK(cfg.recipients[0].key == a.recipient().key);
    CHECK(cfg.recipients[1].key == b.recipient().key);
    CHECK(cfg.recipients[2].key == c.recipient().key);
    CHECK(cfg.recipients_file == dir / "recipients");
    REQUIRE(cfg.identities.size() == 1);
    CHECK(cfg.identities[0].recipient().key == a.recipient().key);
    CHECK(cfg.age_identities().x25519.size() == 1);
    REQUIRE(cfg.trusted_hosts.size() == 2);
    CHECK(cfg.trusted_hosts.at("db1.example.org") ==
          std::vector<io::SigningPublicKey>{db1.public_key(), db1b.public_key()});
    CHECK(cfg.trusted_hosts.at("db2") == std::vector<io::SigningPublicKey>{db2.public_key()});
    CHECK(cfg.signing_key_file == "/etc/nightjar/nightjar-signing.key");
    auto fps = cfg.recipient_fingerprints();
    REQUIRE(fps.size() == 3);
    CHECK(fps[0] == io::key_fingerprint(a.recipient().key));
    CHECK(fps[0].rfind("SHA256:", 0) == 0);

    // A backup-only host: recipients and nothing else; decrypting is refused by name.
    auto backup_only =
        parse({{"recipients", {b.recipient().str()}}, {"signing_key_file", "/var/lib/nj/sign.key"}});
    CHECK(backup_only.identities.empty());
    CHECK(backup_only.signing_key_file == "/var/lib/nj/sign.key");
    CHECK_THROWS_MATCHES(backup_only.age_identities(), Error,
                         IsError(Kind::Config, "/encryption/identity_file"));
    // Through JsonFields, as config.cpp holds the section.
    json whole = {{"encryption", {{"recipients", {b.recipient().str()}}}}};
    JsonFields top(whole, "config x.json", Kind::Config);
    auto via_fields = parse_encryption_config(top.object("encryption"), "relative/x.json");
    CHECK(via_fields.signing_key_file ==
          std::filesystem::absolute("relative/x.json").parent_path() / "nightjar-signing.key");
}

TEST_CASE("encryption config: fails closed with the key and JSON pointer named, never a secret",
          "[encryption_config]") {
    test::TempDir dir;
    auto a = io::AgeIdentity::generate();
    const std::string r = a.recipient().str();
    const std::string prefix = "config /etc/nightjar/nightjar.json: /encryption/";

    SECTION("no recipient at all") {
        auto msg = error_of(json::object());
        CHECK(msg.rfind(prefix + "recipients: no recipient", 0) == 0);
        CHECK(msg.find("ever written in clear") != std::string::npos);
        CHECK(error_of({{"recipients", json::array()}}).rfind(prefix + "recipients: no recipient", 0) == 0);
        // Only an identity: this config would back up in clear, so it is refused too.
        io::create_secret_file(dir / "id", a.secret_str() + "\n");
        CHECK(error_of({{"identity_file", (dir / "id").string()}})
                  .rfind(prefix + "recipients: no recipient", 0) == 0);
    }
    SECTION("a bad recipient is named by index, not echoed") {
        std::string bad = r;
        bad[12] = bad[12] == 'q' ? 'p' : 'q';
        auto msg = error_of({{"recipients", {r, bad}}});
        CHECK(msg.rfind(prefix + "recipients/1: not a valid age1", 0) == 0);
        CHECK(msg.find(bad) == std::string::npos);
        CHECK(error_of({{"recipients", r}}).rfind(prefix + "recipients: expected a list", 0) == 0);
        CHECK(error_of({{"recipients", {r, 5}}}).rfind(prefix + "recipients/1: expected a string", 0) == 0);
    }
    SECTION("a secret key pasted as a recipient is recognised and never repeated") {
        auto secret = a.secret_str();
        auto msg = error_of({{"recipients", {secret}}});
        CHECK(msg.rfind(prefix + "recipients/0: is a secret identity", 0) == 0);
        CHECK(msg.find(secret) == std::string::npos);
        CHECK(msg.find(secret.substr(16, 20)) == std::string::npos);
        test::write_file(dir / "rcpt", r + "\n" + secret + "\n");
        auto file_msg = error_of({{"recipients_file", (dir / "rcpt").string()}});
        CHECK(file_msg.find(prefix + "recipients_file: recipients file " + (dir / "rcpt").string() +
                            ":2: is a secret identity") == 0);
        CHECK(file_msg.find(secret.substr(16, 20)) == std::string::npos);
    }
    SECTION("recipients_file: missing, relative, empty, bad line") {
        auto missing = error_of({{"recipients_file", (dir / "nope").string()}});
        CHECK(missing.rfind(
                  prefix + "recipients_file: recipients file " + (dir / "nope").string() + ": cannot open",
                  0) == 0);
        // A missing file fails even when inline recipients exist: the operator meant it to be read.
        CHECK(error_of({{"recipients", {r}}, {"recipients_file", (dir / "nope").string()}})
                  .rfind(prefix + "recipients_file:", 0) == 0);
        CHECK(error_of({{"recipients_file", "recipients.txt"}})
                  .rfind(prefix + "recipients_file: expected an absolute path", 0) == 0);
        test::write_file(dir / "empty", "# nobody yet\n\n");
        CHECK(error_of({{"recipients_file", (dir / "empty").string()}}).find("no age1… recipient in it") !=
              std::string::npos);
        test::write_file(dir / "bad", "# x\n" + r + "\nage1nope\n");
        CHECK(error_of({{"recipients_file", (dir / "bad").string()}})
                  .find((dir / "bad").string() + ":3: not a valid age1") != std::string::npos);
        CHECK(error_of({{"recipients_file", dir.path().string()}}).find("not a regular file") !=
              std::string::npos);
        test::write_file(dir / "huge", std::string((1 << 20) + 10, '#'));
        CHECK(error_of({{"recipients_file", (dir / "huge").string()}}).find("larger than 1 MiB") !=
              std::string::npos);
    }
    SECTION("identity_file: mode 0600 enforced, missing, damaged, empty") {
        auto path = dir / "id";
        io::create_secret_file(path, "# k\n" + a.secret_str() + "\n");
        REQUIRE(::chmod(path.c_str(), 0644) == 0);
        auto msg = error_of({{"recipients", {r}}, {"identity_file", path.string()}});
        CHECK(msg.rfind(prefix + "identity_file: identity file " + path.string() + ": mode 0644", 0) == 0);
        CHECK(msg.find("chmod 0600") != std::string::npos);
        REQUIRE(::chmod(path.c_str(), 0600) == 0);
        CHECK(parse({{"recipients", {r}}, {"identity_file", path.string()}}).identities.size() == 1);
        CHECK(error_of({{"recipients", {r}}, {"identity_file", (dir / "none").string()}})
                  .rfind(prefix + "identity_file: identity file " + (dir / "none").string() + ": cannot open",
                         0) == 0);
        CHECK(error_of({{"recipients", {r}}, {"identity_file", "id.key"}})
                  .rfind(prefix + "identity_file: expected an absolute path", 0) == 0);
        // A damaged key: the line is named, its text is not.
        std::string damaged = a.secret_str();
        damaged[30] = damaged[30] == 'Q' ? 'P' : 'Q';
        io::create_secret_file(dir / "damaged", "# one\n" + damaged + "\n");
        auto dmsg = error_of({{"recipients", {r}}, {"identity_file", (dir / "damaged").string()}});
        CHECK(dmsg.find((dir / "damaged").string() + ":2: not an AGE-SECRET-KEY-1") != std::string::npos);
        CHECK(dmsg.find(damaged.substr(16, 20)) == std::string::npos);
        io::create_secret_file(dir / "blank", "# nothing\n");
        CHECK(error_of({{"recipients", {r}}, {"identity_file", (dir / "blank").string()}})
                  .find("no AGE-SECRET-KEY") != std::string::npos);
    }
    SECTION("trusted_hosts: keys, host names and shapes") {
        auto k = io::SigningKey::generate().public_key().str();
        CHECK(error_of({{"recipients", {r}}, {"trusted_hosts", {{"db1", "ed25519:AAAA"}}}})
                  .rfind(prefix + "trusted_hosts/db1: signing key:", 0) == 0);
        CHECK(error_of({{"recipients", {r}}, {"trusted_hosts", {{"db1", {k, "rsa:x"}}}}})
                  .rfind(prefix + "trusted_hosts/db1/1: signing key:", 0) == 0);
        CHECK(error_of({{"recipients", {r}}, {"trusted_hosts", {{"db1", json::array()}}}})
                  .rfind(prefix + "trusted_hosts/db1: expected at least one", 0) == 0);
        CHECK(error_of({{"recipients", {r}}, {"trusted_hosts", {{"db 1", k}}}})
                  .rfind(prefix + "trusted_hosts: host name \"db 1\"", 0) == 0);
        CHECK(error_of({{"recipients", {r}}, {"trusted_hosts", {{"db1", 3}}}})
                  .rfind(prefix + "trusted_hosts/db1: expected an \"ed25519:…\"", 0) == 0);
        CHECK(error_of({{"recipients", {r}}, {"trusted_hosts", json::array()}})
                  .rfind(prefix + "trusted_hosts: expected an object", 0) == 0);
    }
    SECTION("unknown keys and a missing default for the signing key") {
        CHECK(error_of({{"recipients", {r}}, {"recipient", r}}).find("recipient") != std::string::npos);
        CHECK_THROWS_MATCHES(parse_encryption_config(json{{"recipients", {r}}}, "config", "/encryption", ""),
                             Error, IsError(Kind::Config, "config: /encryption/signing_key_file: required"));
        CHECK(error_of({{"recipients", {r}}, {"signing_key_file", "sign.key"}})
                  .rfind(prefix + "signing_key_file: expected an absolute path", 0) == 0);
        CHECK_THROWS_MATCHES(parse(json::array()), Error,
                             IsError(Kind::Config, "/encryption: expected an object"));
    }
}
