#pragma once
// The CDC watchdog (`nightjar-backup cdc watch`): a connector or task turns FAILED -> pause it at once (so a
// restart comes up paused and nothing retries into a sick database), probe its source, restart the FAILED
// instances and resume once the source answers, and call it healed after a settle period. Relapses back off;
// a failure that outlasts max_wait alerts (and alerts again at the repeat interval); Kafka Connect being
// unreachable is waited out with backoff and alerted the same way. Connectors someone else paused or
// stopped, and those a backup run or a pause window holds, are never touched.
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nightjar/cdc/cdc_config.hpp"
#include "nightjar/cdc/kafka_connect.hpp"
#include "nightjar/cdc/window.hpp"
#include "nightjar/run/config.hpp"

namespace nightjar::cdc {

using WatchClock = std::chrono::steady_clock;

// ---- The pure part: what one status read means and what to do about it. ----

enum class WatchPhase {
    Healthy,   // not ours: watched only
    Held,      // FAILED, paused by the watchdog, its source probed until the restart
    Settling,  // restarted and resumed; healed once it stays RUNNING for settle_s
};

enum class Observed {
    Running,         // connector and every task RUNNING
    Failed,          // the connector or a task FAILED (and the connector is not PAUSED)
    Paused,          // the connector is PAUSED (by us when Held; otherwise by someone else)
    Stopped,         // STOPPED by someone
    Transitional,    // UNASSIGNED, RESTARTING, or tasks still converging
    Missing,         // the worker does not know it (deleted)
    HeldByNightjar,  // a running backup or an open pause window lists it in the state file
};

enum class WatchStep {
    Nothing,
    Pause,            // a new failure: log the trace, pause, start probing
    Probe,            // Held and a probe is due: probe; if the source answers, restart and resume
    Relapse,          // FAILED again while settling: pause again, back off
    Healed,           // settled RUNNING: the incident is over
    ResumedByOthers,  // Held but RUNNING: someone resumed it; settle from here
    Release,          // someone else took it over (paused, stopped, deleted): forget it
};

// Observed::HeldByNightjar is the caller's to decide (it needs the state file).
Observed observe(const KafkaConnectStatus& status);
WatchStep decide(WatchPhase phase, Observed observed, bool probe_due, bool settle_over);
// The wait before the restart after the `failures`-th failure of an incident (0 for the first).
std::chrono::milliseconds relapse_backoff(int failures, const WatchBackoff& backoff);

// One ongoing problem (a connector not healed, or a cluster not answering) and its alerts.
struct Incident {
    WatchClock::time_point since{};       // when it started
    bool alerted = false;                 // an alert went out
    WatchClock::time_point last_alert{};  // when
};
// The first alert at since + max_wait, then one every repeat interval.
bool alert_due(const Incident& incident, WatchClock::time_point now, std::chrono::milliseconds max_wait,
               std::chrono::milliseconds repeat);

// ---- The loop. ----

struct WatchdogInfo {
    std::filesystem::path backup_dir;  // the state files (backup runs', windows', the watchdog's own)
    MonitoringConfig monitoring;       // ping_url for alerts when cdc.watch.ping_url is not set
};

class CdcWatchdog {
public:
    CdcWatchdog(const CdcConfig& config, WatchdogInfo info);
    ~CdcWatchdog();
    // Runs until SIGINT/SIGTERM/SIGHUP (install_interrupt_handlers() first), then resumes the connectors it
    // holds paused whose source answers, leaves the others paused (named in the last log line) and returns.
    void run();

    struct Connector;
    struct Cluster;

private:
    void tick();
    void check_cluster(Cluster& cluster, WatchClock::time_point now);
    void handle(Cluster& cluster, Connector& c, const KafkaConnectStatus& s, WatchClock::time_point now);
    void start_incident(Cluster& cluster, Connector& c, const KafkaConnectStatus& s, bool relapse,
                        WatchClock::time_point now);
    bool probe_and_restart(Cluster& cluster, Connector& c, WatchClock::time_point now, bool stopping);
    void healed(Connector& c, WatchClock::time_point now);
    void release(Connector& c, const std::string& why);
    void alerts(WatchClock::time_point now);
    void notify(const std::string& event, const std::string& who, const std::string& state,
                const std::string& trace, const std::string& message);
    void save_journal();
    void adopt_journal();
    void stop();
    Connector& connector(Cluster& cluster, const std::string& name);
    WatchClock::duration sleep_for(WatchClock::time_point now) const;

    CdcConfig config_;
    WatchdogInfo info_;
    std::vector<std::unique_ptr<Cluster>> clusters_;
    HeldPause held_;         // what the backup's state file holds paused at this check
    bool deferred_ = false;  // a backup run or a pause window holds pauses: restarts wait
    std::string held_owner_;
};

}  // namespace nightjar::cdc
