#pragma once
// An encrypted files backup made through the real binaries (issue 15): two key pairs (nightjar keygen and
// age-keygen), a config encrypting to the first, and the paths of what a backup stores. Shared by the
// encryption and rotation integration tests.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "support/commands.hpp"
#include "support/temp_dir.hpp"

namespace nightjar::test {

namespace fs = std::filesystem;
using nlohmann::json;

inline std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
}

// The age recipient in an identity file ("# public key: age1...").
inline std::string recipient_of(const fs::path& identity) {
    std::smatch m;
    std::string text = read_file(identity);
    REQUIRE(std::regex_search(text, m, std::regex("public key: (age1[0-9a-z]+)")));
    return m[1];
}

struct Keys {
    TempDir dir;
    fs::path identity = dir / "key.txt";
    fs::path other = dir / "other.txt";
    std::string recipient, other_recipient;
    Keys() {
        // One pair from nightjar's keygen, one from age-keygen: both are age identities.
        auto k = test::backup({"keygen", "-o", identity.string()});
        INFO(k.err);
        REQUIRE(k.code == 0);
        CHECK_THAT(k.out, Catch::StartsWith("Public key: age1"));
        recipient = recipient_of(identity);
        CHECK_THAT(k.out, Catch::Contains(recipient));
        CHECK((fs::status(identity).permissions() & fs::perms::all) == fs::perms(0600));
        auto a = run({"age-keygen", "-o", other.string()});
        INFO(a.err);
        REQUIRE(a.code == 0);
        other_recipient = recipient_of(other);
    }
};

struct Flow {
    Keys keys;
    TempDir dir;
    fs::path src = dir / "etc-app";
    fs::path backups = dir / "backups";
    fs::path config = dir / "nightjar.json";
    fs::path target = dir / "target";
    std::string signer;  // the public key the first backup logged

    Flow() {
        write_file(src / "app.conf", "listen = 8080\nsecret_marker = nightjar-plaintext-canary\n");
        write_file(src / "big.bin", random_bytes(300 * 1024, 7));  // incompressible: 5 payload chunks
    }
    json encryption(bool identity = true) const {
        json e{{"recipients", {keys.recipient}}};
        if (identity) e["identity_file"] = keys.identity.string();
        if (!signer.empty()) e["trusted_hosts"] = {{host(), {signer}}};
        return e;
    }
    static std::string host() {
        char buf[256] = {};
        ::gethostname(buf, sizeof buf - 1);
        return buf;
    }
    void write_config(json extra = json::object()) const {
        json j{{"backup_dir", backups.string()},
               {"files", {{"paths", {src.string()}}}},
               {"encryption", encryption()}};
        j.update(extra);
        write_file(config, j.dump(2));
    }
    Outcome backup() {
        auto r = test::backup({"--config", config.string()});
        std::smatch m;
        if (signer.empty() && std::regex_search(r.err, m, std::regex("ed25519:[A-Za-z0-9+/]+")))
            signer = m[0];
        return r;
    }
    Outcome restore(std::vector<std::string> extra = {}) const {
        std::vector<std::string> args{"latest",        "--backup-dir", backups.string(), "--config",
                                      config.string(), "--target-dir", target.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::restore(args);
    }
    std::string id() const {
        for (const auto& e : fs::directory_iterator(backups)) {
            std::string n = e.path().filename().string();
            if (n.starts_with("index_") && n.ends_with(".json")) return n.substr(6, n.size() - 11);
        }
        FAIL("no index in " << backups);
        return "";
    }
    fs::path index() const { return backups / ("index_" + id() + ".json"); }
    json index_json() const { return json::parse(read_file(index())); }
    fs::path artifact() const { return backups / index_json()["artifacts"][0]["path"].get<std::string>(); }
    // A published backup, with the signer pinned in the config.
    void publish() {
        write_config();
        auto b = backup();
        INFO(b.err);
        REQUIRE(b.code == 0);
        REQUIRE(!signer.empty());
        CHECK_THAT(b.err, Catch::Contains("trusted_hosts") && Catch::Contains(host()));
        write_config();  // now with trusted_hosts
    }
    bool target_untouched() const { return !fs::exists(target) || fs::is_empty(target); }
};

inline std::size_t header_end(const std::string& stored) {
    std::size_t mac = stored.find("\n--- ");
    REQUIRE(mac != std::string::npos);
    return stored.find('\n', mac + 1) + 1;
}

}  // namespace nightjar::test
