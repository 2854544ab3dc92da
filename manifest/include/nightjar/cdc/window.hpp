#pragma once
// Backup windows for backups nightjar does not run: `cdc pause --window 40m` pauses the connectors and
// records them in the crash journal (owner "window", window_until); `cdc resume` resumes exactly those. A
// window whose resume never comes is healed (resumed, loudly) by the next cdc command, backup run or watchdog
// check.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nightjar/cdc/cdc_config.hpp"
#include "nightjar/cdc/state_file.hpp"

namespace nightjar::cdc {

// "40m", "2h", "90s", "1h30m", "1d": a positive duration. Kind::Usage naming `text` otherwise.
std::chrono::seconds parse_duration(std::string_view text);
// "2026-11-25T02:30:00Z" -> unix seconds; nullopt when malformed.
std::optional<std::int64_t> parse_rfc3339_utc(std::string_view text);

// The state file describes a pause window that has not ended at `now` (unix seconds). A window without a
// readable end counts as ended, so it can never become a permanent pause.
bool window_active(const CdcPauseState& state, std::int64_t now);
// It describes a window that has ended.
bool window_expired(const CdcPauseState& state, std::int64_t now);

// What the state file says holds connectors paused right now: a backup run (which may be running: only it
// or a later holder of the repository lock may resume them) or an active window. Empty otherwise.
struct HeldPause {
    std::string owner;         // "backup" | "window" | "" when nothing holds anything
    std::string window_until;  // for a window
    std::vector<PausedConnector> connectors;
    // The connector `name` of the cluster whose first URL is `url` is listed.
    bool holds(const std::string& url, const std::string& name) const;
};
HeldPause held_pause(const CdcConfig& config, const std::filesystem::path& backup_dir, std::int64_t now);

struct WindowOutcome {
    std::vector<std::string> paused;           // "name (url)" now held by the window
    std::vector<std::string> resume_failures;  // "name (url): why" that may still be paused
    std::string window_until;                  // RFC 3339 UTC
};

// `cdc pause --window`: under the repository lock (Kind::LockHeld when a backup runs), heals stale pauses,
// pauses every configured RUNNING connector and records them with window_until = now + duration. An active
// window is extended to the new end and keeps its connectors. Throws Kind::SourceUnavailable when pausing
// fails (what it paused is resumed again).
WindowOutcome open_window(const CdcConfig& config, const std::filesystem::path& backup_dir,
                          std::chrono::seconds duration);
// `cdc resume`: under the lock, resumes what the state file names (a window, or a run's leftovers).
WindowOutcome close_window(const CdcConfig& config, const std::filesystem::path& backup_dir);

// Resumes stale pauses: an expired window, or a backup run's leftovers when the lock is free (so nothing
// that runs is undone). Returns false when there was nothing to heal or the lock was busy; failures are
// logged and left in the state file. Never throws for Kafka Connect errors.
struct HealOutcome {
    bool healed = false;                       // something stale was resumed (or tried)
    bool lock_busy = false;                    // a backup holds the lock: try again later
    std::vector<std::string> resume_failures;  // still paused
};
HealOutcome heal_stale_pauses(const CdcConfig& config, const std::filesystem::path& backup_dir);

// The window guardian (`cdc expire-window`, started detached by `cdc pause --window` where systemd does not
// run the host): waits until the window in the journal ends (`until` at the earliest; later when the window
// was extended), then resumes its connectors like any stale pause, and exits. It exits early, doing nothing,
// once no window is open and the pausing process `pausing_pid` is gone (a `cdc resume`, a failed pause).
// Crash-safe by construction: it holds nothing, the journal does; if it dies the next command, backup or
// watchdog heals the window. Returns the exit code (8 when something may still be paused).
int guard_window(const CdcConfig& config, const std::filesystem::path& backup_dir, std::int64_t until,
                 long pausing_pid);

}  // namespace nightjar::cdc
