#include "nightjar/cdc/coordinator.hpp"
#include "nightjar/core/clock.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <fstream>
#include <regex>
#include <thread>

#include "nightjar/cdc/retry.hpp"
#include "nightjar/cdc/window.hpp"
#include "nightjar/core/failpoint.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"

namespace nightjar::cdc {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

std::string now_rfc3339() {
    return rfc3339_utc(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

milliseconds ms(double seconds) {
    return milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

Backoff backoff_for(const CdcRetryConfig& r) {
    return Backoff{.initial = ms(r.initial_backoff_s), .max = ms(r.max_backoff_s), .current = {}};
}

std::string label(const std::string& name, const std::string& url) {
    return name + " (" + url + ")";
}

// Runs fn(i) for every i in [0, n), one thread each, and waits for all of them: one sick connector (or a
// hanging worker) never delays the others. The first exception is rethrown after every thread is joined.
template <typename F>
void for_each_concurrently(std::size_t n, F fn) {
    if (n == 0) return;
    if (n == 1) {
        fn(std::size_t{0});
        return;
    }
    std::vector<std::exception_ptr> errors(n);
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        threads.emplace_back([&fn, &errors, i] {
            try {
                fn(i);
            } catch (...) {
                errors[i] = std::current_exception();
            }
        });
    for (auto& t : threads) t.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

// A copy of `client` whose next request cannot outlast `deadline`; nullopt when too little time is left
// to start one. Every phase is bounded by its own timeout, whatever request_timeout_s says.
std::optional<KafkaConnectClient> bounded(const KafkaConnectClient& client,
                                          SteadyClock::time_point deadline) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
    if (left < milliseconds(50)) return std::nullopt;
    return client.with_timeout(left);
}

std::string names_of(const std::vector<PausedConnector>& list) {
    std::string names;
    for (const auto& p : list) names += (names.empty() ? "" : ", ") + label(p.name, p.urls.at(0));
    return names;
}

// Thrown inside pause() to leave it; turned into the on_pause_failure policy at its end.
struct PauseFailure {
    std::string reason;
};

}  // namespace

std::string read_password_file(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line))
        throw Error(Kind::Config, "cdc: cannot read the Kafka Connect password file " + path +
                                      ": check cdc.kafka_connect.auth.password_file and its permissions");
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    return line;
}

KafkaConnectOptions client_options(const KafkaConnectClusterConfig& cluster) {
    KafkaConnectOptions o;
    o.urls = cluster.urls;
    o.request_timeout = milliseconds(static_cast<std::int64_t>(cluster.request_timeout_s * 1000));
    if (cluster.auth) {
        o.user = cluster.auth->user;
        o.password = read_password_file(cluster.auth->password_file);
    }
    return o;
}

struct CdcCoordinator::Cluster {
    KafkaConnectClusterConfig config;
    std::unique_ptr<KafkaConnectClient> client;
};

// One connector to resume: ours from this run (record set) or one a previous run left paused.
struct CdcCoordinator::Target {
    KafkaConnectClient* client = nullptr;
    std::string name;
    std::string url;
    CdcConnectorRecord* record = nullptr;
    json* healed = nullptr;
    bool requested = false;       // the resume was accepted (202)
    bool done = false;            // no longer paused (RUNNING, FAILED or deleted), or not ours to resume
    bool failed_is_fine = false;  // it turned FAILED while we paused it: FAILED is what we expect back
    std::string failure;          // why it may still be paused, or why it came back FAILED
    std::string requested_at;     // when the accepted resume was sent
    SteadyClock::time_point requested_steady = {};  // the same on the steady clock
    int attempts = 0;                               // resume requests that failed
    std::string last_error;                         // the last transient failure
    std::string last_state;                         // the last status summary after the resume
};

json CdcConnectorRecord::to_json() const {
    json j{{"cluster", cluster},
           {"name", name},
           {"status_before", status_before},
           {"action", action},
           {"paused_by_us", paused_by_us},
           {"held_with", held_with},
           {"offsets", offsets},
           {"offsets_at_pause", offsets_at_pause},
           {"offsets_before_resume", offsets_before_resume},
           {"status_before_resume", status_before_resume},
           {"held", held},
           {"held_s", held_s},
           {"status_after", status_after},
           {"hold", hold},
           {"held_seconds", held_seconds}};
    auto opt = [&](const char* key, const std::string& v) { j[key] = v.empty() ? json(nullptr) : json(v); };
    opt("pause_requested_at", pause_requested_at);
    opt("paused_at", paused_at);
    opt("resume_requested_at", resume_requested_at);
    opt("resumed_at", resumed_at);
    if (!problem.empty()) j["problem"] = problem;
    return j;
}

CdcCoordinator::CdcCoordinator(const CdcConfig& config, CdcRunInfo info)
    : config_(config), info_(std::move(info)) {
    for (const auto& c : config_.clusters) {
        auto cluster = std::make_unique<Cluster>();
        cluster->config = c;
        cluster->client = std::make_unique<KafkaConnectClient>(client_options(c));
        clusters_.push_back(std::move(cluster));
    }
    state_.pid = static_cast<long>(::getpid());
    state_.backup_id = info_.backup_id;
    state_.owner = info_.owner;
    state_.window_until = info_.window_until;
}

CdcCoordinator::~CdcCoordinator() = default;

std::filesystem::path CdcCoordinator::journal_path() const {
    return cdc_journal_file(config_);
}

std::optional<CdcPauseState> read_cdc_journal(const CdcConfig& config,
                                              const std::filesystem::path& backup_dir) {
    if (auto s = read_cdc_state(cdc_journal_file(config))) return s;
    if (backup_dir.empty()) return std::nullopt;
    return read_cdc_state(cdc_state_path(backup_dir));
}

void CdcCoordinator::take_journal() {
    if (journal_lock_) return;
    const auto file = journal_path();
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    if (ec)
        throw Error(Kind::Storage, "cdc: cannot create the journal directory " + file.parent_path().string() +
                                       ": " + ec.message() + ": check cdc.state_dir and its permissions");
    auto lock_file = file;
    lock_file.replace_extension(".lock");
    try {
        journal_lock_ = std::make_unique<Lock>(lock_file);
    } catch (const Error& e) {
        if (e.kind() != Kind::LockHeld) throw;
        throw Error(Kind::LockHeld,
                    "cdc: the journal " + file.string() +
                        " is in use by another nightjar run, which may hold connectors paused (" + e.what() +
                        ")");
    }
    migrate_legacy_journal();
}

void CdcCoordinator::migrate_legacy_journal() {
    if (info_.backup_dir.empty()) return;
    const auto legacy = cdc_state_path(info_.backup_dir);
    const auto file = journal_path();
    std::error_code ec;
    if (!std::filesystem::exists(legacy, ec)) return;
    if (!std::filesystem::exists(file, ec)) {
        move_cdc_state(legacy, file);  // a damaged one stays damaged: heal_previous moves it aside
        log::warn("cdc: moved the crash journal from its old place ", legacy.string(), " to ", file.string(),
                  " (host-wide, cdc.state_dir): every command finds it there whatever its --backup-dir");
        return;
    }
    try {
        auto old = read_cdc_state(legacy);
        auto now = read_cdc_state(file);
        if (!old || !now) return;
        for (const auto& p : old->connectors) {
            bool known = false;
            for (const auto& q : now->connectors) known = known || (q.name == p.name && q.urls == p.urls);
            if (!known) now->connectors.push_back(p);
        }
        write_cdc_state(file, *now);
        remove_cdc_state(legacy);
        log::warn("cdc: merged the crash journal in its old place ", legacy.string(), " into ",
                  file.string());
    } catch (const CdcStateDamaged& e) {
        log::error("cdc: cannot migrate ", legacy.string(), " into ", file.string(), ": ", e.what(),
                   ": inspect both by hand");
    }
}

void CdcCoordinator::save_state() {
    take_journal();
    auto file = journal_path();
    if (state_.connectors.empty()) {
        remove_cdc_state(file);
    } else {
        state_.created_at = state_.created_at.empty() ? now_rfc3339() : state_.created_at;
        write_cdc_state(file, state_);
    }
}

KafkaConnectClient& CdcCoordinator::client_for(const PausedConnector& p) {
    for (auto& c : clusters_) {
        std::string user = c->config.auth ? c->config.auth->user : "";
        std::string file = c->config.auth ? c->config.auth->password_file : "";
        if (c->config.urls == p.urls && user == p.user && file == p.password_file) return *c->client;
    }
    for (auto& c : heal_clusters_)
        if (c->config.urls == p.urls) return *c->client;
    auto cluster = std::make_unique<Cluster>();
    cluster->config.urls = p.urls;
    KafkaConnectOptions o;
    o.urls = p.urls;
    o.request_timeout = ms(config_.clusters.empty() ? 10 : config_.clusters[0].request_timeout_s);
    if (!p.user.empty()) {
        o.user = p.user;
        o.password = read_password_file(p.password_file);
    }
    cluster->client = std::make_unique<KafkaConnectClient>(std::move(o));
    heal_clusters_.push_back(std::move(cluster));
    return *heal_clusters_.back()->client;
}

void CdcCoordinator::heal_previous() {
    take_journal();
    std::optional<CdcPauseState> previous;
    try {
        previous = read_cdc_state(journal_path());
    } catch (const CdcStateDamaged& e) {
        heal_damaged(e);
        return;
    }
    if (!previous || previous->connectors.empty()) return;
    std::string names;
    for (const auto& p : previous->connectors)
        names += (names.empty() ? "" : ", ") + label(p.name, p.urls.at(0));
    const std::int64_t now = unix_now();
    if (previous->owner == "window" && window_active(*previous, now)) {
        if (info_.owner == "window") {
            state_.connectors = previous->connectors;
            state_.created_at = previous->created_at;
            log::info("cdc: a pause window until ", previous->window_until.value_or("?"), " already holds ",
                      names, " paused: it now lasts until ", info_.window_until.value_or("?"));
        } else {
            window_held_ = *previous;
            log::info("cdc: a pause window (nightjar-backup cdc pause) holds ", names, " paused until ",
                      previous->window_until.value_or("?"),
                      ": this run leaves CDC to that window and pauses or resumes nothing itself");
        }
        return;
    }
    if (previous->owner == "window")
        log::warn("cdc: the pause window opened ", previous->created_at, " (pid ", previous->pid,
                  ") ended at ", previous->window_until.value_or("an unreadable time"),
                  " and nobody ran `nightjar-backup cdc resume`: ", names,
                  " are still paused: resuming them now");
    else
        log::warn("cdc: a previous run (", previous->owner,
                  previous->backup_id.empty() ? "" : " " + previous->backup_id, ", pid ", previous->pid, ", ",
                  previous->created_at, ") left connectors paused and did not resume them: ", names,
                  ": resuming them now");
    resume_listed(*previous);
}

void CdcCoordinator::end_window() {
    take_journal();
    std::optional<CdcPauseState> previous;
    try {
        previous = read_cdc_state(journal_path());
    } catch (const CdcStateDamaged& e) {
        heal_damaged(e);
        return;
    }
    if (!previous || previous->connectors.empty()) return;
    if (previous->owner != "window") {
        heal_previous();
        return;
    }
    log::info("cdc: ending the pause window opened ", previous->created_at, " (until ",
              previous->window_until.value_or("?"), "): resuming ", previous->connectors.size(),
              " connector(s)");
    resume_listed(*previous);
}

void CdcCoordinator::resume_listed(const CdcPauseState& previous) {
    state_.connectors = previous.connectors;
    std::vector<Target> targets;
    for (const auto& p : previous.connectors) {
        healed_.push_back({{"name", p.name},
                           {"cluster", p.urls.at(0)},
                           {"paused_at", p.paused_at},
                           {"left_by", previous.owner == "window" ? "window" : previous.backup_id},
                           {"result", nullptr}});
    }
    for (std::size_t i = 0; i < previous.connectors.size(); ++i) {
        const auto& p = previous.connectors[i];
        Target t;
        t.name = p.name;
        t.url = p.urls.at(0);
        t.healed = &healed_[healed_.size() - previous.connectors.size() + i];
        try {
            t.client = &client_for(p);
        } catch (const Error& e) {
            t.failure = e.what();
        }
        targets.push_back(std::move(t));
    }
    resume_targets(targets, SteadyClock::now() + ms(config_.resume_timeout_s));
    for (const auto& t : targets)
        if (t.done && t.failure.empty())
            log::warn("cdc: resumed ", label(t.name, t.url),
                      previous.owner == "window" ? ", which the pause window held paused"
                                                 : ", which a previous run had left paused");
}

void CdcCoordinator::journal_hold(const PausedConnector& p) {
    take_journal();
    std::erase_if(state_.connectors,
                  [&](const PausedConnector& q) { return q.name == p.name && q.urls == p.urls; });
    state_.connectors.push_back(p);
    save_state();
}

void CdcCoordinator::journal_release(const std::string& name, const std::string& url) {
    std::erase_if(state_.connectors,
                  [&](const PausedConnector& q) { return q.name == name && q.urls.at(0) == url; });
    save_state();
}

std::vector<std::string> CdcCoordinator::resume_journalled(const std::vector<PausedConnector>& list) {
    take_journal();
    std::vector<Target> targets;
    for (const auto& p : list) {
        Target t;
        t.name = p.name;
        t.url = p.urls.at(0);
        try {
            t.client = &client_for(p);
        } catch (const Error& e) {
            t.failure = e.what();
        }
        targets.push_back(std::move(t));
    }
    resume_targets(targets, SteadyClock::now() + ms(config_.resume_timeout_s));
    std::vector<std::string> out;
    for (const auto& t : targets) out.push_back(t.failure);
    return out;
}

void CdcCoordinator::resume_targets(std::vector<Target>& targets, SteadyClock::time_point deadline) {
    // Rounds: every open connector gets one request per round (a resume until one is accepted, then a
    // status read), all of them concurrently, then one backoff. So each connector gets its attempts within
    // the deadline however sick another one is, and no request outlasts the deadline.
    Backoff wait = backoff_for(config_.retry);
    for (bool first = true;; first = false) {
        std::vector<std::size_t> open;
        for (std::size_t i = 0; i < targets.size(); ++i)
            if (targets[i].client && !targets[i].done && targets[i].failure.empty()) open.push_back(i);
        if (open.empty()) break;
        if (!first) {
            auto pause_for = wait.next();
            if (SteadyClock::now() + milliseconds(50) >= deadline) break;
            sleep_within(pause_for, deadline, false);
            if (SteadyClock::now() + milliseconds(50) >= deadline) break;
        }
        std::vector<std::optional<KafkaConnectStatus>> seen(open.size());
        std::vector<std::optional<KafkaConnectError>> errors(open.size());
        std::vector<char> accepted(open.size(), 0);  // not vector<bool>: written by threads
        for_each_concurrently(open.size(), [&](std::size_t k) {
            Target& t = targets[open[k]];
            auto client = bounded(*t.client, deadline);
            if (!client) return;
            try {
                if (!t.requested) {
                    std::string at = now_rfc3339();
                    const auto at_steady = SteadyClock::now();
                    client->resume(t.name);
                    t.requested_at = at;
                    t.requested_steady = at_steady;
                    accepted[k] = true;
                } else {
                    seen[k] = client->status(t.name);
                }
            } catch (const KafkaConnectError& e) {
                errors[k] = e;
            }
        });
        for (std::size_t k = 0; k < open.size(); ++k) {
            Target& t = targets[open[k]];
            const log::Scope field({{"connector", t.name}});
            if (!t.requested) {
                if (accepted[k]) {
                    t.requested = true;
                    if (t.record) {
                        t.record->resume_requested_at = t.requested_at;
                        if (t.record->action == "paused" &&
                            t.record->hold_started != SteadyClock::time_point{})
                            t.record->held_seconds =
                                std::round(
                                    std::chrono::duration<double>(t.requested_steady - t.record->hold_started)
                                        .count() *
                                    1000) /
                                1000;
                    }
                    log::info("cdc: resume requested for ", label(t.name, t.url));
                } else if (errors[k]) {
                    const KafkaConnectError& e = *errors[k];
                    ++t.attempts;
                    if (e.status() == 404 && !e.endpoint_unsupported()) {
                        log::warn("cdc: ", label(t.name, t.url), " no longer exists (", e.api_message(),
                                  "): nothing to resume");
                        t.done = true;
                        if (t.record) t.record->problem = "deleted while paused: " + e.api_message();
                        if (t.healed) (*t.healed)["result"] = "deleted";
                    } else if (!e.transient()) {
                        t.failure = std::string("resume failed: ") + e.what();
                    } else {
                        t.last_error = e.what();
                        // The first failure is said; the retries after it are not repeated.
                        if (t.attempts == 1)
                            log::warn("cdc: resume ", t.name, " attempt 1 failed: ", e.what(),
                                      "; retrying until cdc.resume_timeout_s");
                    }
                }
                continue;
            }
            if (seen[k]) {
                const KafkaConnectStatus& s = *seen[k];
                if (s.settled_in("RUNNING") || s.any_failed()) {
                    t.done = true;
                    if (t.record) {
                        t.record->status_after = s.to_json();
                        t.record->resumed_at = now_rfc3339();
                    }
                    if (t.healed) (*t.healed)["result"] = s.any_failed() ? "FAILED" : "RUNNING";
                    if (s.any_failed() && t.failed_is_fine) {
                        log::info("cdc: ", label(t.name, t.url), " is ", s.summary(),
                                  ": its pause is taken back; left FAILED for someone to restart");
                    } else if (s.any_failed()) {
                        t.failure = "resumed but " + s.failure();
                        if (t.record) t.record->problem = t.failure;
                    } else {
                        log::info("cdc: ", label(t.name, t.url), " is ", s.summary());
                    }
                } else {
                    t.last_state = s.summary();
                    if (t.record) t.record->status_after = s.to_json();
                }
            } else if (errors[k]) {
                t.last_error = errors[k]->what();
            }
        }
    }
    // Keep in the state file only what may still be paused. One error line per distinct failure, with
    // the connectors it hit counted (a Kafka Connect that is down fails them all the same way).
    std::vector<std::pair<std::string, std::vector<std::string>>> failed_by_reason;
    for (auto& t : targets) {
        if (t.failure.empty() && !t.done) {
            if (!t.requested)
                t.failure = "resume failed: " + (t.last_error.empty()
                                                     ? std::string("no attempt within cdc.resume_timeout_s")
                                                     : t.last_error);
            else if (!t.last_state.empty())
                t.failure = "still " + t.last_state + " " + std::to_string(config_.resume_timeout_s) +
                            " s after the resume (cdc.resume_timeout_s)";
            else if (!t.last_error.empty())
                t.failure = "status unknown after the resume: " + t.last_error;
            else
                t.failure = "did not report RUNNING in time";
        }
        if (t.failure.empty()) continue;
        std::string reason = t.failure;  // the same for every connector: its name in a URL becomes {name}
        const std::string own = "/connectors/" + t.name + "/";
        for (std::size_t at; (at = reason.find(own)) != std::string::npos;)
            reason.replace(at, own.size(), "/connectors/{name}/");
        // curl says how long a failed connect took ("after 2 ms"): not part of the reason, or one outage
        // splits into several groups under load.
        static const std::regex elapsed(" after [0-9]+ ms");
        reason = std::regex_replace(reason, elapsed, "");
        auto it = std::find_if(failed_by_reason.begin(), failed_by_reason.end(),
                               [&](const auto& f) { return f.first == reason; });
        if (it == failed_by_reason.end()) it = failed_by_reason.insert(it, {reason, {}});
        it->second.push_back(label(t.name, t.url));
    }
    for (const auto& [reason, names] : failed_by_reason) {
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        log::error("cdc: ", names.size(), " connector(s) not resumed: ", reason, ": ", list);
    }
    for (auto& t : targets) {
        bool still_paused = !t.done;
        if (!t.failure.empty()) {
            resume_failures_.push_back(label(t.name, t.url) + ": " + t.failure);
            if (t.record && t.record->problem.empty()) t.record->problem = t.failure;
            if (t.healed && (*t.healed)["result"].is_null()) (*t.healed)["result"] = t.failure;
        }
        if (!still_paused) {
            std::erase_if(state_.connectors, [&](const PausedConnector& p) {
                return p.name == t.name && p.urls.at(0) == t.url;
            });
        }
    }
    save_state();
}

void CdcCoordinator::pause_failed(const std::string& reason) {
    throw PauseFailure{reason};
}

void CdcCoordinator::pause() {
    if (window_held_) return;  // heal_previous() said so
    take_journal();
    const auto deadline = SteadyClock::now() + ms(config_.pause_timeout_s);
    auto options = [&](const std::string& what) {
        return RetryOptions{.deadline = deadline,
                            .backoff = backoff_for(config_.retry),
                            .interruptible = true,
                            .on_retry = [what](const KafkaConnectError& e, int attempt) {
                                if (attempt == 1)
                                    log::warn("cdc: ", what, " attempt 1 failed: ", e.what(),
                                              "; retrying until cdc.pause_timeout_s");
                            }};
    };
    struct Pending {
        Cluster* cluster;
        std::size_t record;
        bool sent = false;       // a pause request may have reached a worker
        bool accepted = false;   // a 202 came back
        int attempts = 0;        // failed requests
        std::string last_error;  // the last one
    };
    std::vector<Pending> to_pause;
    // A connector is journalled just before its first pause request and dropped again when no request ever
    // reached a worker, so the journal never names a connector nightjar did not pause.
    auto forget_unsent = [&] {
        bool changed = false;
        for (auto& p : to_pause) {
            auto& r = records_[p.record];
            if (!r.paused_by_us || p.sent) continue;
            r.paused_by_us = false;
            changed = true;
            std::erase_if(state_.connectors, [&](const PausedConnector& c) {
                return c.name == r.name && c.urls.at(0) == r.cluster;
            });
        }
        if (changed) save_state();
    };
    try {
        for (auto& cluster : clusters_) {
            auto& client = *cluster->client;
            std::vector<std::string> names = cluster->config.connectors;
            if (cluster->config.all_connectors)
                names = retry_transient([&] { return client.connectors(); }, options("listing connectors"));
            for (const auto& name : names) {
                const log::Scope field({{"connector", name}});
                CdcConnectorRecord r;
                r.cluster = cluster->config.urls.at(0);
                r.name = name;
                KafkaConnectStatus s;
                try {
                    s = retry_transient([&] { return client.status(name); }, options("status of " + name));
                } catch (const KafkaConnectError& e) {
                    r.problem = e.what();
                    records_.push_back(r);
                    if (e.status() == 404 && !e.endpoint_unsupported())
                        pause_failed("connector " + label(name, r.cluster) + " does not exist (" +
                                     e.api_message() + "): check cdc.kafka_connect.connectors");
                    pause_failed(std::string("cannot read the status of ") + name + ": " + e.what());
                }
                r.status_before = s.to_json();
                if (s.any_failed()) {
                    r.action = "failed-left-alone";
                    r.problem = s.failure();
                    log::warn(
                        "cdc: ", label(name, r.cluster), " is FAILED before the backup: ", s.failure(),
                        ": left alone (neither paused nor resumed); restart it once its source is healthy");
                } else if (s.state == "PAUSED" || s.state == "STOPPED") {
                    r.action = "left-alone";
                    log::info("cdc: ", label(name, r.cluster), " is ", s.summary(),
                              " by someone else: left alone and not resumed afterwards");
                } else {
                    r.action = "paused";
                    r.hold = !config_.hold.empty() ? config_.hold : s.type == "sink" ? "snapshot" : "backup";
                    // A sink is held with stop where the worker has it (3.5+, probed by GET …/offsets):
                    // stop commits its final offsets at once, so the recorded offsets match the dump.
                    if (s.type == "sink" && config_.sink_hold == "stop") {
                        try {
                            if (retry_transient([&] { return client.offsets(name); },
                                                options("offsets of " + name)))
                                r.held_with = "stop";
                        } catch (const KafkaConnectError& e) {
                            log::warn("cdc: ", label(name, r.cluster), ": cannot probe for stop (", e.what(),
                                      "): holding it with pause");
                        }
                    }
                    to_pause.push_back({cluster.get(), records_.size()});
                }
                records_.push_back(std::move(r));
            }
        }
        // Pause requests go out concurrently, in rounds (one request per connector not yet accepted, then
        // one backoff): each connector gets its attempts within pause_timeout_s.
        Backoff retry = backoff_for(config_.retry);
        for (bool first = true;; first = false) {
            std::vector<std::size_t> open;
            for (std::size_t i = 0; i < to_pause.size(); ++i)
                if (!to_pause[i].accepted) open.push_back(i);
            if (open.empty()) break;
            if (first) {
                for (auto i : open) {
                    auto& r = records_[to_pause[i].record];
                    const auto& cfg = to_pause[i].cluster->config;
                    state_.connectors.push_back({.urls = cfg.urls,
                                                 .user = cfg.auth ? cfg.auth->user : "",
                                                 .password_file = cfg.auth ? cfg.auth->password_file : "",
                                                 .name = r.name,
                                                 .paused_at = now_rfc3339()});
                    // Counted as ours from here, even if the answer is lost: the worker may have applied it.
                    r.paused_by_us = true;
                    r.pause_requested_at = now_rfc3339();
                    r.hold_started = SteadyClock::now();
                }
                save_state();
                failpoint("cdc:after-state-file");
            } else {
                auto wait = retry.next();
                std::string why;
                for (auto i : open) {
                    const auto& r = records_[to_pause[i].record];
                    why += (why.empty() ? "" : "; ") +
                           ("pause " + label(r.name, r.cluster) + ": " + to_pause[i].last_error);
                }
                if (SteadyClock::now() + wait >= deadline)
                    pause_failed(why + " (not accepted within cdc.pause_timeout_s, " +
                                 std::to_string(config_.pause_timeout_s) + " s)");
                sleep_within(wait, deadline, true);
            }
            std::vector<std::optional<KafkaConnectError>> errors(open.size());
            std::vector<char> accepted(open.size(), 0);  // not vector<bool>: written by threads
            for_each_concurrently(open.size(), [&](std::size_t k) {
                auto& p = to_pause[open[k]];
                auto client = bounded(*p.cluster->client, deadline);
                if (!client) return;
                try {
                    if (records_[p.record].held_with == "stop")
                        client->stop(records_[p.record].name);
                    else
                        client->pause(records_[p.record].name);
                    accepted[k] = true;
                } catch (const KafkaConnectError& e) {
                    errors[k] = e;
                }
            });
            std::string fatal;
            for (std::size_t k = 0; k < open.size(); ++k) {
                auto& p = to_pause[open[k]];
                auto& r = records_[p.record];
                const log::Scope field({{"connector", r.name}});
                if (accepted[k]) {
                    p.sent = p.accepted = true;
                    log::info("cdc: ", r.held_with, " requested for ", label(r.name, r.cluster));
                } else if (errors[k]) {
                    const KafkaConnectError& e = *errors[k];
                    p.sent = p.sent || !e.not_sent();
                    p.last_error = e.what();
                    ++p.attempts;
                    if (!e.transient()) {
                        r.problem = e.what();
                        fatal += (fatal.empty() ? "" : "; ") +
                                 ("pause " + label(r.name, r.cluster) + ": " + std::string(e.what()));
                    } else {
                        if (p.attempts == 1)
                            log::warn("cdc: pause ", r.name, " attempt 1 failed: ", e.what(),
                                      "; retrying until cdc.pause_timeout_s");
                    }
                }
            }
            if (!fatal.empty()) pause_failed(fatal);
        }
        // Pause is asynchronous: wait until the connector and every task say PAUSED. A connector that turns
        // FAILED meanwhile is left alone at once, as one FAILED before the backup: its pause is taken back.
        Backoff poll = backoff_for(config_.retry);
        std::vector<bool> settled(to_pause.size(), false);
        for (bool first = true;; first = false) {
            std::vector<std::size_t> open;
            for (std::size_t i = 0; i < to_pause.size(); ++i)
                if (!settled[i]) open.push_back(i);
            if (open.empty()) break;
            if (!first) sleep_within(poll.next(), deadline, true);
            std::vector<std::optional<KafkaConnectStatus>> seen(open.size());
            std::vector<std::optional<KafkaConnectError>> errors(open.size());
            for_each_concurrently(open.size(), [&](std::size_t k) {
                auto& p = to_pause[open[k]];
                auto client = bounded(*p.cluster->client, deadline);
                if (!client) return;
                try {
                    seen[k] = client->status(records_[p.record].name);
                } catch (const KafkaConnectError& e) {
                    errors[k] = e;
                }
            });
            std::string waiting;
            std::vector<Target> turned_failed;
            for (std::size_t k = 0; k < open.size(); ++k) {
                const std::size_t i = open[k];
                auto& r = records_[to_pause[i].record];
                if (seen[k]) {
                    const KafkaConnectStatus& s = *seen[k];
                    const std::string want = r.held_with == "stop" ? "STOPPED" : "PAUSED";
                    if (s.settled_in(want) || (s.state == want && s.any_failed())) {
                        settled[i] = true;
                        r.paused_at = now_rfc3339();
                        if (s.any_failed()) {
                            r.problem = s.failure();
                            log::warn("cdc: ", label(r.name, r.cluster), " paused, but ", s.failure());
                        }
                        log::info("cdc: ", label(r.name, r.cluster), " is ", s.summary());
                        continue;
                    }
                    if (s.any_failed()) {
                        settled[i] = true;
                        r.action = "failed-left-alone";
                        r.problem = "turned FAILED while nightjar waited for PAUSED: " + s.failure();
                        r.status_after = s.to_json();
                        log::warn(
                            "cdc: ", label(r.name, r.cluster),
                            " turned FAILED while nightjar waited for PAUSED: ", s.failure(),
                            ": left alone like a connector FAILED before the backup (its pause is taken "
                            "back now); restart it once its source is healthy");
                        Target t;
                        t.client = to_pause[i].cluster->client.get();
                        t.name = r.name;
                        t.url = r.cluster;
                        t.record = &r;
                        t.failed_is_fine = true;
                        turned_failed.push_back(std::move(t));
                        continue;
                    }
                    waiting += (waiting.empty() ? "" : ", ") + r.name + " " + s.summary();
                } else if (errors[k]) {
                    if (!errors[k]->transient())
                        pause_failed("status of " + label(r.name, r.cluster) + ": " + errors[k]->what());
                    waiting += (waiting.empty() ? "" : ", ") + r.name + " (" + errors[k]->what() + ")";
                } else {
                    waiting += (waiting.empty() ? "" : ", ") + r.name + " (no status before the deadline)";
                }
            }
            if (!turned_failed.empty())
                resume_targets(turned_failed, SteadyClock::now() + ms(config_.resume_timeout_s));
            if (waiting.empty()) continue;
            if (SteadyClock::now() >= deadline)
                pause_failed("not PAUSED " + std::to_string(config_.pause_timeout_s) +
                             " s after the pause (cdc.pause_timeout_s): " + waiting);
        }
    } catch (const PauseFailure& f) {
        forget_unsent();
        pause_failure_ = f.reason;
        if (config_.on_pause_failure == "abort")
            throw Error(
                Kind::SourceUnavailable,
                "cdc: pausing the connectors failed: " + f.reason +
                    ": nothing was backed up (cdc.on_pause_failure is \"abort\"); fix Kafka Connect and run "
                    "again, or set on_pause_failure to \"continue\"");
        log::warn("cdc: pausing the connectors failed: ", f.reason,
                  ": backing up with CDC not paused (cdc.on_pause_failure is \"continue\"); resuming what "
                  "was paused");
        resume();
        return;
    } catch (const Error& e) {
        forget_unsent();
        if (e.kind() == Kind::Interrupted)
            log::warn("cdc: interrupted while pausing; resuming what was paused");
        throw;
    }
    // Offsets while paused (Kafka Connect 3.5+); a worker without the endpoint gives "unavailable". They are
    // read again just before the resume: Kafka Connect commits offsets periodically, also while paused.
    std::size_t held = 0;
    for (const auto& p : to_pause) {
        auto& r = records_[p.record];
        if (r.action != "paused") continue;
        const log::Scope field({{"connector", r.name}});
        ++held;
        auto offsets_deadline = SteadyClock::now() + 2 * ms(p.cluster->config.request_timeout_s);
        try {
            auto o = retry_transient([&] { return p.cluster->client->offsets(r.name); },
                                     {.deadline = offsets_deadline,
                                      .backoff = backoff_for(config_.retry),
                                      .interruptible = true,
                                      .on_retry = {}});
            r.offsets = o ? *o : json("unavailable");
            if (!o)
                log::info("cdc: ", r.name, ": offsets unavailable (the worker predates Kafka Connect 3.5)");
        } catch (const KafkaConnectError& e) {
            r.offsets = std::string("unavailable: ") + e.what();
            log::warn("cdc: ", r.name, ": cannot read offsets: ", e.what());
        }
        r.offsets_at_pause = r.offsets;
    }
    paused_ = held > 0;
    was_paused_ = paused_;
    if (paused_) log::info("cdc: ", held, " connector(s) paused");
    failpoint("cdc:paused");
}

void CdcCoordinator::check_before_resume(std::vector<Target>& targets, SteadyClock::time_point deadline) {
    // What was really held, and the consistent offsets: read while still paused, just before the resume.
    // Bounded by one request timeout so the resume keeps most of its budget.
    std::vector<std::size_t> ours;
    for (std::size_t i = 0; i < targets.size(); ++i)
        // Only what reached PAUSED: an interrupted or failed pause has nothing to check.
        if (targets[i].client && targets[i].record && targets[i].record->action == "paused" &&
            !targets[i].record->paused_at.empty())
            ours.push_back(i);
    const auto check_deadline =
        std::min(deadline, SteadyClock::now() +
                               ms(config_.clusters.empty() ? 10 : config_.clusters[0].request_timeout_s));
    std::vector<std::optional<KafkaConnectStatus>> seen(ours.size());
    std::vector<std::optional<json>> offsets(ours.size());
    std::vector<std::string> offsets_error(ours.size());
    std::vector<std::string> checked_at(ours.size());
    for_each_concurrently(ours.size(), [&](std::size_t k) {
        Target& t = targets[ours[k]];
        auto client = bounded(*t.client, check_deadline);
        if (!client) return;
        try {
            seen[k] = client->status(t.name);
            checked_at[k] = now_rfc3339();
        } catch (const KafkaConnectError&) {
            return;
        }
        if (seen[k]->state != (t.record->held_with == "stop" ? "STOPPED" : "PAUSED")) return;
        auto again = bounded(*t.client, check_deadline);
        if (!again) return;
        try {
            auto o = again->offsets(t.name);
            offsets[k] = o ? *o : json("unavailable");
        } catch (const KafkaConnectError& e) {
            offsets_error[k] = e.what();
        }
    });
    for (std::size_t k = 0; k < ours.size(); ++k) {
        Target& t = targets[ours[k]];
        CdcConnectorRecord& r = *t.record;
        const log::Scope field({{"connector", t.name}});
        if (offsets[k]) {
            r.offsets_before_resume = *offsets[k];
            if (!offsets[k]->is_string()) r.offsets = *offsets[k];
            if (r.offsets_before_resume != r.offsets_at_pause)
                log::info("cdc: ", r.name,
                          ": offsets moved while paused (committed after the first reading)");
        } else if (!offsets_error[k].empty()) {
            r.offsets_before_resume = "unavailable: " + offsets_error[k];
        }
        if (!seen[k]) continue;  // unknown: resumed anyway
        const KafkaConnectStatus& s = *seen[k];
        r.status_before_resume = s.to_json();
        const bool held = s.state == (r.held_with == "stop" ? "STOPPED" : "PAUSED");
        r.held = held;
        auto from = parse_rfc3339_utc(r.paused_at);
        auto to = parse_rfc3339_utc(checked_at[k]);
        if (held && from && to) r.held_s = *to - *from;
        if (held) continue;
        if (s.state == "STOPPED") {
            // Resuming would start it: someone else stopped it, so it is theirs now.
            t.done = true;
            r.problem = "STOPPED by someone else while the backup ran: not resumed";
            log::warn("cdc: ", label(r.name, r.cluster),
                      " was STOPPED by someone else while the backup ran: it was not held paused "
                      "throughout, and is not resumed (that would start it)");
        } else {
            r.problem = "found " + s.summary() +
                        " just before the resume: someone resumed it while the "
                        "backup ran, so it was not held paused throughout";
            log::warn("cdc: ", label(r.name, r.cluster), " is ", s.summary(),
                      " just before the resume: someone resumed it while the backup ran; the manifest "
                      "records it as not held");
        }
    }
}

void CdcCoordinator::resume() {
    resume_where([](const CdcConnectorRecord&) { return true; }, "paused by this run");
    heal_expired_window();
}

bool CdcCoordinator::holds_until_snapshot() const {
    for (const auto& r : records_)
        if (r.paused_by_us && r.action == "paused" && r.hold == "snapshot" && r.resume_requested_at.empty())
            return true;
    return false;
}

void CdcCoordinator::release_after_snapshot() {
    resume_where([](const CdcConnectorRecord& r) { return r.hold == "snapshot"; },
                 "held until the snapshots (cdc.hold \"snapshot\"): every snapshot is taken");
    failpoint("cdc:released-after-snapshot");
}

void CdcCoordinator::resume_where(const std::function<bool(const CdcConnectorRecord&)>& which,
                                  const char* what) {
    std::vector<Target> targets;
    for (auto& r : records_) {
        if (!r.paused_by_us || !r.resume_requested_at.empty() || !r.resumed_at.empty()) continue;
        if (!which(r)) continue;
        bool pending = false;
        for (const auto& p : state_.connectors)
            pending = pending || (p.name == r.name && p.urls.at(0) == r.cluster);
        if (!pending) continue;
        Target t;
        t.name = r.name;
        t.url = r.cluster;
        t.record = &r;
        t.failed_is_fine = r.action == "failed-left-alone";
        for (auto& c : clusters_)
            if (c->config.urls.at(0) == r.cluster) t.client = c->client.get();
        targets.push_back(std::move(t));
    }
    if (!targets.empty()) {
        // One retried after an earlier round that could not send its resume: that round's failure is
        // superseded by this one's outcome.
        for (const auto& t : targets) {
            const std::string own = label(t.name, t.url) + ": ";
            std::erase_if(resume_failures_, [&](const std::string& f) { return f.rfind(own, 0) == 0; });
        }
        const auto deadline = SteadyClock::now() + ms(config_.resume_timeout_s);
        check_before_resume(targets, deadline);
        log::info("cdc: resuming ", targets.size(), " connector(s) ", what);
        resume_targets(targets, deadline);
    }
    paused_ = false;  // what stays held for resume()
    for (const auto& r : records_)
        if (r.paused_by_us && r.action == "paused" && r.resume_requested_at.empty() && !which(r))
            paused_ = true;
}

void CdcCoordinator::heal_expired_window() {
    if (!window_held_ || window_ended_during_run_) return;
    std::optional<CdcPauseState> now_state;
    try {
        now_state = read_cdc_state(journal_path());
    } catch (const Error& e) {
        log::error("cdc: cannot check whether the pause window has ended: ", e.what());
        return;
    }
    if (!now_state || now_state->owner != "window" || now_state->connectors.empty()) return;
    if (window_active(*now_state, unix_now())) return;
    window_ended_during_run_ = true;
    log::warn("cdc: the pause window opened ", now_state->created_at, " ended at ",
              now_state->window_until.value_or("an unreadable time"),
              " while this backup ran, and nobody ran `nightjar-backup cdc resume`: ",
              names_of(now_state->connectors), " are still paused: resuming them now");
    resume_listed(*now_state);
}

void CdcCoordinator::heal_damaged(const CdcStateDamaged& damage) {
    const auto file = journal_path();
    std::vector<std::string> salvaged = salvage_connector_names(file);
    std::filesystem::path aside;
    try {
        aside = quarantine_cdc_state(file, unix_now());
    } catch (const Error& e) {
        resume_failures_.push_back(std::string(damage.what()) +
                                   "; and it cannot be moved aside: " + e.what());
        return;
    }
    // Whatever the file held is among the configured connectors. Only those that are PAUSED and that no
    // other journal claims (the watchdog's) are resumed; the rest are named.
    std::vector<PausedConnector> claimed;
    try {
        if (auto w = read_cdc_state(info_.backup_dir / kCdcWatchStateFile)) claimed = w->connectors;
    } catch (const Error&) {
    }
    std::vector<Target> targets;
    std::vector<std::string> candidates, left;
    const auto deadline = SteadyClock::now() + ms(config_.resume_timeout_s);
    for (auto& cluster : clusters_) {
        const std::string url = cluster->config.urls.at(0);
        std::vector<std::string> names = cluster->config.connectors;
        try {
            if (cluster->config.all_connectors) names = cluster->client->connectors();
        } catch (const KafkaConnectError& e) {
            left.push_back(url + " (cannot list connectors: " + e.what() + ")");
        }
        for (const auto& n : salvaged)
            if (std::find(names.begin(), names.end(), n) == names.end() && !cluster->config.all_connectors &&
                clusters_.size() == 1)
                names.push_back(n);
        for (const auto& name : names) {
            candidates.push_back(label(name, url));
            bool is_claimed = false;
            for (const auto& c : claimed) is_claimed = is_claimed || (c.name == name && c.urls.at(0) == url);
            if (is_claimed) {
                left.push_back(name + " (claimed by the watchdog)");
                continue;
            }
            try {
                auto client = bounded(*cluster->client, deadline);
                if (!client) throw KafkaConnectError("no time left", 0, true, "");
                KafkaConnectStatus s = client->status(name);
                if (s.state != "PAUSED") {
                    left.push_back(name + " (" + s.state + ")");
                    continue;
                }
            } catch (const KafkaConnectError& e) {
                left.push_back(name + " (status unknown: " + e.what() + ")");
                continue;
            }
            Target t;
            t.client = cluster->client.get();
            t.name = name;
            t.url = url;
            targets.push_back(std::move(t));
        }
    }
    resume_targets(targets, deadline);
    std::string resumed;
    for (const auto& t : targets)
        if (t.done && t.failure.empty()) resumed += (resumed.empty() ? "" : ", ") + t.name;
    std::string all, others;
    for (const auto& c : candidates) all += (all.empty() ? "" : ", ") + c;
    for (const auto& l : left) others += (others.empty() ? "" : ", ") + l;
    std::string alert = "cdc state file " + file.string() + " was damaged (" + damage.what() +
                        "): moved aside to " + aside.string() + "; it might have held " +
                        (all.empty() ? std::string("no configured connector") : all) + ": resumed " +
                        (resumed.empty() ? std::string("none") : resumed) +
                        " (PAUSED and claimed by nothing else), left " +
                        (others.empty() ? std::string("none") : others) +
                        ": check that none of them should still be paused; later runs proceed normally";
    log::error(alert);
    resume_failures_.push_back(alert);
    damaged_journal_ = {{"file", file.string()},
                        {"moved_to", aside.string()},
                        {"error", damage.what()},
                        {"candidates", candidates},
                        {"resumed", resumed}};
}

CdcCheckReport CdcCoordinator::check() {
    CdcCheckReport report;
    std::optional<CdcPauseState> previous;
    try {
        previous = read_cdc_journal(config_, info_.backup_dir);
    } catch (const CdcStateDamaged& e) {
        report.warnings.push_back(
            std::string(e.what()) +
            ": the next backup moves it aside, resumes what it may have held and alerts");
    }
    if (previous && !previous->connectors.empty()) {
        std::string names;
        for (const auto& p : previous->connectors)
            names += (names.empty() ? "" : ", ") + label(p.name, p.urls.at(0));
        if (previous->owner == "window" && window_active(*previous, unix_now()))
            report.lines.push_back("cdc: a pause window holds " + names + " paused until " +
                                   previous->window_until.value_or("?") +
                                   ": a backup now would leave CDC to it");
        else
            report.warnings.push_back("a previous run left connectors paused: " + names +
                                      ": the next backup (or nightjar-backup --resume-cdc) resumes them");
    }
    for (auto& cluster : clusters_) {
        auto& client = *cluster->client;
        json cj{{"cluster", cluster->config.urls.at(0)}, {"connectors", json::array()}};
        try {
            json info = client.server_info();
            std::string version =
                info.is_object() && info.contains("version") ? info["version"].dump() : "unknown";
            report.lines.push_back("cdc: Kafka Connect " + client.url() + " answers (version " + version +
                                   ")");
            cj["version"] = info.value("version", "");
            std::vector<std::string> names =
                cluster->config.all_connectors ? client.connectors() : cluster->config.connectors;
            if (cluster->config.all_connectors && names.empty())
                report.warnings.push_back("cdc: " + client.url() + " lists no connectors");
            for (const auto& name : names) {
                try {
                    KafkaConnectStatus s = client.status(name);
                    std::string what = s.any_failed() ? "FAILED: would leave it alone (" + s.failure() + ")"
                                       : s.state == "PAUSED" || s.state == "STOPPED"
                                           ? "paused/stopped by someone else: would leave it alone"
                                           : "would pause it";
                    report.lines.push_back("cdc: " + label(name, client.url()) + " is " + s.summary() + ": " +
                                           what);
                    if (s.any_failed())
                        report.warnings.push_back("cdc: " + label(name, client.url()) + " " + s.failure());
                    cj["connectors"].push_back({{"name", name}, {"status", s.to_json()}});
                } catch (const KafkaConnectError& e) {
                    std::string why = e.status() == 404 && !e.endpoint_unsupported()
                                          ? "connector " + name + " does not exist on " + client.url() +
                                                ": check cdc.kafka_connect.connectors"
                                          : std::string(e.what());
                    report.problems.push_back("cdc: " + why);
                    cj["connectors"].push_back({{"name", name}, {"problem", why}});
                }
            }
        } catch (const KafkaConnectError& e) {
            std::string why = e.what();  // "Kafka Connect did not answer: <transport errors>": said once
            if (why.rfind("Kafka Connect did not answer: ", 0) == 0) why.erase(0, 30);
            report.problems.push_back("cdc: Kafka Connect does not answer: " + why +
                                      ": check cdc.kafka_connect.url");
            cj["problem"] = e.what();
        }
        report.summary.push_back(std::move(cj));
    }
    return report;
}

json CdcCoordinator::record() const {
    // Held: paused by this run and still PAUSED just before its resume (someone may have resumed one).
    bool held = was_paused_;
    for (const auto& r : records_)
        if (r.action == "paused" && r.held == json(false)) held = false;
    json j{{"mode", pause_failure_.empty() ? "coordinated" : "not-paused"},
           {"paused", held},
           {"on_pause_failure", config_.on_pause_failure},
           {"connectors", json::array()}};
    if (!pause_failure_.empty()) j["pause_failure"] = pause_failure_;
    if (window_held_) {
        j["mode"] = "window";
        j["paused"] = true;
        j["window_until"] = window_held_->window_until.value_or("");
        j["window_connectors"] = json::array();
        for (const auto& p : window_held_->connectors)
            j["window_connectors"].push_back({{"name", p.name}, {"cluster", p.urls.at(0)}});
    }
    for (const auto& r : records_) j["connectors"].push_back(r.to_json());
    if (window_ended_during_run_) j["window_ended_during_run"] = true;
    if (!damaged_journal_.is_null()) j["damaged_state_file"] = damaged_journal_;
    if (!healed_.empty()) j["resumed_from_previous_run"] = healed_;
    j["resume_failures"] = resume_failures_;
    return j;
}

}  // namespace nightjar::cdc
