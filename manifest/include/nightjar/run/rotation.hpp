#pragma once
// `nightjar-backup encryption add-recipient`: more recipients for past encrypted backups, without rewriting
// them (issue 15). For every artifact of each chosen backup and for its encrypted manifest, the next free
// `<object>.age-header.<n>` is written create-only: the newest header of the object that the given identity
// opens, every stanza kept, plus one stanza per recipient it lacks (io/age_rotation). Artifacts, manifests
// and indexes are never touched; readers try the header objects when their identity does not open an
// object's own header.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nightjar/core/error.hpp"
#include "nightjar/io/age.hpp"
#include "nightjar/io/signing.hpp"
#include "nightjar/repo/storage.hpp"

namespace nightjar {

struct AddRecipientRequest {
    std::vector<io::AgeRecipient> recipients;  // to add (at least one; duplicates count once)
    std::vector<std::string> backups;          // backup ids (or "latest"); empty with `all`
    bool all = false;                          // every encrypted backup of the repository
    io::AgeIdentities identities;              // opens the existing headers (at least one identity)
    io::TrustedSigners trusted_hosts;          // pinned signers: when any, each index signature is checked
    bool dry_run = false;                      // say what would be written, write nothing
};

// One age file of a backup and what the rotation does to it.
struct RotatedObject {
    std::string object;                // "<id>/<name>.age" or "manifest_<id>.json.age"
    std::string header;                // the header object written (dry run: to be written); "" when none
    std::vector<std::string> added;    // age1… recipients the new header adds
    std::vector<std::string> present;  // age1… recipients already in the object's newest header (skipped)
};

struct RotatedBackup {
    std::string id;
    std::vector<RotatedObject> objects;  // every age file of the backup, the manifest last
    std::string error;                   // why the backup was not rotated ("" when it was); names the object
    Kind error_kind = Kind::Internal;    // the error's kind (its exit code)
    bool ok() const { return error.empty(); }
    // The header objects written (or, in a dry run, to be written).
    std::size_t headers() const;
};

struct RotationReport {
    bool dry_run = false;
    std::vector<RotatedBackup> backups;  // in the order asked (--all: newest first)
    bool ok() const;
    // 0, else the exit code of the first failed backup's error kind.
    int exit_code() const;
    // One line per backup: "backup <id>: wrote 3 rotation headers adding age1…", "... nothing to do: ...".
    std::string summary(const RotatedBackup& backup) const;
    nlohmann::json to_json() const;
};

// Rotates each chosen backup: every object planned (its header opened and re-wrapped in memory) before
// the first header object of that backup is written, so a backup the identity cannot open gets nothing.
// A backup that fails is a value in the report; the others go on. Logs the summary line of each backup.
// Kind::Usage for a request naming no recipient, no backup, a backup that does not exist or is not encrypted;
// Kind::Config without identity. Holds the readers' lock so a prune cannot delete a backup while its headers
// are written.
RotationReport add_recipients(Storage& storage, const AddRecipientRequest& request);

}  // namespace nightjar
