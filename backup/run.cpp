#include "run.hpp"

#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "nightjar/component.hpp"
#include "nightjar/config.hpp"
#include "nightjar/error.hpp"
#include "nightjar/log.hpp"
#include "nightjar/manifest.hpp"
#include "nightjar/progress.hpp"
#include "nightjar/repository.hpp"
#include "nightjar/signals.hpp"

namespace nightjar {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string host_name() {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    return buf;
}

void setup_logging(const BackupOptions& options) {
    log::configure({.min_level = log::Level::Info, .format = log::Format::Text, .quiet = options.quiet});
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
    summary["ok"] = !source_problem && !storage_problem;
    if (options.json) std::cout << summary.dump(2) << std::endl;
    if (source_problem) return exit_code(Kind::SourceUnavailable);
    if (storage_problem) return exit_code(Kind::Storage);
    log::info("dry run: everything checks out; nothing was written");
    (void)config;
    return 0;
}

}  // namespace

int run_backup(const BackupOptions& options) {
    setup_logging(options);
    Config config = load_config(options.config);
    if (options.compression_level > 0) config.compression.level = options.compression_level;
    if (config.postgres) config.postgres->override_endpoint(options.db_host, options.db_port);
    fs::path backup_dir = resolve_backup_dir(options, config);
    auto components = make_components(config, options.skipped_kinds());
    if (components.empty())
        throw Error(Kind::Config, "config " + config.source.string() +
                                      ": nothing to back up (no component configured, or all skipped)");
    if (options.dry_run) return dry_run(options, config, backup_dir, components);

    install_interrupt_handlers();
    PosixStorage storage(backup_dir);
    RepositoryWriter repo(storage);
    Lock lock = repo.lock();
    const std::int64_t started = now_seconds();
    Manifest manifest;
    manifest.id = repo.next_id(started);
    manifest.started_at = rfc3339_utc(started);
    manifest.host = host_name();
    manifest.nightjar_version = NIGHTJAR_VERSION;
    manifest.options = {{"skip", options.skipped_kinds()},
                        {"compression", {{"codec", "zstd"}, {"level", config.compression.level}}}};
    log::info("backup ", manifest.id, " into ", backup_dir.string());
    Staging staging = repo.begin(manifest.id, config.compression);

    Progress progress;
    DumpContext context{.check_interrupted = [] { check_interrupted(); },
                        .progress = [&progress](const std::string& label, std::uint64_t n) {
                            progress.update(label, n);
                        }};
    json summary{{"id", manifest.id}, {"backup_dir", backup_dir.string()}, {"components", json::array()}};
    int failed = 0;
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
                // Some parts failed (one database of several): the component failed; its other artifacts
                // stay.
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
            if (e.kind() == Kind::Interrupted || e.kind() == Kind::Storage || e.kind() == Kind::Internal) throw;
            if (c->fail_fast()) {
                log::error(c->kind(), ": fail_fast is set: the backup stops here and nothing is published");
                throw;
            }
            log::error(e.what());
            result.status = "failed";
            result.error = e.what();
            ++failed;
            if (!first_failure) first_failure = e;
        }
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        summary["components"].push_back(
            {{"kind", result.kind}, {"status", result.status}, {"stored_bytes", stored}, {"seconds", secs}});
        manifest.components.push_back(std::move(result));
    }
    check_interrupted();
    if (failed == static_cast<int>(components.size()) && manifest.artifacts.empty()) {
        log::error("every component failed: nothing was published");
        throw *first_failure;
    }
    manifest.status = failed > 0 ? "partial" : "complete";
    manifest.finished_at = rfc3339_utc(now_seconds());
    repo.publish(std::move(staging), manifest);
    summary["status"] = manifest.status;
    summary["stored_bytes"] = manifest.stored_bytes();
    summary["manifest"] = (backup_dir / manifest_file_name(manifest.id)).string();
    for (auto& c : summary["components"])
        log::info("summary: ", c["kind"].get<std::string>(), " ", c["status"].get<std::string>(), " ",
                  log::human_bytes(c["stored_bytes"].get<std::uint64_t>()), " in ", c["seconds"].get<double>(), " s");
    log::info("published ", manifest_file_name(manifest.id), " (", manifest.status, ", ",
              log::human_bytes(manifest.stored_bytes()), ")");
    if (options.json) std::cout << summary.dump(2) << std::endl;
    return failed > 0 ? exit_code(Kind::Partial) : 0;
}

}  // namespace nightjar
