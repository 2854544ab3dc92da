#pragma once
// Full verification of a backup's stored bytes for retention, remembered in a small record beside the
// manifest (`verified_<id>.json`) so the same bytes are not hashed again every night. The record is as
// untrusted as the rest of the backup dir: it only lets a re-hash be skipped when the manifest digest and
// every artifact's size and stat stamp (inode, mtime, ctime) are exactly what they were when it was written,
// and for a week at most (silent rot changes no stat field).
#include <string>

#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/storage.hpp"

namespace nightjar {

struct StoredVerification {
    bool ok = false;
    std::string problem;       // the first artifact that failed and why, when !ok
    bool from_record = false;  // decided by a matching record, nothing hashed
};

struct StoredVerificationOptions {
    Storage* record_to = nullptr;  // where to write the record after hashing; null: write nothing (dry run)
};

std::string verified_record_name(const std::string& id);  // "verified_<id>.json"

// Every artifact of `manifest`: a regular file of the recorded size whose streamed SHA-256 is the recorded
// one. Never throws for what it finds (a bad record is ignored, a bad artifact is a result); I/O errors of
// the backup dir throw Kind::Storage.
StoredVerification verify_backup_stored(const RepositoryReader& repo, const Manifest& manifest,
                                        StoredVerificationOptions options = {});

}  // namespace nightjar
