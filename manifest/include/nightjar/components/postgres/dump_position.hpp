#pragma once
// The exact position of a dump (issue 18): a temporary logical replication slot created on a replication
// connection with `CREATE_REPLICATION_SLOT … TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')` gives the LSN
// at which its exported snapshot is consistent (its consistent_point). pg_dump imports that snapshot
// (--snapshot=) and so does the row-count transaction, so the dump holds exactly the transactions committed
// before that LSN. Slot creation waits for running transactions, so it is time-boxed; when it cannot be done
// (no REPLICATION right, wal_level below logical, a standby before 16, no free slot, the time box) the
// position falls back to today's pg_export_snapshot() with pg_current_wal_lsn() (approximate), and `method`
// says which was used.
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "nightjar/components/postgres/connection.hpp"

struct pg_conn;

namespace nightjar::postgres {

struct DumpPositionOptions {
    std::chrono::milliseconds timeout{10000};  // slot creation (it waits for running transactions)
    bool use_slot = true;                      // false: always the exported-snapshot fallback
};

// Holds what keeps the snapshot valid: the replication connection (its temporary slot is dropped when it
// closes) and, on `conn`, an open REPEATABLE READ READ ONLY transaction in that snapshot. Keep it alive until
// pg_dump has ended, then COMMIT on `conn` and let it go.
class DumpPosition {
public:
    // Begins the transaction on `conn` (the caller commits it) and exports or imports the snapshot.
    static DumpPosition open(const PgTarget& target, PgConnection& conn, DumpPositionOptions options = {});
    DumpPosition(DumpPosition&&) noexcept;
    DumpPosition& operator=(DumpPosition&&) noexcept;
    ~DumpPosition();

    const std::string& snapshot() const { return snapshot_; }  // for pg_dump --snapshot=
    const std::string& lsn() const { return lsn_; }            // "0/1A2B3C4"
    // "replication-slot" (consistent_point, exact) | "exported-snapshot" (pg_current_wal_lsn(), approximate)
    const std::string& method() const { return method_; }
    const std::string& slot_name() const { return slot_name_; }  // the temporary slot ("" for the fallback)
    const std::string& fallback_reason() const { return fallback_reason_; }
    // {"lsn", "method", "slot_name"?, "fallback_reason"?, "snapshot"} for the manifest.
    nlohmann::json to_json() const;
    // Closes the replication connection (drops the temporary slot). Idempotent.
    void release();

private:
    DumpPosition() = default;
    struct Deleter {
        void operator()(pg_conn* c) const;
    };
    std::unique_ptr<pg_conn, Deleter> replication_;
    std::string snapshot_, lsn_, method_, slot_name_, fallback_reason_;
};

}  // namespace nightjar::postgres
