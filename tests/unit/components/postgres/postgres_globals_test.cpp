// The globals artifact read as data: every statement form pg_dumpall --globals-only writes is accepted, and
// anything else (psql meta-commands, COPY, DO, functions, smuggled second statements) is refused, line named.
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>

#include "nightjar/components/postgres/globals.hpp"
#include "support/commands.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using test::IsError;

namespace {

const std::string kHead =
    "--\n-- PostgreSQL database cluster dump\n--\n\n\\restrict abc123\n\nSET default_transaction_read_only = "
    "off;\n\nSET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n\n";
const std::string kTail = "\n\\unrestrict abc123\n\n--\n-- PostgreSQL database cluster dump complete\n--\n\n";

std::string dump(const std::string& body) {
    return kHead + body + kTail;
}

// The line number of `needle`'s first occurrence in `text`.
std::string line_of(const std::string& text, const std::string& needle) {
    auto at = text.find(needle);
    REQUIRE(at != std::string::npos);
    return "globals line " +
           std::to_string(1 + std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
}

}  // namespace

TEST_CASE("a real pg_dumpall 15 globals dump is accepted, statement by statement", "[postgres][globals]") {
    std::string text = test::read_file(test::source_dir() / "samples/postgres/globals-15.sql");
    postgres::PgGlobalsScript s = postgres::parse_pg_globals(text);
    std::map<postgres::PgGlobalsKind, int> kinds;
    for (const auto& st : s.statements) ++kinds[st.kind];
    CHECK(kinds[postgres::PgGlobalsKind::Session] == 3);
    CHECK(kinds[postgres::PgGlobalsKind::CreateRole] == 5);
    CHECK(kinds[postgres::PgGlobalsKind::Membership] == 2);
    CHECK(kinds[postgres::PgGlobalsKind::ParameterGrant] == 1);
    CHECK(kinds[postgres::PgGlobalsKind::CreateTablespace] == 1);
    CHECK(kinds[postgres::PgGlobalsKind::AlterTablespace] == 3);
    const postgres::PgGlobalsStatement* weird = nullptr;
    for (const auto& st : s.statements)
        if (st.kind == postgres::PgGlobalsKind::CreateRole && st.objects.at(0) == "we ird\"q") weird = &st;
    REQUIRE(weird);
    CHECK(weird->sql == "CREATE ROLE \"we ird\"\"q\"");
    CHECK(weird->line == 25);
    for (const auto& st : s.statements)
        if (st.kind == postgres::PgGlobalsKind::Membership)
            CHECK((st.objects == std::vector<std::string>{"app"} ||
                   st.objects == std::vector<std::string>{"we ird\"q"}));
}

TEST_CASE("statement forms of other pg_dumpall versions are accepted", "[postgres][globals]") {
    auto s = postgres::parse_pg_globals(dump(
        "CREATE ROLE r1;\nALTER ROLE r1 WITH NOSUPERUSER INHERIT LOGIN CONNECTION LIMIT 3 PASSWORD NULL "
        "VALID "
        "UNTIL 'infinity';\nALTER ROLE r1 IN DATABASE app SET work_mem TO '4MB';\nALTER ROLE r1 SET "
        "pgaudit.log = 'all', 'ddl';\nCOMMENT ON ROLE r1 IS 'multi\nline; -- not a comment';\nSECURITY LABEL "
        "FOR "
        "selinux ON ROLE r1 IS 'x';\nGRANT g1, g2 TO r1 WITH INHERIT TRUE, SET FALSE GRANTED BY postgres;\n"
        "REVOKE ALL ON TABLESPACE t FROM PUBLIC;\nALTER TABLESPACE t OWNER TO r1;\nGRANT CREATE ON "
        "TABLESPACE t "
        "TO r1 WITH GRANT OPTION;\nGRANT SET, ALTER SYSTEM ON PARAMETER work_mem, pg.x TO r1;\n"));
    REQUIRE(s.statements.size() == 14);
    CHECK(s.statements[7].objects == std::vector<std::string>{"r1"});  // the comment, on its role
    CHECK(s.statements[9].kind == postgres::PgGlobalsKind::Membership);
    CHECK(s.statements[10].kind == postgres::PgGlobalsKind::AlterTablespace);
    CHECK(s.statements[10].objects == std::vector<std::string>{"t"});
}

TEST_CASE("anything pg_dumpall does not write is refused with its line named", "[postgres][globals]") {
    struct Case {
        const char* name;
        std::string body;
        std::string needle;  // where the refusal must point
        std::string why;
    };
    std::vector<Case> cases{
        {"shell escape", "CREATE ROLE a;\n\\! touch /tmp/pwned\n", "\\!", "psql meta-command \\!"},
        {"output redirection", "\\o /tmp/owned\nCREATE ROLE a;\n", "\\o", "psql meta-command \\o"},
        {"copy to program", "COPY (SELECT 1) TO PROGRAM 'touch /tmp/x';\n", "COPY", "not a statement"},
        {"do block", "DO $$BEGIN PERFORM 1; END$$;\n", "DO", "dollar quoting"},
        {"dollar quoting in a value", "ALTER ROLE a SET search_path TO $x$a$x$;\n", "$x$", "dollar quoting"},
        {"function call", "SELECT pg_catalog.set_config('search_path', '', false);\n", "SELECT",
         "not a statement"},
        {"a second statement after ';'", "CREATE ROLE a; DROP DATABASE app;\n", "DROP",
         "a second statement after ';'"},
        {"a second statement after a role line",
         "CREATE ROLE a;\nALTER ROLE a WITH LOGIN; COPY x TO PROGRAM 'id';\n", "COPY",
         "a second statement after ';'"},
        {"comment ended by a carriage return", "CREATE ROLE a; -- x\rDROP ROLE b;\n", "CREATE ROLE a",
         "a second statement after ';'"},
        {"block comment", "/* x */ CREATE ROLE a;\n", "/*", "a block comment"},
        {"escape string", "COMMENT ON ROLE a IS E'\\' ; DROP ROLE b; --';\n", "COMMENT", "prefixed string"},
        {"standard strings off", "SET standard_conforming_strings = off;\n",
         "standard_conforming_strings = off", "must stay on"},
        {"another session setting", "SET session_authorization = 'x';\n", "session_authorization",
         "not a setting"},
        {"unsafe client encoding", "SET client_encoding = 'SJIS';\n", "'SJIS'", "client encoding sjis"},
        {"preload libraries", "ALTER ROLE a SET session_preload_libraries TO '/tmp/x.so';\n",
         "ALTER ROLE a SET", "load code"},
        {"drop", "DROP ROLE postgres;\n", "DROP", "not a statement"},
        {"create role with options", "CREATE ROLE a SUPERUSER;\n", "SUPERUSER", "unexpected"},
        {"alter role rename", "ALTER ROLE a RENAME TO b;\n", "RENAME", "expected SET"},
        {"grant on a table", "GRANT ALL ON TABLE t TO a;\n", "GRANT ALL", "only privileges on a parameter"},
        {"two statements run together", "CREATE ROLE a\nCREATE ROLE b;\n", "CREATE ROLE b",
         "unexpected \"CREATE\""},
        {"NUL byte", std::string("CREATE ROLE a;\n\0garbage\n", 24), "garbage", "control character 0x00"},
        {"statement after unrestrict", "", "", ""},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.name) {
            std::string text = dump(c.body);
            if (c.body.empty()) {
                text += "CREATE ROLE late;\n";
                REQUIRE_THROWS_MATCHES(postgres::parse_pg_globals(text), Error,
                                       IsError(Kind::Verification, "a statement after \\unrestrict"));
                continue;
            }
            std::string line = line_of(text, c.needle);
            if (std::string(c.name) == "NUL byte") line = line_of(text, std::string(1, '\0'));
            REQUIRE_THROWS_MATCHES(postgres::parse_pg_globals(text), Error,
                                   IsError(Kind::Verification, line + ": "));
            REQUIRE_THROWS_MATCHES(postgres::parse_pg_globals(text), Error,
                                   IsError(Kind::Verification, c.why));
        }
    }
}

TEST_CASE("the restrict and unrestrict pair is accepted only as pg_dumpall writes it",
          "[postgres][globals]") {
    std::string body = "CREATE ROLE a;\n";
    CHECK_THROWS_MATCHES(postgres::parse_pg_globals(kHead + body + "\n\\unrestrict other\n"), Error,
                         IsError(Kind::Verification, "psql meta-command \\unrestrict"));
    CHECK_THROWS_MATCHES(postgres::parse_pg_globals(kHead + body), Error,
                         IsError(Kind::Verification, "\\restrict without its \\unrestrict"));
    CHECK_THROWS_MATCHES(postgres::parse_pg_globals("\\restrict a;b\n"), Error,
                         IsError(Kind::Verification, "globals line 1: psql meta-command \\restrict"));
    CHECK_THROWS_MATCHES(postgres::parse_pg_globals("CREATE ROLE a \\restrict x\n;"), Error,
                         IsError(Kind::Verification, "globals line 1: psql meta-command"));
    CHECK_THROWS_MATCHES(postgres::parse_pg_globals("SET client_encoding = 'UTF8';\nCREATE ROLE a\n"), Error,
                         IsError(Kind::Verification, "globals line 2: a statement not ended by ';'"));
    CHECK(postgres::parse_pg_globals("-- only comments\n\n").statements.empty());
}
