#pragma once
// CDC around a restore (issue 18): hold the connectors that read from or write to the databases being
// restored (stop them, else pause them) with the backup's crash journal and always-brought-back guarantee,
// then bring them back per mode:
//   replay   (sink)   set its offsets to those the manifest recorded at backup time, resume, watch RUNNING:
//                     an idempotent (upsert) sink replays every change since the backup;
//   reanchor (source) drop a leftover slot when asked, reset its offsets (it snapshots afresh) or write
//                     Debezium execute-snapshot signals, resume, watch;
//   none              resume as it was and say what is now out of step.
// The restore run calls: plan() (or describe() for a dry run), hold() before it writes, bring_back() after,
// then exit_code() and report(); with --cdc=none leave_alone() instead of hold().
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/cdc/cdc_config.hpp"
#include "nightjar/cdc/kafka_connect.hpp"
#include "nightjar/cdc/restore_config.hpp"

namespace nightjar::postgres {
class PgConnection;
}  // namespace nightjar::postgres

namespace nightjar::cdc {

class CdcCoordinator;

// What the restore run knows.
struct CdcRestoreRequest {
    std::vector<std::string> databases;  // the databases it restores, by their names in the backup
    bool renamed = false;            // --db-name: restored under another name (touches nothing unless cdc)
    std::optional<std::string> cdc;  // --cdc=replay|reanchor|none; nullopt = the config and defaults
    std::string backup_id;
    std::int64_t backup_time = 0;           // unix seconds of the backup (for its age against retention)
    nlohmann::json manifest_cdc = nullptr;  // the manifest's "cdc" record (the offsets recorded at backup)
    // Opens a connection to a restored database (for reanchor: drop_slot and signals); unset = none.
    std::function<std::unique_ptr<postgres::PgConnection>(const std::string& database)> connect;
};

// One connector's plan and outcome: an entry of the report's cdc.connectors.
struct CdcRestoreEntry {
    std::string name;
    std::string cluster;
    std::string database;
    std::string role;       // sink | source
    std::string mode;       // replay | reanchor | none
    std::string action;     // held | left-alone | failed-left-alone | not-found | skipped
    std::string hold_with;  // "stop" | "pause" | "" (not held)
    KafkaConnectFeatures features;
    KafkaConnectInfo info;
    nlohmann::json status_before = nullptr;
    nlohmann::json offsets_before = nullptr;    // read once held (the final commit of a stop)
    nlohmann::json offsets_recorded = nullptr;  // the manifest's, at backup time
    nlohmann::json offsets_after = nullptr;     // after the offsets were set or reset
    nlohmann::json final_status = nullptr;
    std::vector<std::string> calls;         // the REST calls (and SQL) made or, in a dry run, to be made
    std::vector<std::string> warnings;      // what cannot be guaranteed
    std::vector<std::string> manual_steps;  // what an operator must do by hand (worker < 3.6)
    std::string problem;                    // why it could not be held or brought back
    bool needs_attention = false;           // exit 6: replay or reanchor could not be done
    nlohmann::json to_json() const;
};

class CdcRestoreHold {
public:
    // `cdc` gives the clusters, timeouts and the journal's place; `config` its cdc.restore part.
    CdcRestoreHold(const CdcConfig& cdc, CdcRestoreConfig config, CdcRestoreRequest request);
    ~CdcRestoreHold();
    CdcRestoreHold(const CdcRestoreHold&) = delete;
    CdcRestoreHold& operator=(const CdcRestoreHold&) = delete;

    // Resolves which connectors this restore touches (cdc.restore.connectors, else the manifest's cdc record,
    // else cdc.kafka_connect's connectors), their role, mode and the worker's features (GETs and the
    // side-effect-free PATCH {} probe only). Idempotent.
    void plan();
    // The dry run: per connector, the exact REST calls a restore would make (with the offsets it would set)
    // and what it would warn about. Holds nothing.
    std::vector<std::string> describe();
    // Heals what a previous run left held, then stops (else pauses) every planned RUNNING connector,
    // journalled, and waits until each is STOPPED or PAUSED. Throws Kind::SourceUnavailable when one cannot
    // be held (what was held is brought back first): a sink writing into a database being restored
    // corrupts the restore.
    void hold();
    // After the restore (`restored`: it succeeded; false: resume as held, no offsets changed): replay,
    // reanchor or none per connector, resume and watch until RUNNING. Never throws for Kafka Connect errors.
    void bring_back(bool restored);
    // --cdc=none: holds nothing (plan()'s GETs only) and says, for each connector a restore would hold, what
    // is out of step once the restore has written. Call before describe() for a dry run's lines.
    void leave_alone();

    // 8: a connector may still be held or came back FAILED; 6: a replay or reanchor could not be done
    // (worker < 3.6, offsets missing from the manifest); 0 otherwise.
    int exit_code() const;
    // The restore report's "cdc" field: {"connectors": [...], "resume_failures": [...]}.
    nlohmann::json report() const;
    const std::vector<CdcRestoreEntry>& entries() const { return entries_; }

private:
    struct Cluster;
    Cluster* cluster_for(const std::string& url);
    nlohmann::json recorded_offsets(const std::string& name, const std::string& cluster) const;
    void apply_replay(CdcRestoreEntry& e, KafkaConnectClient& client, const CdcRestoreConnector& spec);
    void apply_reanchor(CdcRestoreEntry& e, KafkaConnectClient& client, const CdcRestoreConnector& spec);
    void say_out_of_step(CdcRestoreEntry& e) const;
    void release_all_held(const std::string& why);

    CdcConfig cdc_;
    CdcRestoreConfig config_;
    CdcRestoreRequest request_;
    std::vector<std::unique_ptr<Cluster>> clusters_;
    std::vector<CdcRestoreEntry> entries_;
    std::vector<CdcRestoreConnector> specs_;  // one per entry
    std::unique_ptr<CdcCoordinator> journal_;
    std::vector<std::string> resume_failures_;
    std::vector<char> released_;  // per entry: its resume was sent (release_all_held() is idempotent)
    bool planned_ = false;
};

// The manual steps for a worker without PATCH …/offsets (before 3.6): stop, set the offsets, resume.
std::vector<std::string> manual_replay_steps(const std::string& url, const std::string& name,
                                             const nlohmann::json& offsets);

}  // namespace nightjar::cdc
