#pragma once
// Where and how a PostgreSQL restore goes (restore/options.cpp fills it from the flags; a drill fills it
// itself). Every field left at its default restores to the server recorded in the manifest.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nightjar::postgres {

// Roles and tablespaces (the globals artifact).
enum class PgGlobals {
    Skip,     // leave them alone (--skip-globals, or a side-by-side/partial restore without --globals)
    Create,   // create the missing ones (the default; --globals)
    Replace,  // also alter the existing ones (--globals=replace)
};
NLOHMANN_JSON_SERIALIZE_ENUM(PgGlobals, {{PgGlobals::Skip, "skip"},
                                         {PgGlobals::Create, "create"},
                                         {PgGlobals::Replace, "replace"}})

struct PostgresRestoreOptions {
    std::string host = "";                           // restore to this server ("" = the recorded one)
    int port = 0;                                    // its port (0 = the recorded one)
    std::string user = "";                           // connect as this role ("" = the recorded one)
    std::map<std::string, std::string> rename = {};  // --db-name OLD=NEW: restore OLD into NEW
    std::vector<std::string> databases = {};         // --db NAME (empty = every database of the backup)
    int jobs = 0;                                    // pg_restore jobs; 0 = one per core, at most 4
    PgGlobals globals = PgGlobals::Create;           // what happens to roles and tablespaces

    bool overrides_endpoint() const { return !host.empty() || port > 0 || !user.empty(); }
};

inline void to_json(nlohmann::json& j, const PostgresRestoreOptions& o) {
    j = {{"host", o.host},           {"port", o.port}, {"user", o.user},      {"rename", o.rename},
         {"databases", o.databases}, {"jobs", o.jobs}, {"globals", o.globals}};
}

// --db-name OLD=NEW specs as a rename map; Kind::Usage naming the first that is not OLD=NEW.
std::map<std::string, std::string> parse_db_renames(const std::vector<std::string>& specs);

}  // namespace nightjar::postgres
