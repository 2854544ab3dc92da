#pragma once
// The backup run, in the library: nightjar-backup maps its flags to a BackupRequest and prints the report.
// The phases, in order, each a member function of BackupRun (backup_run.cpp):
//   lock            take the repository lock (Kind::LockHeld names the holder)
//   start           choose the backup id and open its staging dir (what crashed runs left there is removed)
//   heal_leftovers  resume what a previous run left paused (its CDC journal)          ┐ a failure here ends
//   pause_cdc       pause the Kafka Connect connectors, wait until PAUSED             │ the guarded part:
//   before_hooks    before_backup hooks; a failing one stops the run                  │ CDC is resumed and
//   components      each component dumps into staging, up to `parallel` at once; one  │ nothing published
//                   failing is recorded, the others go on (fail_fast, Storage,        ┘
//                   Interrupted end it and stop the others); the report and manifest
//                   list them in config order whatever finished first. Connectors held
//                   until the snapshots (cdc.hold) are resumed, beside the dumps, once
//                   every component has fixed its consistency point
//   resume_cdc      ALWAYS: exactly what this run paused, whatever happened before (success, error, signal)
//   after_hooks     on_error (on any failure), then after_backup; the manifest records them
//   publish         only when nothing above failed: status "complete", or "partial" when some components
//                   failed but others have artifacts; every component failed -> nothing published
//   after_publish   after_publish hooks: a failure makes the exit 6 but never unpublishes
//   drill           with drill.after_backup: a restore drill of the backup just published (run/drill),
//                   into throwaway servers; "backed up and proven", or exit 7 (the backup stays published)
//   prune           retention, after a fully successful run (or --prune-on-failure); never this backup
// Exit codes: 0 complete; 6 partial (or an after_publish hook failed); 7 the drill after the backup failed
// (drill.after_backup; it takes precedence over 6); 8 CDC could not be resumed (the backup is still
// published when everything else worked); otherwise the failure's own code.
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/components/component.hpp"
#include "nightjar/components/registry.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/repo/retention.hpp"
#include "nightjar/run/config.hpp"
#include "nightjar/run/run_report.hpp"

namespace nightjar {

// What the flags say, over the config.
struct BackupRequest {
    Config config = {};                  // loaded, with the flags' overrides applied (endpoints, compression)
    std::filesystem::path backup_dir;    // where backups are published (absolute)
    std::vector<std::string> skip = {};  // component kinds left out (--skip-config, --skip-db, --skip-redis)
    bool skip_cdc = false;               // neither pause nor resume the connectors (--skip-cdc)
    bool quiet = false;                  // leave out the warnings meant for a person at a terminal
    RetentionPolicy retention = {};      // the policy the prune phase applies (flags over config)
    bool prune_on_failure = false;       // prune also after a run that did not fully succeed
};

// One backup run. The phases fill `report()` as they go; run() returns the exit code or throws the
// failure (the report then holds what the run got to, and its error).
class BackupRun {
public:
    // `components`: what to back up, in order (make_components(component_configs(request.config),
    // request.skip), or a test's).
    BackupRun(const BackupRequest& request, std::vector<std::unique_ptr<Component>> components);
    ~BackupRun();
    BackupRun(const BackupRun&) = delete;
    BackupRun& operator=(const BackupRun&) = delete;

    int run();
    const RunReport& report() const { return report_; }

private:
    struct State;
    void lock();
    void start();
    void heal_leftovers();
    void pause_cdc();
    void before_hooks();
    struct Outcome;
    void back_up_components();
    void back_up_component(std::size_t index, Outcome& outcome);
    void record_component(Outcome& outcome);
    void snapshot_point(std::size_t index, const std::string& what, bool last);
    void release_cdc_locked();
    void resume_cdc();
    void after_hooks();
    void publish();
    void after_publish();
    int drill_after_backup();  // 0, or the exit code of a failed drill (7)
    void prune();

    const BackupRequest& request_;
    std::vector<std::unique_ptr<Component>> components_;
    std::unique_ptr<State> s_;
    RunReport report_;
};

// The whole nightly run as nightjar-backup runs it: the start ping, BackupRun, then the report to monitoring
// (the end ping and the metrics textfile), whatever the outcome. `on_report` is given the final report
// before the exit code is returned or the failure rethrown (the binary prints it with --json).
int run_backup(const BackupRequest& request, const std::function<void(const RunReport&)>& on_report = {});

// How many components a run backs up at once: `configured` when it is set (1: one after another), else
// as many as the cores and the memory budget allow (at most 3: each component's pipeline may take ~30 MB of
// the 100 MB a run may use), never more than there are components.
int backup_parallelism(int configured, std::size_t components);

// --dry-run: every component's and CDC's check, the hooks, monitoring and free space; writes nothing.
// Returns the exit code; `json` (when given) receives the dry run's summary.
int check_backup(const BackupRequest& request, nlohmann::json* json = nullptr);

// --resume-cdc: resume what the CDC journal names, under the repository lock (a running backup's own pause
// is never undone). Returns the exit code.
int resume_cdc_only(const BackupRequest& request);

// --prune-only: apply the retention policy (with `dry_run`, decide and report only). `json` receives the
// decisions.
int prune_only(const BackupRequest& request, bool dry_run, nlohmann::json* json = nullptr);

}  // namespace nightjar
