#include "nightjar/components/postgres/tools.hpp"

#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "nightjar/core/error.hpp"

namespace nightjar::postgres {
namespace fs = std::filesystem;

namespace {

bool executable(const fs::path& p) {
    return ::access(p.c_str(), X_OK) == 0;
}

// The major version of a Debian bin dir's parent ("/usr/lib/postgresql/15/bin" -> 15), 0 when not a number.
int major_of_dir(const fs::path& version_dir) {
    const std::string s = version_dir.filename().string();
    if (s.empty() || !std::all_of(s.begin(), s.end(), ::isdigit) || s.size() > 4) return 0;
    return std::stoi(s);
}

}  // namespace

PgTool find_pg_tool(const std::string& name, int min_major, PgToolPick pick, const std::string& bin_dir,
                    const fs::path& root, Kind failure_kind) {
    if (!bin_dir.empty()) {
        fs::path p = fs::path(bin_dir) / name;
        if (!executable(p))
            throw Error(failure_kind,
                        "postgres: " + name + " not found in " + bin_dir + ": check postgres.bin_dir");
        int major = major_of_dir(fs::path(bin_dir).parent_path());
        if (major != 0 && major < min_major)
            throw Error(failure_kind, "postgres: " + p.string() + " is version " + std::to_string(major) +
                                          ", older than the server (" + std::to_string(min_major) +
                                          "): point postgres.bin_dir at version " +
                                          std::to_string(min_major) + " or newer");
        return {p, major};
    }
    std::vector<PgTool> found;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root, ec)) {
        int major = major_of_dir(e.path());
        fs::path p = e.path() / "bin" / name;
        if (major >= min_major && major > 0 && executable(p)) found.push_back({p, major});
    }
    if (found.empty())
        throw Error(failure_kind, "postgres: no " + name + " of version " + std::to_string(min_major) +
                                      " or newer under " + root.string() +
                                      "/<version>/bin: install postgresql-client-" +
                                      std::to_string(min_major) + " (or newer), or set postgres.bin_dir");
    std::sort(found.begin(), found.end(), [](const PgTool& a, const PgTool& b) { return a.major < b.major; });
    return pick == PgToolPick::OldestFitting ? found.front() : found.back();
}

std::string conninfo_quote(const std::string& value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\'' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    return out + "'";
}

std::vector<std::string> pg_connection_args(const PgTarget& target) {
    std::vector<std::string> args;
    if (!target.endpoint.host.empty()) args.push_back("--host=" + target.endpoint.host);
    if (target.endpoint.port) args.push_back("--port=" + std::to_string(target.endpoint.port));
    if (!target.endpoint.user.empty()) args.push_back("--username=" + target.endpoint.user);
    args.push_back("--no-password");  // never prompt: cron has no terminal
    return args;
}

std::vector<std::string> pg_dump_argv(const PgTool& tool, const PgTarget& target,
                                      const std::string& snapshot) {
    std::vector<std::string> argv{tool.path.string(), "--format=custom", "--compress=0"};
    if (!snapshot.empty()) argv.push_back("--snapshot=" + snapshot);
    auto conn = pg_connection_args(target);
    argv.insert(argv.end(), conn.begin(), conn.end());
    argv.push_back("--dbname=dbname=" + conninfo_quote(target.database));
    return argv;
}

std::vector<std::string> pg_dumpall_globals_argv(const PgTool& tool, const PgTarget& target, bool superuser) {
    std::vector<std::string> argv{tool.path.string(), "--globals-only"};
    if (!superuser) argv.push_back("--no-role-passwords");
    auto conn = pg_connection_args(target);
    argv.insert(argv.end(), conn.begin(), conn.end());
    argv.push_back("--dbname=dbname=" + conninfo_quote(target.database));
    return argv;
}

std::vector<std::string> pg_restore_argv(const PgTool& tool, const PgTarget& target, int jobs,
                                         const std::string& file) {
    std::vector<std::string> argv{tool.path.string()};
    auto conn = pg_connection_args(target);
    argv.insert(argv.end(), conn.begin(), conn.end());
    argv.push_back("--dbname=dbname=" + conninfo_quote(target.database));
    if (jobs > 1 && !file.empty()) argv.push_back("--jobs=" + std::to_string(jobs));
    if (!file.empty()) argv.push_back(file);
    return argv;
}

std::vector<std::string> pg_restore_check_argv(const PgTool& tool) {
    return {tool.path.string(), "--file=/dev/null"};
}

int pg_restore_ignored_errors(const std::string& text) {
    const std::string key = "errors ignored on restore: ";
    auto at = text.rfind(key);
    if (at == std::string::npos) return 0;
    try {
        return std::stoi(text.substr(at + key.size()));
    } catch (const std::exception&) {
        return 0;
    }
}

std::vector<std::string> pg_error_lines(const std::string& text, std::size_t limit) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line) && out.size() < limit)
        if (line.find("error:") != std::string::npos || line.find("ERROR:") != std::string::npos)
            out.push_back(line);
    return out;
}

}  // namespace nightjar::postgres
