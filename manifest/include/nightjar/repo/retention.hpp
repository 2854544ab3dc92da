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
    // Which backup of a day/week/month keeps it: the newest (false), or the first (true). Prune sets it on
    // an object-locked store, where each backup's lock is fixed at upload: only the first of a period is
    // known to be its keeper then (a newer one of the same period is not known at upload).
    bool first_of_period = false;
    bool gfs() const { return keep_daily > 0 || keep_weekly > 0 || keep_monthly > 0; }
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

// Object lock from the policy: for each backup (in the order given), the unix time until which it must
// stay locked so that the policy, keeping the FIRST good backup of each period (first_of_period), does not
// want it deleted before then, as far as that is known from the backups so far:
//   every backup: its time + lock_days, and + policy.days;
//   the first good backup of a UTC day: that day's start + keep_daily days;
//   ... of an ISO week: the week's Monday 00:00 UTC + keep_weekly weeks;
//   ... of a month: the 1st 00:00 UTC + keep_monthly months.
// keep_last has no date (lock_days covers it). These are the dates for a schedule that backs up at least
// once a period: where periods were skipped the policy keeps a keeper past them, unlocked for the rest.
// A backup that becomes a keeper later (the first of its period turned out bad, or the policy grew) gets a
// later date here than at upload: prune extends its lock to it (a lock is only ever extended).
std::vector<std::int64_t> lock_horizons(std::vector<BackupInfo> backups, const RetentionPolicy& policy,
                                        int lock_days);
// The lock of a backup about to be uploaded at `time` (assumed to end complete), given the good backups
// already published (their times): lock_horizons over them and it, its own value.
std::int64_t lock_horizon_at_upload(std::int64_t time, const std::vector<std::int64_t>& earlier_good,
                                    const RetentionPolicy& policy, int lock_days);

}  // namespace nightjar
