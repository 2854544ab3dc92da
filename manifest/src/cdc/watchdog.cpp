#include "nightjar/cdc/watchdog.hpp"
#include "nightjar/core/clock.hpp"

#include <unistd.h>

#include <algorithm>
#include <thread>

#include "nightjar/cdc/coordinator.hpp"
#include "nightjar/cdc/probe.hpp"
#include "nightjar/cdc/retry.hpp"
#include "nightjar/cdc/state_file.hpp"
#include "nightjar/cdc/window.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/core/signals.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/run/hooks.hpp"
#include "nightjar/run/monitoring.hpp"

namespace nightjar::cdc {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

milliseconds ms(double seconds) {
    return milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

std::string secs(WatchClock::duration d) {
    std::ostringstream out;
    out << std::chrono::duration<double>(d).count() << " s";
    return out.str();
}

std::string minutes(WatchClock::duration d) {
    std::ostringstream out;
    out.precision(3);
    out << std::chrono::duration<double>(d).count() / 60 << " min";
    return out.str();
}

}  // namespace

// ---- pure part ----

Observed observe(const KafkaConnectStatus& s) {
    if (s.state == "STOPPED") return Observed::Stopped;
    if (s.state == "PAUSED") return Observed::Paused;
    if (s.any_failed()) return Observed::Failed;
    if (s.settled_in("RUNNING")) return Observed::Running;
    return Observed::Transitional;
}

WatchStep decide(WatchPhase phase, Observed o, bool probe_due, bool settle_over) {
    switch (phase) {
        case WatchPhase::Healthy:
            return o == Observed::Failed ? WatchStep::Pause : WatchStep::Nothing;
        case WatchPhase::Held:
            switch (o) {
                case Observed::Running:
                    return WatchStep::ResumedByOthers;
                case Observed::Stopped:
                case Observed::Missing:
                    return WatchStep::Release;
                case Observed::HeldByNightjar:
                    return WatchStep::Nothing;
                default:
                    return probe_due ? WatchStep::Probe : WatchStep::Nothing;
            }
        case WatchPhase::Settling:
            switch (o) {
                case Observed::Failed:
                    return WatchStep::Relapse;
                case Observed::Running:
                    return settle_over ? WatchStep::Healed : WatchStep::Nothing;
                // Just after the resume a status read may still show PAUSED: only a pause that outlasts the
                // settle period is someone else's.
                case Observed::Paused:
                    return settle_over ? WatchStep::Release : WatchStep::Nothing;
                case Observed::Stopped:
                case Observed::Missing:
                    return WatchStep::Release;
                default:
                    return WatchStep::Nothing;
            }
    }
    return WatchStep::Nothing;
}

milliseconds relapse_backoff(int failures, const WatchBackoff& b) {
    if (failures <= 1) return milliseconds(0);
    double wait = b.initial_s;
    for (int i = 2; i < failures && wait < b.max_s; ++i) wait *= 2;
    return ms(std::min(wait, b.max_s));
}

bool alert_due(const Incident& incident, WatchClock::time_point now, milliseconds max_wait,
               milliseconds repeat) {
    if (!incident.alerted) return now - incident.since >= max_wait;
    return now - incident.last_alert >= repeat;
}

// ---- the loop ----

struct CdcWatchdog::Connector {
    std::string name;
    std::string cluster;  // the first worker URL
    WatchPhase phase = WatchPhase::Healthy;
    Incident incident;
    int failures = 0;  // failures of the current incident (the first one and relapses)
    WatchClock::time_point next_probe{};
    WatchClock::time_point settle_until{};
    std::string state;      // last status summary
    std::string trace;      // last failure with the first line of its trace
    std::string paused_at;  // RFC 3339, for the journal
    std::string note;       // the last "left alone" reason logged (logged once per change)
    std::string who() const { return name + " (" + cluster + ")"; }
};

struct CdcWatchdog::Cluster {
    KafkaConnectClusterConfig config;
    std::unique_ptr<KafkaConnectClient> client;
    std::map<std::string, Connector> connectors;
    WatchClock::time_point next_check{};
    Backoff backoff;
    bool down = false;
    Incident incident;  // while it does not answer
    std::string error;
    std::string url() const { return config.urls.at(0); }
};

CdcWatchdog::CdcWatchdog(const CdcConfig& config, WatchdogInfo info)
    : config_(config), info_(std::move(info)) {
    for (const auto& c : config_.clusters) {
        auto cluster = std::make_unique<Cluster>();
        cluster->config = c;
        cluster->client = std::make_unique<KafkaConnectClient>(client_options(c));
        cluster->backoff = Backoff{.initial = ms(config_.watch.backoff.initial_s),
                                   .max = ms(config_.watch.backoff.max_s),
                                   .current = {}};
        clusters_.push_back(std::move(cluster));
    }
}

CdcWatchdog::~CdcWatchdog() = default;

CdcWatchdog::Connector& CdcWatchdog::connector(Cluster& cluster, const std::string& name) {
    auto [it, inserted] = cluster.connectors.try_emplace(name);
    if (inserted) {
        it->second.name = name;
        it->second.cluster = cluster.url();
    }
    return it->second;
}

void CdcWatchdog::save_journal() {
    CdcPauseState s;
    s.owner = "watch";
    s.pid = static_cast<long>(::getpid());
    s.created_at = rfc3339_utc(unix_now());
    for (auto& cluster : clusters_)
        for (auto& [name, c] : cluster->connectors)
            if (c.phase == WatchPhase::Held)
                s.connectors.push_back(
                    {.urls = cluster->config.urls,
                     .user = cluster->config.auth ? cluster->config.auth->user : "",
                     .password_file = cluster->config.auth ? cluster->config.auth->password_file : "",
                     .name = name,
                     .paused_at = c.paused_at});
    auto file = info_.backup_dir / kCdcWatchStateFile;
    try {
        std::filesystem::create_directories(info_.backup_dir);
        if (s.connectors.empty())
            remove_cdc_state(file);
        else
            write_cdc_state(file, s);
    } catch (const std::exception& e) {
        log::error("cdc watch: cannot record what the watchdog holds paused: ", e.what());
    }
}

void CdcWatchdog::adopt_journal() {
    std::optional<CdcPauseState> s;
    try {
        s = read_cdc_state(info_.backup_dir / kCdcWatchStateFile);
    } catch (const Error& e) {
        log::error("cdc watch: ", e.what());
        return;
    }
    if (!s) return;
    const auto now = WatchClock::now();
    for (const auto& p : s->connectors) {
        Cluster* cluster = nullptr;
        for (auto& c : clusters_)
            if (c->url() == p.urls.at(0)) cluster = c.get();
        if (!cluster) {
            log::error(
                "cdc watch: the journal names ", p.name, " (", p.urls.at(0),
                "), paused by a previous watchdog, but that cluster is no longer configured: resume it "
                "by hand (PUT <url>/connectors/<name>/resume)");
            continue;
        }
        Connector& c = connector(*cluster, p.name);
        c.phase = WatchPhase::Held;
        c.failures = 1;
        c.incident = Incident{.since = now, .alerted = false, .last_alert = {}};
        c.next_probe = now;
        c.paused_at = p.paused_at;
        log::warn("cdc watch: taking over ", c.who(), ", which a previous watchdog (pid ", s->pid,
                  ") paused at ", p.paused_at, " because it had FAILED");
    }
}

void CdcWatchdog::notify(const std::string& event, const std::string& who, const std::string& state,
                         const std::string& trace, const std::string& message) {
    if (event == "alert")
        log::error("cdc watch: ALERT: ", message);
    else
        log::warn("cdc watch: RECOVERED: ", message);
    std::string name = who, cluster;
    if (auto open = who.find(" ("); open != std::string::npos) {
        name = who.substr(0, open);
        cluster = who.substr(open + 2, who.size() - open - 3);
    }
    HookEnvironment env{.backup_id = "",
                        .backup_dir = info_.backup_dir.string(),
                        .status = "cdc-" + event,
                        .manifest = "",
                        .error = message,
                        .extra = {"NIGHTJAR_CDC_EVENT=" + event, "NIGHTJAR_CDC_CONNECTOR=" + name,
                                  "NIGHTJAR_CDC_CLUSTER=" + cluster, "NIGHTJAR_CDC_STATE=" + state,
                                  "NIGHTJAR_CDC_TRACE=" + trace}};
    run_hooks("on_alert", config_.watch.on_alert, env, {});
    std::string body = json{{"event", "cdc-" + event}, {"connector", name}, {"cluster", cluster},
                            {"state", state},          {"trace", trace},    {"message", message}}
                           .dump();
    MonitoringConfig monitoring = info_.monitoring;
    if (!config_.watch.ping_url.empty()) {
        monitoring.ping_url = config_.watch.ping_url;
        Pinger pinger(monitoring);
        event == "alert" ? pinger.failure(body) : pinger.success(body);
    } else {
        Pinger pinger(monitoring);
        event == "alert" ? pinger.failure(body) : pinger.log_event(body);
    }
}

void CdcWatchdog::start_incident(Cluster& cluster, Connector& c, const KafkaConnectStatus& s, bool relapse,
                                 WatchClock::time_point now) {
    if (c.failures == 0) c.incident = Incident{.since = now, .alerted = false, .last_alert = {}};
    ++c.failures;
    c.trace = s.failure();
    c.state = s.summary();
    log::error("cdc watch: ", c.who(), relapse ? " relapsed after the resume: " : " ", c.trace,
               ": pausing it so that nothing retries into its source until the source answers");
    c.phase = WatchPhase::Held;
    c.paused_at = rfc3339_utc(unix_now());
    save_journal();  // before the PUT: a crash in between still knows it is ours
    try {
        retry_transient([&] { cluster.client->pause(c.name); },
                        {.deadline = SteadyClock::now() + 2 * ms(cluster.config.request_timeout_s),
                         .backoff = Backoff{.initial = ms(config_.retry.initial_backoff_s),
                                            .max = ms(config_.retry.max_backoff_s),
                                            .current = {}},
                         .interruptible = false,
                         .on_retry = {}});
    } catch (const KafkaConnectError& e) {
        log::error("cdc watch: pausing ", c.who(), " failed: ", e.what(), ": trying again at the next check");
        c.phase = WatchPhase::Healthy;
        save_journal();
        return;
    }
    auto wait = relapse_backoff(c.failures, config_.watch.backoff);
    c.next_probe = now + wait;
    if (relapse)
        log::warn("cdc watch: ", c.who(), " paused again (failure ", c.failures, " since ",
                  minutes(now - c.incident.since), " ago); backing off: no restart for ", secs(wait));
    else
        log::info("cdc watch: ", c.who(), " paused; probing its source every ",
                  config_.watch.probe_interval_s, " s");
}

bool CdcWatchdog::probe_and_restart(Cluster& cluster, Connector& c, WatchClock::time_point now,
                                    bool stopping) {
    SourceProbe probe;
    if (auto it = config_.watch.probes.find(c.name); it != config_.watch.probes.end()) probe = it->second;
    ProbeResult r = run_probe(probe, ms(config_.watch.probe_timeout_s));
    const auto next = now + ms(config_.watch.probe_interval_s);
    if (!r.ok) {
        log::warn("cdc watch: ", c.who(), ": its source (", probe.describe(), ") does not answer: ", r.detail,
                  stopping ? "" : ": kept paused; next probe in " + secs(next - now));
        c.next_probe = next;
        return false;
    }
    log::info("cdc watch: ", c.who(), ": its source (", probe.describe(), ") answers (", r.detail,
              "): restarting the FAILED instances and resuming");
    auto& client = *cluster.client;
    try {
        KafkaConnectStatus s = client.status(c.name);
        if (s.any_failed()) {
            RestartOutcome out = client.restart(c.name, {.include_tasks = true, .only_failed = true});
            if (!out.parameters_honoured) {
                log::info(
                    "cdc watch: ", c.who(),
                    ": the worker ignored includeTasks/onlyFailed (Kafka Connect before 3.0): restarting "
                    "each FAILED task on its own");
                for (const auto& t : s.tasks)
                    if (t.state == "FAILED") client.restart_task(c.name, t.id);
            }
        }
        // The restart is asynchronous: resume only once nothing reports FAILED any more.
        const auto deadline = SteadyClock::now() + ms(config_.resume_timeout_s);
        Backoff poll{.initial = ms(config_.retry.initial_backoff_s),
                     .max = ms(config_.retry.max_backoff_s),
                     .current = {}};
        for (s = client.status(c.name); s.any_failed(); s = client.status(c.name)) {
            if (SteadyClock::now() >= deadline) {
                ++c.failures;
                auto wait = relapse_backoff(c.failures, config_.watch.backoff);
                c.next_probe = WatchClock::now() + std::max<WatchClock::duration>(wait, next - now);
                c.trace = s.failure();
                log::error("cdc watch: ", c.who(), " is still ", s.failure(), " ", config_.resume_timeout_s,
                           " s after the restart (cdc.resume_timeout_s): kept paused; next attempt in ",
                           secs(c.next_probe - WatchClock::now()));
                return false;
            }
            sleep_within(poll.next(), deadline, false);
        }
        client.resume(c.name);
    } catch (const KafkaConnectError& e) {
        log::warn("cdc watch: restarting or resuming ", c.who(), " failed: ", e.what(),
                  ": kept paused; trying again at the next probe");
        c.next_probe = next;
        return false;
    }
    c.phase = WatchPhase::Settling;
    c.settle_until = WatchClock::now() + ms(config_.watch.settle_s);
    save_journal();
    log::info("cdc watch: ", c.who(), " restarted and resumed",
              stopping
                  ? ""
                  : "; watching it for " + secs(ms(config_.watch.settle_s)) + " before calling it healed");
    return true;
}

void CdcWatchdog::healed(Connector& c, WatchClock::time_point now) {
    std::string message = c.who() + " is healed: RUNNING " + secs(ms(config_.watch.settle_s)) +
                          " after the resume (failed " + minutes(now - c.incident.since) + " ago, " +
                          std::to_string(c.failures) + " failure(s))";
    log::info("cdc watch: ", message);
    if (c.incident.alerted) notify("recovered", c.who(), c.state, c.trace, message);
    c.phase = WatchPhase::Healthy;
    c.failures = 0;
    c.incident = {};
    c.trace.clear();
}

void CdcWatchdog::release(Connector& c, const std::string& why) {
    log::warn("cdc watch: ", c.who(), " ", why, ": the watchdog no longer handles it");
    c.phase = WatchPhase::Healthy;
    c.failures = 0;
    c.incident = {};
    save_journal();
}

void CdcWatchdog::handle(Cluster& cluster, Connector& c, const KafkaConnectStatus& s,
                         WatchClock::time_point now) {
    Observed o = held_.holds(cluster.url(), c.name) ? Observed::HeldByNightjar : observe(s);
    c.state = s.summary();
    if (s.any_failed()) c.trace = s.failure();
    WatchStep step = decide(c.phase, o, now >= c.next_probe, now >= c.settle_until);
    std::string note;
    switch (step) {
        case WatchStep::Pause:
            start_incident(cluster, c, s, false, now);
            break;
        case WatchStep::Relapse:
            start_incident(cluster, c, s, true, now);
            break;
        case WatchStep::Healed:
            healed(c, now);
            break;
        case WatchStep::ResumedByOthers:
            log::warn("cdc watch: ", c.who(), " was paused by the watchdog but is ", s.summary(),
                      " now (someone restarted and resumed it): watching it settle");
            c.phase = WatchPhase::Settling;
            c.settle_until = now + ms(config_.watch.settle_s);
            save_journal();
            break;
        case WatchStep::Release:
            release(c, o == Observed::Paused ? "was paused by someone else (" + s.summary() + ")"
                                             : "was stopped by someone else (" + s.summary() + ")");
            break;
        case WatchStep::Probe:  // time-driven: tick() probes
        case WatchStep::Nothing:
            if (c.phase != WatchPhase::Healthy) break;
            if (o == Observed::HeldByNightjar)
                note = "is held paused by " +
                       std::string(held_.owner == "window" ? "a pause window until " + held_.window_until
                                                           : "a running backup") +
                       ": left alone";
            else if (o == Observed::Paused || o == Observed::Stopped)
                note = "is " + s.summary() + " by someone else" +
                       (s.any_failed() ? " and " + s.failure() : std::string()) + ": left alone";
            if (note.empty()) c.note.clear();
            if (!note.empty() && note != c.note) {
                log::info("cdc watch: ", c.who(), " ", note);
                c.note = note;
            }
            break;
    }
}

void CdcWatchdog::check_cluster(Cluster& cluster, WatchClock::time_point now) {
    auto& client = *cluster.client;
    try {
        std::vector<std::string> names =
            cluster.config.all_connectors ? client.connectors() : cluster.config.connectors;
        for (auto& [name, c] : cluster.connectors)
            if (c.phase != WatchPhase::Healthy && std::find(names.begin(), names.end(), name) == names.end())
                names.push_back(name);
        for (const auto& name : names) {
            Connector& c = connector(cluster, name);
            KafkaConnectStatus s;
            try {
                s = client.status(name);
            } catch (const KafkaConnectError& e) {
                if (e.status() != 404 || e.endpoint_unsupported()) throw;
                WatchStep step = decide(c.phase, Observed::Missing, false, false);
                if (step == WatchStep::Release) {
                    release(c, "no longer exists (" + e.api_message() + ")");
                } else if (c.note != "missing") {
                    log::warn("cdc watch: ", c.who(), " does not exist (", e.api_message(),
                              "): check cdc.kafka_connect.connectors");
                    c.note = "missing";
                }
                continue;
            }
            handle(cluster, c, s, now);
        }
    } catch (const KafkaConnectError& e) {
        if (!cluster.down) {
            cluster.down = true;
            cluster.incident = Incident{.since = now, .alerted = false, .last_alert = {}};
        }
        cluster.error = e.what();
        auto wait = cluster.backoff.next();
        cluster.next_check = now + wait;
        log::warn("cdc watch: Kafka Connect ", cluster.url(), " does not answer: ", e.what(),
                  ": nothing is changed; next check in ", secs(wait), " (backoff; down for ",
                  minutes(now - cluster.incident.since), ")");
        return;
    }
    if (cluster.down) {
        std::string message = "Kafka Connect " + cluster.url() + " answers again after " +
                              minutes(now - cluster.incident.since);
        log::info("cdc watch: ", message);
        if (cluster.incident.alerted)
            notify("recovered", " (" + cluster.url() + ")", "REACHABLE", "", message);
        cluster.down = false;
        cluster.incident = {};
        cluster.backoff.current = milliseconds(0);
    }
    cluster.next_check = now + ms(config_.watch.check_interval_s);
}

void CdcWatchdog::alerts(WatchClock::time_point now) {
    const auto max_wait = ms(config_.watch.max_wait_min * 60);
    const auto repeat = ms(config_.watch.alert_repeat_min * 60);
    for (auto& cluster : clusters_) {
        if (cluster->down && alert_due(cluster->incident, now, max_wait, repeat)) {
            notify("alert", " (" + cluster->url() + ")", "UNREACHABLE", cluster->error,
                   "Kafka Connect " + cluster->url() + " has not answered for " +
                       minutes(now - cluster->incident.since) + ": " + cluster->error +
                       ": no connector is touched until it answers");
            cluster->incident.alerted = true;
            cluster->incident.last_alert = now;
        }
        for (auto& [name, c] : cluster->connectors) {
            if (c.phase == WatchPhase::Healthy || !alert_due(c.incident, now, max_wait, repeat)) continue;
            notify("alert", c.who(), c.state, c.trace,
                   c.who() + " has not healed " + minutes(now - c.incident.since) + " after it failed (" +
                       c.trace + "; " + std::to_string(c.failures) + " failure(s)); it is " + c.state +
                       (c.phase == WatchPhase::Held ? ", kept paused; its source is probed every " +
                                                          secs(ms(config_.watch.probe_interval_s))
                                                    : std::string(", settling")));
            c.incident.alerted = true;
            c.incident.last_alert = now;
        }
    }
}

void CdcWatchdog::tick() {
    try {
        heal_stale_pauses(config_, info_.backup_dir);
    } catch (const Error& e) {
        log::error("cdc watch: ", e.what());
    }
    std::string owner;
    try {
        held_ = held_pause(config_, info_.backup_dir, unix_now());
        owner = held_.owner;
    } catch (const Error& e) {
        held_ = {};
        owner = "unknown";
        if (held_owner_ != owner) log::error("cdc watch: ", e.what(), ": no restart until it is fixed");
    }
    deferred_ = !owner.empty();
    if (owner != held_owner_ && owner == "backup")
        log::info(
            "cdc watch: a backup run holds connectors paused: they are left alone, and restarts wait "
            "until it ends");
    else if (owner != held_owner_ && owner == "restore")
        log::info(
            "cdc watch: a restore holds connectors stopped or paused: they are left alone, and restarts "
            "wait until it ends");
    else if (owner != held_owner_ && owner == "window")
        log::info("cdc watch: a pause window holds connectors paused until ", held_.window_until,
                  ": they are left alone, and restarts wait until it ends");
    held_owner_ = owner;
    auto now = WatchClock::now();
    for (auto& cluster : clusters_)
        if (now >= cluster->next_check) check_cluster(*cluster, now);
    for (auto& cluster : clusters_) {
        if (cluster->down || deferred_) continue;
        for (auto& [name, c] : cluster->connectors) {
            if (interrupted_signal()) return;
            if (c.phase == WatchPhase::Held && WatchClock::now() >= c.next_probe)
                probe_and_restart(*cluster, c, WatchClock::now(), false);
        }
    }
    alerts(WatchClock::now());
}

WatchClock::duration CdcWatchdog::sleep_for(WatchClock::time_point now) const {
    WatchClock::time_point until = now + ms(config_.watch.check_interval_s);
    const auto max_wait = ms(config_.watch.max_wait_min * 60);
    const auto repeat = ms(config_.watch.alert_repeat_min * 60);
    auto next_alert = [&](const Incident& i) {
        return i.alerted ? i.last_alert + repeat : i.since + max_wait;
    };
    for (const auto& cluster : clusters_) {
        until = std::min(until, cluster->next_check);
        if (cluster->down) until = std::min(until, next_alert(cluster->incident));
        for (const auto& [name, c] : cluster->connectors) {
            if (c.phase == WatchPhase::Held && !deferred_) until = std::min(until, c.next_probe);
            if (c.phase != WatchPhase::Healthy) until = std::min(until, next_alert(c.incident));
        }
    }
    return std::max<WatchClock::duration>(until - now, milliseconds(10));
}

void CdcWatchdog::stop() {
    int sig = interrupted_signal();
    std::vector<std::string> left;
    bool any = false;
    for (auto& cluster : clusters_)
        for (auto& [name, c] : cluster->connectors) {
            if (c.phase != WatchPhase::Held) continue;
            if (!any)
                log::info("cdc watch: signal ", sig,
                          ": stopping; resuming first the connectors the watchdog "
                          "paused whose source answers");
            any = true;
            if (deferred_) {
                left.push_back(c.who() + " (a backup or pause window holds CDC paused)");
                continue;
            }
            if (!probe_and_restart(*cluster, c, WatchClock::now(), true))
                left.push_back(c.who() + " (" + (c.trace.empty() ? c.state : c.trace) + ")");
        }
    save_journal();
    if (left.empty()) {
        log::info("cdc watch: stopped (signal ", sig, "); no connector is left paused by the watchdog");
    } else {
        std::string names;
        for (const auto& l : left) names += (names.empty() ? "" : ", ") + l;
        log::warn("cdc watch: stopped (signal ", sig,
                  "); left paused because their source does not answer: ", names,
                  "; the next watchdog takes them over (", (info_.backup_dir / kCdcWatchStateFile).string(),
                  ")");
    }
}

void CdcWatchdog::run() {
    adopt_journal();
    std::size_t named = 0;
    bool all = false;
    for (const auto& c : clusters_) {
        named += c->config.connectors.size();
        all = all || c->config.all_connectors;
    }
    const auto& w = config_.watch;
    log::info("cdc watch: watching ", all ? std::string("all") : std::to_string(named), " connector(s) on ",
              clusters_.size(), " Kafka Connect cluster(s): status every ", w.check_interval_s,
              " s, probes every ", w.probe_interval_s, " s, settle ", w.settle_s, " s, alert after ",
              w.max_wait_min, " min");
    while (!interrupted_signal()) {
        tick();
        const auto until = WatchClock::now() + sleep_for(WatchClock::now());
        while (!interrupted_signal() && WatchClock::now() < until)
            std::this_thread::sleep_for(
                std::min<WatchClock::duration>(until - WatchClock::now(), milliseconds(100)));
    }
    stop();
}

}  // namespace nightjar::cdc
