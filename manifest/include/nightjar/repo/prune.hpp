#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nightjar/io/signing.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/retention.hpp"

namespace nightjar {

struct PruneResult {
    std::vector<RetentionDecision> decisions;
    int deleted = 0;
    std::size_t kept = 0;
    std::vector<std::string>
        errors;  // deletes (or lock extensions) the store refused, each naming the object
};

struct PruneOptions {
    std::string keep_id;  // never deleted whatever the policy: the backup this run has just published
    // How long deletion waits for restores and dry runs reading the backup dir (their shared readers' lock)
    // before it gives up with Kind::LockHeld, having deleted nothing. NIGHTJAR_PRUNE_READER_WAIT_S
    // overrides it.
    int reader_wait_s = 300;
    // Pinned signing keys: a drill record counts for the drill rule only when signed by one of them
    // (repo/drill_record.hpp); nullptr or empty = any record counts.
    const io::TrustedSigners* drill_signers = nullptr;
};

// Applies the policy to the published backups (the caller holds the lock unless dry_run). With dry_run it
// only reports: every backup with keep/delete and the rule behind it. Before deciding, the backups that
// would count as the newest complete one are fully verified (streamed SHA-256 of their stored bytes, or a
// matching verified record) until one passes, so the newest restorable backup is always kept. Also clears
// what crashed runs left: staging dirs and artifact dirs without a manifest older than `grace_s` are
// removed; younger ones are reported. On an S3 store a backup still locked (its objects' retain-until, read
// from the store) is kept with the reason "locked until <UTC>"; with repository.object_lock and a GFS
// policy the first backup of each period is its keeper, and a kept backup whose lock ends before the date
// the policy now gives it is extended (repo/object_lock.hpp). A delete the store refuses is logged and
// listed in `errors`; the prune goes on with the others.
PruneResult prune(RepositoryWriter& repo, const RetentionPolicy& policy, std::int64_t now, bool dry_run,
                  std::int64_t grace_s = 86400, const PruneOptions& options = {});

// What the retention planner needs to know of each published backup. Never throws for one backup's
// manifest: an invalid one is "damaged", one that cannot be read is "unreadable", both with the reason.
// `drill_signers` as in PruneOptions.
std::vector<BackupInfo> describe_backups(const RepositoryReader& repo,
                                         const io::TrustedSigners* drill_signers = nullptr);

}  // namespace nightjar
