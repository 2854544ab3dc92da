#pragma once
// Object lock on an S3 repository, driven by the retention policy: each backup's retain-until is set at
// upload from the date the policy would prune it (lock_horizons in repo/retention.hpp), extended when a
// later prune keeps it longer, and read back from the store (the truth) before prune deletes anything.
#include <cstdint>
#include <string>

#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/retention.hpp"
#include "nightjar/repo/s3/s3_storage.hpp"

namespace nightjar {

// The S3Storage behind `storage` when it has a lock policy (repository.object_lock), else nullptr.
const s3::S3Storage* locked_store(const Storage& storage);
// Any S3Storage behind `storage` (its objects may carry a lock whatever this run's config says).
const s3::S3Storage* s3_store(const Storage& storage);

// Before the upload of backup `id` (taken at its id's time): its retain-until from `policy`, given the good
// backups already published of the same ISO week or month, handed to the store for every object of the
// backup (S3Storage::set_backup_lock). Returns it (unix s), 0 when the store has no lock policy.
std::int64_t lock_new_backup(RepositoryWriter& repo, const std::string& id, const RetentionPolicy& policy);

// The latest retain-until (unix s) of the backup's objects (its commit record, manifest and everything under
// <id>/) as the store reports it; 0 when none is locked. One HEAD per object.
std::int64_t backup_locked_until(const s3::S3Storage& store, const BackupRef& ref);

// Extends every object of the backup whose lock ends before `until` to `until` (the artifacts first, the
// manifest and then the commit record last); never shortens. Returns how many objects were extended.
int extend_backup_lock(const s3::S3Storage& store, const BackupRef& ref, std::int64_t until);

}  // namespace nightjar
