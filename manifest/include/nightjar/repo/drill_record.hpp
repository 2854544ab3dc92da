#pragma once
// Drill evidence beside the backups: drills/<backup-id>/<utc>.json, one file per drill, written once and
// never rewritten. The newest record of a backup is its "last drill" (--list, retention, `random`).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "nightjar/repo/storage.hpp"

namespace nightjar {

inline constexpr const char* kDrillsDir = "drills";
inline constexpr std::size_t kDrillRecordMaxBytes = 4u << 20;

struct LastDrill {
    std::string file;       // "drills/<id>/<utc>.json"
    std::int64_t time = 0;  // unix seconds the drill finished (from the name)
    bool passed = false;    // the record says ok: true (an unreadable or malformed record is a failure)
    std::string reason;     // why it failed, when it did
};

// "20261202T013000Z" for a time (the record's file name without ".json").
std::string drill_record_name(std::int64_t unix_seconds);

// The newest record of `backup_id`, or nullopt when it was never drilled.
std::optional<LastDrill> last_drill(const Storage& storage, const std::string& backup_id);

// Writes drills/<id>/<name>.json (a new name: `_2`, `_3` ... when taken) and returns its path: atomic,
// synced and create-only (WriteOptions::create_only), so an existing record is never written over.
std::string write_drill_record(Storage& storage, const std::string& backup_id, std::int64_t finished_at,
                               const nlohmann::json& record);

}  // namespace nightjar
