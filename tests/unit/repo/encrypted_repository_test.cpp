// RepositoryWriter::publish with encryption and RepositoryReader's index-first reading (issue 15).
#include <catch2/catch.hpp>

#include "nightjar/io/age.hpp"
#include "nightjar/io/signing.hpp"
#include "nightjar/repo/backup_index.hpp"
#include "nightjar/repo/memory_storage.hpp"
#include "nightjar/repo/prune.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/verify.hpp"
#include "support/manifests.hpp"
#include "support/matchers.hpp"

using namespace nightjar;
using test::IsError;

namespace {

struct Encrypted {
    MemoryStorage storage;
    RepositoryWriter repo{storage};
    io::AgeIdentity identity = io::AgeIdentity::generate();
    io::SigningKey signing = io::SigningKey::generate();
    std::string id = "20240101_000000";

    Encrypted() { publish(id); }
    void publish(const std::string& backup_id) {
        const io::PipelineSpec spec{.codec = io::Codec::Zstd, .level = 3, .cipher = io::Cipher::Age};
        Staging staging = repo.begin(backup_id, spec, io::WriteKeys{{identity.recipient()}});
        auto w = staging.artifact("data.bin");
        w->write(io::as_bytes(std::string(200000, 'q') + "secret_table_name"));
        w->finish();
        Manifest m =
            test::complete_manifest(backup_id, {w->artifact("postgres", "db-secret_table_name", "raw")});
        const PublishEncryption enc{
            .recipients = {identity.recipient()},
            .signing_key = &signing,
            .recipient_fingerprints = {io::key_fingerprint(identity.recipient().key)}};
        repo.publish(std::move(staging), m, &enc);
    }
    RepositoryKeys keys(bool with_identity = true) const {
        RepositoryKeys k;
        if (with_identity) k.identities.x25519.push_back(identity);
        k.trusted_hosts["test-host"].push_back(signing.public_key());
        return k;
    }
    std::string text(const std::string& name) const {
        auto r = storage.open_read(name);
        std::string out;
        std::vector<std::byte> buf(65536);
        while (std::size_t n = r->read(buf)) out.append(reinterpret_cast<const char*>(buf.data()), n);
        return out;
    }
    void put(const std::string& name, const std::string& bytes) {
        storage.remove(name);
        auto w = storage.open_write(name);
        w->write(io::as_bytes(bytes));
        w->finish();
    }
};

}  // namespace

TEST_CASE("an encrypted backup: encrypted manifest then the signed index last, read back with the keys",
          "[repository][encryption]") {
    Encrypted e;
    std::vector<std::string> names;
    for (const auto& x : e.storage.list_prefix("")) names.push_back(x.name);
    CHECK(names == std::vector<std::string>{e.id + "/data.bin.age", "index_" + e.id + ".json",
                                            "manifest_" + e.id + ".json.age"});
    for (const auto& n : names) CHECK(e.text(n).find("secret_table_name") == std::string::npos);
    auto refs = e.repo.list();
    REQUIRE(refs.size() == 1);
    CHECK(refs[0].encrypted());
    CHECK(refs[0].index == "index_" + e.id + ".json");

    SECTION("with the identity and the pinned signer: the whole manifest") {
        e.repo.set_keys(e.keys());
        Manifest m = e.repo.load(refs[0]);
        REQUIRE(m.artifacts.size() == 1);
        CHECK(m.artifacts[0].name == "db-secret_table_name");
        CHECK(verify_artifact(
                  e.repo, m.artifacts[0],
                  [](io::Reader& r) {
                      io::drain(r);
                      return VerifyOutcome{};
                  },
                  e.repo.read_keys())
                  .ok());
    }
    SECTION("without an identity: load names the missing key; the summary comes from the index") {
        e.repo.set_keys(e.keys(false));
        REQUIRE_THROWS_MATCHES(e.repo.load(refs[0]), Error,
                               IsError(Kind::Verification, "encryption.identity_file"));
        Manifest s = e.repo.load_summary(refs[0]);
        CHECK(s.status == "complete");
        CHECK(s.components.empty());
        REQUIRE(s.artifacts.size() == 1);
        CHECK(s.artifacts[0].path == e.id + "/data.bin.age");
        CHECK(verify_stored_bytes(e.repo, s.artifacts[0]).ok());
    }
    SECTION("an edited index is refused naming the host") {
        auto j = nlohmann::json::parse(e.text(refs[0].index));
        j["finished_at"] = "2030-01-01T00:00:00Z";
        e.put(refs[0].index, j.dump());
        e.repo.set_keys(e.keys());
        REQUIRE_THROWS_MATCHES(e.repo.load(refs[0]), Error,
                               IsError(Kind::Verification, "does not verify under host test-host"));
    }
    SECTION("a signer not pinned for the host is refused") {
        RepositoryKeys k = e.keys();
        k.trusted_hosts.clear();
        e.repo.set_keys(k);
        REQUIRE_THROWS_MATCHES(e.repo.load(refs[0]), Error,
                               IsError(Kind::Verification, "not pinned for host test-host"));
    }
    SECTION("a replaced encrypted manifest does not match its index") {
        std::string c = e.text(refs[0].manifest);
        c[c.size() - 3] ^= 1;
        e.put(refs[0].manifest, c);
        e.repo.set_keys(e.keys());
        REQUIRE_THROWS_MATCHES(e.repo.load(refs[0]), Error,
                               IsError(Kind::Verification, "do not match the size and SHA-256"));
    }
    SECTION("a wrong identity cannot open the manifest") {
        RepositoryKeys k = e.keys(false);
        k.identities.x25519.push_back(io::AgeIdentity::generate());
        e.repo.set_keys(k);
        REQUIRE_THROWS_MATCHES(e.repo.load(refs[0]), Error, IsError(Kind::Verification, "cannot decrypt"));
    }
    SECTION("remove drops the index first, then everything") {
        e.repo.remove(refs[0]);
        CHECK(e.repo.list().empty());
        CHECK(e.storage.list_prefix("").empty());
    }
}

TEST_CASE("prune deletes an encrypted backup whole: its index, encrypted manifest and artifacts",
          "[repository][encryption][prune]") {
    Encrypted e;
    const std::string newer = "20240102_000000";
    e.publish(newer);
    e.repo.set_keys(e.keys());
    PruneResult r = prune(e.repo, RetentionPolicy{.keep_last = 1}, parse_backup_id_time(newer) + 60, false);
    CHECK(r.deleted == 1);
    std::vector<std::string> names;
    for (const auto& x : e.storage.list_prefix("")) names.push_back(x.name);
    // Left: the newer backup, and the record of the full verification prune made of it (the newest).
    CHECK(names == std::vector<std::string>{newer + "/data.bin.age", "index_" + newer + ".json",
                                            "manifest_" + newer + ".json.age",
                                            "verified_" + newer + ".json"});
    REQUIRE(e.repo.list().size() == 1);
    CHECK(e.repo.list()[0].id == newer);
}
