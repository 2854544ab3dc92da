#include "nightjar/run/cdc_command.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "nightjar/cdc/status_report.hpp"
#include "nightjar/cdc/watchdog.hpp"
#include "nightjar/cdc/window.hpp"
#include "nightjar/core/clock.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/core/signals.hpp"
#include "nightjar/io/process.hpp"
#include "nightjar/repo/manifest.hpp"

namespace nightjar {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

Error cdc_failures(const std::string& what, const std::vector<std::string>& failures) {
    std::string list;
    for (const auto& f : failures) list += (list.empty() ? "" : "; ") + f;
    return Error(Kind::CdcResume, "cdc " + what + ": connectors may still be paused: " + list +
                                      ": resume them by hand (PUT <url>/connectors/<name>/resume) or run "
                                      "nightjar-backup cdc resume again");
}

// Returns whether something may still be paused (or a damaged state file was found: alerted once).
bool heal_loudly(const cdc::CdcConfig& cdc, const fs::path& backup_dir) {
    cdc::HealOutcome heal = heal_stale_pauses(cdc, backup_dir);
    if (!heal.resume_failures.empty())
        for (const auto& f : heal.resume_failures) log::error("cdc: still paused: ", f);
    return !heal.resume_failures.empty();
}

// Starts `argv` fully detached (new session, stdio on /dev/null, no inherited descriptors): it outlives
// this command whatever kills it, SIGKILL included.
void spawn_detached(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t child = ::fork();
    if (child < 0) throw_errno(Kind::Internal, "cannot start the window guardian", argv.at(0));
    if (child == 0) {
        ::setsid();
        pid_t grandchild = ::fork();
        if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
        int null = ::open("/dev/null", O_RDWR);
        if (null >= 0) {
            ::dup2(null, 0);
            ::dup2(null, 1);
            ::dup2(null, 2);
        }
        ::close_range(3, ~0U, 0);
        ::signal(SIGHUP, SIG_IGN);
        if (::chdir("/") != 0) ::_exit(126);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
}

// `cdc pause --window` arranges its own end before it pauses anything, so no later command has to come:
// a transient systemd timer (`systemd-run --on-active=`) when systemd runs the host, else a detached
// guardian process (`cdc expire-window`). NIGHTJAR_CDC_WINDOW_GUARDIAN=0 turns both off (the next command,
// backup or the watchdog still heal an expired window). Returns what was arranged, for the log.
std::string arrange_window_end(const CdcCommandRequest& request, std::chrono::seconds duration) {
    if (const char* off = std::getenv("NIGHTJAR_CDC_WINDOW_GUARDIAN"); off && std::string(off) == "0")
        return "";
    const std::string self = fs::read_symlink("/proc/self/exe").string();
    const std::int64_t until = unix_now() + duration.count();
    const auto& flags = request.self_flags;
    if (fs::exists("/run/systemd/system") && fs::exists("/usr/bin/systemd-run")) {
        const std::string unit = "nightjar-cdc-window-" + std::to_string(until);
        std::vector<std::string> argv{"/usr/bin/systemd-run", "--quiet", "--collect", "--unit=" + unit,
                                      // one second later than the window: --resume-cdc leaves an open one
                                      "--on-active=" + std::to_string(duration.count() + 2) + "s",
                                      "--timer-property=AccuracySec=1s", self, "--resume-cdc"};
        argv.insert(argv.end(), flags.begin(), flags.end());
        RunResult r = run_capture(argv, {});
        if (r.status == 0) return "the transient systemd timer " + unit + ".timer";
        log::warn("cdc pause: systemd-run failed (", first_line(r.err),
                  "): starting a guardian process instead");
    }
    std::vector<std::string> argv{self,
                                  "cdc",
                                  "expire-window",
                                  "--until",
                                  std::to_string(until),
                                  "--pausing-pid",
                                  std::to_string(::getpid())};
    argv.insert(argv.end(), flags.begin(), flags.end());
    spawn_detached(argv);
    return "a detached guardian process";
}

}  // namespace

int run_cdc_command(const CdcCommandRequest& request) {
    const Config& config = request.config;
    if (!config.cdc)
        throw Error(Kind::Config,
                    "config " + config.source.string() +
                        ": /cdc: required field is missing (nightjar-backup cdc needs the Kafka "
                        "Connect workers and connectors)");
    const fs::path& backup_dir = request.backup_dir;
    const cdc::CdcConfig& c = *config.cdc;
    // Like a backup run: a signal ends the waiting, what was paused is resumed, and the exit is 128 + n.
    install_interrupt_handlers();
    if (request.action == "status") {
        const bool still_paused = heal_loudly(c, backup_dir);
        cdc::CdcStatusReport r = cdc_status(c, backup_dir);
        if (request.json)
            std::cout << json{{"connectors", r.connectors}, {"problems", r.problems}}.dump(2) << std::endl;
        else
            for (const auto& line : r.lines) std::cout << line << "\n";
        std::cout.flush();
        for (const auto& p : r.problems) log::error("cdc status: ", p);
        if (!r.problems.empty()) return exit_code(Kind::SourceUnavailable);
        return still_paused ? exit_code(Kind::CdcResume) : 0;
    }
    if (request.action == "pause") {
        auto duration = cdc::parse_duration(request.window);
        std::string ends = arrange_window_end(request, duration);
        if (!ends.empty()) log::info("cdc pause: ", ends, " resumes the window's connectors when it ends");
        cdc::WindowOutcome w = open_window(c, backup_dir, duration);
        if (w.paused.empty()) {
            log::info("cdc pause: no connector needed pausing (none is RUNNING): no window is open");
        } else {
            std::string names;
            for (const auto& p : w.paused) names += (names.empty() ? "" : ", ") + p;
            log::info("cdc pause: ", names, " paused until ", w.window_until,
                      ": run `nightjar-backup cdc resume` when the backup is done (if nobody does, ",
                      ends.empty() ? std::string("the next cdc command, backup run or the watchdog") : ends,
                      " resumes them at that time)");
        }
        if (!w.resume_failures.empty()) throw cdc_failures("pause", w.resume_failures);
        return 0;
    }
    if (request.action == "resume") {
        cdc::WindowOutcome w = close_window(c, backup_dir);
        if (!w.resume_failures.empty()) throw cdc_failures("resume", w.resume_failures);
        check_interrupted();  // everything is resumed; still say the command was stopped
        if (w.paused.empty())
            log::info("cdc resume: no pause window is open and nothing was left paused: nothing to resume");
        else
            log::info("cdc resume: ", w.paused.size(), " connector(s) resumed");
        return 0;
    }
    if (request.action == "expire-window")
        return cdc::guard_window(c, backup_dir, request.until, request.pausing_pid);
    if (request.action == "watch") {
        cdc::CdcWatchdog watchdog(c, {.backup_dir = backup_dir, .monitoring = config.monitoring});
        watchdog.run();
        return 0;
    }
    throw Error(Kind::Usage, "cdc: expected a subcommand: status, pause, resume or watch");
}

}  // namespace nightjar
