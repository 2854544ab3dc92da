#pragma once
// The throwaway servers a restore drill restores into: an initdb cluster (the backup's server version, or the
// nearest installed one; unix socket only), a redis-server, and a scratch dir for files, all in one private
// directory under a well-known state dir. Stopped and removed when the DrillServers goes away (errors and
// signals included: Ctrl-C and SIGTERM unwind through it); a drill killed outright (SIGKILL) leaves its
// directory and pid file behind, and the next drill stops what they name and removes them.
#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/components/redis/expectations.hpp"

namespace nightjar::drill {

// $NIGHTJAR_DRILL_DIR, else /tmp/nightjar-drill-<uid> (under systemd's PrivateTmp, the unit's own /tmp).
std::filesystem::path default_state_dir();

struct ServerOptions {
    std::filesystem::path state_dir = default_state_dir();  // where drills keep their directories
    bool postgres = false;                                  // start a PostgreSQL cluster
    int pg_major = 0;                                       // the backup's server major; 0 = newest installed
    std::filesystem::path pg_root = "/usr/lib/postgresql";  // <root>/<major>/bin/{initdb,pg_ctl,postgres}
    std::string pg_user = "postgres";  // the service user initdb and postgres run as when we are root
    bool redis = false;                // start a redis-server
    std::string redis_binary = "redis-server";  // found on PATH
    int redis_port = 0;         // > 0: also listen on 127.0.0.1:port (what nightjar-restore's flags can name)
    int start_timeout_s = 120;  // for each server to come up
};

// The installed PostgreSQL bin dir nearest to `major`: that major, else the oldest newer one (it restores an
// older dump), else the newest older one. Kind::RestoreFailed when none is installed.
std::filesystem::path nearest_pg_bindir(const std::filesystem::path& root, int major);

// Stops the servers of drills that are no longer running (their pid file names a dead process) and removes
// their directories. Returns one line per directory removed.
std::vector<std::string> clean_stale(const std::filesystem::path& state_dir);

class DrillServers {
public:
    // Cleans stale drills, creates a private directory with our pid file, then starts what is asked.
    // Kind::RestoreFailed naming the server and its log when one cannot start; Kind::Usage when we run as
    // a user that cannot start them (root without the service user).
    explicit DrillServers(const ServerOptions& options);
    ~DrillServers();
    DrillServers(const DrillServers&) = delete;
    DrillServers& operator=(const DrillServers&) = delete;

    const std::filesystem::path& dir() const { return dir_; }
    std::filesystem::path files_dir() const { return dir_ / "files"; }
    // PostgreSQL: the socket directory (libpq's host), its port and the superuser (trust, socket only).
    std::string pg_host() const { return (dir_ / "pg-socket").string(); }
    int pg_port() const { return 5432; }
    std::string pg_user() const { return "nightjar"; }
    const std::string& pg_version() const { return pg_version_; }
    const std::filesystem::path& pg_bindir() const { return pg_bindir_; }
    // Redis
    redis::Endpoint redis_endpoint() const;  // the unix socket
    int redis_port() const { return redis_port_; }
    std::string redis_version() const { return redis_ ? redis_->version() : ""; }
    // Stops everything and removes the directory (also done by the destructor). Returns problems found.
    std::vector<std::string> stop();

private:
    void start_postgres();
    // Keeps a copy of the fresh cluster `data` as <state dir>/template-pg-<version>-<user> (made once, under
    // the state lock, renamed into place whole); a failure only costs the next drill an initdb.
    void save_template(const std::filesystem::path& data, const std::filesystem::path& tmpl) const;
    std::vector<std::string> as_service_user(std::vector<std::string> argv) const;
    ServerOptions options_;
    std::filesystem::path dir_;
    std::filesystem::path pg_bindir_;
    std::string pg_version_;
    bool pg_running_ = false;
    std::optional<redis::TempServer> redis_;
    int redis_port_ = 0;
    uid_t service_uid_ = 0;
    gid_t service_gid_ = 0;
    bool stopped_ = false;
};

}  // namespace nightjar::drill
