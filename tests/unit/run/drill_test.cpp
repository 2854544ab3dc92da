#include "nightjar/run/drill.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

#include "nightjar/io/signing.hpp"
#include "nightjar/repo/drill_record.hpp"
#include "nightjar/repo/prune.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/run/config.hpp"
#include "support/manifests.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using nlohmann::json;

TEST_CASE("the drill config section parses with defaults and rejects unknown keys", "[drill]") {
    DrillConfig d = parse_drill_config(json::object(), "config");
    CHECK_FALSE(d.after_backup);
    CHECK(d.random_skip_days == 7);
    d = parse_drill_config(json{{"after_backup", true}, {"random_skip_days", 3}}, "config");
    CHECK(d.after_backup);
    CHECK(d.random_skip_days == 3);
    REQUIRE_THROWS_MATCHES(parse_drill_config(json{{"after_backups", true}}, "config"), Error,
                           test::IsError(Kind::Config, "/drill/after_backups"));
    REQUIRE_THROWS_MATCHES(parse_drill_config(json{{"after_backup", "yes"}}, "config"), Error,
                           test::IsError(Kind::Config, "/drill/after_backup"));
    REQUIRE_THROWS_MATCHES(parse_drill_config(json{{"random_skip_days", -1}}, "config"), Error,
                           test::IsError(Kind::Config, "/drill/random_skip_days"));
}

TEST_CASE("drill metrics keep the last success of a failed drill and the backup's own lines", "[drill]") {
    test::TempDir dir;
    const auto file = dir / "nightjar.prom";
    test::write_file(file,
                     "# HELP nightjar_last_run_status x\n# TYPE nightjar_last_run_status gauge\n"
                     "nightjar_last_run_status 0\n");
    DrillReport ok;
    ok.ok = true;
    ok.finished_unix = 1000;
    ok.seconds = 2.5;
    ok.components.push_back({.component = "postgres", .ok = true, .seconds = 2.0, .bytes = 10});
    write_drill_metrics(file, ok);
    DrillReport failed;
    failed.ok = false;
    failed.exit_code = 7;
    failed.finished_unix = 2000;
    write_drill_metrics(file, failed);
    const std::string text = test::read_file(file);
    CHECK_THAT(text, Catch::Contains("nightjar_last_run_status 0"));
    CHECK_THAT(text, Catch::Contains("nightjar_drill_last_success_timestamp_seconds 1000\n"));
    CHECK_THAT(text, Catch::Contains("nightjar_drill_last_run_timestamp_seconds 2000\n"));
    CHECK_THAT(text, Catch::Contains("nightjar_drill_status 7\n"));
    // One block of drill lines, not one per write.
    CHECK(text.find("# TYPE nightjar_drill_status") == text.rfind("# TYPE nightjar_drill_status"));
    CHECK(metric_lines_with_prefix(file, "nightjar_drill_").find("nightjar_last_run_status") ==
          std::string::npos);
    CHECK_THAT(metric_lines_with_prefix(file, "nightjar_drill_"),
               Catch::Contains("# TYPE nightjar_drill_status gauge"));
}

TEST_CASE("drill records are create-only and the newest is the last drill", "[drill]") {
    test::TempDir dir;
    PosixStorage storage(dir.path());
    const std::string id = "20261201_015000";
    CHECK_FALSE(last_drill(storage, id));
    auto a = write_drill_record(storage, id, 1764554400, json{{"ok", true}});
    auto b = write_drill_record(storage, id, 1764554400, json{{"ok", false}, {"reason", "redis db0 keys"}});
    CHECK(a == "drills/" + id + "/" + drill_record_name(1764554400) + ".json");
    CHECK(a != b);
    auto last = last_drill(storage, id);
    REQUIRE(last);
    CHECK(last->file == b);
    CHECK_FALSE(last->passed);
    CHECK(last->reason == "redis db0 keys");
    write_drill_record(storage, id, 1764554460, json{{"ok", true}});
    CHECK(last_drill(storage, id)->passed);
    // A record that is not JSON counts as a failed drill, never as a pass.
    test::write_file(dir / "drills" / id / "20261202T000000Z.json", "{not json");
    CHECK_FALSE(last_drill(storage, id)->passed);
    CHECK_FALSE(last_drill(storage, "../etc"));
}

TEST_CASE("the config's drill section is parsed into Config and checked strictly", "[drill][config]") {
    Config c = parse_config(R"({"backup_dir": "/var/backups/nightjar",
                                "drill": {"after_backup": true, "random_skip_days": 14}})",
                            "/etc/nightjar.json");
    REQUIRE(c.drill);
    CHECK(c.drill->after_backup);
    CHECK(c.drill->random_skip_days == 14);
    CHECK_FALSE(parse_config(R"({"backup_dir": "/b"})", "/etc/nightjar.json").drill);
    REQUIRE_THROWS_MATCHES(parse_config(R"({"drill": {"after_backup": 1}})", "/etc/nightjar.json"), Error,
                           test::IsError(Kind::Config, "/drill/after_backup"));
    REQUIRE_THROWS_MATCHES(parse_config(R"({"drill": {"every": "week"}})", "/etc/nightjar.json"), Error,
                           test::IsError(Kind::Config, "/drill/every"));
    REQUIRE_THROWS_MATCHES(parse_config(R"({"drill": true})", "/etc/nightjar.json"), Error,
                           test::IsError(Kind::Config, "/drill"));
}

namespace {

json sample_record(const std::string& host, bool ok) {
    return json{{"backup_id", "20261201_015000"},
                {"ok", ok},
                {"reason", ok ? "" : "postgres db-app: public.t rows: expected 10, got 9"},
                {"exit_code", ok ? 0 : 7},
                {"rto_seconds", 12.25},
                {"host", host},
                {"components", json::array({{{"component", "postgres"}, {"ok", ok}}})}};
}

}  // namespace

TEST_CASE("a signed drill record verifies, and any edit to it is refused", "[drill][signing]") {
    const io::SigningKey key = io::SigningKey::generate();
    const io::SigningKey other = io::SigningKey::generate();
    const io::TrustedSigners trusted{{"db1", {key.public_key()}}};

    json record = sample_record("db1", true);
    sign_drill_record(record, key);
    CHECK(record["signer"] == key.public_key().str());
    REQUIRE(record["signature"].is_string());
    CHECK(drill_record_distrust(record, trusted).empty());
    // Through the text form, as it is stored: the same bytes are signed.
    CHECK(drill_record_distrust(json::parse(record.dump(2)), trusted).empty());
    // Signing again gives a record that still verifies (the old signature is not part of what is signed).
    json twice = record;
    sign_drill_record(twice, key);
    CHECK(drill_record_distrust(twice, trusted).empty());

    json tampered = record;
    tampered["ok"] = false;
    CHECK_THAT(drill_record_distrust(tampered, trusted), Catch::Contains("does not verify"));
    tampered = record;
    tampered["components"][0]["ok"] = false;
    CHECK_THAT(drill_record_distrust(tampered, trusted), Catch::Contains("does not verify"));
    tampered = record;
    tampered["extra"] = 1;
    CHECK_THAT(drill_record_distrust(tampered, trusted), Catch::Contains("does not verify"));
    // A failing record re-signed by a key nobody pinned, or moved to another host's name.
    json forged = sample_record("db1", true);
    sign_drill_record(forged, other);
    CHECK_THAT(drill_record_distrust(forged, trusted), Catch::Contains("not pinned for host \"db1\""));
    tampered = record;
    tampered["host"] = "db2";
    CHECK_THAT(drill_record_distrust(tampered, trusted), Catch::Contains("not pinned for host \"db2\""));
    tampered = record;
    tampered["signature"] = "AAAA";
    CHECK_THAT(drill_record_distrust(tampered, trusted), Catch::Contains("does not verify"));
    tampered = record;
    tampered["signer"] = "ed25519:nonsense";
    CHECK_THAT(drill_record_distrust(tampered, trusted), Catch::Contains("not an ed25519 public key"));
    CHECK(drill_record_distrust(sample_record("db1", true), trusted) == "not signed");
    CHECK(drill_record_distrust(json::array(), trusted) == "not an object");
}

TEST_CASE("with signers pinned only signed drill records count as the last drill", "[drill][signing]") {
    test::TempDir dir;
    PosixStorage storage(dir.path());
    const std::string id = "20261201_015000";
    const io::SigningKey key = io::SigningKey::generate();
    const io::SigningKey other = io::SigningKey::generate();
    const io::TrustedSigners trusted{{"db1", {key.public_key()}}};

    // A genuine failing drill, then newer forged passing ones: unsigned, and signed by an unpinned key.
    json genuine = sample_record("db1", false);
    sign_drill_record(genuine, key);
    write_drill_record(storage, id, 1764554400, genuine);
    write_drill_record(storage, id, 1764554460, sample_record("db1", true));
    json forged = sample_record("db1", true);
    sign_drill_record(forged, other);
    write_drill_record(storage, id, 1764554520, forged);
    test::write_file(dir / "drills" / id / (drill_record_name(1764554580) + ".json"), "{not json");

    // Without pinned signers the newest record is the last drill (unreadable: a failure).
    auto any = last_drill(storage, id);
    REQUIRE(any);
    CHECK_FALSE(any->passed);
    CHECK(any->time == 1764554580);
    // Pinned: the forgeries are passed over; the genuine failure is the last drill.
    auto last = last_drill(storage, id, &trusted);
    REQUIRE(last);
    CHECK(last->counts);
    CHECK_FALSE(last->passed);
    CHECK(last->time == 1764554400);
    CHECK(last->ignored == 3);
    CHECK(last->signer == key.public_key().str());
    CHECK_THAT(last->reason, Catch::Contains("public.t rows"));
    // An empty pin list pins nothing.
    const io::TrustedSigners none;
    CHECK(last_drill(storage, id, &none)->time == 1764554580);

    // A backup whose only records are forged: not drilled as far as anything is concerned.
    const std::string id2 = "20261202_015000";
    write_drill_record(storage, id2, 1764640800, forged);
    auto only_forged = last_drill(storage, id2, &trusted);
    REQUIRE(only_forged);
    CHECK_FALSE(only_forged->passed);
    CHECK_FALSE(only_forged->counts);
    CHECK_THAT(only_forged->reason, Catch::Contains("not trusted") && Catch::Contains("not pinned"));
    // A genuine pass after the forgeries counts.
    json pass = sample_record("db1", true);
    sign_drill_record(pass, key);
    write_drill_record(storage, id, 1764554700, pass);
    CHECK(last_drill(storage, id, &trusted)->passed);
}

namespace {

// Publishes a backup with one small artifact (a complete backup as far as retention is concerned).
std::string publish_one(RepositoryWriter& repo, std::int64_t t) {
    const std::string id = repo.next_id(t);
    Staging staging = repo.begin(id, io::ZstdOptions{});
    auto w = staging.artifact("data.bin");
    w->write(io::as_bytes(std::string_view("payload " + id)));
    w->finish();
    repo.publish(std::move(staging), test::complete_manifest(id, {w->artifact("files", "data", "raw")}));
    return id;
}

bool kept(const PruneResult& r, const std::string& id) {
    for (const auto& d : r.decisions)
        if (d.id == id) return d.keep;
    FAIL("no decision for " << id);
    return false;
}

}  // namespace

TEST_CASE("retention ignores a forged passing drill record when signers are pinned",
          "[drill][signing][retention]") {
    test::TempDir dir;
    PosixStorage storage(dir.path());
    RepositoryWriter repo(storage);
    Lock lock = repo.lock();
    const std::string old_id = publish_one(repo, 1764554400);
    const std::string new_id = publish_one(repo, 1764640800);
    const io::SigningKey key = io::SigningKey::generate();
    const io::SigningKey attacker = io::SigningKey::generate();
    const io::TrustedSigners trusted{{"db1", {key.public_key()}}};
    const RetentionPolicy keep_one{.keep_last = 1};
    const std::int64_t now = 1764727200;

    // The older backup's only drill record is a forged pass: signed by a key nobody pinned.
    json forged = sample_record("db1", true);
    forged["backup_id"] = old_id;
    sign_drill_record(forged, attacker);
    write_drill_record(storage, old_id, 1764558000, forged);

    // Unpinned, the record is believed and the drill rule keeps the older backup.
    auto believed = prune(repo, keep_one, now, true);
    CHECK(kept(believed, old_id));
    // Pinned, it is not: keep_last 1 keeps only the newer one.
    auto pinned = prune(repo, keep_one, now, true, 86400, {.drill_signers = &trusted});
    CHECK_FALSE(kept(pinned, old_id));
    CHECK(kept(pinned, new_id));
    for (const auto& b : describe_backups(repo, &trusted)) CHECK_FALSE(b.drill_passed);

    // A genuine signed pass keeps it whatever the policy.
    json genuine = sample_record("db1", true);
    genuine["backup_id"] = old_id;
    sign_drill_record(genuine, key);
    write_drill_record(storage, old_id, 1764561600, genuine);
    auto proven = prune(repo, keep_one, now, true, 86400, {.drill_signers = &trusted});
    CHECK(kept(proven, old_id));
    for (const auto& d : proven.decisions)
        if (d.id == old_id)
            CHECK(std::find(d.reasons.begin(), d.reasons.end(), "newest backup whose last drill passed") !=
                  d.reasons.end());
}
