#pragma once
// Probes of a connector's source database, used by the watchdog before it restarts a FAILED connector: a TCP
// connect to the database listener, or a PostgreSQL connection that runs SELECT 1.
#include <chrono>
#include <optional>
#include <string>

#include "nightjar/components/postgres/config.hpp"

namespace nightjar {
class JsonFields;
}  // namespace nightjar

namespace nightjar::cdc {

struct SourceProbe {
    std::string kind = "none";        // "none" (no probe: the source is assumed healthy), "tcp", "postgres"
    std::string host;                 // tcp: host name or IP
    int port = 0;                     // tcp
    postgres::PgEndpoint postgres;    // postgres: host, port, user, passfile (libpq finds the password)
    std::string dbname = "postgres";  // postgres: the database to connect to
    std::string describe() const;     // "tcp 127.0.0.1:5432", "postgres db \"x\" on h:p", "none"
};

// {"tcp": "host:port"} or {"postgres": {"host", "port", "user", "dbname", "passfile"}}.
SourceProbe parse_source_probe(const JsonFields& f);

struct ProbeResult {
    bool ok = false;
    std::string detail;  // why it failed ("connection refused", libpq's message), or what answered
};

// Runs the probe once within `timeout`. Never throws for an unreachable source.
ProbeResult run_probe(const SourceProbe& probe, std::chrono::milliseconds timeout);

}  // namespace nightjar::cdc
