#include "nightjar/components/postgres/dump_position.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "nightjar/core/log.hpp"

namespace nightjar::postgres {

using nlohmann::json;

namespace {

std::string one_line(const char* s) {
    std::string out = s ? s : "";
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    for (auto& c : out)
        if (c == '\n') c = ' ';
    return out;
}

std::string next_slot_name() {
    static std::atomic<int> counter{0};
    return "nightjar_dump_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
}

}  // namespace

void DumpPosition::Deleter::operator()(pg_conn* c) const {
    if (c) PQfinish(c);
}

DumpPosition::DumpPosition(DumpPosition&&) noexcept = default;
DumpPosition& DumpPosition::operator=(DumpPosition&&) noexcept = default;
DumpPosition::~DumpPosition() = default;

void DumpPosition::release() {
    replication_.reset();
}

json DumpPosition::to_json() const {
    json j{{"lsn", lsn_}, {"method", method_}, {"snapshot", snapshot_}};
    if (!slot_name_.empty()) j["slot_name"] = slot_name_;
    if (!fallback_reason_.empty()) j["fallback_reason"] = fallback_reason_;
    return j;
}

DumpPosition DumpPosition::open(const PgTarget& target, PgConnection& conn, DumpPositionOptions options) {
    DumpPosition p;
    std::string why;  // why the slot was not used
    if (!options.use_slot) why = "disabled";
    if (why.empty()) {
        auto kv = target.conninfo();
        kv.emplace_back("replication", "database");
        std::vector<const char*> keys, values;
        for (const auto& [k, v] : kv) {
            keys.push_back(k.c_str());
            values.push_back(v.c_str());
        }
        keys.push_back(nullptr);
        values.push_back(nullptr);
        p.replication_.reset(PQconnectdbParams(keys.data(), values.data(), 0));
        pg_conn* rc = p.replication_.get();
        if (!rc || PQstatus(rc) != CONNECTION_OK) {
            why = "no replication connection: " +
                  (rc ? one_line(PQerrorMessage(rc)) : std::string("out of memory"));
        } else if (PQserverVersion(rc) < 100000) {
            why = "server older than 10 has no temporary slots";
        }
    }
    if (why.empty()) {
        pg_conn* rc = p.replication_.get();
        const std::string slot = next_slot_name();
        const std::string sql = "CREATE_REPLICATION_SLOT " + slot + " TEMPORARY LOGICAL pgoutput " +
                                (PQserverVersion(rc) >= 150000 ? "(SNAPSHOT 'export')" : "EXPORT_SNAPSHOT");
        if (!PQsendQuery(rc, sql.c_str())) {
            why = "CREATE_REPLICATION_SLOT: " + one_line(PQerrorMessage(rc));
        } else {
            // Time-boxed: slot creation waits for every running transaction to end.
            auto deadline = std::chrono::steady_clock::now() + options.timeout;
            bool ready = false;
            while (!ready) {
                if (!PQconsumeInput(rc)) break;
                if (!PQisBusy(rc)) {
                    ready = true;
                    break;
                }
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
                if (left.count() <= 0) break;
                pollfd fd{.fd = PQsocket(rc), .events = POLLIN, .revents = 0};
                ::poll(&fd, 1, static_cast<int>(std::min<long long>(left.count(), 200)));
            }
            if (!ready) {
                if (PGcancel* cancel = PQgetCancel(rc)) {
                    char err[256];
                    PQcancel(cancel, err, sizeof err);
                    PQfreeCancel(cancel);
                }
                why = PQstatus(rc) == CONNECTION_OK
                          ? "slot creation still waiting for running transactions after " +
                                std::to_string(options.timeout.count()) + " ms"
                          : "replication connection lost: " + one_line(PQerrorMessage(rc));
                p.replication_.reset();
            } else {
                PGresult* r = PQgetResult(rc);
                if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) >= 3) {
                    p.slot_name_ = PQgetvalue(r, 0, 0);
                    p.lsn_ = PQgetvalue(r, 0, 1);
                    p.snapshot_ = PQgetvalue(r, 0, 2);
                } else {
                    why = "CREATE_REPLICATION_SLOT: " +
                          one_line(r ? PQresultErrorMessage(r) : PQerrorMessage(rc));
                }
                if (r) PQclear(r);
                while (PGresult* more = PQgetResult(rc)) PQclear(more);
            }
        }
    }
    if (why.empty()) {
        // Our row counts read in the same snapshot as pg_dump.
        try {
            conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
            conn.exec("SET TRANSACTION SNAPSHOT " + conn.quote_literal(p.snapshot_));
            p.method_ = "replication-slot";
            return p;
        } catch (const Error& e) {
            why = std::string("cannot import the slot's snapshot: ") + e.what();
            try {
                conn.exec("ROLLBACK");
            } catch (const Error&) {
            }
        }
    }
    p.replication_.reset();
    p.slot_name_.clear();
    p.fallback_reason_ = why;
    if (why != "disabled")
        log::info("postgres: ", target.describe(), ": no exact consistent point (", why,
                  "): the dump's LSN is pg_current_wal_lsn() read in its snapshot, which may be later");
    conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    PgResult r = conn.exec(
        "SELECT pg_export_snapshot(), CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
        "ELSE pg_current_wal_lsn() END::text");
    p.snapshot_ = r.value(0, 0);
    p.lsn_ = r.value(0, 1);
    p.method_ = "exported-snapshot";
    return p;
}

}  // namespace nightjar::postgres
