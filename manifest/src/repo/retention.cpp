#include "nightjar/repo/retention.hpp"

#include <algorithm>
#include <ctime>
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

// Keeps the newest good backup of each of the first `count` distinct buckets, newest first.
void keep_buckets(const std::vector<BackupInfo>& sorted, std::vector<RetentionDecision>& out, int count,
                  const char* format, const std::string& rule) {
    std::set<std::string> seen;
    for (std::size_t i = 0; i < sorted.size() && static_cast<int>(seen.size()) < count; ++i) {
        if (!sorted[i].good()) continue;
        std::string b = bucket(sorted[i].time, format);
        if (seen.insert(b).second) out[i].reasons.push_back(rule + " " + b);
    }
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
    keep_buckets(backups, out, policy.keep_daily, "%Y-%m-%d", "daily");
    keep_buckets(backups, out, policy.keep_weekly, "%G-W%V", "weekly");
    keep_buckets(backups, out, policy.keep_monthly, "%Y-%m", "monthly");
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

}  // namespace nightjar
