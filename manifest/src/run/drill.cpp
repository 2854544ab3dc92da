#include "nightjar/run/drill.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "nightjar/components/postgres/connection.hpp"
#include "nightjar/components/postgres/expectations.hpp"
#include "nightjar/components/redis/client.hpp"
#include "nightjar/components/redis/expectations.hpp"
#include "nightjar/core/clock.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/core/signals.hpp"
#include "nightjar/io/process.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/io/signing.hpp"
#include "nightjar/repo/drill_record.hpp"
#include "nightjar/run/monitoring.hpp"
#include "nightjar/run/repository_config.hpp"
#include "nightjar/run/restore_run.hpp"

namespace nightjar {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string host_name() {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    return buf;
}

std::string file_sha256(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return "";
    io::Sha256 h;
    std::vector<char> buf(1 << 16);
    while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0)
        h.update(io::as_bytes(std::string_view(buf.data(), static_cast<std::size_t>(in.gcount()))));
    return h.hex();
}

std::string from_hex(const std::string& h) {
    std::string out;
    for (std::size_t i = 0; i + 1 < h.size(); i += 2)
        out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
    return out;
}

std::string bytes_field(const json& e, const std::string& key) {
    if (e.contains(key + "_hex")) return from_hex(e.value(key + "_hex", ""));
    return e.value(key, "");
}

// Files: every entry the manifest lists, under the scratch dir, by type, digest and link target.
DrillCheck check_files(const Artifact& a, const fs::path& root) {
    DrillCheck c{"files " + a.name + ": entries", false, ""};
    const json entries = a.source.value("entries", json::array());
    std::size_t matched = 0;
    std::vector<std::string> wrong;
    for (const auto& e : entries) {
        const std::string path = bytes_field(e, "path");
        const fs::path p = root / fs::path(path).relative_path();
        const std::string type = e.value("type", "file");
        struct stat st {};
        std::string problem;
        if (::lstat(p.c_str(), &st) != 0)
            problem = "missing";
        else if (type == "file" && !S_ISREG(st.st_mode))
            problem = "not a regular file";
        else if (type == "file" && file_sha256(p) != e.value("sha256", ""))
            problem = "content differs from its recorded SHA-256";
        else if (type == "dir" && !S_ISDIR(st.st_mode))
            problem = "not a directory";
        else if (type == "symlink" &&
                 (!S_ISLNK(st.st_mode) || fs::read_symlink(p).string() != bytes_field(e, "target")))
            problem = "not a symlink to its recorded target";
        if (problem.empty())
            ++matched;
        else if (wrong.size() < 5)
            wrong.push_back(path + ": " + problem);
        else
            wrong.back() = "...";
    }
    c.ok = wrong.empty() && !entries.empty();
    c.detail = std::to_string(matched) + " of " + std::to_string(entries.size()) + " entries match";
    if (entries.empty()) c.detail = "the manifest lists no entries";
    for (const auto& w : wrong) c.detail += "; " + w;
    return c;
}

// `restored`: the restore's own report of the artifact; the row counts it made right after loading are
// reused (the same exact numbers: a second full scan of every table would only add time to the drill).
std::vector<DrillCheck> check_postgres(const Artifact& a, const drill::DrillServers& servers,
                                       const json& restored) {
    std::vector<DrillCheck> out;
    const std::string db = a.source.value("database", "");
    postgres::PgTarget target{{servers.pg_host(), servers.pg_port(), servers.pg_user(), ""}, db, 10, ""};
    postgres::CompareOptions options;
    if (restored.contains("table_rows") && restored["table_rows"].is_object())
        options.restored_rows = &restored["table_rows"];
    for (auto& c : postgres::compare_expectations(target, a.source, "postgres " + a.name, options))
        out.push_back({c.what, c.ok, c.detail});
    return out;
}

std::vector<DrillCheck> check_redis(const Artifact& a, const drill::DrillServers& servers) {
    std::vector<DrillCheck> out;
    if (!a.source.contains("expectations")) {
        out.push_back(
            {"redis " + a.name + ": expectations", false,
             "the manifest records no expectations for this snapshot (a backup taken before drills, or "
             "redis-server was missing at capture): nothing to compare the restore with"});
        return out;
    }
    try {
        redis::Connection conn(servers.redis_endpoint(), std::nullopt);
        const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
        for (auto& c : redis::compare_expectations(conn, a.source["expectations"], now_ms))
            out.push_back({c.what, c.ok, c.detail});
    } catch (const Error& e) {
        out.push_back({"redis " + a.name + ": connect", false, e.what()});
    }
    return out;
}

struct RestoreStep {
    bool ok = false;
    int exit_code = 0;
    std::string error;
    std::map<std::string, json> summaries;  // artifact name -> what its restore reported (RestoreReport)
};

// The one place that restores: "this backup's `kind` artifacts into these throwaway targets", through the
// library's RestoreRun (the same phases as nightjar-restore: select, prove, plan, apply, check) with every
// target named explicitly, so nothing configured or recorded in the manifest is ever written.
RestoreStep restore_into(const DrillRequest& request, const Manifest& manifest, const std::string& kind,
                         const drill::DrillServers& servers) {
    RestoreRequest r;
    r.backup_dir = request.backup_dir;
    r.config_file = request.config_file.string();
    r.backup = manifest.id;
    r.cdc = std::nullopt;  // throwaway servers: no Kafka Connect connector is ever held, resumed or replayed
    r.cdc_mode = "auto";
    r.encryption = request.encryption;
    for (const std::string k : {"files", "postgres", "redis"})
        if (k != kind) r.skip.push_back(k);
    r.target_root = servers.files_dir();
    if (kind == "postgres") {
        r.components.postgres.host = servers.pg_host();
        r.components.postgres.port = servers.pg_port();
        r.components.postgres.user = servers.pg_user();
    }
    if (kind == "redis") r.components.redis.target = servers.redis_endpoint();
    RestoreStep step;
    try {
        RestoreResult result = run_restore(r);
        for (const auto& a : result.artifacts)
            if (a.restore) step.summaries[a.name] = a.restore->summary;
        step.ok = result.ok && !result.error;
        step.exit_code = result.error ? exit_code(*result.error) : result.exit_code;
        if (step.ok && step.exit_code != 0) step.ok = false;
        if (!step.ok) {
            // The artifact's own words first (its proof, its error, its post-restore problems), then the
            // run's.
            std::string detail;
            for (const auto& a : result.artifacts) {
                if (a.verify && !a.verify->ok())
                    detail = a.name + ": " + std::string(verify_status_name(a.verify->status)) + " " +
                             a.verify->detail;
                else if (a.target_error)
                    detail = a.name + ": " + *a.target_error;
                else if (a.error)
                    detail = a.name + ": " + *a.error;
                else if (a.restore && !a.restore->problems.empty())
                    detail = a.name + ": " + a.restore->problems.front();
                if (!detail.empty()) break;
            }
            if (result.refusals && !result.refusals->empty() && detail.empty())
                detail = result.refusals->front();
            std::string run = result.error ? result.error->what() : "";
            step.error = "exit " + std::to_string(step.exit_code) + ": " +
                         (detail.empty() ? run
                          : run.empty()  ? detail
                                         : detail + " (" + run + ")");
        }
    } catch (const Error& e) {
        if (e.kind() == Kind::Interrupted) throw;
        step.ok = false;
        step.exit_code = exit_code(e);
        step.error = "exit " + std::to_string(step.exit_code) + ": " + e.what();
    }
    return step;
}

json check_json(const DrillCheck& c) {
    return {{"check", c.what}, {"ok", c.ok}, {"detail", c.detail}};
}

}  // namespace

DrillConfig parse_drill_config(const json& section, const std::string& what, const std::string& pointer) {
    JsonFields f(section, what, Kind::Config, pointer);
    if (!section.is_object()) f.fail("", "expected an object");
    f.only({"after_backup", "random_skip_days"});
    DrillConfig c;
    c.after_backup = f.boolean_or("after_backup", c.after_backup);
    c.random_skip_days = static_cast<int>(f.integer_or("random_skip_days", 0, 3650, c.random_skip_days));
    return c;
}

json DrillReport::to_json() const {
    json comps = json::array();
    for (const auto& c : components) {
        json checks = json::array();
        for (const auto& k : c.checks) checks.push_back(check_json(k));
        comps.push_back({{"component", c.component},
                         {"ok", c.ok},
                         {"error", c.error},
                         {"seconds", log::round_seconds(c.seconds)},
                         {"bytes", c.bytes},
                         {"stored_bytes", c.stored_bytes},
                         {"checks", checks}});
    }
    json j{{"backup_id", backup_id},
           {"ok", ok},
           {"reason", reason},
           {"exit_code", exit_code},
           {"started_at", started_at},
           {"finished_at", finished_at},
           {"rto_seconds", log::round_seconds(seconds)},
           {"wall_seconds", log::round_seconds(wall_seconds)},
           {"bytes", bytes},
           {"components", comps},
           {"tools", tools},
           {"host", host},
           {"record", record},
           {"cleaned", cleaned}};
    if (!signer.empty()) j["signer"] = signer;
    return j;
}

std::string select_drill_backup(const RepositoryReader& repo, const std::string& which, int skip_days,
                                std::int64_t now, std::uint64_t seed, const io::TrustedSigners* trusted) {
    if (which != "latest" && which != "random") return repo.find(which).id;
    std::vector<std::string> complete;
    for (const auto& ref : repo.list()) {
        try {
            if (repo.load(ref).status == "complete") complete.push_back(ref.id);
        } catch (const Error& e) {
            log::warn("drill: passing over backup ", ref.id, ": ", e.what());
        }
    }
    if (complete.empty())
        throw Error(Kind::Usage, "drill: no complete backup in " + repo.storage().describe(".") +
                                     ": nothing to drill (nightjar-restore --list shows the backups)");
    if (which == "latest") return complete.front();
    std::vector<std::string> candidates;
    std::string oldest_drilled;
    std::int64_t oldest_time = INT64_MAX;
    for (const auto& id : complete) {
        auto last = last_drill(repo.storage(), id, trusted);
        if (!last || !last->counts || last->time < now - std::int64_t{skip_days} * 86400)
            candidates.push_back(id);
        else if (last->time < oldest_time) {
            oldest_time = last->time;
            oldest_drilled = id;
        }
    }
    if (candidates.empty()) {
        log::info("drill: every complete backup was drilled in the last ", skip_days,
                  " days: drilling the least recently drilled one, ", oldest_drilled);
        return oldest_drilled;
    }
    std::mt19937_64 rng(
        seed != 0 ? seed
                  : static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()));
    std::uniform_int_distribution<std::size_t> pick(0, candidates.size() - 1);
    return candidates[pick(rng)];
}

DrillReport run_drill(const DrillRequest& request) {
    // SIGINT/SIGTERM unwind through the servers' destructors: stopped and removed.
    install_interrupt_handlers();
    const auto wall = Clock::now();
    DrillReport report;
    report.host = host_name();
    report.started_at = rfc3339_utc(unix_now());
    report.tools["nightjar"] = NIGHTJAR_VERSION;
    std::unique_ptr<Storage> repository = open_repository(request.backup_dir, request.config_file);
    Storage& storage = *repository;
    RepositoryReader repo(storage);
    repo.set_keys(repository_keys(request.encryption, false));
    // With encryption configured, records are signed with this host's key and only trusted ones count.
    std::optional<io::SigningKey> own_key;
    const io::SigningKey* signing_key = request.signing_key;
    io::TrustedSigners pinned;
    const io::TrustedSigners* trusted = request.trusted_signers;
    if (request.encryption && !signing_key) {
        try {
            bool created = false;
            own_key.emplace(io::SigningKey::load_or_create(request.encryption->signing_key_file, &created));
            if (created)
                log::warn("drill: created this host's signing key ",
                          request.encryption->signing_key_file.string(), "; pin its public key ",
                          own_key->public_key().str(),
                          " in encryption.trusted_hosts where drill records are read");
            signing_key = &*own_key;
        } catch (const Error& e) {
            log::warn("drill: the drill record will be unsigned: ", e.what());
        }
    }
    if (request.encryption && !trusted) {
        pinned = request.encryption->trusted_hosts;
        if (signing_key) pinned[host_name()].push_back(signing_key->public_key());
        trusted = &pinned;
    }
    report.backup_id = select_drill_backup(repo, request.which, request.random_skip_days, unix_now(),
                                           request.random_seed, trusted);
    log::info("drill: backup ", report.backup_id);

    auto fail = [&](int code, const std::string& reason) {
        if (report.ok || report.reason.empty()) {
            report.exit_code = code;
            report.reason = reason;
        }
        report.ok = false;
    };
    report.ok = true;

    std::optional<Manifest> manifest;
    try {
        manifest = repo.load(repo.find(report.backup_id));
    } catch (const Error& e) {
        fail(e.kind() == Kind::Verification ? 4 : 7, e.what());
    }

    // The components with artifacts that were captured (a component that failed at capture has nothing to
    // drill; a partial backup drills the rest).
    std::vector<std::string> kinds;
    if (manifest) {
        for (const std::string k : {"files", "postgres", "redis"}) {
            bool failed = false;
            for (const auto& c : manifest->components)
                if (c.kind == k && c.status == "failed") failed = true;
            bool has = std::any_of(manifest->artifacts.begin(), manifest->artifacts.end(),
                                   [&](const Artifact& a) { return a.component == k; });
            if (has && !failed) kinds.push_back(k);
            if (failed) log::warn("drill: component ", k, " failed at capture: not drilled");
        }
        if (kinds.empty()) fail(7, "backup " + manifest->id + " has no artifact to drill");
    }

    if (manifest && !kinds.empty()) {
        drill::ServerOptions so = request.servers;
        so.postgres = std::count(kinds.begin(), kinds.end(), "postgres") > 0;
        so.redis = std::count(kinds.begin(), kinds.end(), "redis") > 0;
        for (const auto& a : manifest->artifacts)
            if (a.component == "postgres" && a.source.contains("server_version_num") &&
                a.source["server_version_num"].is_number_integer())
                so.pg_major = a.source["server_version_num"].get<int>() / 10000;
        report.cleaned = drill::clean_stale(so.state_dir);
        for (const auto& line : report.cleaned) log::warn("drill: ", line);
        try {
            drill::DrillServers servers(so);
            if (so.postgres) {
                report.tools["postgres"] = servers.pg_version();
                report.tools["postgres_bin"] = servers.pg_bindir().string();
            }
            if (so.redis) report.tools["redis_server"] = servers.redis_version();
            for (const auto& kind : kinds) {
                check_interrupted();
                DrillComponent c;
                c.component = kind;
                for (const auto& a : manifest->artifacts)
                    if (a.component == kind) {
                        c.bytes += a.content_size;
                        c.stored_bytes += a.size;
                    }
                log::info("drill: restoring ", kind, " (", log::human_bytes(c.bytes),
                          ") into throwaway targets");
                const auto t = Clock::now();
                RestoreStep step = restore_into(request, *manifest, kind, servers);
                c.seconds = since(t);
                c.error = step.error;
                if (step.ok) {
                    for (const auto& a : manifest->artifacts) {
                        if (a.component != kind) continue;
                        if (kind == "files") c.checks.push_back(check_files(a, servers.files_dir()));
                        if (kind == "postgres" && a.source.contains("tables")) {
                            auto summary = step.summaries.find(a.name);
                            const json none = json::object();
                            for (auto& k : check_postgres(
                                     a, servers, summary != step.summaries.end() ? summary->second : none))
                                c.checks.push_back(std::move(k));
                        }
                        if (kind == "redis")
                            for (auto& k : check_redis(a, servers)) c.checks.push_back(std::move(k));
                    }
                }
                c.ok = step.ok && std::all_of(c.checks.begin(), c.checks.end(),
                                              [](const DrillCheck& k) { return k.ok; });
                if (!step.ok) fail(step.exit_code == 4 ? 4 : 7, kind + ": restore failed: " + step.error);
                for (const auto& k : c.checks) {
                    if (!k.ok) fail(7, k.what + ": " + k.detail);
                    log::info("drill: ", k.ok ? "ok   " : "FAIL ", k.what, ": ", k.detail);
                }
                report.seconds += c.seconds;
                report.bytes += c.bytes;
                report.components.push_back(std::move(c));
            }
            for (const auto& p : servers.stop()) fail(7, "drill cleanup: " + p);
        } catch (const Error& e) {
            if (e.kind() == Kind::Interrupted) throw;
            fail(e.kind() == Kind::Usage ? 2 : 3, e.what());
        }
    }

    report.finished_unix = unix_now();
    report.finished_at = rfc3339_utc(report.finished_unix);
    report.wall_seconds = since(wall);
    if (request.write_record && is_backup_id(report.backup_id)) {
        try {
            json record = report.to_json();
            if (signing_key) {
                sign_drill_record(record, *signing_key);
                report.signer = record["signer"];
            }
            report.record = write_drill_record(storage, report.backup_id, report.finished_unix, record);
        } catch (const Error& e) {
            log::warn("drill: cannot write the drill record: ", e.what());
            if (report.ok) fail(9, std::string("drill record: ") + e.what());
        }
    }
    if (!request.monitoring.metrics_file.empty()) {
        try {
            write_drill_metrics(request.monitoring.metrics_file, report);
        } catch (const Error& e) {
            log::warn("drill: cannot write the metrics: ", e.what());
        }
    }
    if (request.ping) {
        Pinger pinger(request.monitoring);
        if (report.ok)
            pinger.success(report.to_json().dump());
        else
            pinger.failure(report.to_json().dump());
    }
    const std::string verdict = "drill: backup " + report.backup_id + (report.ok ? " PASSED" : " FAILED") +
                                " in " + log::seconds(report.seconds) + " (RTO), " +
                                log::human_bytes(report.bytes) + (report.ok ? "" : ": " + report.reason);
    if (report.ok)
        log::info(verdict);
    else
        log::error(verdict);
    return report;
}

std::string render_drill_metrics(const DrillReport& r, std::int64_t last_success) {
    std::ostringstream out;
    auto gauge = [&](const char* name, const char* help) {
        out << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n";
    };
    gauge("nightjar_drill_last_success_timestamp_seconds",
          "Unix time of the last restore drill that passed.");
    out << "nightjar_drill_last_success_timestamp_seconds " << (r.ok ? r.finished_unix : last_success)
        << "\n";
    gauge("nightjar_drill_last_run_timestamp_seconds", "Unix time the last restore drill finished.");
    out << "nightjar_drill_last_run_timestamp_seconds " << r.finished_unix << "\n";
    gauge("nightjar_drill_status", "Exit code of the last restore drill (0 = passed).");
    out << "nightjar_drill_status " << r.exit_code << "\n";
    gauge("nightjar_drill_duration_seconds",
          "Recovery time of the last restore drill, per component and in total.");
    for (const auto& c : r.components)
        out << "nightjar_drill_duration_seconds{component=\"" << c.component << "\"} "
            << log::round_seconds(c.seconds) << "\n";
    out << "nightjar_drill_duration_seconds{component=\"total\"} " << log::round_seconds(r.seconds) << "\n";
    gauge("nightjar_drill_bytes", "Content bytes restored by the last restore drill, per component.");
    for (const auto& c : r.components)
        out << "nightjar_drill_bytes{component=\"" << c.component << "\"} " << c.bytes << "\n";
    return out.str();
}

std::string metric_lines_with_prefix(const fs::path& file, const std::string& prefix) {
    std::ifstream in(file);
    std::string out, line;
    while (std::getline(in, line)) {
        std::string name = line;
        if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) name = line.substr(7);
        if (name.rfind(prefix, 0) == 0) out += line + "\n";
    }
    return out;
}

void write_drill_metrics(const fs::path& file, const DrillReport& r) {
    // The last success carried over from the file when this drill failed; every other writer's lines kept.
    std::int64_t last_success = 0;
    {
        std::ifstream in(file);
        std::string line;
        const std::string key = "nightjar_drill_last_success_timestamp_seconds ";
        while (std::getline(in, line))
            if (line.rfind(key, 0) == 0) {
                try {
                    last_success = std::stoll(line.substr(key.size()));
                } catch (const std::exception&) {
                }
            }
    }
    std::string others;
    {
        std::ifstream in(file);
        std::string line;
        while (std::getline(in, line)) {
            std::string name = line;
            if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) name = line.substr(7);
            if (name.rfind("nightjar_drill_", 0) != 0) others += line + "\n";
        }
    }
    const std::string text = others + render_drill_metrics(r, last_success);
    PosixStorage dir(file.parent_path().empty() ? fs::path(".") : file.parent_path());
    auto out = dir.open_write(file.filename(), {.atomic = true, .sync = false, .mode = 0644});
    out->write(io::as_bytes(std::string_view(text)));
    out->finish();
}

}  // namespace nightjar
