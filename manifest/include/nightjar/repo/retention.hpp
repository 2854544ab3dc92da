#pragma once
// Retention as a pure function: backups + policy + now -> keep or delete, each with the rules that decided
// it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nightjar {

struct RetentionPolicy {
    std::optional<int> days;  // keep every backup younger than this many days (--retention-days)
    int keep_last = 0;        // keep the N newest complete backups
    int keep_daily = 0;       // keep the newest complete backup of each of the last N days that have one
    int keep_weekly = 0;      // ... of each of the last N ISO weeks that have one
    int keep_monthly = 0;     // ... of each of the last N months that have one
    bool empty() const {
        return !days && keep_last == 0 && keep_daily == 0 && keep_weekly == 0 && keep_monthly == 0;
    }
};

struct BackupInfo {
    std::string id;
    std::int64_t time = 0;  // unix seconds (UTC) of the backup id
    // "complete" | "partial" | "damaged" (manifest invalid) | "unreadable" (manifest could not be read: an
    // I/O error, not its content; always kept, since nothing is known about it)
    std::string status;
    bool verified = true;  // manifest loads and every artifact has its recorded size (and, for the backup
                           // counted as the newest complete one, its recorded SHA-256)
    std::string problem;   // why it is damaged or unverified, when known (for the reasons)
    std::string pinned;    // non-empty: always kept, for this reason ("published by this run")
    bool drill_passed = false;  // its last restore drill passed (drills/<id>/, repo/drill_record.hpp)
    bool good() const { return status == "complete" && verified; }
};

struct RetentionDecision {
    std::string id;
    bool keep = true;
    std::vector<std::string> reasons;  // the rules that kept it, or why it goes
};

// Decisions in the order of `backups` sorted newest first. Rules no policy can override: the newest good
// (complete and verified) backup is always kept; partial, damaged or unverified backups never fill a
// last/daily/weekly/monthly slot, so they can never push a good backup out; an empty policy keeps everything;
// a pinned or unreadable backup is always kept; the newest backup whose last drill passed is always kept.
std::vector<RetentionDecision> plan_retention(std::vector<BackupInfo> backups, const RetentionPolicy& policy,
                                              std::int64_t now);

}  // namespace nightjar
