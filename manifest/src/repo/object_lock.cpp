#include "nightjar/repo/object_lock.hpp"

#include <algorithm>

#include "nightjar/core/clock.hpp"
#include "nightjar/core/log.hpp"

namespace nightjar {

namespace {

constexpr std::int64_t kDay = 86400;

// The retain-until of one object, 0 when it has none, -1 when there is no such object. radosgw and AWS give
// it on HEAD; when HEAD does not (some stores), GetObjectRetention answers.
std::int64_t object_locked_until(const s3::S3Storage& store, const std::string& key) {
    auto info = store.client().head_object(store.bucket(), key);
    if (!info) return -1;
    if (!info->lock_retain_until.empty()) return s3::parse_s3_time(info->lock_retain_until);
    if (!store.lock_policy().enabled()) return 0;
    try {
        auto lock = store.client().get_object_retention(store.bucket(), key);
        return lock ? std::chrono::system_clock::to_time_t(lock->retain_until) : 0;
    } catch (const s3::S3Error& e) {
        if (e.status() == 400 || e.status() == 404) return 0;  // no lock configuration on the bucket
        throw;
    }
}

// Every object of the backup, the artifacts first and the commit record last (the order to extend in).
std::vector<std::string> backup_objects(const s3::S3Storage& store, const BackupRef& ref) {
    std::vector<std::string> out;
    for (const auto& e : store.list_prefix(ref.id + "/")) out.push_back(e.name);
    out.push_back(ref.manifest);
    if (!ref.index.empty()) out.push_back(ref.index);
    return out;
}

}  // namespace

const s3::S3Storage* s3_store(const Storage& storage) {
    return dynamic_cast<const s3::S3Storage*>(&storage);
}

const s3::S3Storage* locked_store(const Storage& storage) {
    const auto* s = s3_store(storage);
    return s && s->lock_policy().enabled() ? s : nullptr;
}

std::int64_t lock_new_backup(RepositoryWriter& repo, const std::string& id, const RetentionPolicy& policy) {
    auto* store = dynamic_cast<s3::S3Storage*>(&repo.storage());
    if (!store || !store->lock_policy().enabled()) return 0;
    const std::int64_t time = parse_backup_id_time(id);
    std::vector<std::int64_t> earlier;
    if (policy.gfs()) {
        // Only backups of the same ISO week or month can be the first of a period this one is in.
        const std::int64_t since = time - 32 * kDay;
        for (const auto& ref : repo.list()) {
            const std::int64_t t = parse_backup_id_time(ref.id);
            if (ref.id == id || t < since || t > time) continue;
            try {
                if (repo.load_summary(ref).status == "complete") earlier.push_back(t);
            } catch (const Error& e) {
                log::debug("object lock: ", ref.id, " does not count as an earlier keeper: ", e.what());
            }
        }
    }
    const std::int64_t until = lock_horizon_at_upload(time, earlier, policy, store->lock_policy().days);
    store->set_backup_lock(id, std::chrono::system_clock::from_time_t(until));
    log::info("object lock: backup ", id, " is locked until ", rfc3339_utc(until),
              policy.gfs() ? " (from the retention policy)" : " (repository.object_lock.days)");
    return until;
}

std::int64_t backup_locked_until(const s3::S3Storage& store, const BackupRef& ref) {
    std::int64_t until = 0;
    for (const auto& name : backup_objects(store, ref))
        until = std::max(until, object_locked_until(store, store.key(name)));
    return until;
}

int extend_backup_lock(const s3::S3Storage& store, const BackupRef& ref, std::int64_t until) {
    int extended = 0;
    const s3::ObjectLock lock{.mode = store.lock_policy().mode,
                              .retain_until = std::chrono::system_clock::from_time_t(until)};
    for (const auto& name : backup_objects(store, ref)) {
        const std::string key = store.key(name);
        const std::int64_t current = object_locked_until(store, key);
        if (current < 0 || current >= until) continue;  // gone meanwhile, or locked long enough
        store.client().put_object_retention(store.bucket(), key, lock);
        ++extended;
    }
    return extended;
}

}  // namespace nightjar
