#pragma once
// PostgreSQL's own client tools: which binary to run for a server version, and their argv (never a password:
// it reaches the child through libpq's environment or passfile).
#include <filesystem>
#include <string>
#include <vector>

#include "nightjar/components/postgres/connection.hpp"

namespace nightjar::postgres {

struct PgTool {
    std::filesystem::path path;  // /usr/lib/postgresql/15/bin/pg_dump
    int major = 0;               // 15
};

enum class PgToolPick {
    OldestFitting,  // the smallest major >= min_major: pg_dump, so older pg_restores can still read the
                    // archive
    Newest,         // the largest major >= min_major: pg_restore and psql read every older archive
};

// Debian keeps one bin dir per major under `root` (/usr/lib/postgresql/<major>/bin). With `bin_dir` set, only
// that directory is used. Kind::SourceUnavailable (or `failure_kind`) saying which version is needed.
PgTool find_pg_tool(const std::string& name, int min_major, PgToolPick pick, const std::string& bin_dir = "",
                    const std::filesystem::path& root = "/usr/lib/postgresql",
                    Kind failure_kind = Kind::SourceUnavailable);

// The connection arguments: -h -p -U and --dbname as a conninfo string (so a name with '=' stays a name), -w.
std::vector<std::string> pg_connection_args(const PgTarget& target);
// `dbname='it''s'` quoting for a conninfo value.
std::string conninfo_quote(const std::string& value);

// pg_dump in custom format without its own compression (our zstd does that), in the exported snapshot.
std::vector<std::string> pg_dump_argv(const PgTool& tool, const PgTarget& target,
                                      const std::string& snapshot);
// pg_dumpall --globals-only; a non-superuser cannot read pg_authid, so it leaves out role passwords.
std::vector<std::string> pg_dumpall_globals_argv(const PgTool& tool, const PgTarget& target, bool superuser);
// pg_restore into target.database from `file` (parallel with jobs > 1), or from stdin when `file` is empty.
std::vector<std::string> pg_restore_argv(const PgTool& tool, const PgTarget& target, int jobs,
                                         const std::string& file);
// pg_restore reading an archive from stdin to /dev/null: every data block is read, no server is needed.
std::vector<std::string> pg_restore_check_argv(const PgTool& tool);

// "errors ignored on restore: 3" -> 3; 0 when the line is absent.
int pg_restore_ignored_errors(const std::string& stderr_text);
// The "error:" lines of a pg_restore/psql stderr, at most `limit` of them.
std::vector<std::string> pg_error_lines(const std::string& stderr_text, std::size_t limit);

}  // namespace nightjar::postgres
