#include "nightjar/components/postgres/connection.hpp"

#include <libpq-fe.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace nightjar::postgres {

namespace {

// libpq messages end with a newline and may span lines ("FATAL: ...\nDETAIL: ..."): one line for logs.
std::string one_line(const char* message) {
    std::string s = message ? message : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    for (auto& c : s)
        if (c == '\n') c = ' ';
    return s;
}

}  // namespace

std::string PgTarget::describe() const {
    std::string where = endpoint.host.empty() ? "the default server" : endpoint.host;
    if (endpoint.port) where += ":" + std::to_string(endpoint.port);
    return "database \"" + database + "\" on " + where;
}

std::vector<std::pair<std::string, std::string>> PgTarget::conninfo() const {
    std::vector<std::pair<std::string, std::string>> kv;
    if (!endpoint.host.empty()) kv.emplace_back("host", endpoint.host);
    if (endpoint.port) kv.emplace_back("port", std::to_string(endpoint.port));
    if (!endpoint.user.empty()) kv.emplace_back("user", endpoint.user);
    if (!endpoint.passfile.empty()) kv.emplace_back("passfile", endpoint.passfile);
    kv.emplace_back("dbname", database);
    kv.emplace_back("connect_timeout", std::to_string(connect_timeout));
    if (!sslmode.empty()) kv.emplace_back("sslmode", sslmode);
    kv.emplace_back("application_name", "nightjar");
    return kv;
}

std::vector<std::string> PgTarget::child_env() const {
    std::vector<std::string> env{"PGCONNECT_TIMEOUT=" + std::to_string(connect_timeout),
                                 "PGAPPNAME=nightjar"};
    if (!endpoint.passfile.empty()) env.push_back("PGPASSFILE=" + endpoint.passfile);
    if (!sslmode.empty()) env.push_back("PGSSLMODE=" + sslmode);
    return env;
}

int PgResult::rows() const {
    return PQntuples(r_.get());
}
int PgResult::columns() const {
    return PQnfields(r_.get());
}
bool PgResult::is_null(int row, int col) const {
    return PQgetisnull(r_.get(), row, col) != 0;
}
std::string PgResult::value(int row, int col) const {
    return is_null(row, col) ? "" : std::string(PQgetvalue(r_.get(), row, col));
}
std::optional<std::string> PgResult::optional(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return std::string(PQgetvalue(r_.get(), row, col));
}
void PgResult::clear(pg_result* r) {
    PQclear(r);
}

void PgConnection::Deleter::operator()(pg_conn* c) const {
    PQfinish(c);
}

void check_passfile(const std::string& passfile, const std::string& what, Kind kind) {
    if (passfile.empty()) return;
    struct stat st {};
    if (::stat(passfile.c_str(), &st) != 0)
        throw Error(
            kind, "postgres: " + what + ": the passfile " + passfile + " (postgres.passfile) " +
                      (errno == ENOENT ? std::string("does not exist") : std::string(std::strerror(errno))) +
                      ": create it (host:port:db:user:password, mode 0600) or fix the path");
    if (!S_ISREG(st.st_mode))
        throw Error(kind, "postgres: " + what + ": the passfile " + passfile +
                              " (postgres.passfile) is not a regular file: fix the path");
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw Error(
            kind,
            "postgres: " + what + ": the passfile " + passfile + " (postgres.passfile) has mode " + mode +
                ": libpq ignores a password file that is group or world accessible: chmod 0600 " + passfile);
    }
    if (::access(passfile.c_str(), R_OK) != 0)
        throw Error(kind, "postgres: " + what + ": the passfile " + passfile +
                              " (postgres.passfile) is not readable by this user: fix its owner");
}

PgConnection::PgConnection(const PgTarget& target, Kind failure_kind)
    : target_(target), failure_kind_(failure_kind) {
    check_passfile(target.endpoint.passfile, "cannot connect to " + target.describe(), failure_kind_);
    auto kv = target.conninfo();
    std::vector<const char*> keys, values;
    for (const auto& [k, v] : kv) {
        keys.push_back(k.c_str());
        values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    conn_.reset(PQconnectdbParams(keys.data(), values.data(), 0));
    if (!conn_)
        throw Error(failure_kind_, "postgres: cannot connect to " + target.describe() + ": out of memory");
    if (PQstatus(conn_.get()) != CONNECTION_OK)
        throw Error(failure_kind_,
                    "postgres: cannot connect to " + target.describe() + ": " +
                        one_line(PQerrorMessage(conn_.get())) +
                        ": check host, port, user and the password source (PGPASSWORD, PGPASSFILE, "
                        "~/.pgpass, postgres.passfile)");
}

PgConnection::~PgConnection() = default;

PgResult PgConnection::exec(const std::string& sql, const std::vector<std::string>& params) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    pg_result* raw = PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                                  values.empty() ? nullptr : values.data(), nullptr, nullptr, 0);
    PgResult r(raw);
    ExecStatusType st = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        throw Error(failure_kind_,
                    "postgres: " + target_.describe() + ": query failed: " +
                        one_line(raw ? PQresultErrorMessage(raw) : PQerrorMessage(conn_.get())));
    return r;
}

int PgConnection::server_version() const {
    return PQserverVersion(conn_.get());
}

std::string PgConnection::scalar(const std::string& sql, const std::vector<std::string>& params) {
    PgResult r = exec(sql, params);
    if (r.rows() < 1 || r.columns() < 1)
        throw Error(failure_kind_, "postgres: " + target_.describe() + ": query returned no value: " + sql);
    return r.value(0, 0);
}

std::string PgConnection::quote_ident(const std::string& name) const {
    char* q = PQescapeIdentifier(conn_.get(), name.c_str(), name.size());
    if (!q)
        throw Error(Kind::Internal,
                    "postgres: cannot quote identifier: " + one_line(PQerrorMessage(conn_.get())));
    std::string out(q);
    PQfreemem(q);
    return out;
}

std::string PgConnection::quote_literal(const std::string& value) const {
    char* q = PQescapeLiteral(conn_.get(), value.c_str(), value.size());
    if (!q)
        throw Error(Kind::Internal,
                    "postgres: cannot quote literal: " + one_line(PQerrorMessage(conn_.get())));
    std::string out(q);
    PQfreemem(q);
    return out;
}

std::string pg_version_string(int v) {
    if (v >= 100000) return std::to_string(v / 10000) + "." + std::to_string(v % 10000);
    return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

}  // namespace nightjar::postgres
