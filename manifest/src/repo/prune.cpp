#include "nightjar/repo/prune.hpp"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "nightjar/core/clock.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/repo/drill_record.hpp"
#include "nightjar/repo/object_lock.hpp"
#include "nightjar/repo/verified_record.hpp"

namespace nightjar {

namespace {

// The manifest of each listed backup, or why it could not be had.
struct Described {
    BackupRef ref;  // its manifest and, when encrypted, its index: what removing it deletes
    BackupInfo info;
    std::optional<Manifest> manifest;
};

std::vector<Described> describe(const RepositoryReader& repo, const io::TrustedSigners* drill_signers) {
    std::vector<Described> out;
    for (const auto& ref : repo.list()) {
        Described d{ref, {ref.id, parse_backup_id_time(ref.id), "damaged", false, "", ""}, std::nullopt};
        try {
            d.manifest = repo.load_summary(ref);
            d.info.status = d.manifest->status;
            // Retention never deletes the newest backup whose last drill passed (repo/retention.cpp).
            // With signers pinned, only a record signed by one of them counts (repo/drill_record.hpp).
            auto drill = last_drill(repo.storage(), ref.id, drill_signers);
            d.info.drill_passed = drill && drill->passed;
            d.info.verified = true;
            for (const auto& a : d.manifest->artifacts) {
                auto st = repo.stat_artifact(a);
                if (!st || st->size != a.size) d.info.verified = false;
            }
        } catch (const Error& e) {
            // One bad manifest never stops the others: its content is damage, an I/O error is not knowing.
            if (e.kind() != Kind::Verification) d.info.status = "unreadable";
            d.info.problem = e.what();
            d.manifest.reset();
            log::warn("prune: ", ref.id, ": ", d.info.status, ": ", e.what());
        } catch (const std::exception& e) {
            // Not a fault found in the document (out of memory, say): nothing is known, so it is kept.
            d.info.status = "unreadable";
            d.info.problem = e.what();
            d.manifest.reset();
            log::warn("prune: ", ref.id, ": unreadable: ", e.what());
        }
        out.push_back(std::move(d));
    }
    return out;
}

// Fully verifies, newest first, every backup that would count as the newest complete one, until one passes:
// a rotted newest backup (same size, flipped byte) is unverified and can no longer push out an older good
// one.
void confirm_newest(const RepositoryWriter& repo, std::vector<Described>& backups, Storage* record_to) {
    std::vector<Described*> order;
    for (auto& d : backups) order.push_back(&d);
    std::stable_sort(order.begin(), order.end(), [](const Described* a, const Described* b) {
        return a->info.time != b->info.time ? a->info.time > b->info.time : a->info.id > b->info.id;
    });
    for (Described* d : order) {
        if (!d->info.good() || !d->manifest) continue;
        StoredVerification v;
        try {
            v = verify_backup_stored(repo, *d->manifest, {.record_to = record_to});
        } catch (const Error& e) {
            // Could not be read to the end (EIO, EACCES): not counted as the newest, and not deleted either.
            d->info.status = "unreadable";
            d->info.problem = e.what();
            log::error("prune: ", d->info.id, " could not be verified: ", e.what());
            continue;
        }
        if (v.ok) {
            log::info("prune: ", d->info.id, " verified", v.from_record ? " (recorded, unchanged since)" : "",
                      ": it is the newest complete backup");
            return;
        }
        d->info.verified = false;
        d->info.problem = v.problem;
        log::error("prune: ", d->info.id, " failed verification: ", v.problem,
                   ": it does not count as the newest complete backup");
    }
}

}  // namespace

std::vector<BackupInfo> describe_backups(const RepositoryReader& repo,
                                         const io::TrustedSigners* drill_signers) {
    std::vector<BackupInfo> out;
    for (auto& d : describe(repo, drill_signers)) out.push_back(std::move(d.info));
    return out;
}

namespace {

// Artifact dirs with no manifest (a crash between rename and publish, or an interrupted prune) and stale
// staging.
void clear_leftovers(RepositoryWriter& repo, std::int64_t now, bool dry_run, std::int64_t grace_s) {
    std::set<std::string> published;
    for (const auto& ref : repo.list()) published.insert(ref.id);
    for (const auto& e : repo.storage().list(".")) {
        // A verification record whose backup is gone (a prune cut short between the two removals).
        const std::string prefix = "verified_", suffix = ".json";
        if (!e.is_dir && !dry_run && e.name.size() > prefix.size() + suffix.size() &&
            e.name.rfind(prefix, 0) == 0 &&
            e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
            !published.count(e.name.substr(prefix.size(), e.name.size() - prefix.size() - suffix.size())))
            repo.storage().remove(e.name);
        if (!e.is_dir) continue;
        bool staging = e.name.rfind(".staging-", 0) == 0;
        bool orphan = is_backup_id(e.name) && !published.count(e.name);
        if (!staging && !orphan) continue;
        const std::string abs = repo.storage().describe(e.name);
        auto st = repo.storage().stat(e.name);
        std::int64_t age = now - (st ? st->mtime : 0);
        std::string what = staging ? "staging dir of an interrupted run" : "artifacts with no manifest";
        if (age < grace_s || dry_run) {
            log::warn(
                "prune: ", what, ": ", abs,
                dry_run ? " (would be removed once older than a day)" : " (kept until it is a day old)");
            continue;
        }
        log::warn("prune: removing ", what, ": ", abs);
        repo.storage().remove_tree(e.name);
    }
}

// On an S3 store: a backup the plan deletes but whose objects are still locked is kept ("locked until"),
// and with a lock policy, a kept backup whose lock ends before the date the policy now gives it (it became a
// keeper) has its lock extended.
void keep_locked(const s3::S3Storage& store, const s3::S3Storage* locked,
                 const std::vector<BackupInfo>& backups, const RetentionPolicy& policy, std::int64_t now,
                 bool dry_run, PruneResult& result,
                 const std::function<BackupRef(const std::string&)>& ref_of) {
    std::map<std::string, std::int64_t> wanted;
    if (locked) {
        const auto horizons = lock_horizons(backups, policy, locked->lock_policy().days);
        for (std::size_t i = 0; i < backups.size(); ++i) wanted[backups[i].id] = horizons[i];
    }
    for (auto& d : result.decisions) {
        const BackupRef ref = ref_of(d.id);
        if (!d.keep) {
            const std::int64_t until = backup_locked_until(store, ref);
            if (until > now) {
                d.keep = true;
                d.reasons = {"locked until " + rfc3339_utc(until)};
            }
            continue;
        }
        auto w = wanted.find(d.id);
        if (w == wanted.end() || w->second <= now) continue;
        const std::string commit = ref.index.empty() ? ref.manifest : ref.index;
        auto info = store.client().head_object(store.bucket(), store.key(commit));
        if (!info ||
            (!info->lock_retain_until.empty() && s3::parse_s3_time(info->lock_retain_until) >= w->second))
            continue;
        if (dry_run) {
            log::info("prune: would extend the lock of ", d.id, " to ", rfc3339_utc(w->second));
            continue;
        }
        try {
            const int n = extend_backup_lock(store, ref, w->second);
            if (n > 0)
                log::info("prune: lock of ", d.id, " extended to ", rfc3339_utc(w->second), " (", n,
                          " object(s))");
        } catch (const Error& e) {
            log::error("prune: cannot extend the lock of ", d.id, ": ", e.what());
            result.errors.push_back("prune: cannot extend the lock of " + d.id + ": " + e.what());
        }
    }
}

}  // namespace

PruneResult prune(RepositoryWriter& repo, const RetentionPolicy& policy, std::int64_t now, bool dry_run,
                  std::int64_t grace_s, const PruneOptions& options) {
    PruneResult result;
    auto described = describe(repo, options.drill_signers);
    if (!policy.empty()) confirm_newest(repo, described, dry_run ? nullptr : &repo.storage());
    std::vector<BackupInfo> backups;
    for (auto& d : described) {
        if (!options.keep_id.empty() && d.info.id == options.keep_id) d.info.pinned = "published by this run";
        backups.push_back(d.info);
    }
    // On an object-locked store the first backup of a period is its keeper: that is what its lock was
    // computed from at upload (repo/object_lock.hpp).
    const s3::S3Storage* locked = locked_store(repo.storage());
    RetentionPolicy effective = policy;
    if (locked && policy.gfs()) effective.first_of_period = true;
    result.decisions = plan_retention(backups, effective, now);
    const auto ref_of = [&](const std::string& id) {
        auto it = std::find_if(described.begin(), described.end(),
                               [&](const Described& x) { return x.ref.id == id; });
        return it != described.end() ? it->ref : BackupRef{id, manifest_file_name(id), ""};
    };
    if (const s3::S3Storage* store = s3_store(repo.storage()))
        keep_locked(*store, locked, backups, effective, now, dry_run, result, ref_of);
    // Deleting waits for the restores and dry runs reading the backup dir; it never pulls one from under
    // them.
    std::optional<Lock> deleting;
    const bool deletes = std::any_of(result.decisions.begin(), result.decisions.end(),
                                     [](const RetentionDecision& d) { return !d.keep; });
    if (deletes && !dry_run) {
        LockWait wait{.limit_s = options.reader_wait_s, .on_wait = {}};
        if (const char* env = std::getenv("NIGHTJAR_PRUNE_READER_WAIT_S"); env && *env)
            wait.limit_s = std::atoi(env);
        wait.on_wait = [&] {
            log::warn("prune: waiting (up to ", wait.limit_s, " s) for a restore or dry run reading ",
                      repo.storage().describe("."), " to finish before deleting");
        };
        deleting.emplace(lock_for_deleting(repo.storage(), wait));
    }
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
            try {
                repo.remove(ref_of(d.id));
                ++result.deleted;
            } catch (const Error& e) {
                // A delete the store refuses (AccessDenied: a lock, or a credential without delete) stops
                // this backup only; e names the object.
                if (e.kind() != Kind::Storage) throw;
                log::error("prune: cannot delete ", d.id, ": ", e.what());
                result.errors.push_back("prune: cannot delete " + d.id + ": " + e.what());
            }
        }
    }
    clear_leftovers(repo, now, dry_run, grace_s);
    return result;
}

}  // namespace nightjar
