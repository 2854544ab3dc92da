#include "nightjar/cdc/window.hpp"
#include "nightjar/core/clock.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <thread>

#include "nightjar/cdc/coordinator.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/core/signals.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/storage.hpp"

namespace nightjar::cdc {

namespace fs = std::filesystem;

namespace {

std::string label(const PausedConnector& p) {
    return p.name + " (" + p.urls.at(0) + ")";
}

}  // namespace

std::chrono::seconds parse_duration(std::string_view text) {
    auto bad = [&]() -> Error {
        return Error(Kind::Usage,
                     "duration: expected a positive duration such as 40m, 2h, 90s or 1h30m, got \"" +
                         std::string(text) + "\"");
    };
    if (text.empty()) throw bad();
    std::int64_t total = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        if (!std::isdigit(static_cast<unsigned char>(text[i]))) throw bad();
        std::int64_t n = 0;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
            n = n * 10 + (text[i] - '0');
            if (n > 100'000'000) throw bad();
            ++i;
        }
        if (i == text.size()) throw bad();  // a unit is required: "40" is ambiguous
        switch (text[i]) {
            case 's':
                total += n;
                break;
            case 'm':
                total += n * 60;
                break;
            case 'h':
                total += n * 3600;
                break;
            case 'd':
                total += n * 86400;
                break;
            default:
                throw bad();
        }
        ++i;
    }
    if (total <= 0) throw bad();
    return std::chrono::seconds(total);
}

std::optional<std::int64_t> parse_rfc3339_utc(std::string_view text) {
    if (text.size() != 20 || text[19] != 'Z') return std::nullopt;
    std::tm tm{};
    std::string s(text.substr(0, 19));
    const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || *end != '\0') return std::nullopt;
    return static_cast<std::int64_t>(timegm(&tm));
}

bool window_active(const CdcPauseState& state, std::int64_t now) {
    if (state.owner != "window" || !state.window_until) return false;
    auto until = parse_rfc3339_utc(*state.window_until);
    return until && now < *until;
}

bool window_expired(const CdcPauseState& state, std::int64_t now) {
    return state.owner == "window" && !window_active(state, now);
}

bool HeldPause::holds(const std::string& url, const std::string& name) const {
    for (const auto& p : connectors)
        if (p.name == name && p.urls.at(0) == url) return true;
    return false;
}

HeldPause held_pause(const CdcConfig& config, const fs::path& backup_dir, std::int64_t now) {
    HeldPause h;
    std::optional<CdcPauseState> s;
    try {
        s = read_cdc_journal(config, backup_dir);
    } catch (const CdcStateDamaged& e) {
        log::warn("cdc: ", e.what(), ": the next backup or cdc command moves it aside and alerts");
        return h;
    }
    if (!s || s->connectors.empty()) return h;
    if (s->owner == "backup" || s->owner == "restore" || window_active(*s, now)) {
        h.owner = s->owner;
        h.window_until = s->window_until.value_or("");
        h.connectors = s->connectors;
    }
    return h;
}

WindowOutcome open_window(const CdcConfig& config, const fs::path& backup_dir,
                          std::chrono::seconds duration) {
    PosixStorage storage(backup_dir);
    RepositoryWriter repo(storage);
    Lock lock = repo.lock();
    const std::string until = rfc3339_utc(unix_now() + duration.count());
    CdcCoordinator cdc(config,
                       {.backup_dir = backup_dir, .backup_id = "", .owner = "window", .window_until = until});
    cdc.heal_previous();  // stale pauses are resumed; an open window is adopted and extended
    auto failed = [&]() {
        return Error(
            Kind::SourceUnavailable,
            "cdc pause: pausing the connectors failed: " + cdc.record()["pause_failure"].get<std::string>() +
                ": what was paused is resumed again and no window is open for it; fix Kafka Connect "
                "(or cdc.kafka_connect) and run it again");
    };
    try {
        cdc.pause();
        check_interrupted();  // a signal during the last request: the window is not opened
    } catch (const Error& e) {
        cdc.resume();
        if (e.kind() == Kind::SourceUnavailable && cdc.record().contains("pause_failure")) throw failed();
        throw;
    }
    // on_pause_failure "continue" has resumed what it had paused.
    if (cdc.record().contains("pause_failure")) throw failed();
    // Even when nothing new was paused, an adopted window gets its new end.
    auto file = cdc_journal_file(config);
    WindowOutcome out;
    out.window_until = until;
    if (auto state = read_cdc_state(file); state && !state->connectors.empty()) {
        state->owner = "window";
        state->window_until = until;
        write_cdc_state(file, *state);
        for (const auto& p : state->connectors) out.paused.push_back(label(p));
    }
    out.resume_failures = cdc.resume_failures();
    return out;
}

WindowOutcome close_window(const CdcConfig& config, const fs::path& backup_dir) {
    PosixStorage storage(backup_dir);
    RepositoryWriter repo(storage);
    Lock lock = repo.lock();
    WindowOutcome out;
    std::optional<CdcPauseState> state;
    bool damaged = false;
    try {
        state = read_cdc_journal(config, backup_dir);
    } catch (const CdcStateDamaged&) {
        damaged = true;  // end_window() moves it aside and alerts
    }
    if (!damaged && (!state || state->connectors.empty())) return out;
    if (state) out.window_until = state->window_until.value_or("");
    CdcCoordinator cdc(config,
                       {.backup_dir = backup_dir, .backup_id = "", .owner = "window", .window_until = {}});
    cdc.end_window();
    out.resume_failures = cdc.resume_failures();
    if (state)
        for (const auto& p : state->connectors) out.paused.push_back(label(p));
    return out;
}

HealOutcome heal_stale_pauses(const CdcConfig& config, const fs::path& backup_dir) {
    HealOutcome out;
    // A damaged state file is healed too: the coordinator moves it aside and alerts (once).
    auto stale = [&] {
        try {
            auto state = read_cdc_journal(config, backup_dir);
            return state && !state->connectors.empty() && !window_active(*state, unix_now());
        } catch (const CdcStateDamaged&) {
            return true;
        }
    };
    if (!stale()) return out;
    std::optional<CdcPauseState> state;
    try {
        state = read_cdc_journal(config, backup_dir);
    } catch (const CdcStateDamaged&) {
    }
    // A backup's file exists while it runs: the lock tells a running backup from a crashed one.
    std::optional<Lock> lock;
    try {
        PosixStorage storage(backup_dir);
        RepositoryWriter repo(storage);
        lock.emplace(repo.lock());
    } catch (const Error& e) {
        if (e.kind() != Kind::LockHeld) throw;
        out.lock_busy = true;
        if (state && state->owner == "window")
            log::warn("cdc: the pause window ended at ", state->window_until.value_or("?"),
                      " but a backup run holds the repository lock: its connectors are resumed once it ends");
        return out;
    }
    if (!stale()) return out;
    CdcCoordinator cdc(config,
                       {.backup_dir = backup_dir, .backup_id = "", .owner = "backup", .window_until = {}});
    try {
        cdc.heal_previous();
    } catch (const Error& e) {
        // A backup into another backup dir holds the host-wide journal: what it holds is its own.
        if (e.kind() != Kind::LockHeld) throw;
        out.lock_busy = true;
        return out;
    }
    out.healed = true;
    out.resume_failures = cdc.resume_failures();
    return out;
}

int guard_window(const CdcConfig& config, const fs::path& backup_dir, std::int64_t until, long pausing_pid) {
    log::info("cdc: window guardian (pid ", ::getpid(),
              "): resumes the pause window's connectors when it ends (", rfc3339_utc(until),
              " or later if extended) unless `nightjar-backup cdc resume` ends it first");
    for (;;) {
        if (int sig = interrupted_signal()) {
            log::warn("cdc: window guardian stopped by signal ", sig,
                      ": the next cdc command, backup run or the watchdog resumes the window when it ends");
            return exit_code(Kind::Interrupted, sig);
        }
        std::optional<CdcPauseState> s;
        bool damaged = false;
        try {
            s = read_cdc_journal(config, backup_dir);
        } catch (const CdcStateDamaged&) {
            damaged = true;
        } catch (const Error& e) {
            log::warn("cdc: window guardian: ", e.what());
        }
        const bool window = damaged || (s && s->owner == "window" && !s->connectors.empty());
        const bool pauser_alive = pausing_pid > 0 && ::kill(static_cast<pid_t>(pausing_pid), 0) == 0;
        if (!window) {
            if (!pauser_alive) {
                log::info("cdc: window guardian: no pause window is open (any more): nothing to resume");
                return 0;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        std::int64_t end = until;
        if (s && s->window_until)
            if (auto u = parse_rfc3339_utc(*s->window_until)) end = std::max(end, *u);
        if (!damaged && unix_now() < end) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        HealOutcome h = heal_stale_pauses(config, backup_dir);
        if (h.lock_busy) {
            // A backup runs: it resumes an expired window itself before it exits.
            std::this_thread::sleep_for(std::chrono::seconds(1));
            continue;
        }
        if (!h.resume_failures.empty()) {
            for (const auto& f : h.resume_failures) log::error("cdc: window guardian: still paused: ", f);
            return exit_code(Kind::CdcResume);
        }
        log::info("cdc: window guardian: the pause window has ended and its connectors are resumed");
        return 0;
    }
}

}  // namespace nightjar::cdc
