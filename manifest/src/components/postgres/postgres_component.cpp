#include "nightjar/components/postgres/postgres_component.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <variant>

#include "nightjar/components/postgres/archive.hpp"
#include "nightjar/components/postgres/connection.hpp"
#include "nightjar/components/postgres/dump_position.hpp"
#include "nightjar/components/postgres/expectations.hpp"
#include "nightjar/components/postgres/globals.hpp"
#include "nightjar/components/postgres/streamed_restore.hpp"
#include "nightjar/components/postgres/tools.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/io/fd.hpp"
#include "nightjar/io/process.hpp"
#include "nightjar/repo/repository.hpp"

namespace nightjar::postgres {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::size_t kHeadLimit = 64 << 20;  // the TOC must fit in this many bytes for the entry check
constexpr const char* kGlobalsName = "pg-globals";
constexpr const char* kGlobalsHead = "--\n-- PostgreSQL database cluster dump\n--\n";
constexpr const char* kGlobalsTail = "-- PostgreSQL database cluster dump complete";

// User tables whose rows pg_dump writes as TABLE DATA: ordinary tables and leaf partitions, not temporary,
// not owned by an extension (pg_dump leaves those to CREATE EXTENSION).
constexpr const char* kTablesSql = R"(
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2)";

struct TableRows {
    std::string schema, name;
    std::int64_t rows = 0;
};

std::string qualified(const TableRows& t) {
    return t.schema + "." + t.name;
}

std::vector<TableRows> list_tables(PgConnection& conn) {
    std::vector<TableRows> out;
    PgResult r = conn.exec(kTablesSql);
    for (int i = 0; i < r.rows(); ++i) out.push_back({r.value(i, 0), r.value(i, 1), 0});
    return out;
}

// Runs beside pg_dump in the exporting transaction. A failing count must not abort that transaction: pg_dump
// may not have imported the snapshot yet, and its own error says more than ours.
void count_rows(PgConnection& conn, std::vector<TableRows>& tables) {
    conn.exec("SAVEPOINT nightjar_counts");
    try {
        for (auto& t : tables)
            t.rows = std::stoll(conn.scalar("SELECT count(*) FROM ONLY " + conn.quote_ident(t.schema) + "." +
                                            conn.quote_ident(t.name)));
    } catch (const Error&) {
        conn.exec("ROLLBACK TO SAVEPOINT nightjar_counts");
        throw;
    }
}

json tables_json(const std::vector<TableRows>& tables) {
    json list = json::array();
    for (const auto& t : tables) list.push_back({{"schema", t.schema}, {"name", t.name}, {"rows", t.rows}});
    return list;
}

std::vector<TableRows> tables_of(const Artifact& a) {
    JsonFields source(a.source, "manifest artifact " + a.name, Kind::Verification, "/source");
    std::vector<TableRows> out;
    const json& list = source.array("tables");
    for (std::size_t i = 0; i < list.size(); ++i) {
        JsonFields t = source.element("tables", i);
        out.push_back({t.string("schema"), t.string("name"), t.integer("rows", 0, INT64_MAX)});
    }
    return out;
}

json replication_slots(PgConnection& conn) {
    const bool has_wal_status = conn.server_version() >= 130000;
    PgResult r = conn.exec(std::string("SELECT slot_name, slot_type, database, active, restart_lsn::text, "
                                       "confirmed_flush_lsn::text, ") +
                           (has_wal_status ? "wal_status" : "NULL::text") +
                           " FROM pg_replication_slots ORDER BY slot_name");
    json slots = json::array();
    auto opt = [&](int row, int col) -> json {
        auto v = r.optional(row, col);
        return v ? json(*v) : json(nullptr);
    };
    for (int i = 0; i < r.rows(); ++i)
        slots.push_back({{"slot_name", r.value(i, 0)},
                         {"slot_type", r.value(i, 1)},
                         {"database", opt(i, 2)},
                         {"active", r.value(i, 3) == "t"},
                         {"restart_lsn", opt(i, 4)},
                         {"confirmed_flush_lsn", opt(i, 5)},
                         {"wal_status", opt(i, 6)}});
    return slots;
}

// What libpq tells about the server and the database, read inside the exporting transaction.
json server_state(PgConnection& conn) {
    PgResult r = conn.exec(R"(
SELECT pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text ELSE pg_current_wal_lsn()::text END,
       pg_database_size(current_database()), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype,
       txid_current_snapshot()::text, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       current_setting('server_version')
FROM pg_database d WHERE d.datname = current_database())");
    if (r.rows() != 1)
        throw Error(Kind::SourceUnavailable,
                    "postgres: " + conn.target().describe() + ": not in pg_database");
    const bool standby = r.value(0, 0) == "t";
    return {{"server_version_num", conn.server_version()},
            {"server_version", r.value(0, 8)},
            {"in_recovery", standby},
            {standby ? "wal_replay_lsn" : "wal_lsn", r.value(0, 1)},
            {"database_size", std::stoll(r.value(0, 2))},
            {"encoding", r.value(0, 3)},
            {"collate", r.value(0, 4)},
            {"ctype", r.value(0, 5)},
            {"txid_snapshot", r.value(0, 6)},
            {"snapshot_time", r.value(0, 7)}};
}

std::string tool_version(const PgTool& tool) {
    RunResult r = run_capture({tool.path.string(), "--version"});
    std::string line = first_line(r.out);
    auto sp = line.rfind(") ");
    return sp == std::string::npos ? line : line.substr(sp + 2);
}

std::string dump_failure(const std::string& tool, const PgTarget& target, int rc, const std::string& err) {
    std::string quoted = err.empty() ? "(no message)" : err;
    for (auto& c : quoted)
        if (c == '\n') c = ' ';
    return "postgres: " + tool + " failed for " + target.describe() + " (exit " + std::to_string(rc) +
           "): " + quoted;
}

PgTarget target_for(const PostgresConfig& c, const std::string& database) {
    return {c.endpoint_for(database), database, c.connect_timeout, c.sslmode};
}

std::vector<std::string> resolve_databases(const PostgresConfig& c) {
    if (!c.all_databases()) return c.databases;
    PgConnection conn(target_for(c, c.maintenance_db));
    PgResult r =
        conn.exec("SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1");
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.value(i, 0));
    return out;
}

// Streams a child's stdout into a new artifact; the artifact is discarded unless the child exits 0 with
// output.
struct StreamedDump {
    std::unique_ptr<ArtifactWriter> out;
    std::string head;  // the first bytes, for a format check
    int rc = -1;
    std::string err;
};

StreamedDump stream_child(Subprocess& child, std::unique_ptr<ArtifactWriter> out, DumpContext& context,
                          std::size_t head_bytes) {
    StreamedDump s;
    std::vector<std::byte> buf(io::kChunkSize);
    while (std::size_t n = child.out().read(buf)) {
        if (context.check_interrupted) context.check_interrupted();
        io::Bytes piece(buf.data(), n);
        if (s.head.size() < head_bytes)
            s.head.append(io::as_chars(piece.first(std::min(n, head_bytes - s.head.size()))));
        out->write(piece);
    }
    s.rc = child.wait();
    s.err = child.stderr_text();
    s.out = std::move(out);
    return s;
}

Artifact dump_database(const PostgresConfig& cfg, const std::string& database, bool last,
                       DumpContext& context, Staging& staging, json& details) {
    log::Scope database_scope{{"database", database}};
    PgTarget target = target_for(cfg, database);
    PgConnection conn(target);
    PgTool pg_dump =
        find_pg_tool("pg_dump", conn.server_version() / 10000, PgToolPick::OldestFitting, cfg.bin_dir);
    // The snapshot pg_dump will import, at an exact LSN when a temporary logical slot can export it; this
    // transaction (and the slot's replication connection) stays open until the dump has ended.
    DumpPosition position = DumpPosition::open(target, conn);
    const std::string snapshot = position.snapshot();
    context.took_snapshot("database " + database, last);  // CDC held for the snapshot may go on now
    json source = server_state(conn);
    source["replication_slots"] = json::array();
    for (auto& slot : replication_slots(conn))  // without our own temporary slot
        if (slot["slot_name"] != position.slot_name()) source["replication_slots"].push_back(slot);
    std::vector<TableRows> tables = list_tables(conn);

    const std::string file = "pg-" + pg_file_name_part(database) + ".pgdump.zst";
    const std::string label = "db-" + database;
    auto out = staging.artifact(file, [&context, label](std::uint64_t n) {
        if (context.progress) context.progress(label, n);
    });
    SpawnOptions spawn;
    spawn.env = target.child_env();
    spawn.stdout_pipe = true;
    Subprocess child = Subprocess::spawn(pg_dump_argv(pg_dump, target, snapshot), spawn);
    // Exact counts in the same snapshot, on our connection, while pg_dump streams on its own.
    // Then the drill's expectations (row samples), on the same connection, in the same snapshot.
    json expected;
    auto counted = std::async(std::launch::async, [&conn, &tables, &expected] {
        count_rows(conn, tables);
        std::vector<postgres::TableName> names;
        for (const auto& t : tables) names.push_back({t.schema, t.name});
        expected = postgres::capture_expectations(conn, names);
    });
    StreamedDump s = stream_child(child, std::move(out), context, 1 << 20);
    std::exception_ptr count_error;
    try {
        counted.get();
    } catch (...) {
        count_error = std::current_exception();
    }
    // pg_dump's own message says most about a failure, so it wins over a failed count.
    if (s.rc != 0) throw Error(Kind::SourceUnavailable, dump_failure("pg_dump", target, s.rc, s.err));
    if (count_error) std::rethrow_exception(count_error);
    std::optional<PgArchive> archive;
    try {
        archive = parse_pg_archive(io::as_bytes(s.head), "pg_dump output for " + target.describe());
    } catch (const Error& e) {
        throw Error(Kind::SourceUnavailable, e.what());
    }
    if (s.head.empty())
        throw Error(Kind::SourceUnavailable, "postgres: pg_dump wrote nothing for " + target.describe());
    s.out->finish();
    conn.exec("COMMIT");
    position.release();

    std::int64_t rows = 0;
    for (const auto& t : tables) rows += t.rows;
    Artifact a = s.out->artifact("postgres", label, kPgDumpFormat);
    source["database"] = database;
    source["host"] = target.endpoint.host;
    source["port"] = target.endpoint.port;
    source["user"] = target.endpoint.user;
    if (!target.endpoint.passfile.empty()) source["passfile"] = target.endpoint.passfile;
    source["snapshot"] = snapshot;
    source["consistent_point"] = position.to_json();
    source["pg_dump"] = pg_dump.path.string();
    source["pg_dump_version"] = tool_version(pg_dump);
    source["pg_dump_major"] = pg_dump.major;
    if (archive) source["archive_version"] = archive->version();
    source["tables"] = tables_json(tables);
    source["total_rows"] = rows;
    source["expectations"] = std::move(expected);
    a.source = std::move(source);
    details = {
        {"status", "ok"}, {"tables", tables.size()}, {"rows", rows}, {"content_bytes", a.content_size}};
    return a;
}

Artifact dump_globals(const PostgresConfig& cfg, DumpContext& context, Staging& staging) {
    PgTarget target = target_for(cfg, cfg.maintenance_db);
    PgConnection conn(target);
    const bool superuser = conn.scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == "t";
    PgTool tool =
        find_pg_tool("pg_dumpall", conn.server_version() / 10000, PgToolPick::OldestFitting, cfg.bin_dir);
    auto out = staging.artifact("pg-globals.sql.zst", [&context](std::uint64_t n) {
        if (context.progress) context.progress(kGlobalsName, n);
    });
    SpawnOptions spawn;
    spawn.env = target.child_env();
    spawn.stdout_pipe = true;
    Subprocess child = Subprocess::spawn(pg_dumpall_globals_argv(tool, target, superuser), spawn);
    StreamedDump s = stream_child(child, std::move(out), context, 64);
    if (s.rc != 0)
        throw Error(Kind::SourceUnavailable, dump_failure("pg_dumpall --globals-only", target, s.rc, s.err));
    if (s.head.rfind(kGlobalsHead, 0) != 0)
        throw Error(Kind::SourceUnavailable,
                    "postgres: pg_dumpall --globals-only wrote no cluster dump for " + target.describe());
    s.out->finish();
    Artifact a = s.out->artifact("postgres", kGlobalsName, kPgGlobalsFormat);
    a.source = {{"database", cfg.maintenance_db},
                {"host", target.endpoint.host},
                {"port", target.endpoint.port},
                {"user", target.endpoint.user},
                {"server_version_num", conn.server_version()},
                {"superuser", superuser},
                {"role_passwords", superuser},
                {"pg_dumpall", tool.path.string()},
                {"pg_dumpall_version", tool_version(tool)},
                {"pg_dump_major", tool.major}};
    if (!target.endpoint.passfile.empty()) a.source["passfile"] = target.endpoint.passfile;
    return a;
}

// "" when the archive holds a TABLE DATA entry for every table the manifest counted, else which are missing.
std::string missing_table_data(const PgArchive& archive, const std::vector<TableRows>& tables) {
    std::set<std::pair<std::string, std::string>> data_entries;
    for (const auto& e : archive.toc)
        if (e.desc == "TABLE DATA") data_entries.emplace(e.schema, e.tag);
    std::vector<std::string> missing;
    for (const auto& t : tables)
        if (!data_entries.count({t.schema, t.name})) missing.push_back(qualified(t));
    if (missing.empty()) return "";
    std::string detail =
        "the archive has no data for table " + missing.front() + " that the manifest counted";
    if (missing.size() > 1) detail += " (and " + std::to_string(missing.size() - 1) + " more)";
    return detail;
}

// ---- restore side ----

// Where an artifact goes back to: the recorded server unless the options name another.
PgTarget restore_target(const Artifact& a, const PostgresRestoreOptions& o, const std::string& database) {
    JsonFields s(a.source, "manifest artifact " + a.name, Kind::Verification, "/source");
    PgTarget t;
    t.endpoint.host = o.host.empty() ? s.string_or("host", "") : o.host;
    t.endpoint.port = o.port ? o.port : static_cast<int>(s.integer_or("port", 0, 65535, 0));
    t.endpoint.user = o.user.empty() ? s.string_or("user", "") : o.user;
    t.endpoint.passfile = s.string_or("passfile", "");
    if (!t.endpoint.passfile.empty() && !fs::exists(t.endpoint.passfile)) t.endpoint.passfile.clear();
    t.database = database;
    return t;
}

std::string source_database(const Artifact& a) {
    return JsonFields(a.source, "manifest artifact " + a.name, Kind::Verification, "/source")
        .string("database");
}

std::string renamed(const std::string& database, const PostgresRestoreOptions& o) {
    auto it = o.rename.find(database);
    return it == o.rename.end() ? database : it->second;
}

struct TargetState {
    bool exists = false;
    std::int64_t tables = 0;
    int server_version = 0;
};

TargetState inspect_target(const PgTarget& admin_target, const std::string& database) {
    PgConnection admin(admin_target);
    TargetState st;
    st.server_version = admin.server_version();
    st.exists = admin.exec("SELECT 1 FROM pg_database WHERE datname = $1", {database}).rows() == 1;
    if (!st.exists) return st;
    PgTarget db_target = admin_target;
    db_target.database = database;
    PgConnection db(db_target);
    st.tables = std::stoll(
        db.scalar("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                  "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                  "AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp'"));
    return st;
}

std::string maintenance_db(const Artifact& a) {
    JsonFields s(a.source, "manifest artifact " + a.name, Kind::Verification, "/source");
    return a.format == kPgGlobalsFormat ? s.string("database") : "postgres";
}

// DROP DATABASE, also ending other sessions on it where the server can (13 and later).
void drop_database(PgConnection& admin, const std::string& database, int server_version) {
    admin.exec("DROP DATABASE " + admin.quote_ident(database) +
               (server_version >= 130000 ? " WITH (FORCE)" : ""));
}

// A destructive flag (--clean) is suggested only for a database the operator named (--db or --db-name).
std::string refusal(const PgTarget& t, std::int64_t tables, const std::string& original,
                    const PostgresRestoreOptions& o) {
    const bool named = o.rename.count(original) > 0 ||
                       std::find(o.databases.begin(), o.databases.end(), original) != o.databases.end();
    std::string head = "postgres: " + t.describe() + " already has " + std::to_string(tables) +
                       " table(s): restore refused, nothing was written: ";
    if (named)
        return head + "pass --clean to drop and recreate it, or --db-name " + original +
               "=NEWNAME to restore into a new database";
    return head + "pass --db-name " + original +
           "=NEWNAME to restore it beside the existing one, or --db NAME " +
           "to restore only the databases you mean";
}

int jobs_for(const PostgresRestoreOptions& o) {
    if (o.jobs > 0) return o.jobs;
    return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
}

// The globals artifact's text, read to its end (the digests are judged there); bounded: past the limit the
// rest is read but not kept, and `too_large` is set.
std::string read_globals(io::Reader& content, bool& too_large) {
    std::string text;
    std::vector<std::byte> buf(io::kChunkSize);
    too_large = false;
    while (std::size_t n = content.read(buf)) {
        if (too_large) continue;
        text.append(io::as_chars(io::Bytes(buf.data(), n)));
        too_large = text.size() > kPgGlobalsLimit;
    }
    if (too_large) text.clear();
    return text;
}

// The format check of a globals artifact: a cluster dump, complete, of accepted statements only.
std::string globals_problem(const std::string& text, bool too_large) {
    if (too_large) return "larger than " + std::to_string(kPgGlobalsLimit >> 20) + " MiB: not a globals dump";
    if (text.rfind(kGlobalsHead, 0) != 0) return "not a pg_dumpall cluster dump";
    if (text.find(kGlobalsTail, text.size() > 4096 ? text.size() - 4096 : 0) == std::string::npos)
        return "the globals dump is cut short (no \"dump complete\" trailer)";
    try {
        parse_pg_globals(text);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// What a globals restore does against the roles and tablespaces that exist: a role or tablespace that exists
// is left as it is (its password, attributes, settings, memberships and grants untouched) unless `replace`.
struct GlobalsApply {
    std::vector<std::string> roles_created, roles_altered, roles_left;
    std::vector<std::string> spaces_created, spaces_altered, spaces_left;
    std::vector<const PgGlobalsStatement*> run;  // the statements to execute, in order
};

GlobalsApply plan_globals(const PgGlobalsScript& script, const std::set<std::string>& roles,
                          const std::set<std::string>& spaces, bool replace) {
    GlobalsApply g;
    std::set<std::string> our_roles, our_spaces;  // created by this restore, or replaced
    auto ours = [](const std::set<std::string>& mine, const std::vector<std::string>& objects) {
        return std::all_of(objects.begin(), objects.end(), [&](const auto& o) { return mine.count(o) > 0; });
    };
    auto note = [](std::vector<std::string>& list, const std::string& name) {
        if (std::find(list.begin(), list.end(), name) == list.end()) list.push_back(name);
    };
    for (const auto& st : script.statements) {
        bool run = false;
        const std::string object = st.objects.empty() ? "" : st.objects.front();
        switch (st.kind) {
            case PgGlobalsKind::Session:
                run = true;
                break;
            case PgGlobalsKind::CreateRole:
                if (!roles.count(object)) {
                    note(g.roles_created, object);
                    run = true;
                } else if (replace) {
                    note(g.roles_altered, object);
                } else {
                    note(g.roles_left, object);
                }
                if (!roles.count(object) || replace) our_roles.insert(object);
                break;
            case PgGlobalsKind::AlterRole:
            case PgGlobalsKind::Membership:
            case PgGlobalsKind::ParameterGrant:
                run = ours(our_roles, st.objects);
                break;
            case PgGlobalsKind::CreateTablespace:
                if (!spaces.count(object)) {
                    note(g.spaces_created, object);
                    our_spaces.insert(object);
                    run = true;
                } else if (replace) {
                    note(g.spaces_altered, object);
                    our_spaces.insert(object);
                } else {
                    note(g.spaces_left, object);
                }
                break;
            case PgGlobalsKind::AlterTablespace:
                run = ours(our_spaces, st.objects);
                break;
        }
        if (run) g.run.push_back(&st);
    }
    return g;
}

std::set<std::string> names_of(PgConnection& conn, const char* sql) {
    std::set<std::string> out;
    PgResult r = conn.exec(sql);
    for (int i = 0; i < r.rows(); ++i) out.insert(r.value(i, 0));
    return out;
}

GlobalsApply plan_globals(PgConnection& conn, const PgGlobalsScript& script, bool replace) {
    return plan_globals(script, names_of(conn, "SELECT rolname FROM pg_roles"),
                        names_of(conn, "SELECT spcname FROM pg_tablespace"), replace);
}

std::string name_list(const std::vector<std::string>& names) {
    std::string out;
    for (std::size_t i = 0; i < names.size() && i < 10; ++i) out += (i ? ", " : "") + names[i];
    if (names.size() > 10) out += ", … " + std::to_string(names.size() - 10) + " more";
    return out;
}

std::string describe_globals(const GlobalsApply& g, bool replace) {
    auto part = [](const std::vector<std::string>& names, const char* what) {
        return std::to_string(names.size()) + " " + what +
               (names.empty() ? "" : " (" + name_list(names) + ")");
    };
    return "roles: " + part(g.roles_created, "created") + ", " + part(g.roles_altered, "altered") + ", " +
           part(g.roles_left, "left as they are") + "; tablespaces: " + part(g.spaces_created, "created") +
           ", " + part(g.spaces_altered, "altered") + ", " + part(g.spaces_left, "left as they are") +
           (replace || (g.roles_left.empty() && g.spaces_left.empty())
                ? ""
                : " (existing ones keep their passwords and attributes; --globals=replace alters them)");
}

nlohmann::json globals_json(const GlobalsApply& g) {
    return {{"roles_created", g.roles_created},
            {"roles_altered", g.roles_altered},
            {"roles_left", g.roles_left},
            {"tablespaces_created", g.spaces_created},
            {"tablespaces_altered", g.spaces_altered},
            {"tablespaces_left", g.spaces_left}};
}

// The statements are checked again here (the artifact may have changed since the verify pass) and executed
// one by one through libpq, never through psql: no meta-command can run, and one call runs one statement.
RestoreReport restore_globals(const Artifact& a, io::Reader& content, const PostgresRestoreOptions& o) {
    RestoreReport report;
    if (o.globals == PgGlobals::Skip) {
        io::drain(content);
        report.lines.push_back("postgres: globals (roles, tablespaces) skipped (--skip-globals)");
        return report;
    }
    bool too_large = false;
    const std::string text = read_globals(content, too_large);
    if (std::string why = globals_problem(text, too_large); !why.empty())
        throw Error(Kind::Verification, "artifact " + a.path + ": " + why + "; nothing was restored");
    PgGlobalsScript script = parse_pg_globals(text);
    JsonFields s(a.source, "manifest artifact " + a.name, Kind::Verification, "/source");
    PgTarget target = restore_target(a, o, s.string("database"));
    PgConnection conn(target);
    conn.exec("SET standard_conforming_strings = on");
    GlobalsApply g = plan_globals(conn, script, o.globals == PgGlobals::Replace);
    std::size_t done = 0;
    for (const PgGlobalsStatement* st : g.run) {
        try {
            conn.exec(st->sql);
            ++done;
        } catch (const Error& e) {
            report.problems.push_back("globals line " + std::to_string(st->line) + ": " + e.what() +
                                      " (the statements after it were not run)");
            break;
        }
    }
    report.lines.push_back("postgres: globals restored into " + target.describe() + ": " +
                           describe_globals(g, o.globals == PgGlobals::Replace) + "; " +
                           std::to_string(done) + " of " + std::to_string(g.run.size()) +
                           " statement(s) run");
    report.summary = globals_json(g);
    report.summary["target"] = target.describe();
    report.summary["statements_run"] = done;
    return report;
}

}  // namespace

PostgresComponent::PostgresComponent(std::optional<PostgresConfig> config,
                                     PostgresRestoreOptions restore_options)
    : config_(std::move(config)), restore_options_(std::move(restore_options)) {}
PostgresComponent::~PostgresComponent() = default;

std::string pg_file_name_part(const std::string& database) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : database) {
        if (std::isalnum(c) || c == '_' || c == '-' || (c == '.' && !out.empty())) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

std::string pg_artifact_database(const Artifact& artifact) {
    return artifact.format == kPgDumpFormat ? source_database(artifact) : "";
}

std::map<std::string, std::string> parse_db_renames(const std::vector<std::string>& specs) {
    std::map<std::string, std::string> out;
    for (const auto& spec : specs) {
        auto pair = parse_rename(spec);
        if (!pair) throw Error(Kind::Usage, "--db-name " + spec + ": expected OLD=NEW");
        out[pair->first] = pair->second;
    }
    return out;
}

void check_pg_renames(const Manifest& manifest, const PostgresRestoreOptions& options) {
    std::vector<std::string> held;
    for (const auto& a : manifest.artifacts)
        if (a.component == "postgres" && a.format == kPgDumpFormat) held.push_back(source_database(a));
    std::string list;
    for (const auto& d : held) list += (list.empty() ? "" : ", ") + d;
    for (const auto& db : options.databases)
        if (std::find(held.begin(), held.end(), db) == held.end())
            throw Error(Kind::Usage, "--db " + db + ": backup " + manifest.id +
                                         " holds no database named \"" + db +
                                         "\" (it holds: " + (list.empty() ? "none" : list) + ")");
    for (const auto& [from, to] : options.rename)
        if (!options.databases.empty() &&
            std::find(options.databases.begin(), options.databases.end(), from) == options.databases.end())
            throw Error(Kind::Usage, "--db-name " + from + "=" + to + ": \"" + from +
                                         "\" is not selected: add --db " + from);
    for (const auto& [from, to] : options.rename) {
        bool found = false;
        for (const auto& a : manifest.artifacts)
            if (a.component == "postgres" && a.format == kPgDumpFormat && source_database(a) == from)
                found = true;
        if (!found)
            throw Error(Kind::Usage, "--db-name " + from + "=" + to + ": backup " + manifest.id +
                                         " holds no database named \"" + from + "\"");
    }
}

// How many large objects of the current database the current role may not SELECT (0 for a superuser, or
// with lo_compat_privileges on).
static std::string unreadable_large_objects_sql(int server_version) {
    std::string allowed = server_version >= 170000
                              ? std::string("has_largeobject_privilege(m.oid, 'SELECT')")
                              : std::string(
                                    "pg_has_role(m.lomowner, 'USAGE') OR EXISTS (SELECT 1 FROM "
                                    "aclexplode(coalesce(m.lomacl, acldefault('L', m.lomowner))) a "
                                    "WHERE a.privilege_type = 'SELECT' AND CASE WHEN a.grantee = 0 THEN true "
                                    "ELSE pg_has_role(a.grantee, 'USAGE') END)");
    return "SELECT CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
           "OR current_setting('lo_compat_privileges') = 'on' THEN 0 ELSE "
           "(SELECT count(*) FROM pg_largeobject_metadata m WHERE NOT (" +
           allowed + ")) END";
}

CheckReport PostgresComponent::check() const {
    CheckReport report;
    if (!config_) return report;
    std::vector<std::string> databases;
    try {
        databases = resolve_databases(*config_);
    } catch (const Error& e) {
        report.problems.push_back(e.what());
        return report;
    }
    for (const auto& db : databases) {
        try {
            PgTarget target = target_for(*config_, db);
            PgConnection conn(target);
            PgTool tool = find_pg_tool("pg_dump", conn.server_version() / 10000, PgToolPick::OldestFitting,
                                       config_->bin_dir);
            auto size = static_cast<std::uint64_t>(
                std::stoll(conn.scalar("SELECT pg_database_size(current_database())")));
            std::string denied =
                conn.scalar(std::string("SELECT count(*) FROM (") + kTablesSql +
                            ") t WHERE NOT has_table_privilege(quote_ident(t.nspname) || '.' || "
                            "quote_ident(t.relname), 'SELECT')");
            if (denied != "0")
                report.problems.push_back("postgres: " + target.describe() + ": no SELECT privilege on " +
                                          denied +
                                          " table(s): pg_dump would fail; grant pg_read_all_data or SELECT");
            std::string lo_denied = conn.scalar(unreadable_large_objects_sql(conn.server_version()));
            if (lo_denied != "0")
                report.problems.push_back("postgres: " + target.describe() + ": " + lo_denied +
                                          " large object(s) the role cannot read (pg_largeobject_metadata): "
                                          "pg_dump would fail with "
                                          "\"permission denied for large object\"; GRANT SELECT ON LARGE "
                                          "OBJECT <oid> TO the backup "
                                          "role, or back up as their owner");
            report.estimated_bytes += size;
            report.plan.push_back("postgres: " + target.describe() + " (server " +
                                  pg_version_string(conn.server_version()) + ", " + log::human_bytes(size) +
                                  ") with " + tool.path.string());
        } catch (const Error& e) {
            if (e.kind() != Kind::SourceUnavailable) throw;
            report.problems.push_back(e.what());
        }
    }
    if (config_->globals)
        report.plan.push_back("postgres: globals (roles, tablespaces) with pg_dumpall --globals-only");
    return report;
}

DumpResult PostgresComponent::dump(DumpContext& context, Staging& staging) {
    if (!config_) throw Error(Kind::Internal, "postgres component has no configuration");
    DumpResult result;
    json databases = json::object();
    auto attempt = [&](const std::string& name, const std::function<Artifact(json&)>& body) {
        json detail;
        try {
            result.artifacts.push_back(body(detail));
            databases[name] = detail.is_null() ? json{{"status", "ok"}} : detail;
        } catch (const Error& e) {
            if (e.kind() != Kind::SourceUnavailable || config_->fail_fast) throw;
            result.failures.push_back(e.what());
            databases[name] = {{"status", "failed"}, {"error", e.what()}};
        }
    };
    if (config_->globals)
        attempt(kGlobalsName, [&](json&) { return dump_globals(*config_, context, staging); });
    const std::vector<std::string> names = resolve_databases(*config_);
    for (std::size_t i = 0; i < names.size(); ++i)
        attempt(names[i], [&](json& d) {
            return dump_database(*config_, names[i], i + 1 == names.size(), context, staging, d);
        });
    result.details = {{"databases", databases}};
    if (result.artifacts.empty()) {
        std::string msg =
            result.failures.empty() ? "postgres: no database to back up" : result.failures.front();
        if (result.failures.size() > 1)
            msg += " (and " + std::to_string(result.failures.size() - 1) + " more)";
        throw Error(Kind::SourceUnavailable, msg);
    }
    return result;
}

VerifyOutcome PostgresComponent::verify(const Artifact& artifact, io::Reader& content) const {
    std::vector<std::byte> buf(io::kChunkSize);
    if (artifact.format == kPgGlobalsFormat) {
        bool too_large = false;
        const std::string text = read_globals(content, too_large);
        if (std::string why = globals_problem(text, too_large); !why.empty())
            return {VerifyStatus::FormatInvalid, why};
        return {};
    }
    if (artifact.format != kPgDumpFormat)
        return {VerifyStatus::FormatInvalid, "unknown postgres artifact format \"" + artifact.format + "\""};
    const std::string what = "artifact " + artifact.path;
    std::vector<TableRows> tables = tables_of(artifact);
    JsonFields source(artifact.source, "manifest artifact " + artifact.name, Kind::Verification, "/source");
    PgTool tool = find_pg_tool("pg_restore", static_cast<int>(source.integer_or("pg_dump_major", 0, 1000, 0)),
                               PgToolPick::Newest, "", "/usr/lib/postgresql", Kind::Verification);
    // pg_restore reads every block of the archive from its stdin and writes the SQL to /dev/null: no server.
    ignore_sigpipe();
    SpawnOptions spawn;
    spawn.stdin_pipe = true;
    Subprocess reader = Subprocess::spawn(pg_restore_check_argv(tool), spawn);
    std::string head;
    std::optional<PgArchive> archive;
    bool open = true;
    while (std::size_t n = content.read(buf)) {
        io::Bytes piece(buf.data(), n);
        if (!archive && head.size() < kHeadLimit) {
            head.append(io::as_chars(piece));
            archive = parse_pg_archive(io::as_bytes(head), what);
            if (archive) head.clear();
        }
        if (!open) continue;
        try {
            reader.in().write(piece);
        } catch (const Error&) {
            open = false;
        }
    }
    reader.close_in();
    int rc = reader.wait();
    if (!archive) return {VerifyStatus::FormatInvalid, "the archive ends before its table of contents does"};
    if (rc != 0)
        return {VerifyStatus::FormatInvalid,
                "pg_restore cannot read the archive to its end: " + first_line(reader.stderr_text())};
    std::string missing = missing_table_data(*archive, tables);
    if (!missing.empty()) return {VerifyStatus::FormatInvalid, missing};
    return {};
}

bool PostgresComponent::restores_while_verifying(const Artifact& artifact) const {
    return artifact.format == kPgDumpFormat;
}

std::string PostgresComponent::describe_target(const Artifact& artifact,
                                               const RestoreContext& context) const {
    (void)context;
    const PostgresRestoreOptions& options = restore_options_;
    const bool overridden = options.overrides_endpoint();
    const std::string how = overridden ? " (--db-host/--db-port/--db-user)" : " (recorded in the manifest)";
    if (artifact.format == kPgGlobalsFormat)
        return "roles and tablespaces through " +
               restore_target(artifact, options, maintenance_db(artifact)).describe() + how;
    const std::string original = source_database(artifact);
    const std::string database = renamed(original, options);
    return "database \"" + original + "\" into " + restore_target(artifact, options, database).describe() +
           (database != original ? " (--db-name)" : "") + how;
}

RestorePlan PostgresComponent::plan_restore(const Artifact& artifact, const RestoreContext& context) const {
    const PostgresRestoreOptions& options = restore_options_;
    RestorePlan plan;
    const bool globals = artifact.format == kPgGlobalsFormat;
    if (globals && options.globals == PgGlobals::Skip) {
        plan.lines.push_back("postgres: globals: skipped (--skip-globals)");
        return plan;
    }
    const std::string original = globals ? "" : source_database(artifact);
    const std::string database = globals ? maintenance_db(artifact) : renamed(original, options);
    PgTarget target = restore_target(artifact, options, database);
    PgTarget admin = restore_target(artifact, options, maintenance_db(artifact));
    if (globals) {
        // A target that cannot be reached is an error (Kind::SourceUnavailable), not a line of the plan.
        PgConnection conn(admin);
        std::string what = "postgres: would restore roles and tablespaces first, through " + admin.describe();
        plan.summary = {{"target", admin.describe()}};
        if (context.reopen_content) {
            auto content = context.reopen_content(artifact);
            bool too_large = false;
            std::string text = read_globals(*content, too_large);
            if (std::string why = globals_problem(text, too_large); !why.empty()) {
                plan.refusals.push_back("postgres: globals: " + why);
                return plan;
            }
            const bool replace = options.globals == PgGlobals::Replace;
            GlobalsApply g = plan_globals(conn, parse_pg_globals(text), replace);
            what += ": " + describe_globals(g, replace);
            plan.summary.update(globals_json(g));
        }
        plan.lines.push_back(what);
        return plan;
    }
    std::int64_t rows = 0;
    auto tables = tables_of(artifact);
    for (const auto& t : tables) rows += t.rows;
    std::string what = "postgres: would restore database \"" + original + "\" (" +
                       std::to_string(tables.size()) + " tables, " + std::to_string(rows) + " rows) into " +
                       target.describe();
    plan.summary = {
        {"database", original}, {"target", target.describe()}, {"tables", tables.size()}, {"rows", rows}};
    // A target that cannot be reached or checked is an error (Kind::SourceUnavailable), not a line of the
    // plan.
    TargetState st = inspect_target(admin, database);
    plan.summary["target_exists"] = st.exists;
    plan.summary["target_tables"] = st.tables;
    if (!st.exists)
        plan.lines.push_back(what + ": it does not exist and would be created");
    else if (st.tables == 0)
        plan.lines.push_back(what + ": it exists and has no tables");
    else if (context.clean)
        plan.lines.push_back(what + ": it has " + std::to_string(st.tables) +
                             " table(s) and would be dropped and recreated (--clean)");
    else
        plan.refusals.push_back(refusal(target, st.tables, original, options));
    return plan;
}

RestoreReport PostgresComponent::restore(const Artifact& artifact, io::Reader& content,
                                         const RestoreContext& context) {
    const PostgresRestoreOptions& options = restore_options_;
    if (artifact.format == kPgGlobalsFormat) return restore_globals(artifact, content, options);
    if (artifact.format != kPgDumpFormat)
        throw Error(Kind::RestoreFailed, "postgres: unknown artifact format \"" + artifact.format + "\"");
    RestoreReport report;
    const std::string original = source_database(artifact);
    const std::string database = renamed(original, options);
    PgTarget target = restore_target(artifact, options, database);
    PgTarget admin_target = restore_target(artifact, options, maintenance_db(artifact));
    JsonFields source(artifact.source, "manifest artifact " + artifact.name, Kind::Verification, "/source");
    PgTool pg_restore =
        find_pg_tool("pg_restore", static_cast<int>(source.integer_or("pg_dump_major", 0, 1000, 0)),
                     PgToolPick::Newest, "", "/usr/lib/postgresql", Kind::RestoreFailed);

    TargetState st = inspect_target(admin_target, database);
    if (st.exists && st.tables > 0 && !context.clean)
        throw Error(Kind::RestoreFailed, refusal(target, st.tables, original, options));
    const std::string what = "artifact " + artifact.path;
    auto tables = tables_of(artifact);
    bool created = false;
    std::map<int, const TableRows*> table_of_entry;  // TABLE DATA dump id -> the counted table
    // Runs once the archive's table of contents has been read: the last moment with nothing written.
    auto prepare_database = [&](const PgArchive& archive) {
        context.wait_until_proven();  // every artifact's stored bytes are proven
        for (const auto& e : archive.toc)
            for (const auto& t : tables)
                if (e.desc == "TABLE DATA" && e.schema == t.schema && e.tag == t.name)
                    table_of_entry[e.dump_id] = &t;
        std::string missing = missing_table_data(archive, tables);
        if (!missing.empty())
            throw Error(Kind::Verification, what + ": " + missing + "; nothing was restored");
        PgConnection admin(admin_target);
        if (st.exists && context.clean) {
            drop_database(admin, database, st.server_version);
            report.lines.push_back("postgres: dropped " + target.describe() + " (--clean)");
        }
        if (!st.exists || context.clean) {
            std::string sql = "CREATE DATABASE " + admin.quote_ident(database) + " TEMPLATE template0";
            if (source.has("encoding")) sql += " ENCODING " + admin.quote_literal(source.string("encoding"));
            if (source.has("collate")) sql += " LC_COLLATE " + admin.quote_literal(source.string("collate"));
            if (source.has("ctype")) sql += " LC_CTYPE " + admin.quote_literal(source.string("ctype"));
            admin.exec(sql);
            created = true;
        }
    };

    // Proof: every table the manifest counted holds the same number of rows again. A table is counted as soon
    // as its batch is loaded, beside the other loads and post-data (whose indexes change no row); a table no
    // batch loaded, at the end.
    std::mutex counts_m;
    std::map<const TableRows*, std::variant<std::int64_t, std::string>> counts;  // rows, or why it failed
    auto count_tables = [&](const std::vector<const TableRows*>& which) {
        std::vector<std::pair<const TableRows*, std::variant<std::int64_t, std::string>>> got;
        try {
            PgConnection db(target, Kind::RestoreFailed);
            for (const TableRows* t : which) {
                try {
                    got.emplace_back(
                        t, std::stoll(db.scalar("SELECT count(*) FROM ONLY " + db.quote_ident(t->schema) +
                                                "." + db.quote_ident(t->name))));
                } catch (const Error& e) {
                    got.emplace_back(t, std::string(e.what()));
                }
            }
        } catch (const Error& e) {
            for (const TableRows* t : which) got.emplace_back(t, std::string(e.what()));
        }
        std::lock_guard lk(counts_m);
        for (auto& [t, n] : got) counts[t] = std::move(n);
    };

    std::vector<std::future<void>> counting;  // guarded by counts_m; declared after what the counts use

    const int jobs = jobs_for(options);
    StreamedPgRestore how{.argv = pg_restore_argv(pg_restore, target, 1, ""),
                          .spawn = {.env = target.child_env()},
                          .jobs = jobs,
                          .what = what,
                          .head_limit = kHeadLimit,
                          .reopen = nullptr,
                          .on_head = prepare_database,
                          .after_batch = [&](const std::vector<int>& ids) {
                              std::vector<const TableRows*> loaded;
                              for (int id : ids)
                                  if (auto it = table_of_entry.find(id); it != table_of_entry.end())
                                      loaded.push_back(it->second);
                              // Counted beside the restore: the last batch's count overlaps post-data.
                              std::lock_guard lk(counts_m);
                              if (!loaded.empty())
                                  counting.push_back(std::async(std::launch::async, count_tables, loaded));
                          }};
    if (context.reopen_content) how.reopen = [&] { return context.reopen_content(artifact); };
    std::vector<PgRestoreStep> steps;
    try {
        steps = streamed_pg_restore(content, how);
    } catch (const Error& e) {
        if (!created) throw;
        // The content failed its proof after part of it was applied (the stored bytes were proven before
        // anything was written, so the file changed under us): a database this restore created is not left
        // half-filled.
        if (st.exists)
            throw Error(e.kind(), std::string(e.what()) + "; " + target.describe() +
                                      " was recreated (--clean) and holds only part of the backup");
        std::string fate = "was dropped again";
        try {
            PgConnection admin(admin_target);
            drop_database(admin, database, st.server_version);
        } catch (const Error& drop) {
            fate = "holds only part of the backup and could not be dropped: " + std::string(drop.what());
        }
        throw Error(e.kind(), std::string(e.what()) + "; the new database " + target.describe() + " " + fate);
    }
    int ignored = 0, rc = 0;
    for (const auto& step : steps) {
        if (step.exit_code == 0) continue;
        rc = std::max(rc, step.exit_code);
        if (int n = pg_restore_ignored_errors(step.stderr_text); n > 0)
            ignored += n;
        else
            report.problems.push_back("pg_restore (" + step.name + ") failed (exit " +
                                      std::to_string(step.exit_code) + ") restoring into " +
                                      target.describe() + ": " + first_line(step.stderr_text));
        for (const auto& line : pg_error_lines(step.stderr_text, 5))
            report.problems.push_back("pg_restore: " + line);
    }
    if (ignored > 0)
        report.problems.insert(report.problems.begin(), "pg_restore carried on past " +
                                                            std::to_string(ignored) +
                                                            " error(s) restoring into " + target.describe() +
                                                            ": the restore is not clean");

    for (auto& c : counting) c.get();
    std::vector<const TableRows*> uncounted;
    for (const auto& t : tables)
        if (!counts.count(&t)) uncounted.push_back(&t);
    if (!uncounted.empty()) count_tables(uncounted);
    std::int64_t rows = 0;
    int mismatched = 0;
    json counted = json::object();  // "schema.name": rows, as counted after the restore (a drill reuses them)
    for (const auto& t : tables) {
        const auto& n = counts.at(&t);
        if (const auto* why = std::get_if<std::string>(&n)) {
            report.problems.push_back("table " + qualified(t) +
                                      " cannot be counted after the restore: " + *why);
            ++mismatched;
            continue;
        }
        const std::int64_t now = std::get<std::int64_t>(n);
        counted[qualified(t)] = now;
        rows += now;
        if (now != t.rows) {
            ++mismatched;
            report.problems.push_back("row count of " + qualified(t) + " is " + std::to_string(now) +
                                      " after the restore, the manifest recorded " + std::to_string(t.rows));
        }
    }
    report.lines.push_back("postgres: restored \"" + original + "\" into " + target.describe() + " with " +
                           pg_restore.path.filename().string() + " (" + std::to_string(steps.size()) +
                           " runs by section, " + std::to_string(jobs) + " at a time); " +
                           std::to_string(tables.size() - static_cast<std::size_t>(mismatched)) + " of " +
                           std::to_string(tables.size()) + " tables match the manifest's row counts (" +
                           std::to_string(rows) + " rows)");
    report.summary = {{"database", original}, {"target", target.describe()},     {"tables", tables.size()},
                      {"rows", rows},         {"mismatched_tables", mismatched}, {"pg_restore_exit", rc},
                      {"table_rows", counted}};
    return report;
}

}  // namespace nightjar::postgres
