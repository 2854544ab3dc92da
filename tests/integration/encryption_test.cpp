// Encryption at rest end to end (issue 15), through the real binaries: every component encrypted with age,
// the manual recipe (age -d | zstd -d), a manifest nobody reads without a key, a signed index, tampering of
// every kind refused before anything is written, and configs that cannot encrypt failing before anything
// exists.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <random>
#include <regex>

#include "support/commands.hpp"
#include "support/corrupt.hpp"
#include "support/encrypted_flow.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;

using test::Flow;
using test::header_end;
using test::Keys;
using test::random_bytes;

TEST_CASE("encrypted files backup: round trip, age CLI recipe, no plaintext at rest, listing",
          "[encryption]") {
    Flow f;
    f.publish();
    const std::string id = f.id();
    // What is stored: the encrypted manifest, the index (last), artifacts with .age.
    CHECK(fs::exists(f.backups / ("manifest_" + id + ".json.age")));
    CHECK_FALSE(fs::exists(f.backups / ("manifest_" + id + ".json")));
    json idx = f.index_json();
    CHECK(idx["encryption"] == "age");
    CHECK(idx["host"] == Flow::host());
    CHECK(idx["signer"] == f.signer);
    CHECK_THAT(idx["artifacts"][0]["path"].get<std::string>(), Catch::EndsWith(".age"));
    CHECK(idx["recipients"].size() == 1);

    // Nothing at rest names the content: no file name, no marker, no path.
    for (const auto& e : fs::recursive_directory_iterator(f.backups)) {
        if (!e.is_regular_file()) continue;
        std::string text = test::read_file(e.path());
        INFO(e.path());
        CHECK(text.find("nightjar-plaintext-canary") == std::string::npos);
        CHECK(text.find("app.conf") == std::string::npos);
        CHECK(text.find("etc-app") == std::string::npos);
    }

    // The manual recipe: age -d -i key | zstd -d gives the tar (which holds app.conf).
    auto manual = test::run({"sh", "-c",
                             "age -d -i '" + f.keys.identity.string() + "' '" + f.artifact().string() +
                                 "' | zstd -d -c | tar -tf -"});
    INFO(manual.err);
    CHECK(manual.code == 0);
    CHECK_THAT(manual.out, Catch::Contains("app.conf") && Catch::Contains("big.bin"));
    auto manifest = test::run({"age", "-d", "-i", f.keys.identity.string(),
                               (f.backups / ("manifest_" + id + ".json.age")).string()});
    CHECK(manifest.code == 0);
    CHECK(json::parse(manifest.out)["options"]["encryption"] == "age");

    // Restore with the identity: the tree comes back.
    auto r = f.restore();
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(test::read_file(f.target / f.src.relative_path() / "big.bin") == random_bytes(300 * 1024, 7));

    // --list: from the index alone without a key, in full with one.
    test::write_file(f.config,
                     json{{"backup_dir", f.backups.string()}, {"encryption", f.encryption(false)}}.dump());
    auto keyless = test::restore(
        {"--list", "--json", "--backup-dir", f.backups.string(), "--config", f.config.string()});
    INFO(keyless.err);
    REQUIRE(keyless.code == 0);
    json rows = json::parse(keyless.out);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["encryption"] == "age");
    CHECK(rows[0]["status"] == "complete");
    CHECK(rows[0]["components"] == "(encrypted)");
    CHECK(rows[0]["stored_bytes"].get<std::uint64_t>() > 300 * 1024);
    // Missing identity: the restore says which key is missing, writes nothing.
    auto missing = f.restore();
    CHECK(missing.code == 4);
    CHECK_THAT(missing.err, Catch::Contains("identity_file") && Catch::Contains("encrypted"));
}

TEST_CASE("encrypted backup: wrong identity and every kind of tampering exit 4 naming it, nothing written",
          "[encryption]") {
    Flow f;
    f.publish();
    const fs::path art = f.artifact();
    const std::string rel = f.index_json()["artifacts"][0]["path"];
    const std::string original = test::read_file(art);
    const std::size_t hdr = header_end(original);
    const std::size_t chunk = 64 * 1024 + 16;
    REQUIRE(original.size() > hdr + 16 + 3 * chunk);

    SECTION("wrong identity") {
        json cfg = json::parse(test::read_file(f.config));
        cfg["encryption"]["identity_file"] = f.keys.other.string();
        cfg["encryption"]["recipients"] = {f.keys.other_recipient};
        test::write_file(f.config, cfg.dump());
        auto r = f.restore();
        CHECK(r.code == 4);
        CHECK_THAT(r.err, Catch::Contains("manifest_" + f.id() + ".json.age"));
        CHECK(f.target_untouched());
    }
    auto tampered = [&](const std::string& bytes, const std::string& what) {
        test::write_file(art, bytes);
        auto r = f.restore();
        INFO(what << "\n" << r.err);
        CHECK(r.code == 4);
        CHECK_THAT(r.err, Catch::Contains(rel));
        CHECK_THAT(r.err, Catch::Contains("nothing was restored"));
        CHECK(f.target_untouched());
        auto dry = f.restore({"--dry-run"});
        CHECK(dry.code == 4);
    };
    SECTION("truncated ciphertext") {
        tampered(original.substr(0, original.size() - 100), "truncated");
    }
    SECTION("flipped byte in the header") {
        std::string s = original;
        s[hdr - 10] ^= 0x01;
        tampered(s, "header");
    }
    SECTION("flipped byte in a middle chunk") {
        std::string s = original;
        s[hdr + 16 + chunk + 100] ^= 0x01;
        tampered(s, "middle chunk");
    }
    SECTION("flipped byte in the last chunk") {
        std::string s = original;
        s[s.size() - 5] ^= 0x01;
        tampered(s, "last chunk");
    }
    SECTION("swapped chunks") {
        std::string s = original;
        std::string a = s.substr(hdr + 16, chunk), b = s.substr(hdr + 16 + chunk, chunk);
        s.replace(hdr + 16, chunk, b);
        s.replace(hdr + 16 + chunk, chunk, a);
        tampered(s, "swapped");
    }
}

TEST_CASE("encrypted backup: an index with a bad signature or an unpinned signer is refused naming the host",
          "[encryption]") {
    Flow f;
    f.publish();
    SECTION("bad signature") {
        test::edit_manifest(f.index(), [](json& j) { j["finished_at"] = "2030-01-01T00:00:00Z"; });
        auto r = f.restore();
        CHECK(r.code == 4);
        CHECK_THAT(r.err, Catch::Contains("signature does not verify") && Catch::Contains(Flow::host()));
        CHECK(f.target_untouched());
    }
    SECTION("unpinned signer") {
        json cfg = json::parse(test::read_file(f.config));
        // A key pinned for the host that is not the one that signed.
        cfg["encryption"]["trusted_hosts"] = {
            {Flow::host(), {"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}};
        test::write_file(f.config, cfg.dump());
        auto r = f.restore();
        CHECK(r.code == 4);
        CHECK_THAT(r.err, Catch::Contains("not pinned for host " + Flow::host()));
    }
    SECTION("unsigned index: refused, accepted with --allow-unsigned") {
        test::edit_manifest(f.index(), [](json& j) {
            j.erase("signer");
            j.erase("signature");
        });
        auto r = f.restore();
        CHECK(r.code == 4);
        CHECK_THAT(r.err, Catch::Contains("not signed") && Catch::Contains("--allow-unsigned"));
        auto ok = f.restore({"--allow-unsigned"});
        INFO(ok.err);
        CHECK(ok.code == 0);
    }
}

TEST_CASE("encryption fails closed: a config that cannot encrypt fails before anything is written",
          "[encryption]") {
    Flow f;
    auto fails = [&](const json& enc, const std::string& expect) {
        json j{{"backup_dir", f.backups.string()},
               {"files", {{"paths", {f.src.string()}}}},
               {"encryption", enc}};
        test::write_file(f.config, j.dump());
        auto r = test::backup({"--config", f.config.string()});
        INFO(r.err);
        CHECK(r.code == 2);
        CHECK_THAT(r.err, Catch::Contains(expect));
        CHECK_FALSE(fs::exists(f.backups));
    };
    fails(json{{"recipients", json::array()}}, "/encryption");
    fails(json{{"recipients", {"age1notarecipient"}}}, "/encryption/recipients");
    fails(json{{"recipients_file", (f.dir / "missing.txt").string()}}, "missing.txt");
    fails(json::object(), "/encryption");
}

TEST_CASE("a backup without encryption says so in its manifest, --list and the dry run", "[encryption]") {
    Flow f;
    test::write_file(
        f.config, json{{"backup_dir", f.backups.string()}, {"files", {{"paths", {f.src.string()}}}}}.dump());
    auto dry = test::backup({"--config", f.config.string(), "--dry-run"});
    CHECK(dry.code == 0);
    CHECK_THAT(dry.err, Catch::Contains("encryption: none"));
    REQUIRE(test::backup({"--config", f.config.string()}).code == 0);
    auto manifests = test::published_manifests(f.backups);
    REQUIRE(manifests.size() == 1);
    CHECK(json::parse(test::read_file(manifests[0]))["options"]["encryption"] == "none");
    auto list = test::restore({"--list", "--json", "--backup-dir", f.backups.string()});
    CHECK(json::parse(list.out)[0]["encryption"] == "none");
}

TEST_CASE("encrypted postgres and redis backups round trip", "[encryption]") {
    Keys keys;
    test::TempDir dir;
    const fs::path backups = dir / "backups", config = dir / "nightjar.json";
    const std::string host = test::required_env("NIGHTJAR_TEST_PGHOST");
    const std::string port = test::required_env("NIGHTJAR_TEST_PGPORT");
    const std::string user = test::required_env("NIGHTJAR_TEST_PGUSER");
    const std::string bindir = test::required_env("NIGHTJAR_TEST_PG_BINDIR");
    const std::vector<std::string> env{"PGPASSWORD=" + test::required_env("NIGHTJAR_TEST_PGPASSWORD")};
    const int redis_port = std::stoi(test::required_env("NIGHTJAR_TEST_REDIS_PORT"));
    const std::string db = "enc_" + std::to_string(::getpid());
    auto psql = [&](const std::string& d, const std::string& sql) {
        auto r = test::run({bindir + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host,
                            "-p", port, "-U", user, "-d", d, "-c", sql},
                           env);
        INFO(sql << "\n" << r.err);
        REQUIRE(r.code == 0);
        return r.out.substr(0, r.out.find_last_not_of('\n') + 1);
    };
    const std::string copy = db + "_copy";
    psql("postgres", "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    psql("postgres", "DROP DATABASE IF EXISTS " + copy + " WITH (FORCE)");
    psql("postgres", "CREATE DATABASE " + db);
    psql(db, "CREATE TABLE secret_ledger_table AS SELECT g AS n FROM generate_series(1, 5000) g");
    json j{{"backup_dir", backups.string()},
           {"postgres", {{"host", host}, {"port", std::stoi(port)}, {"user", user}, {"databases", {db}}}},
           {"redis", {{"port", redis_port}}},
           {"encryption", {{"recipients", {keys.recipient}}, {"identity_file", keys.identity.string()}}}};
    test::write_file(config, j.dump());
    auto b = test::backup({"--config", config.string()}, env);
    INFO(b.err);
    REQUIRE(b.code == 0);
    std::smatch m;
    REQUIRE(std::regex_search(b.err, m, std::regex("ed25519:[A-Za-z0-9+/]+")));
    j["encryption"]["trusted_hosts"] = {{Flow::host(), {m[0].str()}}};
    test::write_file(config, j.dump());
    // The table name appears in no stored file.
    for (const auto& e : fs::recursive_directory_iterator(backups))
        if (e.is_regular_file()) {
            INFO(e.path());
            CHECK(test::read_file(e.path()).find("secret_ledger_table") == std::string::npos);
        }
    const fs::path rdb = dir / "restored.rdb";
    auto r = test::restore({"latest", "--backup-dir", backups.string(), "--config", config.string(),
                            "--db-name", db + "=" + copy, "--redis-rdb-path", rdb.string()},
                           env);
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK(psql(copy, "SELECT count(*) FROM secret_ledger_table") == "5000");
    CHECK(test::read_file(rdb).substr(0, 5) == "REDIS");
    psql("postgres", "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    psql("postgres", "DROP DATABASE IF EXISTS " + copy + " WITH (FORCE)");
}
