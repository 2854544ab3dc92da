#pragma once
// The `postgres` section of the config file: which databases to dump and how to reach them. Passwords never
// live here: libpq finds them (PGPASSWORD, PGPASSFILE, ~/.pgpass, service files, or `passfile` below).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nightjar {
class JsonFields;
}  // namespace nightjar

namespace nightjar::postgres {

// Where one database lives. Empty fields fall back to libpq's own defaults and environment (PGHOST, ...).
struct PgEndpoint {
    std::string host;      // host name, IP or unix socket directory; "" = libpq default
    int port = 0;          // 0 = libpq default (PGPORT or 5432)
    std::string user;      // "" = libpq default (PGUSER or the OS user)
    std::string passfile;  // a .pgpass-format file handed to libpq and pg_dump; "" = libpq default
};

struct PostgresConfig {
    PgEndpoint endpoint;                          // host, port, user, passfile for every database
    std::vector<std::string> databases;           // names; {"all"} = every connectable non-template database
    std::map<std::string, PgEndpoint> overrides;  // per database: fields set here replace `endpoint`'s
    std::string maintenance_db = "postgres";      // where "all" is listed and globals are read
    bool globals = false;      // also dump roles and tablespaces (pg_dumpall --globals-only)
    bool fail_fast = false;    // the first failing database ends the whole backup run
    std::string bin_dir;       // directory of pg_dump/pg_dumpall; "" = pick by server version
    int connect_timeout = 10;  // seconds, for libpq and the dump tools
    std::string sslmode;       // libpq sslmode; "" = libpq default (prefer)

    bool all_databases() const { return databases.size() == 1 && databases[0] == "all"; }
    // The endpoint of `database`: the section's, with that database's overrides applied.
    PgEndpoint endpoint_for(const std::string& database) const;
    // --db-host/--db-port: replace host (when not empty) and port (when > 0) everywhere, overrides included.
    void override_endpoint(const std::string& host, int port);
};

// Kind::Config naming the JSON pointer of a bad field.
PostgresConfig parse_postgres_config(const JsonFields& f);

// "OLD=NEW" -> {OLD, NEW}; nullopt when malformed (no '=', an empty side).
std::optional<std::pair<std::string, std::string>> parse_rename(const std::string& spec);

}  // namespace nightjar::postgres
