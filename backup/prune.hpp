#pragma once
#include <cstdint>
#include <vector>

#include "nightjar/repository.hpp"
#include "nightjar/retention.hpp"

namespace nightjar {

struct PruneResult {
    std::vector<RetentionDecision> decisions;
    int deleted = 0;
    std::size_t kept = 0;
};

// Applies the policy to the published backups (the caller holds the lock unless dry_run). With dry_run it
// only reports: every backup with keep/delete and the rule behind it. Also clears what crashed runs left:
// staging dirs and artifact dirs without a manifest older than `grace_s` are removed; younger ones are
// reported.
PruneResult prune(RepositoryWriter& repo, const RetentionPolicy& policy, std::int64_t now, bool dry_run,
                  std::int64_t grace_s = 86400);

// What the retention planner needs to know of each published backup.
std::vector<BackupInfo> describe_backups(const RepositoryReader& repo);

}  // namespace nightjar
