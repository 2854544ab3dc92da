#pragma once
// The copies of a published backup (repository.copies): each artifact streamed from the backup dir into the
// copy's store, its stored bytes re-hashed on the way and compared with the manifest, then the manifest
// written last and create-only, so the copy exists only once every byte of it is there and proven.
#include <string>
#include <vector>

#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/retention.hpp"
#include "nightjar/repo/storage.hpp"
#include "nightjar/run/repository_config.hpp"

namespace nightjar {

struct CopyOutcome {
    std::string location;     // "s3://bucket/prefix"
    bool ok = false;          // the manifest is published in the copy
    std::string error;        // why not ("" when ok): "copy to s3://...: ...: what to do"
    std::uint64_t bytes = 0;  // stored bytes copied
    int pruned = 0;           // backups the copy's retention removed
};

struct CopyOptions {
    RetentionPolicy retention{};  // applied to the copy after a copy that worked; empty = keep everything
    std::int64_t now = 0;         // Unix seconds, for retention
};

// Copies `manifest` (published in `from`) to `to`. Never throws for a failure of the copy (a value, so a
// run reports every copy); artifacts of a failed copy are removed again where the store allows it.
CopyOutcome copy_backup(const Storage& from, const Manifest& manifest, Storage& to,
                        const std::string& location, const CopyOptions& options = {});

// Every copy of the config, in order (open_s3_repository for each).
std::vector<CopyOutcome> copy_to_all(const Storage& from, const Manifest& manifest,
                                     const std::vector<S3RepositoryConfig>& copies,
                                     const CopyOptions& options = {});

}  // namespace nightjar
