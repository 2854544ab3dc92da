#pragma once
// CDC coordination around a backup: pause the RUNNING connectors before the first component, record their
// state and offsets, and resume exactly those afterwards, whatever happened in between. The crash journal
// (state_file.hpp) lets the next run resume what a killed run left paused.
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/cdc/cdc_config.hpp"
#include "nightjar/cdc/kafka_connect.hpp"
#include "nightjar/cdc/state_file.hpp"

namespace nightjar {
class Lock;
}  // namespace nightjar

namespace nightjar::cdc {

struct CdcRunInfo {
    std::filesystem::path backup_dir;  // the run's backup dir: a journal found in its old place is migrated
    std::string backup_id;             // recorded in the state file ("" for --resume-cdc)
    std::string owner = "backup";      // the state file's owner: "backup" (a run) or "window" (cdc pause)
    std::optional<std::string> window_until;  // RFC 3339 UTC end of a pause window (owner "window")
};

// What the run did to one connector; the manifest's cdc.connectors[] entries.
struct CdcConnectorRecord {
    std::string cluster;  // the first worker URL of its cluster
    std::string name;
    nlohmann::json status_before = nullptr;  // {"state", "tasks": [...], "trace"?} before we touched it
    // paused | left-alone (paused/stopped by someone else) | failed-left-alone (FAILED before the backup, or
    // while nightjar waited for PAUSED: then its pause is taken back at once)
    std::string action = "none";
    bool paused_by_us = false;  // we sent the pause (so we resume it)
    // How it was held: "pause", or "stop" for a sink on a worker that has it (cdc.sink_hold; stop commits
    // the final offsets at once, so `offsets` match the dumped data exactly)
    std::string held_with = "pause";
    std::string pause_requested_at;  // RFC 3339 UTC
    std::string paused_at;           // when the connector and every task reported PAUSED
    // The consistent point: the offsets read last while still paused (just before the resume), or the
    // reading right after PAUSED when the later one failed; "unavailable[: why]" without the endpoint.
    nlohmann::json offsets = nullptr;
    nlohmann::json offsets_at_pause = nullptr;       // read right after PAUSED (may be stale: flush interval)
    nlohmann::json offsets_before_resume = nullptr;  // read just before the resume, while still paused
    nlohmann::json status_before_resume = nullptr;   // read again just before the resume
    nlohmann::json held = nullptr;    // still PAUSED just before the resume (false: someone resumed it)
    nlohmann::json held_s = nullptr;  // seconds from paused_at to that check, when held
    std::string resume_requested_at;
    std::string resumed_at;                 // when the connector and every task reported RUNNING
    nlohmann::json status_after = nullptr;  // after the resume
    std::string problem;                    // why it failed to pause or resume ("" when fine)
    // How long it is held (cdc.hold): "snapshot" (resumed once the run's snapshots are taken) or "backup"
    std::string hold = "backup";
    // Seconds from the pause (or stop) request to the accepted resume request: how long this run held it
    // (null when it was not held, or its resume was never accepted)
    nlohmann::json held_seconds = nullptr;
    std::chrono::steady_clock::time_point hold_started = {};  // when the pause was requested (not recorded)
    nlohmann::json to_json() const;
};

struct CdcCheckReport {
    std::vector<std::string> lines;     // states, what a run would do
    std::vector<std::string> problems;  // a worker that does not answer, a connector that does not exist
    std::vector<std::string> warnings;  // FAILED connectors, a leftover state file
    nlohmann::json summary = nlohmann::json::array();
};

class CdcCoordinator {
public:
    CdcCoordinator(const CdcConfig& config, CdcRunInfo info);
    ~CdcCoordinator();

    // Resumes whatever the state file says a previous run left paused, loudly. Never throws for Kafka Connect
    // errors: what cannot be resumed is kept in the state file and reported by resume_failures().
    // A window that is still open is not healed: a backup run leaves its connectors to it (and pauses
    // nothing itself), a window being opened again adopts its connectors.
    void heal_previous();
    // `cdc resume`: resumes every connector the state file names, as the planned end of a window.
    void end_window();
    // Pauses every configured connector that is RUNNING and waits until it and its tasks are PAUSED. On
    // failure with on_pause_failure "abort" it throws Kind::SourceUnavailable (call resume() afterwards);
    // with "continue" it resumes what it paused at once and records that CDC was not paused. A signal while
    // waiting throws Kind::Interrupted.
    void pause();
    // Resumes exactly the connectors we paused and waits for RUNNING (or FAILED). Just before, reads each
    // one's status and offsets again (what was really held, the consistent offsets); one found STOPPED by
    // someone else is not resumed. Requests go out concurrently and the whole phase lasts at most
    // resume_timeout_s. A pause window this run deferred to that has ended meanwhile is resumed too.
    // Idempotent; ignores signals; never throws for Kafka Connect errors.
    void resume();
    // True when some connector this run holds is to be resumed once the snapshots are taken (cdc.hold).
    bool holds_until_snapshot() const;
    // Every snapshot of the run is taken: resumes the connectors held "snapshot" exactly as resume() does
    // (their status and offsets read while still held, then the resume); the others stay held until
    // resume(), which never resumes one twice. Ignores signals; never throws for Kafka Connect errors.
    void release_after_snapshot();
    // The dry-run check: workers answer, connectors exist, their states. Pauses nothing.
    CdcCheckReport check();

    // Holds other than a backup's pause (a restore's stop or pause, cdc/restore_hold.hpp) share the crash
    // journal: journal_hold() journals `p` (taking the journal lock) just before the request that holds it;
    // journal_release() drops it again when no hold request was ever sent.
    void journal_hold(const PausedConnector& p);
    void journal_release(const std::string& name, const std::string& url);
    // Resumes journalled connectors with the backup's guarantees: concurrent rounds bounded by
    // resume_timeout_s, waits for RUNNING; what is not back stays journalled and is in resume_failures().
    // Returns one entry per connector: "" when RUNNING, else why not. Never throws for Kafka Connect errors.
    std::vector<std::string> resume_journalled(const std::vector<PausedConnector>& list);

    // Connectors that may still be paused or came back FAILED, one "name (url): why" each.
    const std::vector<std::string>& resume_failures() const { return resume_failures_; }
    bool paused() const { return paused_; }
    // The manifest's "cdc" field.
    nlohmann::json record() const;

private:
    struct Cluster;
    struct Target;
    KafkaConnectClient& client_for(const PausedConnector& p);
    void resume_targets(std::vector<Target>& targets, std::chrono::steady_clock::time_point deadline);
    void resume_where(const std::function<bool(const CdcConnectorRecord&)>& which, const char* what);
    void resume_listed(const CdcPauseState& previous);
    void check_before_resume(std::vector<Target>& targets, std::chrono::steady_clock::time_point deadline);
    void heal_expired_window();
    void heal_damaged(const CdcStateDamaged& damage);
    std::filesystem::path journal_path() const;
    // Takes the host-wide journal lock (Kind::LockHeld when another run holds it: it may hold connectors
    // paused) for the coordinator's lifetime, and migrates a journal found in the backup dir.
    void take_journal();
    void migrate_legacy_journal();
    void save_state();
    [[noreturn]] void pause_failed(const std::string& reason);

    CdcConfig config_;
    CdcRunInfo info_;
    std::vector<std::unique_ptr<Cluster>> clusters_;
    std::vector<std::unique_ptr<Cluster>> heal_clusters_;  // clients built from the state file's entries
    CdcPauseState state_;                                  // what the state file says (kept in sync)
    std::vector<CdcConnectorRecord> records_;
    nlohmann::json healed_ = nlohmann::json::array();
    std::vector<std::string> resume_failures_;
    bool paused_ = false;
    bool was_paused_ = false;  // connectors were held paused while the components ran
    std::string pause_failure_;
    std::optional<CdcPauseState> window_held_;  // an open window holds the connectors (a backup defers to it)
    bool window_ended_during_run_ = false;      // that window ended while this run ran: resumed by it
    nlohmann::json damaged_journal_ = nullptr;  // a damaged state file this run moved aside
    std::unique_ptr<Lock> journal_lock_;        // held from the first heal, pause or window end
};

// What the host-wide journal of `config` says or, until a command migrates it, the journal in its old place
// in `backup_dir`. nullopt when there is none; CdcStateDamaged when the one found is damaged.
std::optional<CdcPauseState> read_cdc_journal(const CdcConfig& config,
                                              const std::filesystem::path& backup_dir);

// Reads the first line of a password file (Kind::Config when it cannot be read).
std::string read_password_file(const std::string& path);
// The client settings for one configured cluster (its password read from its file).
KafkaConnectOptions client_options(const KafkaConnectClusterConfig& cluster);

}  // namespace nightjar::cdc
