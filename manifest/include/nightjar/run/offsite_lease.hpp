#pragma once
// One backup at a time per host on an object store (which has no locks): the run takes the lease object
// `leases/<host>.json` under its prefix, created with If-None-Match: *, and removes it when it ends. A second
// run (a scheduler that fired twice) finds it taken and stops with Kind::LockHeld naming the holder. A lease
// left by a run that died is taken over once it is stale (older than the configured time) or, on the same
// host, once its pid is gone. Not renewed while held: a run longer than the stale time can be overtaken.
#include <cstdint>
#include <memory>
#include <string>

#include "nightjar/repo/storage.hpp"

namespace nightjar {

inline constexpr const char* kLeaseDir = "leases";

class BackupLease {
public:
    BackupLease() = default;
    BackupLease(BackupLease&&) = delete;
    ~BackupLease();
    // Takes the lease on an S3Storage (elsewhere: holds nothing, the repository lock is the lock).
    // Kind::LockHeld when another live run holds it.
    void take(Storage& storage, const std::string& backup_id, std::int64_t stale_after_s);
    bool held() const { return storage_ != nullptr; }

private:
    Storage* storage_ = nullptr;
    std::string name_;
};

}  // namespace nightjar
