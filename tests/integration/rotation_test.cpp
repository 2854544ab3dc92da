// Key rotation for past encrypted backups (issue 15) through the real binaries: `nightjar-backup encryption
// add-recipient` writes rotation headers beside an encrypted backup's objects, the restore reads them with
// an identity the backup was never encrypted to (files and PostgreSQL), and the age CLI agrees (the interop
// oracle).
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <regex>

#include "nightjar/io/sha256.hpp"
#include "support/commands.hpp"
#include "support/encrypted_flow.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;
using test::Flow;

namespace {

// Every file below `dir` and the SHA-256 of its bytes.
std::map<std::string, std::string> hashes(const fs::path& dir) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file() && e.path().filename().string().rfind(".nightjar", 0) != 0)
            out[fs::relative(e.path(), dir).string()] = io::sha256_hex(test::read_file(e.path()));
    return out;
}

test::Outcome add_recipient(const Flow& f, std::vector<std::string> extra) {
    std::vector<std::string> args{"encryption", "add-recipient", "--config", f.config.string(), "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return test::backup(args);
}

// The config of a restore host that holds only `identity`.
void restore_host_config(const Flow& f, const fs::path& identity, const std::string& recipient) {
    json cfg = json::parse(test::read_file(f.config));
    cfg["encryption"]["identity_file"] = identity.string();
    cfg["encryption"]["recipients"] = {recipient};
    test::write_file(f.config, cfg.dump());
}

}  // namespace

TEST_CASE("add-recipient: a past backup restores with only the added identity and the age CLI agrees",
          "[rotation]") {
    Flow f;
    f.publish();
    const std::string id = f.id();
    const std::string b = f.keys.other_recipient;  // an age-keygen pair the backup was not encrypted to
    const fs::path art = f.artifact();
    const fs::path manifest = f.backups / ("manifest_" + id + ".json.age");
    const fs::path art_header = art.string() + ".age-header.1";
    const fs::path manifest_header = manifest.string() + ".age-header.1";
    const auto before = hashes(f.backups);

    // Dry run: says what it would write, writes nothing.
    auto dry = add_recipient(f, {"--recipient", b, "--backup", id, "--dry-run"});
    INFO(dry.err);
    REQUIRE(dry.code == 0);
    json d = json::parse(dry.out);
    CHECK(d["dry_run"] == true);
    CHECK(d["backups"][0]["headers"] == 2);
    CHECK_THAT(dry.err, Catch::Contains("would write 2 of 2"));
    CHECK(hashes(f.backups) == before);

    auto add = add_recipient(f, {"--recipient", b, "--backup", id});
    INFO(add.err);
    REQUIRE(add.code == 0);
    json a = json::parse(add.out);
    CHECK(a["ok"] == true);
    REQUIRE(a["backups"][0]["objects"].size() == 2);
    CHECK(a["backups"][0]["objects"][0]["header"] == fs::relative(art_header, f.backups).string());
    CHECK(a["backups"][0]["objects"][1]["header"] == "manifest_" + id + ".json.age.age-header.1");
    CHECK_THAT(add.err, Catch::Contains("backup " + id + ": wrote 2 of 2") && Catch::Contains(b));
    // The artifact, the encrypted manifest and the index are byte for byte what they were.
    auto after = hashes(f.backups);
    CHECK(after.size() == before.size() + 2);
    for (const auto& [name, sha] : before) {
        INFO(name);
        CHECK(after.at(name) == sha);
    }
    CHECK(fs::exists(art_header));
    CHECK(fs::exists(manifest_header));

    // The interop oracle: the header object spliced onto the artifact's payload is an age file that the
    // age CLI opens with B, to the same bytes A's identity gives from the artifact itself.
    auto spliced = [&](const fs::path& header, const fs::path& object) {
        // tail -c +N starts at byte N, counting from 1: the first byte after the object's own header.
        return "{ cat '" + header.string() + "'; tail -c +" +
               std::to_string(test::header_end(test::read_file(object)) + 1) + " '" + object.string() +
               "'; }";
    };
    auto with_b = test::run(
        {"sh", "-c", spliced(art_header, art) + " | age -d -i '" + f.keys.other.string() + "' | sha256sum"});
    auto with_a = test::run(
        {"sh", "-c", "age -d -i '" + f.keys.identity.string() + "' '" + art.string() + "' | sha256sum"});
    INFO(with_b.err << with_a.err);
    CHECK(with_b.code == 0);
    CHECK(with_a.code == 0);
    CHECK(with_b.out.size() > 64);
    CHECK(with_b.out == with_a.out);
    auto tar = test::run(
        {"sh", "-c",
         spliced(art_header, art) + " | age -d -i '" + f.keys.other.string() + "' | zstd -d -c | tar -tf -"});
    CHECK_THAT(tar.out, Catch::Contains("app.conf") && Catch::Contains("big.bin"));
    auto m = test::run(
        {"sh", "-c", spliced(manifest_header, manifest) + " | age -d -i '" + f.keys.other.string() + "'"});
    INFO(m.err);
    REQUIRE(m.code == 0);
    CHECK(json::parse(m.out)["id"] == id);
    // Without the rotation header, B opens nothing.
    CHECK(test::run({"age", "-d", "-i", f.keys.other.string(), art.string()}).code != 0);

    SECTION("a second add of the same recipient is a no-op that says so") {
        auto again = add_recipient(f, {"--recipient", b, "--backup", id});
        INFO(again.err);
        CHECK(again.code == 0);
        CHECK_THAT(again.err, Catch::Contains("nothing to do") && Catch::Contains(b));
        CHECK(json::parse(again.out)["backups"][0]["headers"] == 0);
        CHECK(hashes(f.backups) == after);
    }
    SECTION("a restore host holding only B restores the backup") {
        restore_host_config(f, f.keys.other, b);
        auto r = f.restore();
        INFO(r.err);
        REQUIRE(r.code == 0);
        CHECK(test::read_file(f.target / f.src.relative_path() / "big.bin") ==
              test::random_bytes(300 * 1024, 7));
        CHECK(hashes(f.backups) == after);
    }
    SECTION("the key-less dry run checks the rotation headers and names a malformed one") {
        json cfg = json::parse(test::read_file(f.config));
        cfg["encryption"].erase("identity_file");
        test::write_file(f.config, cfg.dump());
        auto ok = f.restore({"--dry-run"});
        INFO(ok.err);
        CHECK(ok.code == 0);
        CHECK_THAT(ok.err, Catch::Contains("no identity") && Catch::Contains("stored bytes"));
        test::write_file(art_header, test::read_file(art_header) + "trailing bytes");
        auto bad = f.restore({"--dry-run"});
        INFO(bad.err);
        CHECK(bad.code == 4);
        CHECK_THAT(bad.err, Catch::Contains(art_header.filename().string()));
        CHECK(f.target_untouched());
        // The manifest's header too.
        test::write_file(art_header, test::read_file(manifest_header));  // well-formed again (another key)
        test::write_file(manifest_header, "age-encryption.org/v1\n--- not a mac\n");
        auto bad_manifest = f.restore({"--dry-run"});
        INFO(bad_manifest.err);
        CHECK(bad_manifest.code == 4);
        CHECK_THAT(bad_manifest.err, Catch::Contains(manifest_header.filename().string()));
    }
}

TEST_CASE(
    "add-recipient with an identity that opens nothing exits 4 naming backup and object, writes nothing",
    "[rotation]") {
    Flow f;
    f.publish();
    const std::string id = f.id();
    const fs::path stranger = f.dir / "stranger.txt";
    REQUIRE(test::run({"age-keygen", "-o", stranger.string()}).code == 0);
    const auto before = hashes(f.backups);
    auto r =
        add_recipient(f, {"--recipient", f.keys.other_recipient, "--all", "--identity", stranger.string()});
    INFO(r.err);
    CHECK(r.code == 4);
    CHECK_THAT(r.err, Catch::Contains("backup " + id) && Catch::Contains(".age") &&
                          Catch::Contains("cannot open its age header"));
    CHECK(json::parse(r.out)["ok"] == false);
    CHECK(hashes(f.backups) == before);

    // An identity file others can read is refused like encryption.identity_file (exit 2).
    ::chmod(stranger.c_str(), 0644);
    auto open =
        add_recipient(f, {"--recipient", f.keys.other_recipient, "--all", "--identity", stranger.string()});
    CHECK(open.code == 2);
    CHECK_THAT(open.err, Catch::Contains(stranger.string()));
    // No recipient, no backup: usage errors.
    CHECK(add_recipient(f, {"--all"}).code == 2);
    CHECK(add_recipient(f, {"--recipient", f.keys.other_recipient}).code == 2);
    CHECK(add_recipient(f, {"--recipient", "age1notarecipient", "--all"}).code == 2);
    CHECK(hashes(f.backups) == before);
}

TEST_CASE("add-recipient: an encrypted PostgreSQL backup restores with only the added identity",
          "[rotation]") {
    test::Keys keys;
    test::TempDir dir;
    const fs::path backups = dir / "backups", config = dir / "nightjar.json";
    const std::string host = test::required_env("NIGHTJAR_TEST_PGHOST");
    const std::string port = test::required_env("NIGHTJAR_TEST_PGPORT");
    const std::string user = test::required_env("NIGHTJAR_TEST_PGUSER");
    const std::string bindir = test::required_env("NIGHTJAR_TEST_PG_BINDIR");
    const std::vector<std::string> env{"PGPASSWORD=" + test::required_env("NIGHTJAR_TEST_PGPASSWORD")};
    const std::string db = "rot_" + std::to_string(::getpid()), copy = db + "_copy";
    auto psql = [&](const std::string& d, const std::string& sql) {
        auto r = test::run({bindir + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host,
                            "-p", port, "-U", user, "-d", d, "-c", sql},
                           env);
        INFO(sql << "\n" << r.err);
        REQUIRE(r.code == 0);
        return r.out.substr(0, r.out.find_last_not_of('\n') + 1);
    };
    psql("postgres", "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    psql("postgres", "DROP DATABASE IF EXISTS " + copy + " WITH (FORCE)");
    psql("postgres", "CREATE DATABASE " + db);
    psql(db, "CREATE TABLE rotated AS SELECT g AS n FROM generate_series(1, 3000) g");
    json j{{"backup_dir", backups.string()},
           {"postgres", {{"host", host}, {"port", std::stoi(port)}, {"user", user}, {"databases", {db}}}},
           {"encryption", {{"recipients", {keys.recipient}}, {"identity_file", keys.identity.string()}}}};
    test::write_file(config, j.dump());
    auto b = test::backup({"--config", config.string()}, env);
    INFO(b.err);
    REQUIRE(b.code == 0);
    std::smatch m;
    REQUIRE(std::regex_search(b.err, m, std::regex("ed25519:[A-Za-z0-9+/]+")));
    j["encryption"]["trusted_hosts"] = {{Flow::host(), {m[0].str()}}};
    test::write_file(config, j.dump());

    auto add = test::backup({"encryption", "add-recipient", "--config", config.string(), "--all",
                             "--recipient", keys.other_recipient});
    INFO(add.err);
    REQUIRE(add.code == 0);
    // The restore host holds only the added identity.
    j["encryption"]["identity_file"] = keys.other.string();
    j["encryption"]["recipients"] = {keys.other_recipient};
    test::write_file(config, j.dump());
    auto r = test::restore({"latest", "--backup-dir", backups.string(), "--config", config.string(),
                            "--db-name", db + "=" + copy},
                           env);
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK(psql(copy, "SELECT count(*) FROM rotated") == "3000");
    psql("postgres", "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    psql("postgres", "DROP DATABASE IF EXISTS " + copy + " WITH (FORCE)");
}
