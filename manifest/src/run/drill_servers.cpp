#include "nightjar/run/drill_servers.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include "nightjar/core/error.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/io/fd.hpp"
#include "nightjar/io/process.hpp"

namespace nightjar::drill {
namespace fs = std::filesystem;

namespace {

constexpr const char* kPidFile = "drill.pid";

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Field 22 of /proc/<pid>/stat (start time in clock ticks): a pid reused by another process differs.
std::string start_time(pid_t pid) {
    std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos) return "";
    std::istringstream in(stat.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 22 && in >> field; ++i)
        if (i == 22) return field;
    return "";
}

std::string comm(pid_t pid) {
    std::string c = read_text("/proc/" + std::to_string(pid) + "/comm");
    while (!c.empty() && (c.back() == '\n' || c.back() == ' ')) c.pop_back();
    return c;
}

pid_t first_pid(const fs::path& pidfile) {
    std::ifstream in(pidfile);
    long pid = 0;
    in >> pid;
    return pid > 1 ? static_cast<pid_t>(pid) : 0;
}

// Alive and not a zombie (a server whose parent was killed may wait to be reaped by init).
bool alive(pid_t pid) {
    std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

bool wait_gone(pid_t pid, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (alive(pid)) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
}

// Stops a server a dead drill left, only when the pid is still that program.
void stop_leftover(const fs::path& pidfile, const std::string& program, int first_signal,
                   std::vector<std::string>& lines) {
    pid_t pid = first_pid(pidfile);
    if (pid == 0 || !alive(pid) || comm(pid).rfind(program, 0) != 0) return;
    ::kill(pid, first_signal);
    if (!wait_gone(pid, std::chrono::seconds(10))) {
        ::kill(pid, SIGKILL);
        wait_gone(pid, std::chrono::seconds(5));
    }
    lines.push_back("stopped " + program + " (pid " + std::to_string(pid) + ") of " +
                    pidfile.parent_path().string());
}

// flock on <state>/.lock while cleaning and creating, so two drills never clean each other.
class StateLock {
public:
    explicit StateLock(const fs::path& state) {
        fd_ = ::open((state / ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd_ < 0) throw_errno(Kind::Storage, "drill: cannot open the lock", (state / ".lock").string());
        if (::flock(fd_, LOCK_EX) != 0)
            throw_errno(Kind::Storage, "drill: cannot lock", (state / ".lock").string());
    }
    ~StateLock() { ::close(fd_); }

private:
    int fd_ = -1;
};

void make_state_dir(const fs::path& state) {
    std::error_code ec;
    fs::create_directories(state, ec);
    struct stat st {};
    if (::lstat(state.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw Error(Kind::Storage,
                    "drill: " + state.string() + " is not a directory: remove it or set NIGHTJAR_DRILL_DIR");
    if (st.st_uid != ::geteuid())
        throw Error(Kind::Storage, "drill: " + state.string() + " belongs to uid " +
                                       std::to_string(st.st_uid) +
                                       ", not to us: remove it or set NIGHTJAR_DRILL_DIR");
    // Traversable (not listable) by the service user that runs initdb and postgres.
    ::chmod(state.c_str(), 0711);
}

std::vector<std::string> clean_locked(const fs::path& state) {
    std::vector<std::string> lines;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state, ec)) {
        const std::string name = e.path().filename().string();
        if (e.is_directory() && name.rfind("template-", 0) == 0 && name.find(".tmp-") != std::string::npos) {
            // A template copy cut short (templates are made under this lock, so none is in progress).
            std::error_code rm;
            fs::remove_all(e.path(), rm);
            lines.push_back("removed " + e.path().string() + " (an unfinished copy of a cluster template)");
            continue;
        }
        if (!e.is_directory() || name.rfind("drill-", 0) != 0) continue;
        std::istringstream in(read_text(e.path() / kPidFile));
        long pid = 0;
        std::string started;
        in >> pid >> started;
        if (pid > 1 && alive(static_cast<pid_t>(pid)) && start_time(static_cast<pid_t>(pid)) == started)
            continue;  // that drill is still running
        stop_leftover(e.path() / "pg" / "postmaster.pid", "postgres", SIGQUIT, lines);
        stop_leftover(e.path() / "redis" / "redis.pid", "redis-server", SIGKILL, lines);
        std::error_code rm;
        fs::remove_all(e.path(), rm);
        lines.push_back("removed " + e.path().string() + " (a drill that did not finish, pid " +
                        std::to_string(pid) + ")");
    }
    return lines;
}

}  // namespace

fs::path default_state_dir() {
    if (const char* d = std::getenv("NIGHTJAR_DRILL_DIR"); d && *d) return d;
    return fs::path("/tmp") / ("nightjar-drill-" + std::to_string(::geteuid()));
}

fs::path nearest_pg_bindir(const fs::path& root, int major) {
    std::vector<int> majors;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root, ec)) {
        const std::string n = e.path().filename().string();
        if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos) continue;
        if (::access((e.path() / "bin" / "initdb").c_str(), X_OK) == 0) majors.push_back(std::stoi(n));
    }
    if (majors.empty())
        throw Error(Kind::RestoreFailed,
                    "drill: no PostgreSQL server is installed under " + root.string() +
                        ": install postgresql (initdb and postgres) to drill this backup");
    std::sort(majors.begin(), majors.end());
    int pick = majors.back();
    if (major > 0) {
        auto it = std::lower_bound(majors.begin(), majors.end(), major);
        pick = it != majors.end() ? *it : majors.back();
    }
    return root / std::to_string(pick) / "bin";
}

std::vector<std::string> clean_stale(const fs::path& state_dir) {
    std::error_code ec;
    if (!fs::is_directory(state_dir, ec)) return {};
    StateLock lock(state_dir);
    return clean_locked(state_dir);
}

DrillServers::DrillServers(const ServerOptions& options) : options_(options) {
    if (::geteuid() == 0 && options.postgres) {
        struct passwd* pw = ::getpwnam(options.pg_user.c_str());
        if (!pw)
            throw Error(Kind::Usage, "drill: running as root, and there is no \"" + options.pg_user +
                                         "\" user to run initdb and postgres as (they refuse root): install "
                                         "postgresql, or run the drill as an unprivileged user");
        service_uid_ = pw->pw_uid;
        service_gid_ = pw->pw_gid;
    }
    make_state_dir(options.state_dir);
    {
        StateLock lock(options.state_dir);
        for (const auto& line : clean_locked(options.state_dir)) log::warn("drill: ", line);
        std::string pattern = (options.state_dir / "drill-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) throw_errno(Kind::Storage, "drill: cannot create", pattern);
        dir_ = pattern;
        ::chmod(dir_.c_str(), 0711);
        const pid_t self = ::getpid();
        std::ofstream(dir_ / kPidFile) << self << " " << start_time(self) << "\n";
    }
    try {
        fs::create_directory(files_dir());
        if (options.postgres) start_postgres();
        if (options.redis) {
            fs::create_directory(dir_ / "redis");
            ::chmod((dir_ / "redis").c_str(), 0700);
            redis_port_ = options.redis_port;
            redis_.emplace(redis::TempServerOptions{.binary = options.redis_binary,
                                                    .dir = dir_ / "redis",
                                                    .port = options.redis_port,
                                                    .load_timeout_s = options.start_timeout_s});
        }
    } catch (...) {
        stop();
        throw;
    }
}

DrillServers::~DrillServers() {
    try {
        stop();
    } catch (...) {
    }
}

std::vector<std::string> DrillServers::as_service_user(std::vector<std::string> argv) const {
    if (::geteuid() != 0) return argv;
    argv.insert(argv.begin(), {"runuser", "-u", options_.pg_user, "--"});
    return argv;
}

void DrillServers::start_postgres() {
    pg_bindir_ = nearest_pg_bindir(options_.pg_root, options_.pg_major);
    const fs::path data = dir_ / "pg", sock = dir_ / "pg-socket", log = dir_ / "postgres.log";
    fs::create_directory(data);
    fs::create_directory(sock);
    ::chmod(data.c_str(), 0700);
    ::chmod(sock.c_str(), 0700);
    if (::geteuid() == 0) {
        for (const auto& p : {data, sock})
            if (::chown(p.c_str(), service_uid_, service_gid_) != 0)
                throw_errno(Kind::RestoreFailed, "drill: cannot give to " + options_.pg_user, p.string());
        // postgres.log is written by the server.
        io::UniqueFd fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd || ::fchown(fd.get(), service_uid_, service_gid_) != 0)
            throw_errno(Kind::RestoreFailed, "drill: cannot create", log.string());
    }
    RunResult v = run_capture({(pg_bindir_ / "postgres").string(), "--version"});
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)": the version after the product name.
    std::string line = first_line(v.out);
    const std::string product = "(PostgreSQL) ";
    auto at = line.find(product);
    pg_version_ = at == std::string::npos ? line : line.substr(at + product.size());
    pg_version_ = pg_version_.substr(0, pg_version_.find(' '));
    // A pristine cluster of this version, made by initdb once and copied for each drill after: initdb is most
    // of a drill server's start (0.8 s of about 1 s here), a copy of its 40 MB a fraction of that.
    const fs::path tmpl = options_.state_dir / ("template-pg-" + pg_version_ + "-" + pg_user());
    std::error_code ec;
    bool from_template = false;
    if (fs::exists(tmpl / "PG_VERSION", ec)) {
        RunResult cp = run_capture(as_service_user({"cp", "-a", (tmpl / ".").string(), data.string()}));
        from_template = cp.status == 0;
        if (from_template) log::info("drill: PostgreSQL cluster copied from the template ", tmpl.string());
        if (!from_template) {
            log::warn("drill: cannot copy the cluster template ", tmpl.string(), ": ", first_line(cp.err),
                      ": running initdb");
            for (const auto& e : fs::directory_iterator(data, ec)) fs::remove_all(e.path(), ec);
        }
    }
    if (!from_template) {
        RunResult init = run_capture(
            as_service_user({(pg_bindir_ / "initdb").string(), "-D", data.string(), "-U", pg_user(), "-A",
                             "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"}));
        if (init.status != 0)
            throw Error(Kind::RestoreFailed, "drill: initdb (PostgreSQL " + pg_version_ + ") failed (exit " +
                                                 std::to_string(init.status) +
                                                 "): " + first_line(init.err + init.out));
        save_template(data, tmpl);
    }
    // Unix socket only (listen_addresses empty), no fsync: the cluster is thrown away. Tuned for one bulk
    // load on a small machine: minimal WAL and few checkpoints, no autovacuum competing with pg_restore for
    // the cores, and no JIT (the check queries are simple scans, and under systemd's MemoryDenyWriteExecute=
    // LLVM could not map its code anyway).
    RunResult start = run_capture(
        as_service_user({(pg_bindir_ / "pg_ctl").string(), "-D", data.string(), "-w", "-t",
                         std::to_string(options_.start_timeout_s), "-l", log.string(), "-o",
                         "-c listen_addresses='' -c port=5432 -c unix_socket_directories=" + sock.string() +
                             " -c unix_socket_permissions=0700 -c fsync=off -c full_page_writes=off -c "
                             "synchronous_commit=off -c wal_level=minimal -c max_wal_senders=0 -c "
                             "max_wal_size=4GB -c checkpoint_timeout=1h -c autovacuum=off -c jit=off -c "
                             "maintenance_work_mem=128MB",
                         "start"}));
    pg_running_ = true;  // pg_ctl may have started it even when it reports a failure
    if (start.status != 0) {
        std::string tail = read_text(log);
        if (tail.size() > 400) tail = tail.substr(tail.size() - 400);
        // A template that cannot start a server is not kept: the next drill runs initdb again.
        if (from_template) fs::remove_all(tmpl, ec);
        throw Error(Kind::RestoreFailed,
                    "drill: the PostgreSQL " + pg_version_ + " server did not start" +
                        (from_template ? " (from the cluster template " + tmpl.string() + ", now removed)"
                                       : std::string()) +
                        ": " + first_line(start.err + start.out) + ": " + tail);
    }
}

void DrillServers::save_template(const fs::path& data, const fs::path& tmpl) const {
    StateLock lock(options_.state_dir);
    std::error_code ec;
    if (fs::exists(tmpl, ec)) return;  // another drill made it meanwhile
    const fs::path tmp = tmpl.string() + ".tmp-" + std::to_string(::getpid());
    fs::remove_all(tmp, ec);
    try {
        fs::create_directory(tmp);
        ::chmod(tmp.c_str(), 0700);
        if (::geteuid() == 0 && ::chown(tmp.c_str(), service_uid_, service_gid_) != 0)
            throw_errno(Kind::Storage, "cannot give to " + options_.pg_user, tmp.string());
        RunResult cp = run_capture(as_service_user({"cp", "-a", (data / ".").string(), tmp.string()}));
        if (cp.status != 0) throw Error(Kind::Storage, "cp: " + first_line(cp.err));
        fs::rename(tmp, tmpl);
    } catch (const std::exception& e) {
        fs::remove_all(tmp, ec);
        log::warn("drill: cannot keep a cluster template in ", tmpl.string(), " (", e.what(),
                  "): the next drill runs initdb again");
    }
}

redis::Endpoint DrillServers::redis_endpoint() const {
    if (!redis_) throw Error(Kind::Internal, "drill: no redis-server was started");
    return redis_->endpoint();
}

std::vector<std::string> DrillServers::stop() {
    std::vector<std::string> problems;
    if (stopped_ || dir_.empty()) return problems;
    stopped_ = true;
    if (redis_) {
        redis_->stop();
        redis_.reset();
    }
    if (pg_running_) {
        RunResult r =
            run_capture(as_service_user({(pg_bindir_ / "pg_ctl").string(), "-D", (dir_ / "pg").string(), "-m",
                                         "immediate", "-w", "-t", "30", "stop"}));
        std::error_code ec;
        if (r.status != 0 && fs::exists(dir_ / "pg" / "postmaster.pid", ec))
            problems.push_back("pg_ctl stop failed: " + first_line(r.err + r.out));
        pg_running_ = false;
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
    if (ec) problems.push_back("cannot remove " + dir_.string() + ": " + ec.message());
    return problems;
}

}  // namespace nightjar::drill
