#pragma once
// The crash journal of CDC coordination: `<backup-dir>/.nightjar-cdc-paused.json` names every connector
// nightjar has asked to pause and not yet resumed. It is written (atomically, fsynced) before the first pause
// and removed once everything is resumed, so a run killed in between is healed by the next one.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/core/error.hpp"

namespace nightjar::cdc {

// The journal's old place, inside the backup dir (before issue 13): migrated to the host-wide journal by
// the first command that takes the journal lock.
inline constexpr const char* kCdcStateFile = ".nightjar-cdc-paused.json";
// The host-wide journal's default directory (cdc.state_dir; NIGHTJAR_CDC_STATE_DIR for tests).
inline constexpr const char* kDefaultCdcStateDir = "/var/lib/nightjar/cdc";
// The watchdog's journal of the FAILED connectors it holds paused (same format, owner "watch"): a restarted
// watchdog takes them over instead of mistaking them for connectors someone else paused.
inline constexpr const char* kCdcWatchStateFile = ".nightjar-cdc-watch.json";

// One connector nightjar paused: enough to resume it without the config that paused it.
struct PausedConnector {
    std::vector<std::string> urls;  // the cluster's worker URLs
    std::string user;               // basic auth user ("" when none)
    std::string password_file;      // where its password is read from ("" when none); never the password
    std::string name;               // connector name
    std::string paused_at;          // RFC 3339 UTC, when the pause was requested
};

struct CdcPauseState {
    std::string owner = "backup";  // who paused: "backup" (a backup run), "restore" (a restore, which may
                                   // also have stopped them), "window" (cdc pause), "watch" (the
                                   // watchdog's own journal, a separate file: kCdcWatchStateFile)
    long pid = 0;                  // the process that wrote it
    std::string backup_id;         // the backup run, when owner is "backup"
    std::string created_at;        // RFC 3339 UTC
    std::optional<std::string> window_until;  // RFC 3339 UTC, for a pause window
    std::vector<PausedConnector> connectors;  // paused and not yet resumed
};

// A state file that exists and is readable but is not a valid journal (Kind::CdcResume). The coordinator
// moves it aside (quarantine_cdc_state) and alerts once instead of blocking every later run.
class CdcStateDamaged : public Error {
public:
    using Error::Error;
};

// The old place: <backup_dir>/.nightjar-cdc-paused.json.
std::filesystem::path cdc_state_path(const std::filesystem::path& backup_dir);
// <state_dir>/<cluster-hash>.json: the hash (16 hex digits of SHA-256) covers every cluster's worker URLs,
// order-independent, so every command with the same clusters finds the same journal.
std::filesystem::path cdc_journal_path(const std::filesystem::path& state_dir,
                                       std::vector<std::vector<std::string>> cluster_urls);
// nullopt when there is no state file. Kind::CdcResume when it exists but cannot be read; CdcStateDamaged
// (also Kind::CdcResume) when it cannot be parsed: then nobody knows what is paused.
std::optional<CdcPauseState> read_cdc_state(const std::filesystem::path& file);
// Renames a damaged state file to `<file>.damaged-<utc>` (fsynced) and returns the new path.
std::filesystem::path quarantine_cdc_state(const std::filesystem::path& file, std::int64_t now);
// The connector names a damaged file still shows ("name": "..."), for the alert.
std::vector<std::string> salvage_connector_names(const std::filesystem::path& file);
// tmp file, fsync, rename, fsync dir. Kind::Storage on failure.
void write_cdc_state(const std::filesystem::path& file, const CdcPauseState& state);
// Moves a journal file to `to` (rename, or copy + fsync + unlink across filesystems).
void move_cdc_state(const std::filesystem::path& from, const std::filesystem::path& to);
// Removes it (and fsyncs the dir); absent is fine.
void remove_cdc_state(const std::filesystem::path& file);

}  // namespace nightjar::cdc
