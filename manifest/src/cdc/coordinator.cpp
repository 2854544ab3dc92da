#include "nightjar/cdc/coordinator.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>

#include "nightjar/cdc/retry.hpp"
#include "nightjar/cdc/window.hpp"
#include "nightjar/failpoint.hpp"
#include "nightjar/log.hpp"
#include "nightjar/manifest.hpp"

namespace nightjar {

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
    bool requested = false;  // the resume was accepted (202)
    bool done = false;       // no longer paused (RUNNING, FAILED or deleted)
    std::string failure;     // why it may still be paused, or why it came back FAILED
};

json CdcConnectorRecord::to_json() const {
    json j{{"cluster", cluster},
           {"name", name},
           {"status_before", status_before},
           {"action", action},
           {"paused_by_us", paused_by_us},
           {"offsets", offsets},
           {"status_after", status_after}};
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

void CdcCoordinator::save_state() {
    auto file = cdc_state_path(info_.backup_dir);
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
    auto previous = read_cdc_state(cdc_state_path(info_.backup_dir));
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
    auto previous = read_cdc_state(cdc_state_path(info_.backup_dir));
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
    resume_targets(targets);
    for (const auto& t : targets)
        if (t.done && t.failure.empty())
            log::warn("cdc: resumed ", label(t.name, t.url),
                      previous.owner == "window" ? ", which the pause window held paused"
                                                 : ", which a previous run had left paused");
}

void CdcCoordinator::resume_targets(std::vector<Target>& targets) {
    const auto deadline = SteadyClock::now() + ms(config_.resume_timeout_s);
    auto backoff = [&] { return backoff_for(config_.retry); };
    for (auto& t : targets) {
        if (!t.client) continue;
        std::string requested_at = now_rfc3339();
        try {
            retry_transient([&] { t.client->resume(t.name); },
                            {.deadline = deadline,
                             .backoff = backoff(),
                             .interruptible = false,
                             .on_retry = [&](const KafkaConnectError& e, int attempt) {
                                 // The first failure is said; the retries after it are not repeated.
                                 if (attempt == 1)
                                     log::warn("cdc: resume ", t.name, " attempt 1 failed: ", e.what(),
                                               "; retrying until cdc.resume_timeout_s");
                             }});
            t.requested = true;
            if (t.record) t.record->resume_requested_at = requested_at;
            log::info("cdc: resume requested for ", label(t.name, t.url));
        } catch (const KafkaConnectError& e) {
            if (e.status() == 404 && !e.endpoint_unsupported()) {
                log::warn("cdc: ", label(t.name, t.url), " no longer exists (", e.api_message(),
                          "): nothing to resume");
                t.done = true;
                if (t.record) t.record->problem = "deleted while paused: " + e.api_message();
                if (t.healed) (*t.healed)["result"] = "deleted";
            } else {
                t.failure = std::string("resume failed: ") + e.what();
            }
        }
    }
    // Wait for RUNNING: the 202 only means the target state is stored.
    Backoff poll = backoff();
    for (;;) {
        bool pending = false;
        for (auto& t : targets) {
            if (!t.requested || t.done) continue;
            try {
                KafkaConnectStatus s = t.client->status(t.name);
                if (s.settled_in("RUNNING") || s.any_failed()) {
                    t.done = true;
                    if (t.record) {
                        t.record->status_after = s.to_json();
                        t.record->resumed_at = now_rfc3339();
                    }
                    if (t.healed) (*t.healed)["result"] = s.any_failed() ? "FAILED" : "RUNNING";
                    if (s.any_failed()) {
                        t.failure = "resumed but " + s.failure();
                        if (t.record) t.record->problem = t.failure;
                    } else {
                        log::info("cdc: ", label(t.name, t.url), " is ", s.summary());
                    }
                } else {
                    pending = true;
                    if (t.record) t.record->status_after = s.to_json();
                    if (SteadyClock::now() >= deadline)
                        t.failure = "still " + s.summary() + " " + std::to_string(config_.resume_timeout_s) +
                                    " s after the resume (cdc.resume_timeout_s)";
                }
            } catch (const KafkaConnectError& e) {
                pending = true;
                if (SteadyClock::now() >= deadline)
                    t.failure = std::string("status unknown after the resume: ") + e.what();
            }
        }
        if (!pending || SteadyClock::now() >= deadline) break;
        sleep_within(poll.next(), deadline, false);
    }
    // Keep in the state file only what may still be paused. One error line per distinct failure, with
    // the connectors it hit counted (a Kafka Connect that is down fails them all the same way).
    std::vector<std::pair<std::string, std::vector<std::string>>> failed_by_reason;
    for (auto& t : targets) {
        if (t.requested && !t.done && t.failure.empty()) t.failure = "did not report RUNNING in time";
        if (t.failure.empty()) continue;
        std::string reason = t.failure;  // the same for every connector: its name in a URL becomes {name}
        const std::string own = "/connectors/" + t.name + "/";
        for (std::size_t at; (at = reason.find(own)) != std::string::npos;)
            reason.replace(at, own.size(), "/connectors/{name}/");
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
    };
    std::vector<Pending> to_pause;
    try {
        for (auto& cluster : clusters_) {
            auto& client = *cluster->client;
            std::vector<std::string> names = cluster->config.connectors;
            if (cluster->config.all_connectors)
                names = retry_transient([&] { return client.connectors(); }, options("listing connectors"));
            for (const auto& name : names) {
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
                    to_pause.push_back({cluster.get(), records_.size()});
                }
                records_.push_back(std::move(r));
            }
        }
        // The crash journal names everything we are about to pause before the first PUT.
        for (const auto& p : to_pause) {
            const auto& cfg = p.cluster->config;
            state_.connectors.push_back({.urls = cfg.urls,
                                         .user = cfg.auth ? cfg.auth->user : "",
                                         .password_file = cfg.auth ? cfg.auth->password_file : "",
                                         .name = records_[p.record].name,
                                         .paused_at = now_rfc3339()});
        }
        if (!to_pause.empty()) save_state();
        failpoint("cdc:after-state-file");
        for (const auto& p : to_pause) {
            auto& r = records_[p.record];
            r.paused_by_us =
                true;  // counted as ours even if the answer is lost: the worker may have applied it
            r.pause_requested_at = now_rfc3339();
            try {
                retry_transient([&] { p.cluster->client->pause(r.name); }, options("pause " + r.name));
            } catch (const KafkaConnectError& e) {
                r.problem = e.what();
                pause_failed("pause " + label(r.name, r.cluster) + ": " + e.what());
            }
            log::info("cdc: pause requested for ", label(r.name, r.cluster));
        }
        // Pause is asynchronous: wait until the connector and every task say PAUSED.
        Backoff poll = backoff_for(config_.retry);
        std::vector<bool> settled(to_pause.size(), false);
        for (;;) {
            bool pending = false;
            std::string waiting;
            for (std::size_t i = 0; i < to_pause.size(); ++i) {
                if (settled[i]) continue;
                auto& r = records_[to_pause[i].record];
                try {
                    KafkaConnectStatus s = to_pause[i].cluster->client->status(r.name);
                    if (s.settled_in("PAUSED") || (s.state == "PAUSED" && s.any_failed())) {
                        settled[i] = true;
                        r.paused_at = now_rfc3339();
                        if (s.any_failed()) {
                            r.problem = s.failure();
                            log::warn("cdc: ", label(r.name, r.cluster), " paused, but ", s.failure());
                        }
                        log::info("cdc: ", label(r.name, r.cluster), " is ", s.summary());
                        continue;
                    }
                    waiting += (waiting.empty() ? "" : ", ") + r.name + " " + s.summary();
                } catch (const KafkaConnectError& e) {
                    if (!e.transient())
                        pause_failed("status of " + label(r.name, r.cluster) + ": " + e.what());
                    waiting += (waiting.empty() ? "" : ", ") + r.name + " (" + e.what() + ")";
                }
                pending = true;
            }
            if (!pending) break;
            if (SteadyClock::now() >= deadline)
                pause_failed("not PAUSED " + std::to_string(config_.pause_timeout_s) +
                             " s after the pause (cdc.pause_timeout_s): " + waiting);
            sleep_within(poll.next(), deadline, true);
        }
    } catch (const PauseFailure& f) {
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
        if (e.kind() == Kind::Interrupted)
            log::warn("cdc: interrupted while pausing; resuming what was paused");
        throw;
    }
    // Offsets while paused (Kafka Connect 3.5+); a worker without the endpoint gives "unavailable".
    for (const auto& p : to_pause) {
        auto& r = records_[p.record];
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
    }
    paused_ = !to_pause.empty();
    was_paused_ = paused_;
    if (paused_) log::info("cdc: ", to_pause.size(), " connector(s) paused");
    failpoint("cdc:paused");
}

void CdcCoordinator::resume() {
    std::vector<Target> targets;
    for (auto& r : records_) {
        if (!r.paused_by_us || !r.resume_requested_at.empty() || !r.resumed_at.empty()) continue;
        bool pending = false;
        for (const auto& p : state_.connectors)
            pending = pending || (p.name == r.name && p.urls.at(0) == r.cluster);
        if (!pending) continue;
        Target t;
        t.name = r.name;
        t.url = r.cluster;
        t.record = &r;
        for (auto& c : clusters_)
            if (c->config.urls.at(0) == r.cluster) t.client = c->client.get();
        targets.push_back(std::move(t));
    }
    if (targets.empty()) return;
    paused_ = false;
    log::info("cdc: resuming ", targets.size(), " connector(s) paused by this run");
    resume_targets(targets);
}

CdcCheckReport CdcCoordinator::check() {
    CdcCheckReport report;
    if (auto previous = read_cdc_state(cdc_state_path(info_.backup_dir));
        previous && !previous->connectors.empty()) {
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
    json j{{"mode", pause_failure_.empty() ? "coordinated" : "not-paused"},
           {"paused", was_paused_},
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
    if (!healed_.empty()) j["resumed_from_previous_run"] = healed_;
    j["resume_failures"] = resume_failures_;
    return j;
}

}  // namespace nightjar
