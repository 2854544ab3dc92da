#include "run.hpp"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "nightjar/cdc/coordinator.hpp"
#include "nightjar/cdc/state_file.hpp"
#include "nightjar/cdc/window.hpp"
#include "nightjar/components/registry.hpp"
#include "nightjar/core/clock.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/failpoint.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/core/progress.hpp"
#include "nightjar/core/signals.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/prune.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/run/config.hpp"
#include "nightjar/run/hooks.hpp"
#include "nightjar/run/monitoring.hpp"

namespace nightjar {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string host_name() {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    return buf;
}

void setup_logging(const BackupOptions& options) {
    log::configure({.min_level = log::Level::Info,
                    .format = options.log_format == "json" ? log::Format::Json : log::Format::Text,
                    .quiet = options.quiet});
    if (!options.log_file.empty()) log::set_file(options.log_file);
}

fs::path resolve_backup_dir(const BackupOptions& options, const Config& config) {
    fs::path dir = !options.backup_dir.empty() ? fs::path(options.backup_dir) : config.backup_dir;
    if (dir.empty())
        throw Error(Kind::Config, "config " + config.source.string() +
                                      ": /backup_dir: required field is missing (or pass --backup-dir)");
    return fs::absolute(dir);
}

// The nearest existing ancestor of `dir`: where a new backup dir would be created.
fs::path existing_ancestor(fs::path dir) {
    while (!dir.empty() && !fs::exists(dir) && dir != dir.root_path()) dir = dir.parent_path();
    return dir;
}

int dry_run(const BackupOptions& options, const Config& config, const fs::path& backup_dir,
            std::vector<std::unique_ptr<Component>>& components) {
    json summary{{"dry_run", true}, {"backup_dir", backup_dir.string()}, {"components", json::array()}};
    std::uint64_t estimate = 0;
    bool source_problem = false, storage_problem = false;
    for (auto& c : components) {
        CheckReport r = c->check();
        for (auto& line : r.plan) log::info("plan: ", line);
        for (auto& w : r.warnings) log::warn(c->kind(), ": ", w);
        for (auto& p : r.problems) log::error(c->kind(), ": ", p);
        source_problem = source_problem || !r.problems.empty();
        estimate += r.estimated_bytes;
        summary["components"].push_back({{"kind", c->kind()},
                                         {"plan", r.plan},
                                         {"problems", r.problems},
                                         {"warnings", r.warnings},
                                         {"estimated_bytes", r.estimated_bytes}});
    }
    if (config.cdc && !options.skip_cdc) {
        CdcCoordinator cdc(*config.cdc, {.backup_dir = backup_dir, .backup_id = ""});
        CdcCheckReport r = cdc.check();
        for (auto& line : r.lines) log::info("plan: ", line);
        for (auto& w : r.warnings) log::warn(w);
        for (auto& p : r.problems) log::error(p);
        source_problem = source_problem || !r.problems.empty();
        summary["cdc"] = {{"clusters", r.summary}, {"problems", r.problems}, {"warnings", r.warnings}};
    } else if (config.cdc) {
        log::info("plan: cdc: --skip-cdc: no connector would be paused");
        summary["cdc"] = {{"mode", "skipped"}};
    }
    // Hooks: each argv[0] found and executable, as the real run would spawn it.
    std::vector<std::string> hook_problems = check_hooks(config.hooks);
    for (const auto& p : hook_problems) log::error(p);
    if (!hook_problems.empty()) summary["hook_problems"] = hook_problems;
    // Monitoring: the metrics file's directory exists and is writable; the ping is only reported.
    std::vector<std::string> monitoring_problems;
    if (!config.monitoring.metrics_file.empty()) {
        fs::path dir = config.monitoring.metrics_file.parent_path();
        std::error_code ec;
        if (!fs::is_directory(dir, ec))
            monitoring_problems.push_back("monitoring: /monitoring/metrics_file: the directory " +
                                          dir.string() + " does not exist: create it or fix the path");
        else if (::access(dir.c_str(), W_OK | X_OK) != 0)
            monitoring_problems.push_back("monitoring: /monitoring/metrics_file: the directory " +
                                          dir.string() +
                                          " is not writable by this user: fix its permissions or the path");
        else
            log::info("plan: monitoring: metrics to ", config.monitoring.metrics_file.string());
    }
    for (const auto& p : monitoring_problems) log::error(p);
    if (!monitoring_problems.empty()) summary["monitoring_problems"] = monitoring_problems;
    if (!config.monitoring.ping_url.empty()) {
        log::info("plan: monitoring: the run would ping ", config.monitoring.ping_url, "/start, then ",
                  config.monitoring.ping_url, " or ", config.monitoring.ping_url,
                  "/fail (a dry run sends nothing)");
        summary["ping_url"] = config.monitoring.ping_url;
    }
    fs::path probe = existing_ancestor(backup_dir);
    std::string storage_msg;
    struct statvfs vfs {};
    if (::access(probe.c_str(), W_OK) != 0) {
        storage_msg = "backup dir is not writable: " + probe.string();
    } else if (::statvfs(probe.c_str(), &vfs) == 0) {
        std::uint64_t free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
        summary["free_bytes"] = free_bytes;
        log::info("plan: backup dir ", backup_dir.string(), " has ", log::human_bytes(free_bytes),
                  " free; this backup needs at most ", log::human_bytes(estimate), " before compression");
        if (free_bytes < estimate)
            storage_msg = "not enough free space in " + probe.string() + ": " + log::human_bytes(free_bytes) +
                          " free, up to " + log::human_bytes(estimate) + " needed";
    }
    if (!storage_msg.empty()) {
        storage_problem = true;
        log::error(storage_msg);
        summary["storage_problem"] = storage_msg;
    }
    summary["estimated_bytes"] = estimate;
    const bool config_problem = !hook_problems.empty() || !monitoring_problems.empty();
    summary["ok"] = !source_problem && !storage_problem && !config_problem;
    if (options.json) std::cout << summary.dump(2) << std::endl;
    if (source_problem) return exit_code(Kind::SourceUnavailable);
    if (storage_problem) return exit_code(Kind::Storage);
    if (config_problem) return exit_code(Kind::Config);
    log::info("dry run: everything checks out; nothing was written");
    return 0;
}

// "name (url): reason" entries; connectors that failed for the same reason are named once with a count.
Error cdc_resume_error(const std::vector<std::string>& failures) {
    std::vector<std::pair<std::string, std::vector<std::string>>> by_reason;
    for (const auto& f : failures) {
        std::size_t cut = f.find("): ");
        std::string who = cut == std::string::npos ? f : f.substr(0, cut + 1);
        std::string why = cut == std::string::npos ? "" : f.substr(cut + 3);
        const std::string own = "/connectors/" + who.substr(0, who.find(" (")) + "/";
        for (std::size_t at; (at = why.find(own)) != std::string::npos;)
            why.replace(at, own.size(), "/connectors/{name}/");
        auto it =
            std::find_if(by_reason.begin(), by_reason.end(), [&](const auto& r) { return r.first == why; });
        if (it == by_reason.end()) it = by_reason.insert(by_reason.end(), {why, {}});
        it->second.push_back(who);
    }
    std::string list;
    for (const auto& [why, names] : by_reason) {
        std::string who;
        for (const auto& n : names) who += (who.empty() ? "" : ", ") + n;
        std::string entry =
            names.size() == 1 ? who : std::to_string(names.size()) + " connectors (" + who + ")";
        list += (list.empty() ? "" : "; ") + entry + (why.empty() ? "" : ": " + why);
    }
    return Error(Kind::CdcResume,
                 "cdc: connectors may still be paused or are FAILED after the resume: " + list +
                     ": resume them by hand (PUT <url>/connectors/<name>/resume) or run "
                     "nightjar-backup --resume-cdc");
}

// --resume-cdc: resume what the state file names, under the repository lock so a running backup's own
// pause is never undone.
int resume_cdc_only(const Config& config, const fs::path& backup_dir) {
    install_interrupt_handlers();
    PosixStorage storage(backup_dir, storage_modes(config.repository.mode));
    RepositoryWriter repo(storage);
    Lock lock = repo.lock();
    const CdcConfig cdc_config = config.cdc.value_or(CdcConfig{});
    std::optional<CdcPauseState> state;
    try {
        state = read_cdc_journal(cdc_config, backup_dir);  // host-wide, whatever --backup-dir says
    } catch (const CdcStateDamaged&) {
        state = CdcPauseState{.connectors = {{}}};  // heal_previous() moves it aside and alerts
    }
    if (!state || state->connectors.empty()) {
        log::info("cdc: no state file in ", cdc_journal_file(cdc_config).string(),
                  ": nothing was left paused");
        return 0;
    }
    if (state->owner == "window" && !window_expired(*state, unix_now())) {
        log::info("cdc: the connectors in ", cdc_journal_file(cdc_config).string(),
                  " are held by a pause window until ", state->window_until.value_or("?"),
                  ": left paused (end it early with nightjar-backup cdc resume)");
        return 0;
    }
    CdcCoordinator cdc(cdc_config, {.backup_dir = backup_dir, .backup_id = ""});
    cdc.heal_previous();
    if (!cdc.resume_failures().empty()) throw cdc_resume_error(cdc.resume_failures());
    log::info("cdc: every connector a previous run left paused is resumed");
    return 0;
}

std::string hook_status(const std::exception_ptr& failure, bool partial, bool cdc_failed) {
    if (cdc_failed) return "cdc-resume-failed";
    if (failure) {
        try {
            std::rethrow_exception(failure);
        } catch (const Error& e) {
            if (e.kind() == Kind::Interrupted) return "interrupted";
        } catch (...) {
        }
        return "failed";
    }
    return partial ? "partial" : "complete";
}

std::string error_text(const std::exception_ptr& failure) {
    if (!failure) return "";
    try {
        std::rethrow_exception(failure);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown error";
    }
}

// One backup into `repo` (whose lock the caller holds): CDC paused around the components, hooks, publication.
// Returns the exit code; fills `summary`.
int back_up(const BackupOptions& options, const Config& config, RepositoryWriter& repo,
            std::vector<std::unique_ptr<Component>>& components, json& summary) {
    const fs::path backup_dir = repo.storage().describe(".");  // a PosixStorage: its root
    const std::int64_t started = unix_now();
    Manifest manifest;
    manifest.id = repo.next_id(started);
    manifest.started_at = rfc3339_utc(started);
    manifest.host = host_name();
    manifest.nightjar_version = NIGHTJAR_VERSION;
    manifest.options = {{"skip", options.skipped_kinds()},
                        {"compression", {{"codec", "zstd"}, {"level", config.compression.level}}}};
    if (config.cdc) manifest.options["skip_cdc"] = options.skip_cdc;
    log::info("backup ", manifest.id, " into ", backup_dir.string());
    Staging staging = repo.begin(manifest.id, config.compression);

    std::optional<CdcCoordinator> cdc;
    if (config.cdc && !options.skip_cdc) {
        cdc.emplace(*config.cdc, CdcRunInfo{.backup_dir = backup_dir, .backup_id = manifest.id});
    } else if (config.cdc) {
        if (!options.quiet)
            log::warn("cdc: --skip-cdc: connectors are neither paused nor resumed by this run");
        manifest.cdc = {{"mode", "skipped"}, {"paused", false}, {"reason", "--skip-cdc"}};
        if (auto left = read_cdc_journal(*config.cdc, backup_dir); left && !left->connectors.empty())
            log::warn("cdc: a previous run left ", left->connectors.size(),
                      " connector(s) paused; --skip-cdc leaves them so: run nightjar-backup --resume-cdc");
    }
    HookEnvironment hook_env{.backup_id = manifest.id,
                             .backup_dir = backup_dir.string(),
                             .status = "running",
                             .manifest = (backup_dir / manifest_file_name(manifest.id)).string(),
                             .error = ""};
    json hook_runs = json::array();
    auto run_stage = [&](std::string_view stage, const std::vector<HookCommand>& commands, HookRunOptions o) {
        auto runs = run_hooks(stage, commands, hook_env, o);
        for (const auto& r : runs) hook_runs.push_back(r.to_json());
        return runs;
    };

    Progress progress;
    DumpContext context{
        .check_interrupted = [] { check_interrupted(); },
        .progress = [&progress](const std::string& label, std::uint64_t n) { progress.update(label, n); }};
    summary["id"] = manifest.id;
    int failed = 0;
    std::exception_ptr failure;
    try {
        if (cdc) {
            cdc->heal_previous();
            cdc->pause();
        }
        check_interrupted();
        for (const auto& r : run_stage("before_backup", config.hooks.before_backup,
                                       {.stop_at_failure = true, .interruptible = true})) {
            check_interrupted();
            if (!r.ok())
                throw Error(Kind::SourceUnavailable,
                            "hook before_backup: " + r.argv.at(0) + " failed with exit code " +
                                std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") +
                                ": the backup was not started; see the hook's output above");
        }
        std::optional<Error> first_failure;
        for (auto& c : components) {
            check_interrupted();
            auto t0 = std::chrono::steady_clock::now();
            ComponentResult result{std::string(c->kind()), "ok", "", json::object()};
            std::uint64_t stored = 0;
            try {
                DumpResult dump = c->dump(context, staging);
                progress.done();
                for (auto& w : dump.warnings) log::warn(c->kind(), ": ", w);
                for (auto& a : dump.artifacts) {
                    stored += a.size;
                    log::info(c->kind(), ": ", a.name, " ", log::human_bytes(a.content_size), " -> ",
                              log::human_bytes(a.size), " sha256 ", a.sha256.substr(0, 16), "...");
                    manifest.artifacts.push_back(std::move(a));
                }
                result.details = std::move(dump.details);
                if (!dump.failures.empty()) {
                    // Some parts failed (one database of several): the component failed; its other
                    // artifacts stay.
                    for (auto& f : dump.failures) log::error(f);
                    result.status = "failed";
                    result.error = dump.failures.front();
                    for (std::size_t i = 1; i < dump.failures.size(); ++i)
                        result.error += "; " + dump.failures[i];
                    ++failed;
                    if (!first_failure) first_failure = Error(Kind::SourceUnavailable, dump.failures.front());
                }
            } catch (const Error& e) {
                progress.done();
                // A signal or a failing backup dir ends the whole run; a failing source only its component.
                if (e.kind() == Kind::Interrupted || e.kind() == Kind::Storage || e.kind() == Kind::Internal)
                    throw;
                if (c->fail_fast()) {
                    log::error(c->kind(),
                               ": fail_fast is set: the backup stops here and nothing is published");
                    throw;
                }
                log::error(e.what());
                result.status = "failed";
                result.error = e.what();
                ++failed;
                if (!first_failure) first_failure = e;
            }
            double secs = log::round_seconds(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            json row{{"kind", result.kind},
                     {"status", result.status},
                     {"stored_bytes", stored},
                     {"seconds", secs}};
            if (!result.error.empty()) row["error"] = result.error;
            summary["components"].push_back(std::move(row));
            manifest.components.push_back(std::move(result));
        }
        check_interrupted();
        if (failed == static_cast<int>(components.size()) && manifest.artifacts.empty()) {
            log::error("every component failed: nothing was published");
            throw *first_failure;
        }
    } catch (...) {
        failure = std::current_exception();
    }

    // Every way out passes here: resume exactly what this run paused, before hooks, publication or exit.
    if (cdc) {
        cdc->resume();
        manifest.cdc = cdc->record();
        summary["cdc"] = manifest.cdc;
    }
    const bool cdc_failed = cdc && !cdc->resume_failures().empty();
    std::optional<Error> cdc_error;
    if (cdc_failed) cdc_error = cdc_resume_error(cdc->resume_failures());
    if (!failure && interrupted_signal()) {
        try {
            check_interrupted();
        } catch (...) {
            failure = std::current_exception();
        }
    }
    hook_env.status = hook_status(failure, failed > 0, cdc_failed);
    hook_env.error = cdc_error ? cdc_error->what() : error_text(failure);
    // on_error first (it pages), then after_backup; both before publication so the manifest records them.
    if (failure || failed > 0 || cdc_failed) run_stage("on_error", config.hooks.on_error, {});
    run_stage("after_backup", config.hooks.after_backup, {});
    if (!config.hooks.empty()) {
        manifest.hooks = hook_runs;
        summary["hooks"] = hook_runs;
    }

    if (failure) {
        if (cdc_error) {
            log::error(error_text(failure));
            throw *cdc_error;
        }
        std::rethrow_exception(failure);
    }
    manifest.status = failed > 0 ? "partial" : "complete";
    manifest.finished_at = rfc3339_utc(unix_now());
    repo.publish(std::move(staging), manifest);
    summary["status"] = manifest.status;
    if (failed > 0) {
        std::string list;
        for (const auto& c : manifest.components)
            if (c.status != "ok") list += (list.empty() ? "" : "; ") + c.kind + ": " + c.error;
        summary["error"] = "backup " + manifest.id + " published as partial: " + list;
    }
    summary["stored_bytes"] = manifest.stored_bytes();
    summary["manifest"] = (backup_dir / manifest_file_name(manifest.id)).string();
    for (auto& c : summary["components"])
        log::info("summary: ", c["kind"].get<std::string>(), " ", c["status"].get<std::string>(), " ",
                  log::human_bytes(c["stored_bytes"].get<std::uint64_t>()), " in ",
                  log::seconds(c["seconds"].get<double>()), " s");
    log::info("published ", manifest_file_name(manifest.id), " (", manifest.status, ", ",
              log::human_bytes(manifest.stored_bytes()), ")");
    // after_publish: the manifest exists now (the off-site copy's place). A failure makes the exit non-zero
    // (6) but never unpublishes.
    if (!cdc_failed) hook_env.status = manifest.status;
    std::string hook_failure;
    for (const auto& r : run_stage("after_publish", config.hooks.after_publish, {}))
        if (!r.ok() && hook_failure.empty())
            hook_failure = "hook after_publish: " + r.argv.at(0) +
                           (r.timed_out ? std::string(" timed out")
                                        : " failed with exit code " + std::to_string(r.exit_code)) +
                           ": backup " + manifest.id + " is published and stays; see the hook's output above";
    if (!config.hooks.after_publish.empty()) summary["hooks"] = hook_runs;
    if (cdc_error) throw *cdc_error;
    if (!hook_failure.empty()) {
        log::error(hook_failure);
        summary["error"] = summary.contains("error")
                               ? summary["error"].get<std::string>() + "; " + hook_failure
                               : hook_failure;
        return exit_code(Kind::Partial);
    }
    return failed > 0 ? exit_code(Kind::Partial) : 0;
}

int prune_only(const BackupOptions& options, const Config& config, const fs::path& backup_dir) {
    RetentionPolicy policy = options.retention(config.retention);
    PosixStorage storage(backup_dir, storage_modes(config.repository.mode));
    RepositoryWriter repo(storage);
    std::optional<Lock> lock;
    if (!options.dry_run) lock.emplace(repo.lock());
    if (policy.empty()) log::warn("prune: no retention policy configured: every backup is kept");
    PruneResult r = prune(repo, policy, unix_now(), options.dry_run);
    json summary{
        {"dry_run", options.dry_run}, {"kept", r.kept}, {"deleted", r.deleted}, {"backups", json::array()}};
    for (const auto& d : r.decisions)
        summary["backups"].push_back({{"id", d.id}, {"keep", d.keep}, {"reasons", d.reasons}});
    if (options.json) std::cout << summary.dump(2) << std::endl;
    return 0;
}

// Pings and metrics at the end of a run, whatever its outcome. Never throws.
void report_run(const Config& config, const fs::path& backup_dir, std::int64_t started, int code,
                const json& summary) {
    Pinger pinger(config.monitoring);
    std::string text = summary.dump();
    if (code == 0)
        pinger.success(text);
    else
        pinger.failure(text);
    if (config.monitoring.metrics_file.empty()) return;
    try {
        RunMetrics m;
        m.finished_at = unix_now();
        m.duration_s = static_cast<double>(m.finished_at - started);
        m.exit_code = code;
        if (summary.contains("components"))
            for (const auto& c : summary["components"])
                m.component_bytes[c["kind"].get<std::string>()] += c["stored_bytes"].get<std::uint64_t>();
        PosixStorage storage(backup_dir, storage_modes(config.repository.mode));
        m.backups_kept = RepositoryReader(storage).list().size();
        write_metrics(config.monitoring.metrics_file, m);
    } catch (const std::exception& e) {
        log::warn("monitoring: cannot write metrics file ", config.monitoring.metrics_file.string(), ": ",
                  e.what());
    }
}

}  // namespace

int run_backup(const BackupOptions& options) {
    setup_logging(options);
    Config config = load_config(options.config);
    if (options.compression_level > 0) config.compression.level = options.compression_level;
    if (config.postgres) config.postgres->override_endpoint(options.db_host, options.db_port);
    if (!options.redis_host.empty() || options.redis_port > 0) {
        if (!config.redis) config.redis.emplace();
        if (!options.redis_host.empty()) config.redis->endpoint.host = options.redis_host;
        if (options.redis_port > 0) config.redis->endpoint.port = options.redis_port;
    }
    fs::path backup_dir = resolve_backup_dir(options, config);
    if (options.resume_cdc) return resume_cdc_only(config, backup_dir);
    if (options.prune_only) return prune_only(options, config, backup_dir);
    auto components = make_components(config, options.skipped_kinds());
    if (components.empty())
        throw Error(Kind::Config, "config " + config.source.string() +
                                      ": nothing to back up (no component configured, or all skipped)");
    if (options.dry_run) return dry_run(options, config, backup_dir, components);

    install_interrupt_handlers();
    const std::int64_t started = unix_now();
    Pinger(config.monitoring).start();
    json summary{{"backup_dir", backup_dir.string()}, {"components", json::array()}};
    int code = 0;
    try {
        PosixStorage storage(backup_dir, storage_modes(config.repository.mode));
        RepositoryWriter repo(storage);
        Lock lock = repo.lock();
        failpoint("backup:locked");
        code = back_up(options, config, repo, components, summary);
        RetentionPolicy policy = options.retention(config.retention);
        if (!policy.empty()) {
            if (code == 0 || options.prune_on_failure) {
                // Never the backup this run has just published, whatever the policy says of it.
                PruneResult r = prune(repo, policy, unix_now(), false, 86400,
                                      {.keep_id = summary["id"].get<std::string>()});
                summary["pruned"] = r.deleted;
            } else {
                log::warn(
                    "prune: skipped because this run did not fully succeed (--prune-on-failure overrides)");
            }
        }
    } catch (const Error& e) {
        summary["error"] = e.what();
        summary["exit_code"] = exit_code(e);
        report_run(config, backup_dir, started, exit_code(e), summary);
        if (options.json) std::cout << summary.dump(2) << std::endl;
        throw;
    }
    summary["exit_code"] = code;
    report_run(config, backup_dir, started, code, summary);
    if (options.json) std::cout << summary.dump(2) << std::endl;
    return code;
}

}  // namespace nightjar
