#pragma once
// The cdc.restore config: which connectors belong to which database, in which role, and what a restore
// does with them (cdc/restore_hold.hpp).
#include <string>
#include <vector>

namespace nightjar {
class JsonFields;
}  // namespace nightjar

namespace nightjar::cdc {

// One entry of cdc.restore.connectors.
struct CdcRestoreConnector {
    std::string name;
    std::string cluster;   // the first worker URL of its cluster; "" = the first configured cluster
    std::string database;  // the database it reads from (source) or writes to (sink); "" = any restored one
    std::string role;      // "sink" | "source"; "" = the `type` Kafka Connect reports
    std::string mode;      // "replay" | "reanchor" | "none"; "" = cdc.restore.mode, else by role
    std::string reanchor =
        "reset";               // "reset": DELETE its offsets (a fresh snapshot under its snapshot.mode);
                               // "signal": an execute-snapshot signal per table into signal_table
    std::string signal_table;  // schema.table of Debezium's signal table (reanchor "signal")
    std::vector<std::string> tables;  // tables to snapshot; empty = its table.include.list
    bool drop_slot = false;           // drop a leftover, inactive replication slot named by its slot.name
    double topic_retention_s = 0;     // its topics' retention.ms / 1000 when known (0 = unknown)
};

// The cdc.restore config object.
struct CdcRestoreConfig {
    // Which connectors belong to which database. Empty: the backup's connectors (the manifest's cdc record),
    // each with the role Kafka Connect reports and belonging to every restored database.
    std::vector<CdcRestoreConnector> connectors;
    std::string mode;              // default for every connector: "" = replay for sinks, none for sources
    double hold_timeout_s = 120;   // until every held connector reports STOPPED (or PAUSED)
    double topic_retention_s = 0;  // default for connectors that do not say (0 = unknown)
};

// Parses the "restore" object of the "cdc" section (Kind::Config errors name the JSON pointer).
// parse_cdc_config() calls it for cdc.restore; CdcConfig::restore holds the result.
CdcRestoreConfig parse_cdc_restore_config(const JsonFields& f);

}  // namespace nightjar::cdc
