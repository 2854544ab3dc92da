// Object lock from the retention policy and the renewed lease, against the real Ceph radosgw
// (scripts/lib/ceph.sh; the lock-enabled bucket NIGHTJAR_TEST_S3_LOCK_BUCKET): each backup's objects carry
// the retain-until the policy gives it at upload, a later prune extends a backup it now keeps longer,
// prune keeps a backup still locked and says so, and a run whose lease another run took over does not
// publish.
#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "nightjar/core/clock.hpp"
#include "nightjar/io/process.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/retention.hpp"
#include "nightjar/repo/s3/s3_storage.hpp"
#include "nightjar/run/offsite_lease.hpp"
#include "nightjar/run/repository_config.hpp"
#include "support/commands.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string unique(const std::string& what) {
    static std::mt19937_64 rng{std::random_device{}()};
    return what + "-" + std::to_string(::getpid()) + "-" + std::to_string(rng() % 1000000000);
}

std::string lock_bucket() {
    return test::required_env("NIGHTJAR_TEST_S3_LOCK_BUCKET");
}

S3RepositoryConfig s3_config(const std::string& bucket, const std::string& prefix, int lock_days) {
    S3RepositoryConfig c{
        .endpoint = test::required_env("NIGHTJAR_TEST_S3_ENDPOINT"),
        .region = test::required_env("NIGHTJAR_TEST_S3_REGION"),
        .bucket = bucket,
        .prefix = prefix,
        .access_key_id = test::required_env("NIGHTJAR_TEST_S3_ACCESS_KEY_ID"),
        .secret_access_key_file = test::required_env("NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE")};
    c.object_lock.days = lock_days;
    return c;
}

// The repository section of a config on the lock bucket under `prefix`, locked `lock_days`.
json s3_section(const std::string& prefix, int lock_days) {
    json j{{"type", "s3"},
           {"endpoint", test::required_env("NIGHTJAR_TEST_S3_ENDPOINT")},
           {"region", test::required_env("NIGHTJAR_TEST_S3_REGION")},
           {"bucket", lock_bucket()},
           {"prefix", prefix},
           {"access_key_id", test::required_env("NIGHTJAR_TEST_S3_ACCESS_KEY_ID")},
           {"secret_access_key_file", test::required_env("NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE")},
           {"lease_stale_minutes", 1}};
    if (lock_days > 0) j["object_lock"] = {{"mode", "compliance"}, {"days", lock_days}};
    return j;
}

std::unique_ptr<s3::S3Storage> store(const std::string& prefix, int lock_days = 0,
                                     const std::string& bucket = lock_bucket()) {
    RepositoryConfig c;
    c.type = "s3";
    c.s3 = s3_config(bucket, prefix, lock_days);
    auto s = open_repository("s3://" + bucket + "/" + prefix, c);
    return std::unique_ptr<s3::S3Storage>(dynamic_cast<s3::S3Storage*>(s.release()));
}

std::vector<std::string> keys(const Storage& s, const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& e : s.list_prefix(prefix)) out.push_back(e.name);
    return out;
}

// The retain-until HEAD gives for `name` under the store's prefix (unix s; 0 when none).
std::int64_t retain_until(const s3::S3Storage& s, const std::string& name) {
    auto info = s.client().head_object(s.bucket(), s.key(name));
    REQUIRE(info);
    return info->lock_retain_until.empty() ? 0 : s3::parse_s3_time(info->lock_retain_until);
}

// Every object of backup `id`: its artifacts and its manifest.
std::vector<std::string> objects_of(const Storage& s, const std::string& id) {
    auto out = keys(s, id + "/");
    out.push_back(manifest_file_name(id));
    return out;
}

std::string backup_id(const test::Outcome& b) {
    INFO(b.err);
    REQUIRE(b.code == 0);
    return json::parse(b.out).at("id");
}

std::string read_object(const Storage& s, const std::string& name) {
    auto in = s.open_read(name);
    std::string text;
    std::vector<std::byte> buf(8192);
    while (std::size_t n = in->read(buf)) text.append(io::as_chars({buf.data(), n}));
    return text;
}

void write_object(const s3::S3Storage& s, const std::string& name, const std::string& text) {
    s.client().put_object(s.bucket(), s.key(name), s3::MemoryBody(io::as_bytes(text)));
}

}  // namespace

TEST_CASE("s3 lock: radosgw honours If-Match on PUT on a plain bucket but not on a versioned one",
          "[s3][lock]") {
    auto plain = store(unique("ifmatch"), 0, test::required_env("NIGHTJAR_TEST_S3_BUCKET"));
    auto put = [](const s3::S3Storage& s, const std::string& text, const std::string& if_match) {
        return s.client().put_object(s.bucket(), s.key("leases/x.json"), s3::MemoryBody(io::as_bytes(text)),
                                     {.if_match = if_match});
    };
    const std::string first = put(*plain, "one", "");
    const std::string second = put(*plain, "two", first);  // the ETag matches: replaced
    CHECK(second != first);
    CHECK(read_object(*plain, "leases/x.json") == "two");
    CHECK_THROWS_AS(put(*plain, "three", first), s3::PreconditionFailedError);  // a stale ETag: 412
    CHECK(read_object(*plain, "leases/x.json") == "two");
    // radosgw 16.2 answers 412 to a matching If-Match on a versioned bucket (every object-lock bucket is):
    // the lease falls back to read-compare there. Should this start failing, the store has been fixed.
    auto versioned = store(unique("ifmatch"));
    const std::string v1 = put(*versioned, "one", "");
    CHECK_THROWS_AS(put(*versioned, "two", v1), s3::PreconditionFailedError);
    CHECK(read_object(*versioned, "leases/x.json") == "one");
    // ... and it ignores If-None-Match: * there: a create-only write replaces the object (so the lease looks
    // before it creates).
    versioned->client().put_object(versioned->bucket(), versioned->key("leases/x.json"),
                                   s3::MemoryBody(io::as_bytes(std::string("three"))), {.create_only = true});
    CHECK(read_object(*versioned, "leases/x.json") == "three");
}

TEST_CASE("s3 lock: a create-only write through S3Storage never replaces an object on a versioned bucket",
          "[integration][s3][lock]") {
    // The raw PutObject above replaces it (radosgw ignores If-None-Match: * there); the storage looks first,
    // so a second publish of one manifest name fails and the first stays.
    auto s = store(unique("createonly"));
    auto put = [&](const std::string& text) {
        auto w = s->open_write("manifest_x.json", {.create_only = true});
        w->write(io::as_bytes(text));
        w->finish();
    };
    put("first");
    CHECK_THROWS_AS(put("second"), StorageExists);
    CHECK(read_object(*s, "manifest_x.json") == "first");
}

TEST_CASE("s3 lock: a second run finds the lease held on a versioned bucket too", "[integration][s3][lock]") {
    auto s = store(unique("twice"));
    BackupLease first;
    first.take(*s, "", 600);
    REQUIRE(first.held());
    BackupLease second;
    try {
        second.take(*s, "", 600);
        FAIL("a second run took a live lease");
    } catch (const Error& e) {
        CHECK(e.kind() == Kind::LockHeld);
        CHECK_THAT(e.what(), Catch::Contains("is held by host " + local_host_name()));
    }
    CHECK_FALSE(second.held());
    CHECK_NOTHROW(first.check());  // the first run's lease is untouched
}

TEST_CASE("s3 lock: a backup's objects are locked until the date the GFS policy would prune it",
          "[integration][s3][lock]") {
    test::TempDir dir;
    const std::string prefix = unique("gfs");
    test::write_file(dir / "src/a.conf", "a\n");
    const RetentionPolicy policy{.keep_daily = 3, .keep_weekly = 2, .keep_monthly = 2};
    json cfg{{"repository", s3_section(prefix, 1)},
             {"files", {{"paths", {(dir / "src").string()}}}},
             {"retention", {{"keep_daily", 3}, {"keep_weekly", 2}, {"keep_monthly", 2}}}};
    test::write_file(dir / "nightjar.json", cfg.dump());
    const std::string first =
        backup_id(test::backup({"--config", (dir / "nightjar.json").string(), "--json"}));
    const std::string second =
        backup_id(test::backup({"--config", (dir / "nightjar.json").string(), "--json"}));
    auto s = store(prefix);
    const std::int64_t t1 = parse_backup_id_time(first), t2 = parse_backup_id_time(second);
    // The first backup of this prefix is the first of its day, week and month: the monthly keeper's date.
    const std::int64_t want1 = lock_horizon_at_upload(t1, {}, policy, 1);
    CHECK(want1 > t1 + 28 * 86400);  // at least a month: the monthly keeper
    const auto first_objects = objects_of(*s, first);
    REQUIRE(first_objects.size() >= 2);
    for (const auto& name : first_objects) {
        INFO(name);
        CHECK(retain_until(*s, name) == want1);
    }
    // The second (the same day, unless the test straddles midnight): what the policy gives it, at least the
    // lock's day from its upload.
    const std::int64_t want2 = lock_horizon_at_upload(t2, {t1}, policy, 1);
    for (const auto& name : objects_of(*s, second)) {
        INFO(name);
        const std::int64_t got = retain_until(*s, name);
        CHECK(got >= want2);
        CHECK(got <= std::max(want2, unix_now() + 86400));
    }
}

TEST_CASE("s3 lock: a prune that keeps a backup longer extends the lock of every object of it",
          "[integration][s3][lock]") {
    test::TempDir dir;
    const std::string prefix = unique("promote");
    test::write_file(dir / "src/a.conf", "a\n");
    json cfg{{"repository", s3_section(prefix, 1)},
             {"files", {{"paths", {(dir / "src").string()}}}},
             {"retention", {{"keep_daily", 2}}}};
    test::write_file(dir / "nightjar.json", cfg.dump());
    const std::string a = backup_id(test::backup({"--config", (dir / "nightjar.json").string(), "--json"}));
    const std::string b = backup_id(test::backup({"--config", (dir / "nightjar.json").string(), "--json"}));
    auto s = store(prefix);
    const std::int64_t ta = parse_backup_id_time(a), tb = parse_backup_id_time(b);
    const std::int64_t day_end_a = lock_horizon_at_upload(ta, {}, {.keep_daily = 2}, 1);
    REQUIRE(retain_until(*s, manifest_file_name(a)) == day_end_a);
    const std::int64_t before_b = retain_until(*s, manifest_file_name(b));
    REQUIRE(before_b < lock_horizon_at_upload(tb, {}, {.keep_daily = 2}, 1));  // not the day's keeper

    SECTION("the first backup of the day turns out bad: the second becomes the day's keeper") {
        // A plain delete on a versioned bucket only hides the artifact (a delete marker): a is now
        // unverified.
        for (const auto& k : keys(*s, a + "/")) s->remove(k);
        auto p = test::backup({"--config", (dir / "nightjar.json").string(), "--prune-only", "--json"});
        INFO(p.err);
        REQUIRE(p.code == 0);
        const std::int64_t want = lock_horizon_at_upload(tb, {}, {.keep_daily = 2}, 1);
        for (const auto& name : objects_of(*s, b)) {
            INFO(name);
            CHECK(retain_until(*s, name) == want);
        }
        CHECK_THAT(p.err, Catch::Contains("lock of " + b + " extended to " + rfc3339_utc(want)));
        // a is outside every keep rule now, but still locked: kept, and prune says why.
        json out = json::parse(p.out);
        CHECK(out.at("deleted") == 0);
        bool saw = false;
        for (const auto& e : out.at("backups"))
            if (e.at("id") == a) {
                saw = true;
                CHECK(e.at("keep") == true);
                CHECK(e.at("reasons") == json::array({"locked until " + rfc3339_utc(day_end_a)}));
            }
        CHECK(saw);
    }
    SECTION("the policy grows: the first backup of the month is now kept three months") {
        auto p = test::backup(
            {"--config", (dir / "nightjar.json").string(), "--prune-only", "--keep-monthly", "3", "--json"});
        INFO(p.err);
        REQUIRE(p.code == 0);
        const std::int64_t want = lock_horizon_at_upload(ta, {}, {.keep_daily = 2, .keep_monthly = 3}, 1);
        CHECK(want > day_end_a + 20 * 86400);
        for (const auto& name : objects_of(*s, a)) {
            INFO(name);
            CHECK(retain_until(*s, name) == want);
        }
        CHECK(retain_until(*s, manifest_file_name(b)) == before_b);  // not a keeper: untouched
        // Never shortened: a prune with a smaller policy leaves the lock as it is.
        auto q = test::backup({"--config", (dir / "nightjar.json").string(), "--prune-only", "--json"});
        REQUIRE(q.code == 0);
        CHECK(retain_until(*s, manifest_file_name(a)) == want);
    }
}

TEST_CASE("s3 lock: prune never deletes a locked backup and says until when", "[integration][s3][lock]") {
    test::TempDir dir;
    const std::string prefix = unique("keep");
    test::write_file(dir / "src/a.conf", "a\n");
    json cfg{{"repository", s3_section(prefix, 2)}, {"files", {{"paths", {(dir / "src").string()}}}}};
    test::write_file(dir / "nightjar.json", cfg.dump());
    const std::string old = backup_id(test::backup({"--config", (dir / "nightjar.json").string(), "--json"}));
    backup_id(test::backup({"--config", (dir / "nightjar.json").string(), "--json"}));
    auto s = store(prefix);
    const std::int64_t until = retain_until(*s, manifest_file_name(old));
    REQUIRE(until > unix_now() + 86400);
    for (bool dry : {true, false}) {
        std::vector<std::string> args{
            "--config", (dir / "nightjar.json").string(), "--prune-only", "--keep-last", "1", "--json"};
        if (dry) args.push_back("--dry-run");
        auto p = test::backup(args);
        INFO(p.err);
        REQUIRE(p.code == 0);
        json out = json::parse(p.out);
        CHECK(out.at("deleted") == 0);
        CHECK(out.at("kept") == 2);
        CHECK_THAT(p.err, Catch::Contains("keep   " + old + " (locked until " + rfc3339_utc(until) + ")"));
    }
    CHECK(keys(*s, "manifest_").size() == 2);
    CHECK_FALSE(keys(*s, old + "/").empty());
}

TEST_CASE("s3 lock: a run whose lease another run took over does not publish", "[integration][s3][lock]") {
    test::TempDir dir;
    const std::string prefix = unique("takeover");
    test::write_file(dir / "src/a.conf", "a\n");
    json cfg{{"repository", s3_section(prefix, 0)},
             {"files", {{"paths", {(dir / "src").string()}}}},
             {"hooks", {{"before_backup", {{{"argv", {"sleep", "3"}}}}}}}};
    test::write_file(dir / "nightjar.json", cfg.dump());
    auto s = store(prefix);
    const std::string lease = "leases/" + local_host_name() + ".json";
    SpawnOptions o;
    o.capture_stderr = true;
    Subprocess run =
        Subprocess::spawn({NIGHTJAR_BACKUP_BIN, "--config", (dir / "nightjar.json").string()}, o);
    for (int i = 0; i < 200 && !s->stat(lease); ++i) std::this_thread::sleep_for(25ms);
    REQUIRE(s->stat(lease));
    // Another run (of a host that shares the prefix by mistake) takes the lease over while this one dumps.
    const json other{{"host", "other-host"},
                     {"pid", 4242},
                     {"taken_at", "2026-12-02T00:00:00Z"},
                     {"expires_at_unix", unix_now() + 3600}};
    write_object(*s, lease, other.dump());
    const int code = run.wait();
    const std::string err = run.stderr_text();
    INFO(err);
    CHECK(code == 5);
    CHECK_THAT(err, Catch::Contains("backup lease s3://") && Catch::Contains("by another run") &&
                        Catch::Contains("held by host other-host pid 4242") &&
                        Catch::Contains("without publishing"));
    CHECK(keys(*s, "manifest_").empty());
    CHECK(json::parse(read_object(*s, lease)).at("host") == "other-host");  // the loser leaves it alone
}

TEST_CASE("s3 lock: a held lease is renewed with a fresh timestamp and a takeover is seen by check",
          "[integration][s3][lock]") {
    // If-Match on a plain bucket, read-compare on the (versioned) lock bucket.
    const std::string bucket =
        GENERATE(std::string("NIGHTJAR_TEST_S3_BUCKET"), std::string("NIGHTJAR_TEST_S3_LOCK_BUCKET"));
    INFO(bucket);
    auto s = store(unique("renew"), 0, test::required_env(bucket.c_str()));
    const std::string lease = "leases/" + local_host_name() + ".json";
    {
        BackupLease l;
        l.take(*s, "20261202_000000", 2);  // stale after 2 s: renewed every 0.5 s
        REQUIRE(l.held());
        const json taken = json::parse(read_object(*s, lease));
        for (int i = 0; i < 60 && l.renewals() < 3; ++i) std::this_thread::sleep_for(100ms);
        CHECK(l.renewals() >= 3);
        const json renewed = json::parse(read_object(*s, lease));
        CHECK(renewed.at("taken_at") == taken.at("taken_at"));
        CHECK(renewed.at("expires_at_unix").get<std::int64_t>() >
              taken.at("expires_at_unix").get<std::int64_t>());
        CHECK(renewed.at("renewed_at").get<std::string>() > taken.at("renewed_at").get<std::string>());
        CHECK_NOTHROW(l.check());
        // Taken over: the next renewal's If-Match fails, and check() names the new holder.
        write_object(*s, lease, json{{"host", "other-host"}, {"pid", 7}, {"taken_at", "x"}}.dump());
        const int before = l.renewals();
        std::this_thread::sleep_for(1200ms);
        CHECK(l.renewals() == before);  // nothing more was written over the other run's lease
        try {
            l.check();
            FAIL("check() passed on a lease taken over");
        } catch (const Error& e) {
            CHECK(e.kind() == Kind::LockHeld);
            CHECK_THAT(e.what(), Catch::Contains("was taken over by another run") &&
                                     Catch::Contains("held by host other-host pid 7"));
        }
    }
    CHECK(json::parse(read_object(*s, lease)).at("host") == "other-host");  // not removed by the loser
}

TEST_CASE("s3 lock: only the objects of a backup are locked and each gets its backup's date", "[s3][lock]") {
    CHECK(s3::backup_of("20261202_010000/files-config.tar.zst") == "20261202_010000");
    CHECK(s3::backup_of("20261202_010000_2/db.dump.zst.age") == "20261202_010000_2");
    CHECK(s3::backup_of("manifest_20261202_010000.json") == "20261202_010000");
    CHECK(s3::backup_of("manifest_20261202_010000.json.age") == "20261202_010000");
    CHECK(s3::backup_of("index_20261202_010000.json") == "20261202_010000");
    CHECK(s3::backup_of("leases/host.json") == "");
    CHECK(s3::backup_of("runs/20261202_010000.json") == "");
    CHECK(s3::backup_of("verified_20261202_010000.json") == "");
    CHECK(s3::backup_of("manifest_.json") == "");
    CHECK(s3::backup_of("manifest_junk.json") == "");

    auto client = std::make_shared<const s3::Client>(s3::ClientOptions{.endpoint = "http://127.0.0.1:9"},
                                                     s3::Credentials{"id", "secret", ""});
    s3::S3Storage unlocked(client, {.bucket = "bucket", .prefix = "h/"});
    CHECK_FALSE(unlocked.lock_for("20261202_010000/a.tar.zst"));
    s3::S3Storage locked(client, {.bucket = "bucket", .prefix = "h/", .lock = {.days = 2}});
    const auto now = std::chrono::system_clock::now();
    CHECK_FALSE(locked.lock_for("leases/h.json"));
    auto plain = locked.lock_for("20261202_010000/a.tar.zst");
    REQUIRE(plain);
    CHECK(plain->retain_until >= now + 48h);
    CHECK(plain->retain_until < now + 48h + 1min);
    const auto until = now + 24h * 90;
    locked.set_backup_lock("20261202_010000", until);
    CHECK(locked.lock_for("20261202_010000/a.tar.zst")->retain_until == until);
    CHECK(locked.lock_for("manifest_20261202_010000.json")->retain_until == until);
    CHECK(locked.lock_for("20261202_020000/a.tar.zst")->retain_until < now + 48h + 1min);  // another backup
    // A date sooner than the lock's days never shortens it.
    locked.set_backup_lock("20261202_020000", now + 1h);
    CHECK(locked.lock_for("20261202_020000/a.tar.zst")->retain_until >= now + 48h);
}
