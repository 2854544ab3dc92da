#include "nightjar/io/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <mutex>

#include "nightjar/core/error.hpp"

extern char** environ;

namespace nightjar {

struct Subprocess::Capture {
    io::UniqueFd fd;
    std::string text;
    std::thread thread;
    void run() {
        char buf[8192];
        for (;;) {
            ssize_t n = ::read(fd.get(), buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            text.append(buf, static_cast<std::size_t>(n));
            if (text.size() > 128 * 1024) text.erase(0, text.size() - 64 * 1024);
        }
    }
    void join() {
        if (thread.joinable()) thread.join();
    }
};

namespace {

void make_pipe(int fds[2]) {
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(Kind::Internal, "pipe failed", "subprocess");
}

std::vector<std::string> merged_env(const std::vector<std::string>& extra) {
    std::map<std::string, std::string> vars;
    std::vector<std::string> order;
    auto add = [&](const std::string& kv) {
        std::string key = kv.substr(0, kv.find('='));
        if (!vars.count(key)) order.push_back(key);
        vars[key] = kv;
    };
    for (char** e = environ; *e; ++e) add(*e);
    for (const auto& kv : extra) add(kv);
    std::vector<std::string> out;
    for (const auto& k : order) out.push_back(vars[k]);
    return out;
}

}  // namespace

Subprocess Subprocess::spawn(const std::vector<std::string>& argv, SpawnOptions options) {
    if (argv.empty()) throw Error(Kind::Internal, "spawn: empty argv");
    Subprocess p;
    p.program_ = argv[0];
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) sigaddset(&defaults, s);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    if (options.new_process_group) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(&attr, 0);
    }
    posix_spawnattr_setflags(&attr, flags);

    int out_fds[2] = {-1, -1}, in_fds[2] = {-1, -1}, err_fds[2] = {-1, -1};
    if (options.stdout_pipe) {
        make_pipe(out_fds);
        posix_spawn_file_actions_adddup2(&actions, out_fds[1], 1);
    } else {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    }
    if (options.stdin_pipe) {
        make_pipe(in_fds);
        posix_spawn_file_actions_adddup2(&actions, in_fds[0], 0);
    } else {
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    }
    if (options.capture_stderr) {
        make_pipe(err_fds);
        posix_spawn_file_actions_adddup2(&actions, err_fds[1], 2);
    }
    if (options.cwd) posix_spawn_file_actions_addchdir_np(&actions, options.cwd->c_str());

    std::vector<std::string> env = merged_env(options.env);
    std::vector<char*> cargv, cenv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);
    int rc = ::posix_spawnp(&p.pid_, argv[0].c_str(), &actions, &attr, cargv.data(), cenv.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    for (int fd : {out_fds[1], in_fds[0], err_fds[1]})
        if (fd >= 0) ::close(fd);
    if (rc != 0) {
        for (int fd : {out_fds[0], in_fds[1], err_fds[0]})
            if (fd >= 0) ::close(fd);
        p.pid_ = -1;
        throw Error(Kind::SourceUnavailable, "cannot run " + argv[0] + ": " + std::strerror(rc));
    }
    if (out_fds[0] >= 0)
        p.out_ = std::make_unique<io::FdReader>(io::UniqueFd(out_fds[0]), argv[0] + " output");
    if (in_fds[1] >= 0) {
        p.in_fd_ = io::UniqueFd(in_fds[1]);
        p.in_ = std::make_unique<io::FdWriter>(in_fds[1], argv[0] + " input");
    }
    if (err_fds[0] >= 0) {
        p.capture_ = std::make_unique<Capture>();
        p.capture_->fd = io::UniqueFd(err_fds[0]);
        p.capture_->thread = std::thread([c = p.capture_.get()] { c->run(); });
    }
    return p;
}

Subprocess::Subprocess(Subprocess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      program_(std::move(o.program_)),
      status_(o.status_),
      out_(std::move(o.out_)),
      in_(std::move(o.in_)),
      in_fd_(std::move(o.in_fd_)),
      capture_(std::move(o.capture_)) {}

Subprocess::~Subprocess() {
    // Our end of its stdin first: a grandchild it left (sh -c forks) may be reading that stdin and holding
    // the stderr pipe, and the capture below waits for that pipe's end (a hang seen under TSan).
    close_in();
    if (pid_ > 0 && !status_) {
        ::kill(pid_, SIGKILL);
        wait();
    }
    if (capture_) capture_->join();
}

io::Reader& Subprocess::out() {
    if (!out_) throw Error(Kind::Internal, "subprocess stdout is not a pipe");
    return *out_;
}

io::Writer& Subprocess::in() {
    if (!in_) throw Error(Kind::Internal, "subprocess stdin is not a pipe");
    return *in_;
}

void Subprocess::close_in() {
    in_.reset();
    in_fd_ = io::UniqueFd();
}

int Subprocess::wait() {
    if (status_) return *status_;
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0) {
        if (errno != EINTR) throw_errno(Kind::Internal, "waitpid failed", program_);
    }
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (capture_) capture_->join();
    return *status_;
}

std::optional<int> Subprocess::wait_for(std::chrono::milliseconds timeout) {
    if (status_) return status_;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int st = 0;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            if (capture_) capture_->join();
            return status_;
        }
        if (r < 0 && errno != EINTR) throw_errno(Kind::Internal, "waitpid failed", program_);
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

void Subprocess::kill(int sig) {
    if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

std::string Subprocess::stderr_text() {
    if (!capture_) return "";
    if (status_) capture_->join();
    std::string t = capture_->text;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ' || t.back() == '\r')) t.pop_back();
    return t;
}

RunResult run_capture(const std::vector<std::string>& argv, SpawnOptions options) {
    options.stdout_pipe = true;
    options.capture_stderr = true;
    Subprocess p = Subprocess::spawn(argv, options);
    RunResult r;
    std::vector<std::byte> buf(64 * 1024);
    while (std::size_t n = p.out().read(buf)) r.out.append(reinterpret_cast<const char*>(buf.data()), n);
    r.status = p.wait();
    r.err = p.stderr_text();
    return r;
}

std::string first_line(const std::string& text) {
    std::size_t start = text.find_first_not_of(" \t\r\n");
    if (start == std::string::npos) return "";
    std::size_t end = text.find('\n', start);
    std::string line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    return line;
}

void ignore_sigpipe() {
    static const bool once = [] {
        std::signal(SIGPIPE, SIG_IGN);
        return true;
    }();
    (void)once;
}

}  // namespace nightjar
