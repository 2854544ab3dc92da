#include <algorithm>
#include <catch2/catch.hpp>
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
