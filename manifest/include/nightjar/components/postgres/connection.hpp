#pragma once
// A libpq connection (RAII) with the few calls the PostgreSQL component needs. Errors name the database and
// the server; libpq's messages never contain the password.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/components/postgres/config.hpp"
#include "nightjar/core/error.hpp"

struct pg_conn;
struct pg_result;

namespace nightjar::postgres {

// Where and as whom to connect: what libpq and the dump tools are given (never a password).
struct PgTarget {
    PgEndpoint endpoint;       // host, port, user, passfile
    std::string database;      // dbname
    int connect_timeout = 10;  // seconds
    std::string sslmode;       // "" = libpq default

    // "db \"app\" on 127.0.0.1:5432" for messages.
    std::string describe() const;
    // libpq keywords/values for PQconnectdbParams (no password: libpq finds it itself).
    std::vector<std::pair<std::string, std::string>> conninfo() const;
    // Environment for a child tool: PGPASSFILE, PGCONNECT_TIMEOUT, PGSSLMODE when set (the password itself is
    // inherited from our own environment or found by libpq in the passfile).
    std::vector<std::string> child_env() const;
};

class PgResult {
public:
    explicit PgResult(pg_result* r) : r_(r, &PgResult::clear) {}
    int rows() const;
    int columns() const;
    bool is_null(int row, int col) const;
    std::string value(int row, int col) const;  // "" for NULL
    std::optional<std::string> optional(int row, int col) const;

private:
    static void clear(pg_result* r);
    std::unique_ptr<pg_result, void (*)(pg_result*)> r_;
};

class PgConnection {
public:
    // Kind::SourceUnavailable (or `failure_kind`) with libpq's message and the target named.
    explicit PgConnection(const PgTarget& target, Kind failure_kind = Kind::SourceUnavailable);
    PgConnection(PgConnection&&) noexcept = default;
    ~PgConnection();

    // Runs one statement (text protocol); `params` are $1.. values. Throws `failure_kind` with the message.
    PgResult exec(const std::string& sql, const std::vector<std::string>& params = {});
    // The single value of a one-row query.
    std::string scalar(const std::string& sql, const std::vector<std::string>& params = {});
    int server_version() const;  // 150018
    std::string quote_ident(const std::string& name) const;
    std::string quote_literal(const std::string& value) const;
    const PgTarget& target() const { return target_; }

private:
    struct Deleter {
        void operator()(pg_conn* c) const;
    };
    std::unique_ptr<pg_conn, Deleter> conn_;
    PgTarget target_;
    Kind failure_kind_;
};

// A named passfile must exist, be a regular file readable here and be 0600 or stricter (libpq's own rule,
// which otherwise silently ignores it and then reports "no password supplied"). Throws `kind` naming the
// file.
void check_passfile(const std::string& passfile, const std::string& what, Kind kind);

// "15.18" from 150018 (and "9.6.24" from 90624).
std::string pg_version_string(int version_num);

}  // namespace nightjar::postgres
