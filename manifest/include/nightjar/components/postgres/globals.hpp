#pragma once
// The globals artifact (`pg_dumpall --globals-only`) read as data, not run as a script: only the statement
// forms pg_dumpall writes are accepted (SET of three session settings, CREATE ROLE, ALTER ROLE … WITH /
// SET, COMMENT ON / SECURITY LABEL ON a role or tablespace, GRANT/REVOKE of roles, parameters and
// tablespaces, CREATE/ALTER TABLESPACE), plus comments, blank lines and the `\restrict KEY` /
// `\unrestrict KEY` pair of PostgreSQL 15.14+. Anything else (another psql meta-command, COPY, DO, a
// function call, a second statement after `;` on the same line, dollar quoting, block comments, a prefixed
// string literal) is refused with its line named. Each accepted statement is executed on its own through
// libpq (one statement per PQexecParams call), never through psql.
#include <string>
#include <string_view>
#include <vector>

namespace nightjar::postgres {

enum class PgGlobalsKind {
    Session,           // SET client_encoding / standard_conforming_strings / default_transaction_read_only
    CreateRole,        // CREATE ROLE name
    AlterRole,         // ALTER ROLE name WITH … / SET …, COMMENT ON ROLE, SECURITY LABEL ON ROLE
    Membership,        // GRANT role TO member (objects: the members)
    ParameterGrant,    // GRANT/REVOKE … ON PARAMETER … TO/FROM role (objects: the grantees)
    CreateTablespace,  // CREATE TABLESPACE name
    AlterTablespace,   // ALTER TABLESPACE, GRANT/REVOKE ON TABLESPACE, COMMENT/SECURITY LABEL ON TABLESPACE
};

struct PgGlobalsStatement {
    int line = 0;  // 1-based line of the statement's first token
    PgGlobalsKind kind = PgGlobalsKind::Session;
    std::string sql;                   // the statement's text as written, without the trailing ';'
    std::vector<std::string> objects;  // the roles or tablespace it creates or changes (names as stored)
};

struct PgGlobalsScript {
    std::vector<PgGlobalsStatement> statements;
};

inline constexpr std::size_t kPgGlobalsLimit = 64u << 20;  // a globals artifact larger than this is refused

// Kind::Verification "globals line N: …" for anything pg_dumpall --globals-only does not write.
PgGlobalsScript parse_pg_globals(std::string_view text);

}  // namespace nightjar::postgres
