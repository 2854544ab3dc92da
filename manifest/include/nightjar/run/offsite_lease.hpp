#pragma once
// One backup at a time per host on an object store (which has no locks): the run takes the lease object
// `leases/<host>.json` under its prefix, created with If-None-Match: *, and removes it when it ends. A second
// run (a scheduler that fired twice) finds it taken and stops with Kind::LockHeld naming the holder. A lease
// left by a run that died is taken over once it is stale (its expires_at passed: the configured stale time
// after its last renewal) or, on the same host, once its pid is gone. While held, a background thread
// renews it every stale/4 (rewritten with a fresh renewed_at and expires_at, If-Match on the ETag of our
// last write), so a long run is not overtaken; a renewal answered 412 means another run took the lease over,
// and check() (called right before publish) then refuses, as it does when the object's ETag is no longer
// that of our last write.
#include <cstdint>
#include <memory>
#include <string>

#include "nightjar/repo/storage.hpp"

namespace nightjar {

inline constexpr const char* kLeaseDir = "leases";

class BackupLease {
public:
    BackupLease();
    BackupLease(BackupLease&&) = delete;
    ~BackupLease();
    // Takes the lease on an S3Storage (elsewhere: holds nothing, the repository lock is the lock) and starts
    // renewing it. Kind::LockHeld when another live run holds it.
    void take(Storage& storage, const std::string& backup_id, std::int64_t stale_after_s);
    bool held() const;
    // Kind::LockHeld naming the other holder when the lease is no longer ours (taken over, or removed).
    // Nothing when no lease is held.
    void check() const;
    // Renewals written so far (for logs and tests).
    int renewals() const;

    struct Held;

private:
    std::unique_ptr<Held> held_;
};

}  // namespace nightjar
