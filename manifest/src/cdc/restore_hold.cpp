#include "nightjar/cdc/restore_hold.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <thread>

#include "nightjar/cdc/coordinator.hpp"
#include "nightjar/cdc/retry.hpp"
#include "nightjar/components/postgres/connection.hpp"
#include "nightjar/core/clock.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/core/log.hpp"

namespace nightjar::cdc {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

std::string now_rfc3339() {
    return rfc3339_utc(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

std::int64_t unix_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

milliseconds ms(double seconds) {
    return milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

std::string label(const std::string& name, const std::string& url) {
    return name + " (" + url + ")";
}

std::string path_of(const std::string& name, const std::string& rest = "") {
    return "/connectors/" + url_path_segment(name) + rest;
}

// A sink's offsets as Kafka Connect stores them: {"partition": {"kafka_topic", "kafka_partition"},
// "offset": {"kafka_offset"}} each.
bool kafka_offsets(const json& offsets) {
    if (!offsets.is_array() || offsets.empty()) return false;
    for (const auto& o : offsets) {
        if (!o.is_object() || !o.contains("partition") || !o.contains("offset")) return false;
        const auto& p = o["partition"];
        const auto& v = o["offset"];
        if (!p.is_object() || !p.contains("kafka_topic") || !p.contains("kafka_partition")) return false;
        if (!v.is_object() || !v.contains("kafka_offset") || !v["kafka_offset"].is_number_integer())
            return false;
    }
    return true;
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');) {
        auto b = item.find_first_not_of(" \t");
        auto e = item.find_last_not_of(" \t");
        if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    }
    return out;
}

std::string human_age(std::int64_t s) {
    if (s >= 86400) return std::to_string(s / 86400) + " d " + std::to_string(s % 86400 / 3600) + " h";
    if (s >= 3600) return std::to_string(s / 3600) + " h " + std::to_string(s % 3600 / 60) + " min";
    return std::to_string(s) + " s";
}

}  // namespace

// ---------------------------------------------------------------------------------------------- entry

json CdcRestoreEntry::to_json() const {
    json j{{"name", name},
           {"cluster", cluster},
           {"database", database.empty() ? json(nullptr) : json(database)},
           {"role", role},
           {"mode", mode},
           {"action", action},
           {"held_with", hold_with.empty() ? json(nullptr) : json(hold_with)},
           {"features",
            {{"stop", features.stop},
             {"offsets_read", features.offsets_read},
             {"offsets_write", features.offsets_write},
             {"evidence", features.evidence}}},
           {"status_before", status_before},
           {"offsets_before", offsets_before},
           {"offsets_recorded", offsets_recorded},
           {"offsets_after", offsets_after},
           {"final_state", final_status},
           {"calls", calls},
           {"warnings", warnings},
           {"needs_attention", needs_attention}};
    if (!manual_steps.empty()) j["manual_steps"] = manual_steps;
    if (!problem.empty()) j["problem"] = problem;
    return j;
}

std::vector<std::string> manual_replay_steps(const std::string& url, const std::string& name,
                                             const json& offsets) {
    std::vector<std::string> steps;
    steps.push_back("curl -X PUT " + url + path_of(name, "/stop"));
    std::string resets;
    if (kafka_offsets(offsets)) {
        for (const auto& o : offsets)
            steps.push_back("kafka-consumer-groups.sh --bootstrap-server <kafka> --group connect-" + name +
                            " --topic " + o["partition"]["kafka_topic"].get<std::string>() + ":" +
                            o["partition"]["kafka_partition"].dump() + " --reset-offsets --to-offset " +
                            o["offset"]["kafka_offset"].dump() + " --execute");
    } else {
        steps.push_back("(no Kafka offsets were recorded for " + name +
                        ": reset its consumer group connect-" + name +
                        " to the first offset after the backup time with kafka-consumer-groups.sh "
                        "--reset-offsets --to-datetime)");
    }
    steps.push_back("curl -X PUT " + url + path_of(name, "/resume"));
    return steps;
}

// ---------------------------------------------------------------------------------------------- hold

struct CdcRestoreHold::Cluster {
    KafkaConnectClusterConfig config;
    std::unique_ptr<KafkaConnectClient> client;
};

CdcRestoreHold::CdcRestoreHold(const CdcConfig& cdc, CdcRestoreConfig config, CdcRestoreRequest request)
    : cdc_(cdc), config_(std::move(config)), request_(std::move(request)) {
    for (const auto& c : cdc_.clusters) {
        auto cluster = std::make_unique<Cluster>();
        cluster->config = c;
        cluster->client = std::make_unique<KafkaConnectClient>(client_options(c));
        clusters_.push_back(std::move(cluster));
    }
}

CdcRestoreHold::~CdcRestoreHold() = default;

CdcRestoreHold::Cluster* CdcRestoreHold::cluster_for(const std::string& url) {
    if (clusters_.empty()) return nullptr;
    if (url.empty()) return clusters_.front().get();
    for (auto& c : clusters_)
        if (std::find(c->config.urls.begin(), c->config.urls.end(), url) != c->config.urls.end())
            return c.get();
    return nullptr;
}

json CdcRestoreHold::recorded_offsets(const std::string& name, const std::string& cluster) const {
    if (!request_.manifest_cdc.is_object() || !request_.manifest_cdc.contains("connectors")) return nullptr;
    for (const auto& c : request_.manifest_cdc["connectors"]) {
        if (!c.is_object() || c.value("name", "") != name) continue;
        if (!cluster.empty() && c.value("cluster", "") != cluster) continue;
        return c.value("offsets", json(nullptr));
    }
    return nullptr;
}

void CdcRestoreHold::plan() {
    if (planned_) return;
    planned_ = true;
    // Which connectors: the configured ones, else every connector the backup's manifest names.
    std::vector<CdcRestoreConnector> wanted = config_.connectors;
    if (wanted.empty() && request_.manifest_cdc.is_object() && request_.manifest_cdc.contains("connectors")) {
        for (const auto& c : request_.manifest_cdc["connectors"]) {
            if (!c.is_object() || !c.contains("name")) continue;
            CdcRestoreConnector r;
            r.name = c.value("name", "");
            r.cluster = c.value("cluster", "");
            r.topic_retention_s = config_.topic_retention_s;
            wanted.push_back(std::move(r));
        }
    }
    // Else the connectors the backup's config names (cdc.kafka_connect.connectors; "all": every one listed).
    if (wanted.empty()) {
        for (auto& c : clusters_) {
            std::vector<std::string> names = c->config.connectors;
            if (c->config.all_connectors) {
                try {
                    names = c->client->connectors();
                } catch (const KafkaConnectError& err) {
                    log::warn("cdc: cannot list the connectors of ", c->config.urls.at(0), ": ", err.what());
                }
            }
            for (const auto& n : names) {
                CdcRestoreConnector r;
                r.name = n;
                r.cluster = c->config.urls.at(0);
                r.topic_retention_s = config_.topic_retention_s;
                wanted.push_back(std::move(r));
            }
        }
    }
    for (auto& spec : wanted) {
        if (!spec.database.empty() && !request_.databases.empty() &&
            std::find(request_.databases.begin(), request_.databases.end(), spec.database) ==
                request_.databases.end())
            continue;  // belongs to a database this restore does not touch
        CdcRestoreEntry e;
        e.name = spec.name;
        e.database = spec.database;
        Cluster* cluster = cluster_for(spec.cluster);
        e.cluster = cluster ? cluster->config.urls.at(0) : spec.cluster;
        e.offsets_recorded = recorded_offsets(spec.name, e.cluster);
        if (!cluster) {
            e.action = "skipped";
            e.problem = "cluster " + spec.cluster + " is not in cdc.kafka_connect: nothing can hold it";
            entries_.push_back(std::move(e));
            specs_.push_back(spec);
            continue;
        }
        if (request_.renamed && !request_.cdc) {
            e.action = "skipped";
            e.mode = "none";
            e.warnings.push_back("restored under another name (--db-name): " + label(e.name, e.cluster) +
                                 " is left alone (pass --cdc=replay|reanchor|none to include it)");
            entries_.push_back(std::move(e));
            specs_.push_back(spec);
            continue;
        }
        KafkaConnectClient& client = *cluster->client;
        try {
            KafkaConnectStatus s = client.status(spec.name);
            e.status_before = s.to_json();
            e.info = client.info(spec.name);
            e.role = !spec.role.empty() ? spec.role : (s.type.empty() ? e.info.type : s.type);
            if (e.role != "sink" && e.role != "source") {
                e.warnings.push_back(
                    "Kafka Connect reports no type for it: taken as a source (set "
                    "cdc.restore.connectors[].role)");
                e.role = "source";
            }
            e.features = client.features(spec.name);
            if (s.state == "RUNNING" && !s.any_failed()) {
                e.action = "held";
                e.hold_with = e.features.stop ? "stop" : "pause";
            } else if (s.any_failed()) {
                e.action = "failed-left-alone";
                e.warnings.push_back("it is " + s.summary() + " (" + s.failure() +
                                     "): left alone, neither held nor resumed");
            } else {
                e.action = "left-alone";
                e.warnings.push_back("it is " + s.summary() +
                                     " (not by nightjar): left alone, neither held nor resumed");
            }
        } catch (const KafkaConnectError& err) {
            if (err.status() == 404 && !err.endpoint_unsupported()) {
                e.action = "not-found";
                e.warnings.push_back("no such connector on " + e.cluster + ": " + err.api_message());
            } else {
                e.action = "held";  // it may be running: hold() must hold it or fail
                e.problem = std::string("cannot read its status: ") + err.what();
            }
        }
        // The mode: --cdc, else its own, else cdc.restore.mode, else by role.
        std::string mode = request_.cdc                            ? *request_.cdc
                           : !spec.mode.empty()                    ? spec.mode
                           : !config_.mode.empty()                 ? config_.mode
                           : e.role == "sink" && !request_.renamed ? "replay"
                                                                   : "none";
        if (mode == "replay" && e.role == "source") {
            e.warnings.push_back(
                "replay applies to sink connectors: this source is re-anchored only with "
                "--cdc=reanchor; left as it was");
            mode = "none";
        } else if (mode == "reanchor" && e.role == "sink") {
            e.warnings.push_back(
                "reanchor applies to source connectors: this sink replays only with "
                "--cdc=replay; left as it was");
            mode = "none";
        }
        e.mode = mode;
        // What cannot be guaranteed, known before anything is touched.
        if (e.role == "sink" && mode == "replay") {
            if (!kafka_offsets(e.offsets_recorded)) {
                e.needs_attention = true;
                e.warnings.push_back(
                    "the manifest has no Kafka offsets for it (" +
                    (e.offsets_recorded.is_null() ? std::string("none recorded")
                                                  : e.offsets_recorded.dump()) +
                    "): it cannot be replayed from the backup's point; changes since the backup are missing "
                    "from the restored database");
            }
            if (e.info.config_value("insert.mode") == "insert")
                e.warnings.push_back(
                    "its insert.mode is \"insert\" (not idempotent): records applied twice "
                    "fail or duplicate rows; use insert.mode=upsert");
            if (!e.features.offsets_write && e.action == "held") {
                e.needs_attention = true;
                e.warnings.push_back(
                    "the worker cannot alter offsets (Kafka Connect older than 3.6: " + e.features.evidence +
                    "): the replay must be done by hand (manual_steps)");
                e.manual_steps = manual_replay_steps(e.cluster, e.name, e.offsets_recorded);
            }
            if (spec.topic_retention_s > 0 && request_.backup_time > 0) {
                std::int64_t age = unix_seconds() - request_.backup_time;
                if (static_cast<double>(age) > spec.topic_retention_s)
                    e.warnings.push_back("the backup is " + human_age(age) +
                                         " old, older than its topics' retention (" +
                                         human_age(static_cast<std::int64_t>(spec.topic_retention_s)) +
                                         "): records since the backup may already be deleted");
            }
        }
        if (e.role == "source" && mode == "reanchor" && spec.reanchor == "reset" &&
            !e.features.offsets_write && e.action == "held") {
            e.needs_attention = true;
            e.warnings.push_back(
                "the worker cannot reset offsets (Kafka Connect older than 3.6): recreate "
                "the connector under a new name, or use reanchor \"signal\"");
            e.manual_steps = {"curl -X DELETE " + e.cluster + path_of(e.name),
                              "curl -X POST -H 'Content-Type: application/json' " + e.cluster +
                                  "/connectors --data '{\"name\": \"" + e.name +
                                  "-2\", \"config\": <its config>}'"};
        }
        entries_.push_back(std::move(e));
        specs_.push_back(spec);
    }
}

std::vector<std::string> CdcRestoreHold::describe() {
    plan();
    std::vector<std::string> lines;
    if (entries_.empty()) lines.push_back("cdc: no connector belongs to the restored database(s)");
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        const auto& e = entries_[i];
        const auto& spec = specs_[i];
        std::string who = "cdc: " + label(e.name, e.cluster) + ": " + (e.role.empty() ? "?" : e.role) +
                          (e.database.empty() ? "" : " of database " + e.database) + ", mode " + e.mode;
        if (e.action != "held") {
            lines.push_back(who + ": " + e.action + (e.problem.empty() ? "" : ": " + e.problem));
        } else {
            lines.push_back(who + ": before the restore: PUT " + e.cluster +
                            path_of(e.name, "/" + e.hold_with) + ", then GET " + path_of(e.name, "/status") +
                            " until " + (e.hold_with == "stop" ? "STOPPED" : "PAUSED"));
            std::string after = who + ": after the restore: ";
            if (e.mode == "replay" && kafka_offsets(e.offsets_recorded) && e.features.offsets_write)
                after += "PATCH " + e.cluster + path_of(e.name, "/offsets") + " " +
                         json{{"offsets", e.offsets_recorded}}.dump() + ", ";
            if (e.mode == "reanchor") {
                if (spec.drop_slot)
                    after += "SELECT pg_drop_replication_slot('" +
                             (e.info.config_value("slot.name").empty() ? std::string("debezium")
                                                                       : e.info.config_value("slot.name")) +
                             "') if a leftover slot is inactive, ";
                if (spec.reanchor == "reset" && e.features.offsets_write)
                    after += "DELETE " + e.cluster + path_of(e.name, "/offsets") + ", ";
                if (spec.reanchor == "signal")
                    after += "INSERT an execute-snapshot signal into " + spec.signal_table + ", ";
            }
            after += "PUT " + e.cluster + path_of(e.name, "/resume") + ", then GET " +
                     path_of(e.name, "/status") + " until RUNNING";
            lines.push_back(after);
        }
        for (const auto& w : e.warnings)
            lines.push_back("cdc: " + label(e.name, e.cluster) + ": warning: " + w);
        for (const auto& s : e.manual_steps)
            lines.push_back("cdc: " + label(e.name, e.cluster) + ": by hand: " + s);
    }
    return lines;
}

void CdcRestoreHold::hold() {
    plan();
    CdcRunInfo info;
    info.backup_id = request_.backup_id;
    info.owner = "restore";
    journal_ = std::make_unique<CdcCoordinator>(cdc_, info);
    journal_->heal_previous();  // a previous restore or backup killed while holding connectors
    // What it resumed was STOPPED or PAUSED when plan() looked: plan again, so that it is held now.
    if (journal_->record().contains("resumed_from_previous_run")) {
        entries_.clear();
        specs_.clear();
        planned_ = false;
        plan();
    }
    std::vector<std::size_t> held;
    std::string failure;
    for (std::size_t i = 0; i < entries_.size() && failure.empty(); ++i) {
        auto& e = entries_[i];
        if (e.action != "held") continue;
        Cluster* cluster = cluster_for(e.cluster);
        PausedConnector p;
        p.urls = cluster->config.urls;
        if (cluster->config.auth) {
            p.user = cluster->config.auth->user;
            p.password_file = cluster->config.auth->password_file;
        }
        p.name = e.name;
        p.paused_at = now_rfc3339();
        journal_->journal_hold(p);
        std::string verb = e.hold_with.empty() ? "stop" : e.hold_with;
        auto deadline = SteadyClock::now() + ms(config_.hold_timeout_s);
        e.calls.push_back("PUT " + e.cluster + path_of(e.name, "/" + verb));
        try {
            retry_transient(
                [&] {
                    if (verb == "stop")
                        cluster->client->stop(e.name);
                    else
                        cluster->client->pause(e.name);
                },
                RetryOptions{.deadline = deadline,
                             .backoff = Backoff{.initial = ms(cdc_.retry.initial_backoff_s),
                                                .max = ms(cdc_.retry.max_backoff_s),
                                                .current = {}},
                             .interruptible = false,
                             .on_retry = {}});
            e.hold_with = verb;
            held.push_back(i);
        } catch (const KafkaConnectError& err) {
            if (verb == "stop" && err.endpoint_unsupported()) {
                e.calls.pop_back();
                // A worker older than 3.5 after all: pause instead.
                e.hold_with = "pause";
                --i;
                continue;
            }
            if (err.not_sent()) {
                journal_->journal_release(e.name, e.cluster);
                e.calls.pop_back();
            } else {
                held.push_back(i);  // the request may have landed: bring it back anyway
            }
            e.problem = "cannot " + verb + " it: " + err.what();
            failure = label(e.name, e.cluster) + ": " + e.problem;
            break;
        }
        log::info("cdc: ", verb, " requested for ", label(e.name, e.cluster), " for the restore");
        // Wait until it is held: STOPPED (no tasks) or PAUSED everywhere; FAILED writes nothing either.
        std::string target = verb == "stop" ? "STOPPED" : "PAUSED";
        Backoff wait{.initial = ms(0.1), .max = ms(cdc_.retry.max_backoff_s), .current = {}};
        std::string last;
        for (;;) {
            try {
                KafkaConnectStatus s = cluster->client->status(e.name);
                last = s.summary();
                if (s.settled_in(target) || s.any_failed()) break;
            } catch (const KafkaConnectError& err) {
                last = err.what();
            }
            if (SteadyClock::now() >= deadline) {
                e.problem = "still " + last + " " + std::to_string(config_.hold_timeout_s) + " s after the " +
                            verb + " (cdc.restore.hold_timeout_s)";
                failure = label(e.name, e.cluster) + ": " + e.problem;
                break;
            }
            sleep_within(wait.next(), deadline, false);
        }
        if (!failure.empty()) break;
        try {
            e.offsets_before = cluster->client->offsets(e.name).value_or(json("unavailable"));
        } catch (const KafkaConnectError& err) {
            e.offsets_before = std::string("unavailable: ") + err.what();
        }
        log::info("cdc: ", label(e.name, e.cluster), " is ", target, " while the restore writes");
    }
    if (failure.empty()) return;
    // Bring back what is held: nothing is restored while a connector may still write.
    for (auto& e : entries_)
        if (e.action == "held" && e.calls.empty()) e.action = "not-held";
    release_all_held("the hold failed");
    throw Error(Kind::SourceUnavailable,
                "cdc: cannot hold " + failure +
                    ": nothing was restored (a sink writing into a database being restored corrupts it): "
                    "check the Kafka Connect worker, or restore with --cdc=none after stopping it by hand");
}

void CdcRestoreHold::release_all_held(const std::string& why) {
    std::vector<PausedConnector> list;
    std::vector<std::size_t> index;
    released_.resize(entries_.size(), 0);
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        auto& e = entries_[i];
        if (e.action != "held" || e.calls.empty() || released_[i]) continue;
        released_[i] = 1;
        Cluster* cluster = cluster_for(e.cluster);
        PausedConnector p;
        p.urls = cluster->config.urls;
        if (cluster->config.auth) {
            p.user = cluster->config.auth->user;
            p.password_file = cluster->config.auth->password_file;
        }
        p.name = e.name;
        list.push_back(p);
        index.push_back(i);
        e.calls.push_back("PUT " + e.cluster + path_of(e.name, "/resume"));
    }
    if (list.empty()) return;
    log::info("cdc: resuming ", list.size(), " connector(s) (", why, ")");
    auto failures = journal_->resume_journalled(list);
    for (std::size_t k = 0; k < index.size(); ++k) {
        auto& e = entries_[index[k]];
        if (!failures[k].empty()) {
            e.problem = e.problem.empty() ? failures[k] : e.problem + "; " + failures[k];
            resume_failures_.push_back(label(e.name, e.cluster) + ": " + failures[k]);
        }
        try {
            e.final_status = cluster_for(e.cluster)->client->status(e.name).to_json();
        } catch (const KafkaConnectError& err) {
            e.final_status = std::string("unknown: ") + err.what();
        }
    }
}

void CdcRestoreHold::apply_replay(CdcRestoreEntry& e, KafkaConnectClient& client,
                                  const CdcRestoreConnector&) {
    const log::Scope field({{"connector", e.name}});
    if (!kafka_offsets(e.offsets_recorded) || !e.features.offsets_write || e.hold_with != "stop") {
        if (!e.manual_steps.empty()) {
            log::error("cdc: ", label(e.name, e.cluster),
                       ": the worker cannot alter offsets (older than 3.6): replay by hand, in this order:");
            for (const auto& s : e.manual_steps) log::error("cdc:   ", s);
        }
        return;
    }
    try {
        std::string message = client.alter_offsets(e.name, e.offsets_recorded);
        e.calls.push_back("PATCH " + e.cluster + path_of(e.name, "/offsets") + " " +
                          json{{"offsets", e.offsets_recorded}}.dump());
        log::info("cdc: ", label(e.name, e.cluster), ": offsets set to those of the backup (",
                  e.offsets_recorded.dump(), "): ", message);
        e.offsets_after = client.offsets(e.name).value_or(json("unavailable"));
    } catch (const KafkaConnectError& err) {
        e.needs_attention = true;
        e.problem = std::string("cannot set its offsets: ") + err.what();
        e.manual_steps = manual_replay_steps(e.cluster, e.name, e.offsets_recorded);
        log::error("cdc: ", label(e.name, e.cluster), ": ", e.problem);
    }
}

void CdcRestoreHold::apply_reanchor(CdcRestoreEntry& e, KafkaConnectClient& client,
                                    const CdcRestoreConnector& spec) {
    const log::Scope field({{"connector", e.name}});
    std::unique_ptr<postgres::PgConnection> db;
    auto connect = [&]() -> postgres::PgConnection* {
        if (db) return db.get();
        if (!request_.connect) throw Error(Kind::Config, "no connection to the restored database was given");
        std::string database = e.database.empty() ? e.info.config_value("database.dbname") : e.database;
        db = request_.connect(database);
        return db.get();
    };
    try {
        if (spec.drop_slot) {
            std::string slot = e.info.config_value("slot.name");
            if (slot.empty()) slot = "debezium";  // Debezium's default slot.name
            postgres::PgResult r = connect()->exec(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = $1 AND NOT active",
                {slot});
            e.calls.push_back("SQL pg_drop_replication_slot('" + slot + "') (" + std::to_string(r.rows()) +
                              " dropped)");
            log::info("cdc: ", label(e.name, e.cluster), ": leftover slot ", slot,
                      r.rows() ? " dropped" : " not found (nothing to drop)");
        }
        if (spec.reanchor == "reset") {
            if (!e.features.offsets_write || e.hold_with != "stop") return;  // manual_steps say what to do
            std::string message = client.reset_offsets(e.name);
            e.calls.push_back("DELETE " + e.cluster + path_of(e.name, "/offsets"));
            e.offsets_after = client.offsets(e.name).value_or(json("unavailable"));
            log::info("cdc: ", label(e.name, e.cluster), ": offsets reset (", message,
                      "): it snapshots afresh under its snapshot.mode (",
                      e.info.config_value("snapshot.mode").empty() ? "initial"
                                                                   : e.info.config_value("snapshot.mode"),
                      ")");
        } else {
            std::vector<std::string> tables = spec.tables;
            if (tables.empty()) tables = split_list(e.info.config_value("table.include.list"));
            if (tables.empty()) {
                e.needs_attention = true;
                e.problem = "no tables for the execute-snapshot signal: set cdc.restore.connectors[].tables";
                return;
            }
            postgres::PgConnection* c = connect();
            std::string table;
            {
                std::string t = spec.signal_table;
                auto dot = t.find('.');
                table = dot == std::string::npos
                            ? c->quote_ident(t)
                            : c->quote_ident(t.substr(0, dot)) + "." + c->quote_ident(t.substr(dot + 1));
            }
            json data{{"data-collections", tables}, {"type", "incremental"}};
            std::string id = "nightjar-" + request_.backup_id + "-" + std::to_string(unix_seconds());
            c->exec("INSERT INTO " + table + " (id, type, data) VALUES ($1, 'execute-snapshot', $2)",
                    {id, data.dump()});
            e.calls.push_back("SQL INSERT INTO " + spec.signal_table + " (id, type, data) VALUES ('" + id +
                              "', 'execute-snapshot', '" + data.dump() + "')");
            log::info("cdc: ", label(e.name, e.cluster), ": execute-snapshot signal written into ",
                      spec.signal_table, " for ", data["data-collections"].dump());
        }
    } catch (const Error& err) {
        e.needs_attention = true;
        e.problem = std::string("cannot re-anchor it: ") + err.what();
        log::error("cdc: ", label(e.name, e.cluster), ": ", e.problem);
    }
}

void CdcRestoreHold::say_out_of_step(CdcRestoreEntry& e) const {
    const log::Scope field({{"connector", e.name}});
    if (e.role == "sink")
        e.warnings.push_back(
            "out of step: its offsets are past the changes the restored database lacks "
            "(everything it applied since the backup); replay them with --cdc=replay");
    else
        e.warnings.push_back(
            "out of step: its stored offsets point into the WAL history before the restore "
            "and its slot may be gone; re-anchor it with --cdc=reanchor");
}

void CdcRestoreHold::bring_back(bool restored) {
    plan();
    if (!journal_) return;  // hold() was never called
    released_.resize(entries_.size(), 0);
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        auto& e = entries_[i];
        if (e.action != "held" || e.calls.empty() || released_[i]) continue;
        Cluster* cluster = cluster_for(e.cluster);
        if (!restored) {
            e.warnings.push_back("the restore did not complete: resumed without changing its offsets");
            continue;
        }
        if (e.mode == "replay")
            apply_replay(e, *cluster->client, specs_[i]);
        else if (e.mode == "reanchor")
            apply_reanchor(e, *cluster->client, specs_[i]);
        else
            say_out_of_step(e);
    }
    release_all_held(restored ? "the restore is done" : "the restore failed");
    for (const auto& e : entries_) {
        for (const auto& w : e.warnings) log::warn("cdc: ", label(e.name, e.cluster), ": ", w);
        if (!e.final_status.is_null() && e.final_status.is_object())
            log::info("cdc: ", label(e.name, e.cluster), " ", e.mode, ": final state ",
                      e.final_status.value("state", "?"));
    }
}

void CdcRestoreHold::leave_alone() {
    plan();
    for (auto& e : entries_) {
        if (e.action != "held") continue;
        e.action = "left-alone";
        e.hold_with.clear();
        e.needs_attention = false;
        e.manual_steps.clear();
        e.warnings.push_back(
            "--cdc=none: neither stopped nor resumed; it kept running while the restore wrote");
        say_out_of_step(e);
        for (const auto& w : e.warnings) log::warn("cdc: ", label(e.name, e.cluster), ": ", w);
    }
}

int CdcRestoreHold::exit_code() const {
    if (!resume_failures_.empty() || (journal_ && !journal_->resume_failures().empty()))
        return nightjar::exit_code(Kind::CdcResume);
    for (const auto& e : entries_)
        if (e.needs_attention && e.action == "held") return nightjar::exit_code(Kind::Partial);
    return 0;
}

json CdcRestoreHold::report() const {
    json j{{"connectors", json::array()}, {"resume_failures", resume_failures_}};
    for (const auto& e : entries_) j["connectors"].push_back(e.to_json());
    if (journal_) {  // what a previous run had left held, resumed by hold() first
        json previous = journal_->record();
        if (previous.contains("resumed_from_previous_run"))
            j["resumed_from_previous_run"] = previous["resumed_from_previous_run"];
        for (const auto& f : journal_->resume_failures())  // the healing's (its own are in both lists)
            if (std::find(resume_failures_.begin(), resume_failures_.end(), f) == resume_failures_.end())
                j["resume_failures"].push_back(f);
    }
    return j;
}

}  // namespace nightjar::cdc
