#pragma once
// The "cdc" config section: which Kafka Connect workers and connectors to pause around a backup.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/cdc/restore_config.hpp"
#include "nightjar/cdc/watch_config.hpp"

namespace nightjar {
class JsonFields;
}  // namespace nightjar

namespace nightjar::cdc {

struct KafkaConnectAuth {
    std::string user;  // basic auth user
    std::string
        password_file;  // file whose first line is the password (the password never enters the config)
};

// One Kafka Connect cluster. `urls` are workers of that cluster: a request that gets no answer from one
// worker goes to the next.
struct KafkaConnectClusterConfig {
    std::vector<std::string> urls;         // "http://127.0.0.1:8083"; at least one
    std::vector<std::string> connectors;   // names to pause; empty when all_connectors
    bool all_connectors = false;           // "connectors": "all": every connector GET /connectors lists
    std::optional<KafkaConnectAuth> auth;  // basic auth, when the worker requires it
    double request_timeout_s = 10;         // one HTTP request, connect included
};

struct CdcRetryConfig {
    double initial_backoff_s = 0.5;  // first wait after a transient error or between status polls
    double max_backoff_s = 5;        // the wait doubles up to this
};

struct CdcConfig {
    std::vector<KafkaConnectClusterConfig> clusters;  // "kafka_connect": one object, or a list of them
    double pause_timeout_s = 120;                     // until every paused connector and task reports PAUSED
    double resume_timeout_s = 120;           // until every resumed connector and task reports RUNNING
    std::string on_pause_failure = "abort";  // "abort": no backup; "continue": back up unpaused
    // How a backup holds sink connectors: "stop" (Kafka Connect 3.5+, else pause) or "pause"
    std::string sink_hold = "stop";
    // How long a backup holds the connectors: "snapshot" (until every snapshot of the run is taken and the
    // offsets are read, then resumed while the dumps read their snapshots), "backup" (the whole run), or
    // "" (the default): "snapshot" for sink connectors (the database is the stream's sink), "backup" for
    // source connectors (the backup's load stays off the source)
    std::string hold = "";
    // Whose consistency points a "snapshot" hold waits for: "postgres" (the default: the connectors of this
    // stack read or write the databases) and "redis" too when a connector writes into Redis (its point is
    // the fork, after repl-diskless-sync-delay, 5 s by default).
    std::vector<std::string> hold_for = {"postgres"};
    CdcRetryConfig retry;  // backoff for retries and polls
    WatchConfig watch;     // the watchdog (`cdc watch`); defaults when absent
    // Where the host-wide crash journal lives: "" means $NIGHTJAR_CDC_STATE_DIR when set, else
    // /var/lib/nightjar/cdc. Never inside a backup dir, so every command finds it whatever its flags.
    std::string state_dir;
    CdcRestoreConfig restore;  // what a restore does with the connectors (cdc.restore); defaults when absent
};

// The state dir `config` resolves to (see CdcConfig::state_dir).
std::filesystem::path cdc_state_dir(const CdcConfig& config);
// The host-wide journal of the clusters of `config`: <state_dir>/<cluster-hash>.json.
std::filesystem::path cdc_journal_file(const CdcConfig& config);

// Parses the "cdc" object; Kind::Config errors name the JSON pointer.
CdcConfig parse_cdc_config(const JsonFields& f);

}  // namespace nightjar::cdc
