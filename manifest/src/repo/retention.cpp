#include "nightjar/repo/retention.hpp"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

namespace nightjar {
namespace {

std::tm utc(std::int64_t t) {
    std::time_t tt = t;
    std::tm tm{};
    gmtime_r(&tt, &tm);
    return tm;
}

std::string bucket(std::int64_t t, const char* format) {
    std::tm tm = utc(t);
    char buf[32];
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

// Keeps one good backup (the newest, or with `first` the oldest) of each of the first `count` distinct
// buckets, newest first.
void keep_buckets(const std::vector<BackupInfo>& sorted, std::vector<RetentionDecision>& out, int count,
                  const char* format, const std::string& rule, bool first) {
    std::map<std::string, std::size_t> keeper;  // bucket -> index in sorted
    for (std::size_t i = 0; i < sorted.size(); ++i) {
        if (!sorted[i].good()) continue;
        std::string b = bucket(sorted[i].time, format);
        auto it = keeper.find(b);
        if (it == keeper.end()) {
            if (static_cast<int>(keeper.size()) >= count) break;
            keeper.emplace(b, i);
        } else if (first) {
            it->second = i;  // an older one of the same bucket: sorted is newest first
        }
    }
    for (const auto& [b, i] : keeper) out[i].reasons.push_back(rule + " " + b);
}

constexpr std::int64_t kDay = 86400;

std::int64_t day_start(std::int64_t t) {
    return t - ((t % kDay) + kDay) % kDay;
}

// Monday 00:00 UTC of t's ISO week (1970-01-01 was a Thursday).
std::int64_t week_start(std::int64_t t) {
    const std::int64_t days = day_start(t) / kDay;
    const std::int64_t weekday = ((days + 3) % 7 + 7) % 7;  // 0 = Monday
    return (days - weekday) * kDay;
}

// The 1st 00:00 UTC of t's month, `plus` months on.
std::int64_t month_start(std::int64_t t, int plus = 0) {
    std::tm tm = utc(t);
    const int months = tm.tm_mon + plus;
    std::tm first{};
    first.tm_year = tm.tm_year + months / 12;
    first.tm_mon = months % 12;
    first.tm_mday = 1;
    return static_cast<std::int64_t>(timegm(&first));
}

}  // namespace

std::vector<RetentionDecision> plan_retention(std::vector<BackupInfo> backups, const RetentionPolicy& policy,
                                              std::int64_t now) {
    std::stable_sort(backups.begin(), backups.end(), [](const BackupInfo& a, const BackupInfo& b) {
        return a.time != b.time ? a.time > b.time : a.id > b.id;
    });
    std::vector<RetentionDecision> out;
    for (const auto& b : backups) out.push_back({b.id, true, {}});
    for (std::size_t i = 0; i < backups.size(); ++i) {
        if (!backups[i].pinned.empty()) out[i].reasons.push_back(backups[i].pinned);
        if (backups[i].status == "unreadable")
            out[i].reasons.push_back("manifest could not be read" +
                                     (backups[i].problem.empty() ? "" : " (" + backups[i].problem + ")"));
    }
    // The newest backup proven restorable by a drill: no policy may delete it.
    auto drilled =
        std::find_if(backups.begin(), backups.end(), [](const BackupInfo& b) { return b.drill_passed; });
    if (drilled != backups.end())
        out[static_cast<std::size_t>(drilled - backups.begin())].reasons.push_back(
            "newest backup whose last drill passed");
    if (policy.empty()) {
        for (auto& d : out) d.reasons.push_back("no retention policy");
        return out;
    }
    auto newest_good =
        std::find_if(backups.begin(), backups.end(), [](const BackupInfo& b) { return b.good(); });
    if (newest_good != backups.end())
        out[static_cast<std::size_t>(newest_good - backups.begin())].reasons.push_back(
            "newest complete backup");
    if (policy.days) {
        const std::int64_t cutoff = now - static_cast<std::int64_t>(*policy.days) * 86400;
        for (std::size_t i = 0; i < backups.size(); ++i)
            if (backups[i].time >= cutoff)
                out[i].reasons.push_back("within " + std::to_string(*policy.days) + " days");
    }
    int last = 0;
    for (std::size_t i = 0; i < backups.size() && last < policy.keep_last; ++i)
        if (backups[i].good()) out[i].reasons.push_back("last " + std::to_string(++last));
    keep_buckets(backups, out, policy.keep_daily, "%Y-%m-%d", "daily", policy.first_of_period);
    keep_buckets(backups, out, policy.keep_weekly, "%G-W%V", "weekly", policy.first_of_period);
    keep_buckets(backups, out, policy.keep_monthly, "%Y-%m", "monthly", policy.first_of_period);
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (!out[i].reasons.empty()) continue;
        out[i].keep = false;
        const BackupInfo& b = backups[i];
        const std::string why = b.problem.empty() ? "" : " (" + b.problem + ")";
        if (b.status == "damaged")
            out[i].reasons.push_back("damaged manifest" + why + ", outside every keep rule");
        else if (!b.verified)
            out[i].reasons.push_back(
                (b.problem.empty() ? "artifacts missing or wrong size" : "failed verification" + why) +
                ", outside every keep rule");
        else if (b.status != "complete")
            out[i].reasons.push_back(b.status + " backup, outside every keep rule");
        else
            out[i].reasons.push_back("outside every keep rule");
    }
    return out;
}

std::vector<std::int64_t> lock_horizons(std::vector<BackupInfo> backups, const RetentionPolicy& policy,
                                        int lock_days) {
    std::vector<std::int64_t> out(backups.size(), 0);
    std::vector<std::size_t> order(backups.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    // Oldest first: the first good backup seen of a bucket is its keeper.
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return backups[a].time != backups[b].time ? backups[a].time < backups[b].time
                                                  : backups[a].id < backups[b].id;
    });
    std::set<std::int64_t> days, weeks, months;
    for (std::size_t i : order) {
        const BackupInfo& b = backups[i];
        std::int64_t until = b.time + static_cast<std::int64_t>(lock_days) * kDay;
        if (policy.days) until = std::max(until, b.time + static_cast<std::int64_t>(*policy.days) * kDay);
        if (b.good()) {
            if (policy.keep_daily > 0 && days.insert(day_start(b.time)).second)
                until = std::max(until, day_start(b.time) + policy.keep_daily * kDay);
            if (policy.keep_weekly > 0 && weeks.insert(week_start(b.time)).second)
                until = std::max(until, week_start(b.time) + policy.keep_weekly * 7 * kDay);
            if (policy.keep_monthly > 0 && months.insert(month_start(b.time)).second)
                until = std::max(until, month_start(b.time, policy.keep_monthly));
        }
        out[i] = until;
    }
    return out;
}

std::int64_t lock_horizon_at_upload(std::int64_t time, const std::vector<std::int64_t>& earlier_good,
                                    const RetentionPolicy& policy, int lock_days) {
    std::vector<BackupInfo> backups;
    for (std::int64_t t : earlier_good) backups.push_back({"earlier", t, "complete", true});
    backups.push_back({"~new", time, "complete", true});  // after an earlier one of the same second
    return lock_horizons(std::move(backups), policy, lock_days).back();
}

}  // namespace nightjar
