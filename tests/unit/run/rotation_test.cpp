// run/rotation: `encryption add-recipient` over an in-memory repository, and the readers that use what it
// writes (the artifact read chain, the encrypted manifest, the key-less check).
#include <catch2/catch.hpp>
#include <map>

#include "nightjar/core/error.hpp"
#include "nightjar/io/age.hpp"
#include "nightjar/io/age_rotation.hpp"
#include "nightjar/io/signing.hpp"
#include "nightjar/repo/memory_storage.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/verify.hpp"
#include "nightjar/run/rotation.hpp"
#include "support/manifests.hpp"
#include "support/matchers.hpp"

using namespace nightjar;
using test::IsError;

namespace {

const std::string kContent = std::string(150000, 'q') + "rotation-content";

struct Repo {
    MemoryStorage storage;
    RepositoryWriter repo{storage};
    io::AgeIdentity a = io::AgeIdentity::generate();  // the recipient the backups were written to
    io::AgeIdentity b = io::AgeIdentity::generate();  // the one added later
    io::SigningKey signing = io::SigningKey::generate();
    std::string id = "20240101_000000";

    Repo() { publish(id); }
    void publish(const std::string& backup_id) {
        const io::PipelineSpec spec{.codec = io::Codec::Zstd, .level = 3, .cipher = io::Cipher::Age};
        Staging staging = repo.begin(backup_id, spec, io::WriteKeys{{a.recipient()}});
        auto w = staging.artifact("data.bin");
        w->write(io::as_bytes(kContent));
        w->finish();
        Manifest m = test::complete_manifest(backup_id, {w->artifact("files", "data", "raw")});
        const PublishEncryption enc{.recipients = {a.recipient()},
                                    .signing_key = &signing,
                                    .recipient_fingerprints = {io::key_fingerprint(a.recipient().key)}};
        repo.publish(std::move(staging), m, &enc);
    }
    // Every object and its bytes.
    std::map<std::string, std::string> snapshot() const {
        std::map<std::string, std::string> out;
        for (const auto& e : storage.list_prefix("")) out[e.name] = text(e.name);
        return out;
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
    AddRecipientRequest request(std::vector<io::AgeRecipient> add, const io::AgeIdentity& opener) const {
        AddRecipientRequest r;
        r.recipients = std::move(add);
        r.backups = {id};
        r.identities.x25519.push_back(opener);
        r.trusted_hosts["test-host"].push_back(signing.public_key());
        return r;
    }
    // A reader holding only `identity`: the whole manifest, then the artifact's content proven.
    bool readable_with(const io::AgeIdentity& identity) {
        RepositoryReader reader(storage);
        RepositoryKeys keys;
        keys.identities.x25519.push_back(identity);
        keys.trusted_hosts["test-host"].push_back(signing.public_key());
        reader.set_keys(keys);
        Manifest m;
        try {
            m = reader.load(reader.find(id));
        } catch (const Error&) {
            return false;
        }
        REQUIRE(m.artifacts.size() == 1);
        std::string content;
        VerifyOutcome v = verify_artifact(
            reader, m.artifacts[0],
            [&](io::Reader& r) {
                std::vector<std::byte> buf(65536);
                while (std::size_t n = r.read(buf))
                    content.append(reinterpret_cast<const char*>(buf.data()), n);
                return VerifyOutcome{};
            },
            reader.read_keys());
        return v.ok() && content == kContent;
    }
    std::string artifact() const { return id + "/data.bin.age"; }
    std::string manifest() const { return "manifest_" + id + ".json.age"; }
};

}  // namespace

TEST_CASE("add-recipient writes one rotation header per object and the new identity reads the backup",
          "[rotation]") {
    Repo r;
    const auto before = r.snapshot();
    REQUIRE_FALSE(r.readable_with(r.b));

    RotationReport report = add_recipients(r.storage, r.request({r.b.recipient()}, r.a));
    REQUIRE(report.ok());
    CHECK(report.exit_code() == 0);
    REQUIRE(report.backups.size() == 1);
    const RotatedBackup& done = report.backups[0];
    CHECK(done.headers() == 2);
    REQUIRE(done.objects.size() == 2);
    CHECK(done.objects[0].object == r.artifact());
    CHECK(done.objects[0].header == r.artifact() + ".age-header.1");
    CHECK(done.objects[1].object == r.manifest());
    CHECK(done.objects[1].header == r.manifest() + ".age-header.1");
    CHECK(done.objects[0].added == std::vector<std::string>{r.b.recipient().str()});
    CHECK_THAT(report.summary(done),
               Catch::Contains("wrote 2 of 2") && Catch::Contains(r.b.recipient().str()));
    CHECK(report.to_json()["backups"][0]["headers"] == 2);

    // Only the two header objects are new; every byte that was there is unchanged.
    auto after = r.snapshot();
    CHECK(after.size() == before.size() + 2);
    for (const auto& [name, bytes] : before) CHECK(after.at(name) == bytes);
    // Each is a header alone (what the key-less check accepts), holding A's stanza and B's.
    for (const auto& o : done.objects) {
        auto h = r.storage.open_read(o.header);
        CHECK(io::check_age_header_object(*h) == std::vector<std::string>{"X25519", "X25519"});
    }

    CHECK(r.readable_with(r.b));
    CHECK(r.readable_with(r.a));
    CHECK_FALSE(r.readable_with(io::AgeIdentity::generate()));

    SECTION("a second add of the same recipient writes nothing and says so") {
        RotationReport again = add_recipients(r.storage, r.request({r.b.recipient()}, r.a));
        REQUIRE(again.ok());
        CHECK(again.backups[0].headers() == 0);
        CHECK(again.backups[0].objects[0].present == std::vector<std::string>{r.b.recipient().str()});
        CHECK_THAT(again.summary(again.backups[0]), Catch::Contains("nothing to do"));
        CHECK(r.snapshot() == after);
    }
    SECTION("the original recipient is known from the index: nothing to add") {
        RotationReport again = add_recipients(r.storage, r.request({r.a.recipient()}, r.a));
        REQUIRE(again.ok());
        CHECK(again.backups[0].headers() == 0);
        CHECK(again.backups[0].objects[1].present == std::vector<std::string>{r.a.recipient().str()});
        CHECK(r.snapshot() == after);
    }
    SECTION("a third recipient, added with B's identity, gets header 2 keeping A and B") {
        io::AgeIdentity c = io::AgeIdentity::generate();
        RotationReport next = add_recipients(r.storage, r.request({c.recipient(), r.b.recipient()}, r.b));
        REQUIRE(next.ok());
        CHECK(next.backups[0].headers() == 2);
        CHECK(next.backups[0].objects[0].header == r.artifact() + ".age-header.2");
        CHECK(next.backups[0].objects[0].added == std::vector<std::string>{c.recipient().str()});
        CHECK(next.backups[0].objects[0].present == std::vector<std::string>{r.b.recipient().str()});
        auto h = r.storage.open_read(r.artifact() + ".age-header.2");
        CHECK(io::check_age_header_object(*h).size() == 3);
        CHECK(r.readable_with(c));
        CHECK(r.readable_with(r.b));
        CHECK(r.readable_with(r.a));
    }
    SECTION("remove takes the manifest's rotation headers with the backup") {
        r.repo.remove(r.repo.list().at(0));
        CHECK(r.storage.list_prefix("").empty());
    }
}

TEST_CASE("add-recipient dry run says what it would write and writes nothing", "[rotation]") {
    Repo r;
    const auto before = r.snapshot();
    AddRecipientRequest req = r.request({r.b.recipient()}, r.a);
    req.dry_run = true;
    RotationReport report = add_recipients(r.storage, req);
    REQUIRE(report.ok());
    CHECK(report.backups[0].headers() == 2);
    CHECK(report.backups[0].objects[0].header == r.artifact() + ".age-header.1");
    CHECK_THAT(report.summary(report.backups[0]), Catch::Contains("would write 2"));
    CHECK(report.to_json()["dry_run"] == true);
    CHECK(r.snapshot() == before);
    CHECK_FALSE(r.readable_with(r.b));
}

TEST_CASE("add-recipient with an identity that opens nothing fails naming backup and object, writes nothing",
          "[rotation]") {
    Repo r;
    r.publish("20240102_000000");
    const auto before = r.snapshot();
    AddRecipientRequest req = r.request({r.b.recipient()}, io::AgeIdentity::generate());
    req.backups.clear();
    req.all = true;
    RotationReport report = add_recipients(r.storage, req);
    CHECK_FALSE(report.ok());
    CHECK(report.exit_code() == exit_code(Kind::Verification));
    REQUIRE(report.backups.size() == 2);
    for (const auto& b : report.backups) {
        CHECK_FALSE(b.ok());
        CHECK(b.objects.empty());
        CHECK_THAT(b.error, Catch::Contains("backup " + b.id) && Catch::Contains(b.id + "/data.bin.age") &&
                                Catch::Contains("cannot open its age header"));
    }
    CHECK(r.snapshot() == before);
}

TEST_CASE("add-recipient refuses requests that name nothing to do", "[rotation]") {
    Repo r;
    AddRecipientRequest none = r.request({}, r.a);
    CHECK_THROWS_MATCHES(add_recipients(r.storage, none), Error, IsError(Kind::Usage, "no recipient"));
    AddRecipientRequest which = r.request({r.b.recipient()}, r.a);
    which.backups.clear();
    CHECK_THROWS_MATCHES(add_recipients(r.storage, which), Error,
                         IsError(Kind::Usage, "--backup ID or --all"));
    AddRecipientRequest missing = r.request({r.b.recipient()}, r.a);
    missing.backups = {"20990101_000000"};
    CHECK_THROWS_MATCHES(add_recipients(r.storage, missing), Error, IsError(Kind::Usage, "20990101_000000"));
    AddRecipientRequest no_key = r.request({r.b.recipient()}, r.a);
    no_key.identities.x25519.clear();
    CHECK_THROWS_MATCHES(add_recipients(r.storage, no_key), Error, IsError(Kind::Config, "--identity"));

    // A plain backup has no header to add to.
    MemoryStorage plain;
    RepositoryWriter writer(plain);
    Staging staging = writer.begin("20240103_000000", io::ZstdOptions{});
    auto w = staging.artifact("data.bin");
    w->write(io::as_bytes(kContent));
    w->finish();
    writer.publish(std::move(staging),
                   test::complete_manifest("20240103_000000", {w->artifact("files", "d", "raw")}));
    AddRecipientRequest p = r.request({r.b.recipient()}, r.a);
    p.backups = {"20240103_000000"};
    CHECK_THROWS_MATCHES(add_recipients(plain, p), Error, IsError(Kind::Usage, "not encrypted"));
}

TEST_CASE("the key-less check reports a malformed rotation header naming it and readers pass it over",
          "[rotation]") {
    Repo r;
    REQUIRE(add_recipients(r.storage, r.request({r.b.recipient()}, r.a)).ok());
    RepositoryReader reader(r.storage);
    Manifest summary = reader.load_summary(reader.find(r.id));
    REQUIRE(summary.artifacts.size() == 1);
    CHECK(verify_stored_bytes(reader, summary.artifacts[0]).ok());
    CHECK(reader.check_rotation_headers(r.artifact()).empty());
    CHECK(reader.check_rotation_headers(r.manifest()).empty());

    // Header 1 with a payload byte after its MAC line: not a header object any more.
    r.put(r.artifact() + ".age-header.1", r.text(r.artifact() + ".age-header.1") + "x");
    CHECK_THAT(reader.check_rotation_headers(r.artifact()),
               Catch::Contains(r.artifact() + ".age-header.1") && Catch::Contains("after the MAC line"));
    r.put(r.manifest() + ".age-header.1", "age-encryption.org/v1\n--- not a mac\n");
    CHECK_THAT(reader.check_rotation_headers(r.manifest()), Catch::Contains(r.manifest() + ".age-header.1"));
    // The artifact's own stored bytes are still what the index says.
    CHECK(verify_stored_bytes(reader, summary.artifacts[0]).ok());

    // A garbled header 1 next to a good header 2: B still reads through header 2.
    r.put(r.artifact() + ".age-header.1", "age-encryption.org/v1\n-> X25519 garbage\n");
    io::AgeIdentity c = io::AgeIdentity::generate();
    REQUIRE(add_recipients(r.storage, r.request({c.recipient()}, r.a)).ok());
    CHECK(r.storage.stat(r.artifact() + ".age-header.2"));
    CHECK(r.readable_with(c));
}
