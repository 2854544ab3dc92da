#pragma once
// Drill evidence beside the backups: drills/<backup-id>/<utc>.json, one file per drill, written once and
// never rewritten. The newest record of a backup is its "last drill" (--list, retention, `random`).
// A record is signed with the host's Ed25519 key when one is configured (fields `signer`, the "ed25519:..."
// public key, and `signature`, over drill_record_signed_bytes); when trusted signers are pinned, a record
// that is unsigned, signed by a key not pinned for its `host`, or badly signed never counts.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "nightjar/io/signing.hpp"
#include "nightjar/repo/storage.hpp"

namespace nightjar {

inline constexpr const char* kDrillsDir = "drills";
inline constexpr std::size_t kDrillRecordMaxBytes = 4u << 20;

struct LastDrill {
    std::string file;       // "drills/<id>/<utc>.json"
    std::int64_t time = 0;  // unix seconds the drill finished (from the name)
    bool passed = false;    // the record says ok: true (an unreadable or malformed record is a failure)
    std::string reason;     // why it failed, when it did
    std::string signer;     // the record's signer ("ed25519:..."), "" when unsigned
    int ignored = 0;        // newer records passed over: not signed by a pinned key (signers pinned only)
    bool counts = true;     // false: signers are pinned and no record of the backup is signed by one (this
                            // is the newest record, refused; `reason` says why): as good as never drilled
};

// The bytes a drill record's signature covers: a domain label, then the canonical JSON (sorted keys) of
// every field but `signature`.
std::string drill_record_signed_bytes(const nlohmann::json& record);
// Sets record["signer"] to the key's public key and record["signature"] over drill_record_signed_bytes.
void sign_drill_record(nlohmann::json& record, const io::SigningKey& key);
// "" when `record` is signed by a key pinned in `trusted` for its "host" and the signature verifies; else
// why not ("not signed", "signed by SHA256:... which is not pinned for host h", "the signature does not
// verify").
std::string drill_record_distrust(const nlohmann::json& record, const io::TrustedSigners& trusted);

// "20261202T013000Z" for a time (the record's file name without ".json").
std::string drill_record_name(std::int64_t unix_seconds);

// The newest record of `backup_id`, or nullopt when it was never drilled. With `trusted` signers pinned
// (non-null and not empty), only records that drill_record_distrust accepts count: the newest of those is
// the last drill; when there is none, a LastDrill that did not pass, naming why the newest was refused.
std::optional<LastDrill> last_drill(const Storage& storage, const std::string& backup_id,
                                    const io::TrustedSigners* trusted = nullptr);

// Writes drills/<id>/<name>.json (a new name: `_2`, `_3` ... when taken) and returns its path: atomic,
// synced and create-only (WriteOptions::create_only), so an existing record is never written over.
std::string write_drill_record(Storage& storage, const std::string& backup_id, std::int64_t finished_at,
                               const nlohmann::json& record);

}  // namespace nightjar
