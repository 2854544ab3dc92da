#include "prune.hpp"

#include <sys/stat.h>

#include <set>

#include "nightjar/error.hpp"
#include "nightjar/log.hpp"

namespace nightjar {

std::vector<BackupInfo> describe_backups(const RepositoryReader& repo) {
    std::vector<BackupInfo> out;
    for (const auto& ref : repo.list()) {
        BackupInfo info{ref.id, parse_backup_id_time(ref.id), "damaged", false};
        try {
            Manifest m = repo.load(ref);
            info.status = m.status;
            info.verified = true;
            for (const auto& a : m.artifacts) {
                auto st = repo.stat_artifact(a);
                if (!st || st->size != a.size) info.verified = false;
            }
        } catch (const Error& e) {
            if (e.kind() != Kind::Verification) throw;
        }
        out.push_back(info);
    }
    return out;
}

namespace {

std::int64_t mtime_of(const std::filesystem::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? static_cast<std::int64_t>(st.st_mtime) : 0;
}

// Artifact dirs with no manifest (a crash between rename and publish, or an interrupted prune) and stale
// staging.
void clear_leftovers(RepositoryWriter& repo, std::int64_t now, bool dry_run, std::int64_t grace_s) {
    std::set<std::string> published;
    for (const auto& ref : repo.list()) published.insert(ref.id);
    for (const auto& e : repo.storage().list(".")) {
        if (!e.is_dir) continue;
        bool staging = e.name.rfind(".staging-", 0) == 0;
        bool orphan = is_backup_id(e.name) && !published.count(e.name);
        if (!staging && !orphan) continue;
        std::filesystem::path abs = repo.storage().root() / e.name;
        std::int64_t age = now - mtime_of(abs);
        std::string what = staging ? "staging dir of an interrupted run" : "artifacts with no manifest";
        if (age < grace_s || dry_run) {
            log::warn(
                "prune: ", what, ": ", abs.string(),
                dry_run ? " (would be removed once older than a day)" : " (kept until it is a day old)");
            continue;
        }
        log::warn("prune: removing ", what, ": ", abs.string());
        repo.storage().remove_tree(e.name);
    }
}

}  // namespace

PruneResult prune(RepositoryWriter& repo, const RetentionPolicy& policy, std::int64_t now, bool dry_run,
                  std::int64_t grace_s) {
    PruneResult result;
    auto backups = describe_backups(repo);
    result.decisions = plan_retention(backups, policy, now);
    // Oldest first: a prune cut short loses the backups that were going anyway, never a newer one first.
    for (auto it = result.decisions.rbegin(); it != result.decisions.rend(); ++it) {
        const RetentionDecision& d = *it;
        std::string reasons;
        for (const auto& r : d.reasons) reasons += (reasons.empty() ? "" : ", ") + r;
        if (d.keep) {
            ++result.kept;
            log::info("prune: keep   ", d.id, " (", reasons, ")");
            continue;
        }
        log::info("prune: ", dry_run ? "would delete " : "delete ", d.id, " (", reasons, ")");
        if (!dry_run) {
            repo.remove({d.id, manifest_file_name(d.id)});
            ++result.deleted;
        }
    }
    clear_leftovers(repo, now, dry_run, grace_s);
    return result;
}

}  // namespace nightjar
