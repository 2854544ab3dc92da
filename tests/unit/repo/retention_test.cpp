#include <algorithm>
#include <catch2/catch.hpp>
#include <ctime>
#include <optional>
#include <random>
#include <set>

#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/retention.hpp"

using namespace nightjar;

namespace {

constexpr std::int64_t kDay = 86400;
// 2024-01-01T01:50:00Z
constexpr std::int64_t kStart = 1704073800;

std::vector<BackupInfo> daily(int days, std::int64_t first = kStart) {
    std::vector<BackupInfo> out;
    for (int i = 0; i < days; ++i) {
        std::int64_t t = first + i * kDay;
        out.push_back({backup_id_for(t), t, "complete", true});
    }
    return out;
}

std::set<std::string> kept(const std::vector<RetentionDecision>& ds) {
    std::set<std::string> out;
    for (const auto& d : ds)
        if (d.keep) out.insert(d.id);
    return out;
}

const RetentionDecision& decision(const std::vector<RetentionDecision>& ds, const std::string& id) {
    for (const auto& d : ds)
        if (d.id == id) return d;
    FAIL("no decision for " << id);
    throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("retention-days 30 over 60 daily backups keeps the last 30 days", "[retention]") {
    auto backups = daily(60);
    std::int64_t now = backups.back().time + 40 * 60;  // the run after the newest backup
    auto ds = plan_retention(backups, {.days = 30}, now);
    auto k = kept(ds);
    CHECK(k.size() == 30);
    CHECK(k.count(backups.back().id));
    CHECK_FALSE(k.count(backups[29].id));
    CHECK(k.count(backups[30].id));
    CHECK(decision(ds, backups[0].id).reasons.front() == "outside every keep rule");
    CHECK_THAT(decision(ds, backups.back().id).reasons.front(), Catch::Contains("newest complete backup"));

    SECTION("when every backup is older than the window, the newest is still kept") {
        auto late = plan_retention(backups, {.days = 30}, now + 100 * kDay);
        CHECK(kept(late) == std::set<std::string>{backups.back().id});
    }
}

TEST_CASE("grandfather-father-son over two years of daily backups keeps exactly the expected set",
          "[retention]") {
    auto backups = daily(731);  // 2024-01-01 .. 2025-12-31
    std::int64_t now = backups.back().time + 3600;
    auto ds = plan_retention(backups, {.keep_daily = 7, .keep_weekly = 4, .keep_monthly = 12}, now);
    std::set<std::string> expected;
    // daily: 2025-12-25 .. 2025-12-31
    for (int i = 0; i < 7; ++i) expected.insert(backups[backups.size() - 1 - i].id);
    // weekly (ISO): newest of each of the last 4 weeks: Wed 2025-12-31 (W01 of 2026), Sun 12-28, 12-21, 12-14
    for (const char* d : {"20251228_015000", "20251221_015000", "20251214_015000"}) expected.insert(d);
    // monthly: the last day of each of the last 12 months (2025-01 .. 2025-12)
    for (const char* d : {"20250131_015000", "20250228_015000", "20250331_015000", "20250430_015000",
                          "20250531_015000", "20250630_015000", "20250731_015000", "20250831_015000",
                          "20250930_015000", "20251031_015000", "20251130_015000"})
        expected.insert(d);
    CHECK(kept(ds) == expected);
    CHECK(decision(ds, "20251228_015000").reasons ==
          std::vector<std::string>{"daily 2025-12-28", "weekly 2025-W52"});
    CHECK_THAT(decision(ds, "20250131_015000").reasons.front(), Catch::Contains("monthly 2025-01"));
}

TEST_CASE("partial backups never push out the last complete one", "[retention]") {
    auto backups = daily(10);
    for (int i = 5; i < 10; ++i) backups[i].status = "partial";
    std::int64_t now = backups.back().time + 60;
    auto ds = plan_retention(backups, {.days = 2, .keep_last = 2}, now);
    auto k = kept(ds);
    CHECK(k.count(backups[4].id));  // newest complete, and last 1
    CHECK(k.count(backups[3].id));  // last 2: partial ones do not fill the slots
    CHECK(k.count(backups[9].id));  // partial but within 2 days
    CHECK(k.count(backups[8].id));
    CHECK_FALSE(k.count(backups[7].id));
    CHECK_THAT(decision(ds, backups[7].id).reasons.front(), Catch::Contains("partial backup"));
    CHECK_FALSE(k.count(backups[2].id));
}

TEST_CASE("backups that fail verification do not fill keep slots", "[retention]") {
    auto backups = daily(5);
    backups[4].verified = false;
    backups[3].status = "damaged";
    auto ds = plan_retention(backups, {.keep_last = 1}, backups.back().time);
    CHECK(kept(ds) == std::set<std::string>{backups[2].id});
    CHECK_THAT(decision(ds, backups[4].id).reasons.front(), Catch::Contains("artifacts missing"));
    CHECK_THAT(decision(ds, backups[3].id).reasons.front(), Catch::Contains("damaged"));
}

TEST_CASE("an empty policy keeps everything", "[retention]") {
    auto ds = plan_retention(daily(3), {}, kStart);
    CHECK(kept(ds).size() == 3);
}

TEST_CASE(
    "property: over random histories the newest good backup is always kept, and every kept one has a reason",
    "[retention]") {
    std::mt19937 rng(20261125);
    for (int round = 0; round < 500; ++round) {
        std::vector<BackupInfo> backups;
        std::int64_t t = kStart;
        int n = static_cast<int>(rng() % 80);
        for (int i = 0; i < n; ++i) {
            t += static_cast<std::int64_t>(rng() % (3 * kDay)) + 1;
            int kind = static_cast<int>(rng() % 10);
            BackupInfo b{backup_id_for(t), t,
                         kind < 7   ? "complete"
                         : kind < 9 ? "partial"
                                    : "damaged",
                         rng() % 15 != 0};
            if (b.status == "damaged") b.verified = false;
            backups.push_back(b);
        }
        RetentionPolicy p;
        if (rng() % 2) p.days = static_cast<int>(rng() % 40) + 1;
        p.keep_last = static_cast<int>(rng() % 4);
        p.keep_daily = static_cast<int>(rng() % 8);
        p.keep_weekly = static_cast<int>(rng() % 5);
        p.keep_monthly = static_cast<int>(rng() % 13);
        std::int64_t now = t + static_cast<std::int64_t>(rng() % (60 * kDay));
        auto ds = plan_retention(backups, p, now);
        REQUIRE(ds.size() == backups.size());
        const BackupInfo* newest_good = nullptr;
        for (const auto& b : backups)
            if (b.good() && (!newest_good || b.time > newest_good->time)) newest_good = &b;
        if (newest_good) REQUIRE(decision(ds, newest_good->id).keep);
        std::size_t deleted = 0;
        for (const auto& d : ds) {
            REQUIRE_FALSE(d.reasons.empty());
            deleted += d.keep ? 0 : 1;
        }
        // Dropping the bad backups from the history never changes which good backups are kept.
        std::vector<BackupInfo> good_only;
        for (const auto& b : backups)
            if (b.good()) good_only.push_back(b);
        if (!p.days) {
            auto ds2 = plan_retention(good_only, p, now);
            for (const auto& d : ds2) REQUIRE(decision(ds, d.id).keep == d.keep);
        }
        if (p.empty()) REQUIRE(deleted == 0);
    }
}

TEST_CASE("the newest backup whose last drill passed is kept whatever the policy", "[retention][drill]") {
    // Ten daily backups; the drill passed on day 3 and day 5, failed on day 8, and newer ones were not
    // drilled.
    struct Row {
        const char* name;
        RetentionPolicy policy;
    };
    const std::vector<Row> rows{{"keep_last 1", {.keep_last = 1}},
                                {"keep_daily 2", {.keep_daily = 2}},
                                {"retention days 1", {.days = 1}},
                                {"keep_weekly 1 + keep_last 2", {.keep_last = 2, .keep_weekly = 1}}};
    for (const auto& row : rows) {
        SECTION(row.name) {
            auto backups = daily(10);
            backups[3].drill_passed = true;
            backups[5].drill_passed = true;
            const std::int64_t now = kStart + 10 * kDay;
            auto ds = plan_retention(backups, row.policy, now);
            const auto& d5 = decision(ds, backups[5].id);
            CHECK(d5.keep);
            CHECK(std::find(d5.reasons.begin(), d5.reasons.end(), "newest backup whose last drill passed") !=
                  d5.reasons.end());
            // Only the newest drilled-good backup is protected by this rule: day 3 goes unless a rule keeps
            // it.
            const auto& d3 = decision(ds, backups[3].id);
            CHECK(std::find(d3.reasons.begin(), d3.reasons.end(), "newest backup whose last drill passed") ==
                  d3.reasons.end());
            CHECK_FALSE(d3.keep);
            // The newest complete backup is still kept too.
            CHECK(decision(ds, backups[9].id).keep);
        }
    }
}

TEST_CASE("with no backup drilled green the drill rule keeps nothing extra", "[retention][drill]") {
    auto backups = daily(5);
    auto ds = plan_retention(backups, {.keep_last = 1}, kStart + 5 * kDay);
    CHECK(kept(ds) == std::set<std::string>{backups[4].id});
}

TEST_CASE("a drilled-good backup that is partial or unverified is still kept by the drill rule",
          "[retention][drill]") {
    auto backups = daily(4);
    backups[1].drill_passed = true;
    backups[1].verified = false;
    backups[1].problem = "digest mismatch";
    auto ds = plan_retention(backups, {.keep_last = 1}, kStart + 4 * kDay);
    CHECK(kept(ds) == std::set<std::string>{backups[1].id, backups[3].id});
    // The property: over random drill marks, the newest drilled-good backup is always kept.
    std::mt19937 rng(17);
    for (int round = 0; round < 200; ++round) {
        auto bs = daily(12);
        std::optional<std::size_t> newest;
        for (std::size_t i = 0; i < bs.size(); ++i) {
            bs[i].drill_passed = rng() % 3 == 0;
            if (rng() % 4 == 0) bs[i].status = "partial";
            if (bs[i].drill_passed) newest = i;
        }
        auto r = plan_retention(bs, {.keep_last = static_cast<int>(rng() % 3), .keep_daily = 1},
                                kStart + 12 * kDay);
        if (newest) REQUIRE(decision(r, bs[*newest].id).keep);
    }
}

// ---- object lock from the policy (lock_horizons) ----

namespace {

std::int64_t at(const char* iso) {
    std::tm tm{};
    REQUIRE(strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return static_cast<std::int64_t>(timegm(&tm));
}

bool kept_by_gfs(const RetentionDecision& d) {
    return std::any_of(d.reasons.begin(), d.reasons.end(), [](const std::string& r) {
        return r.rfind("daily ", 0) == 0 || r.rfind("weekly ", 0) == 0 || r.rfind("monthly ", 0) == 0;
    });
}

}  // namespace

TEST_CASE("with first_of_period the first complete backup of each day is the daily keeper",
          "[retention][lock]") {
    std::vector<BackupInfo> backups;
    for (const char* t : {"2024-03-14T02:00:00Z", "2024-03-14T14:00:00Z", "2024-03-15T01:00:00Z",
                          "2024-03-15T02:00:00Z", "2024-03-15T14:00:00Z"})
        backups.push_back({backup_id_for(at(t)), at(t), "complete", true});
    backups[2].status = "partial";  // never a keeper: the next one of its day is
    const std::int64_t now = at("2024-03-15T15:00:00Z");
    RetentionPolicy p{.keep_daily = 2};
    CHECK(
        kept(plan_retention(backups, p, now)) ==
        std::set<std::string>{backups[4].id, backups[1].id});  // the newest of each day (and newest overall)
    p.first_of_period = true;
    auto ds = plan_retention(backups, p, now);
    CHECK(kept(ds) == std::set<std::string>{backups[0].id, backups[3].id, backups[4].id});
    CHECK(decision(ds, backups[3].id).reasons == std::vector<std::string>{"daily 2024-03-15"});
    CHECK(decision(ds, backups[0].id).reasons == std::vector<std::string>{"daily 2024-03-14"});
}

TEST_CASE("the lock at upload of the first backup of a day week and month is the longest of their horizons",
          "[retention][lock]") {
    const RetentionPolicy p{.keep_daily = 7, .keep_weekly = 4, .keep_monthly = 3};
    // Friday 2024-03-15: the first of its day, ISO week 2024-W11 (from Monday 03-11) and March.
    const std::int64_t t = at("2024-03-15T02:00:00Z");
    CHECK(lock_horizon_at_upload(t, {}, p, 1) == at("2024-06-01T00:00:00Z"));  // March + 3 months
    CHECK(lock_horizon_at_upload(t, {}, {.keep_daily = 7}, 1) == at("2024-03-22T00:00:00Z"));
    CHECK(lock_horizon_at_upload(t, {}, {.keep_weekly = 4}, 1) ==
          at("2024-04-08T00:00:00Z"));  // Monday + 28 d
    // Not the first of March (a backup on the 1st), still the first of its day and week.
    CHECK(lock_horizon_at_upload(t, {at("2024-03-01T02:00:00Z")}, p, 1) == at("2024-04-08T00:00:00Z"));
    // The second backup of the day: only the lock's days (or retention.days, whichever is longer).
    CHECK(lock_horizon_at_upload(t, {at("2024-03-01T02:00:00Z"), at("2024-03-15T01:00:00Z")}, p, 1) ==
          t + kDay);
    RetentionPolicy with_days = p;
    with_days.days = 10;
    CHECK(lock_horizon_at_upload(t, {at("2024-03-01T02:00:00Z"), at("2024-03-15T01:00:00Z")}, with_days, 1) ==
          t + 10 * kDay);
    CHECK(lock_horizon_at_upload(t, {at("2024-03-01T02:00:00Z"), at("2024-03-15T01:00:00Z")}, p, 40) ==
          t + 40 * kDay);  // a lock longer than the policy wins
    // keep_last alone has no date: the lock's days.
    CHECK(lock_horizon_at_upload(t, {}, {.keep_last = 30}, 3) == t + 3 * kDay);
}

TEST_CASE("lock horizons at ISO week and month boundaries", "[retention][lock]") {
    const RetentionPolicy weekly{.keep_weekly = 2};
    // Sunday 2024-03-17 23:00 belongs to the week of Monday 03-11; Monday 03-18 00:30 starts a new one.
    CHECK(lock_horizon_at_upload(at("2024-03-17T23:00:00Z"), {at("2024-03-15T02:00:00Z")}, weekly, 1) ==
          at("2024-03-18T23:00:00Z"));  // not the first of its week: one day
    CHECK(lock_horizon_at_upload(at("2024-03-18T00:30:00Z"), {at("2024-03-15T02:00:00Z")}, weekly, 1) ==
          at("2024-04-01T00:00:00Z"));
    // ISO week 2025-W01 starts on Monday 2024-12-30: Thursday 2025-01-02 is not the first of that week.
    CHECK(lock_horizon_at_upload(at("2025-01-02T02:00:00Z"), {at("2024-12-30T02:00:00Z")}, weekly, 1) ==
          at("2025-01-03T02:00:00Z"));
    CHECK(lock_horizon_at_upload(at("2024-12-30T02:00:00Z"), {at("2024-12-29T02:00:00Z")}, weekly, 1) ==
          at("2025-01-13T00:00:00Z"));
    // ... but it is the first of January 2025.
    CHECK(lock_horizon_at_upload(at("2025-01-02T02:00:00Z"), {at("2024-12-30T02:00:00Z")},
                                 {.keep_monthly = 2}, 1) == at("2025-03-01T00:00:00Z"));
    const RetentionPolicy monthly{.keep_monthly = 1};
    // The last second of January is not the first of January; the first second of February is.
    CHECK(lock_horizon_at_upload(at("2024-01-31T23:59:59Z"), {at("2024-01-01T02:00:00Z")}, monthly, 1) ==
          at("2024-02-01T23:59:59Z"));
    CHECK(lock_horizon_at_upload(at("2024-02-01T00:00:00Z"), {at("2024-01-31T23:59:59Z")}, monthly, 1) ==
          at("2024-03-01T00:00:00Z"));
    // Month ends of different lengths, a leap February and a year wrap (lock days 0: the month's date alone;
    // with a day's lock, a day from the upload is later than the next 1st).
    CHECK(lock_horizon_at_upload(at("2024-01-31T02:00:00Z"), {}, monthly, 0) == at("2024-02-01T00:00:00Z"));
    CHECK(lock_horizon_at_upload(at("2024-02-29T02:00:00Z"), {}, monthly, 0) == at("2024-03-01T00:00:00Z"));
    CHECK(lock_horizon_at_upload(at("2024-02-29T02:00:00Z"), {}, monthly, 1) == at("2024-03-01T02:00:00Z"));
    CHECK(lock_horizon_at_upload(at("2024-11-15T02:00:00Z"), {}, {.keep_monthly = 3}, 1) ==
          at("2025-02-01T00:00:00Z"));
    CHECK(lock_horizon_at_upload(at("2024-12-31T23:00:00Z"), {}, {.keep_monthly = 14}, 1) ==
          at("2026-02-01T00:00:00Z"));
}

TEST_CASE("a bad backup is never the keeper its lock was computed for: the next good one is",
          "[retention][lock]") {
    std::vector<BackupInfo> backups{
        {"a", at("2024-03-15T01:00:00Z"), "partial", true},
        {"b", at("2024-03-15T02:00:00Z"), "complete", false, "sha mismatch"},
        {"c", at("2024-03-15T03:00:00Z"), "complete", true},
        {"d", at("2024-03-15T04:00:00Z"), "complete", true},
    };
    auto h = lock_horizons(backups, {.keep_daily = 7}, 1);
    CHECK(h[0] == at("2024-03-16T01:00:00Z"));
    CHECK(h[1] == at("2024-03-16T02:00:00Z"));
    CHECK(h[2] == at("2024-03-22T00:00:00Z"));  // promoted: the first good one of the day
    CHECK(h[3] == at("2024-03-16T04:00:00Z"));
}

TEST_CASE(
    "on a daily schedule a backup is locked exactly while the first-of-period policy keeps it by a GFS rule",
    "[retention][lock]") {
    // 400 days from 2024-01-01 (a leap February, a year end inside an ISO week), at 02:00 every day and a
    // second backup at 14:00 every third day; each evaluated after every backup, as prune runs.
    std::vector<BackupInfo> all;
    for (int day = 0; day < 400; ++day) {
        const std::int64_t t = at("2024-01-01T02:00:00Z") + day * kDay;
        all.push_back({backup_id_for(t), t, "complete", true});
        if (day % 3 == 0) all.push_back({backup_id_for(t + 12 * 3600), t + 12 * 3600, "complete", true});
    }
    const RetentionPolicy p{.keep_daily = 7, .keep_weekly = 4, .keep_monthly = 6, .first_of_period = true};
    const auto horizon = lock_horizons(all, p, 0);
    int checked = 0, locked = 0;
    for (std::size_t n = 1; n <= all.size(); n += 3) {
        const std::int64_t now = all[n - 1].time;
        std::vector<BackupInfo> so_far(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
        for (const auto& d : plan_retention(so_far, p, now)) {
            auto i = static_cast<std::size_t>(
                std::find_if(all.begin(), all.end(), [&](const BackupInfo& b) { return b.id == d.id; }) -
                all.begin());
            INFO("now " << backup_id_for(now) << " backup " << d.id);
            CHECK(kept_by_gfs(d) == (horizon[i] > now));
            ++checked;
            locked += horizon[i] > now;
        }
    }
    CHECK(checked > 10000);
    CHECK(locked > 1000);
}
