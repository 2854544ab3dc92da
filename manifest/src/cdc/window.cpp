#include "nightjar/cdc/window.hpp"

#include <cctype>
#include <ctime>

#include "nightjar/cdc/coordinator.hpp"
#include "nightjar/error.hpp"
#include "nightjar/log.hpp"
#include "nightjar/manifest.hpp"
#include "nightjar/repository.hpp"
#include "nightjar/signals.hpp"
#include "nightjar/storage.hpp"

namespace nightjar {

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

HeldPause held_pause(const fs::path& backup_dir, std::int64_t now) {
    HeldPause h;
    std::optional<CdcPauseState> s;
    try {
        s = read_cdc_state(cdc_state_path(backup_dir));
    } catch (const CdcStateDamaged& e) {
        log::warn("cdc: ", e.what(), ": the next backup or cdc command moves it aside and alerts");
        return h;
    }
    if (!s || s->connectors.empty()) return h;
    if (s->owner == "backup" || window_active(*s, now)) {
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
    auto file = cdc_state_path(backup_dir);
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
        state = read_cdc_state(cdc_state_path(backup_dir));
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
            auto state = read_cdc_state(cdc_state_path(backup_dir));
            return state && !state->connectors.empty() && !window_active(*state, unix_now());
        } catch (const CdcStateDamaged&) {
            return true;
        }
    };
    if (!stale()) return out;
    std::optional<CdcPauseState> state;
    try {
        state = read_cdc_state(cdc_state_path(backup_dir));
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
    cdc.heal_previous();
    out.healed = true;
    out.resume_failures = cdc.resume_failures();
    return out;
}

}  // namespace nightjar
