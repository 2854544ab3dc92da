#include "run.hpp"

#include <algorithm>
#include <chrono>
#include <future>
#include <iostream>
#include <nlohmann/json.hpp>

#include "nightjar/components/component.hpp"
#include "nightjar/components/postgres/postgres_component.hpp"
#include "nightjar/core/clock.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/failpoint.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/core/progress.hpp"
#include "nightjar/core/signals.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/verify.hpp"
#include "nightjar/run/config.hpp"

namespace nightjar {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string age(std::int64_t seconds) {
    if (seconds < 0) return "?";
    if (seconds < 3600) return std::to_string(seconds / 60) + "m";
    if (seconds < 86400 * 2) return std::to_string(seconds / 3600) + "h";
    return std::to_string(seconds / 86400) + "d";
}

bool is_latest(const std::string& what) {
    return what == "latest" || what == "latest-any";
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
}

// Where the backups are: --backup-dir, else the directory of a manifest path, else the config's backup_dir.
fs::path resolve_backup_dir(const RestoreCliOptions& o) {
    if (!o.backup_dir.empty()) return fs::absolute(o.backup_dir);
    if (!o.backup.empty() && !is_latest(o.backup) && o.backup.find('/') != std::string::npos) {
        if (!fs::exists(o.backup))
            throw Error(Kind::Usage,
                        "backup not found: " + o.backup + ": no such manifest file: check the path");
        return fs::absolute(o.backup).parent_path();
    }
    if (const std::string config = o.config_file(); !config.empty()) {
        Config c = load_config(config);
        if (!c.backup_dir.empty()) return fs::absolute(c.backup_dir);
    }
    if (!o.backup.empty() && fs::exists(o.backup)) return fs::absolute(o.backup).parent_path();
    throw Error(Kind::Usage, "which backup dir? pass --backup-dir DIR, a manifest path, or --config FILE");
}

// Roles and tablespaces are restored with the databases, except in a side-by-side or partial restore
// (--db-name, --db), where they are left alone unless --globals asks for them.
bool restores_globals(const RestoreCliOptions& o) {
    if (o.skip_globals) return false;
    return !o.globals.empty() || (o.dbs.empty() && o.db_names.empty());
}

void apply_postgres_options(const RestoreCliOptions& o, const Manifest& manifest, RestoreOptions& ropts) {
    ropts.db_host = o.db_host;
    ropts.db_port = o.db_port;
    ropts.db_user = o.db_user;
    ropts.jobs = o.jobs;
    ropts.skip_globals = !restores_globals(o);
    ropts.globals_replace = o.globals == "replace";
    ropts.db_selected = o.dbs;
    for (const auto& spec : o.db_names) {
        auto pair = parse_rename(spec);
        if (!pair) throw Error(Kind::Usage, "--db-name " + spec + ": expected OLD=NEW");
        ropts.db_rename[pair->first] = pair->second;
    }
    check_pg_renames(manifest, ropts);
}

int list_backups(const RepositoryReader& repo, const RestoreCliOptions& o) {
    json out = json::array();
    const auto now = unix_now();
    if (!o.json) std::cout << "ID                  AGE    STATUS    SIZE        COMPONENTS\n";
    for (const auto& ref : repo.list()) {
        json row{{"id", ref.id}, {"manifest", ref.manifest}};
        std::string status, size, comps;
        try {
            Manifest m = repo.load(ref);
            status = m.status;
            size = log::human_bytes(m.stored_bytes());
            for (const auto& c : m.components)
                if (c.status != "skipped")
                    comps +=
                        (comps.empty() ? "" : ",") + c.kind + (c.status == "ok" ? "" : "(" + c.status + ")");
            row.update({{"status", m.status}, {"stored_bytes", m.stored_bytes()}, {"components", comps}});
        } catch (const std::exception& e) {
            // One bad manifest is that backup damaged, shown with the reason; the others are still listed.
            status = "damaged";
            comps = e.what();
            row.update({{"status", "damaged"}, {"error", e.what()}});
        }
        std::int64_t t = parse_backup_id_time(ref.id);
        row["age_seconds"] = now - t;
        out.push_back(row);
        if (!o.json) {
            char line[256];
            std::snprintf(line, sizeof line, "%-19s %-6s %-9s %-11s %s\n", ref.id.c_str(),
                          age(now - t).c_str(), status.c_str(), size.c_str(), comps.c_str());
            std::cout << line;
        }
    }
    if (o.json) std::cout << out.dump(2) << std::endl;
    return 0;
}

// The CLI's choices as the components read them.
RestoreOptions restore_options(const RestoreCliOptions& o, const Manifest& manifest) {
    RestoreOptions ropts;
    ropts.backup_id = manifest.id;
    if (!o.target_dir.empty()) ropts.target_dir = fs::absolute(o.target_dir);
    ropts.clean = o.clean;
    ropts.allow_special = o.allow_special;
    ropts.force = o.force;
    ropts.redis_flush = o.redis_flush || o.clean;
    ropts.redis_merge = o.redis_merge;
    ropts.redis_mode = !o.redis_mode.empty() ? o.redis_mode : o.redis_rdb_path.empty() ? "live" : "file";
    if (!o.redis_rdb_path.empty()) ropts.redis_rdb_path = fs::absolute(o.redis_rdb_path);
    // The target is the endpoint recorded in the manifest unless --redis-host/--redis-port override it; the
    // config's redis section gives only the credentials and renamed commands.
    ropts.redis_host = o.redis_host;
    ropts.redis_port = o.redis_port;
    const bool live_redis = ropts.redis_mode == "live" && !contains(o.skipped_kinds(), "redis") &&
                            std::any_of(manifest.artifacts.begin(), manifest.artifacts.end(),
                                        [](const Artifact& a) { return a.component == "redis"; });
    if (const std::string config = o.config_file(); live_redis && !config.empty()) {
        Config c = load_config(config);
        if (c.redis) ropts.redis_config = c.redis->endpoint;
    }
    apply_postgres_options(o, manifest, ropts);
    return ropts;
}

std::string skip_flag(const std::string& kind) {
    if (kind == "files") return "--skip-config";
    if (kind == "postgres") return "--skip-db";
    if (kind == "redis") return "--skip-redis";
    return "--skip-" + kind;
}

// `latest`: the newest complete backup; `latest-any`: the newest of any status; else an id or manifest name.
// A manifest that cannot be read is passed over by `latest` with a warning (--list names the reason).
std::pair<BackupRef, Manifest> choose_backup(const RepositoryReader& repo, const std::string& what,
                                             const fs::path& dir) {
    auto refs = repo.list();
    if (is_latest(what)) {
        if (refs.empty()) {
            BackupRef ref = repo.find("latest");  // throws: no published backup
            return {ref, repo.load(ref)};
        }
        std::string newest;
        for (const auto& ref : refs) {
            Manifest m;
            try {
                m = repo.load(ref);
            } catch (const Error& e) {
                if (e.kind() == Kind::Interrupted) throw;
                log::warn("passing over backup ", ref.id, ", which cannot be read: ", e.what());
                continue;
            }
            if (what == "latest-any" || m.status == "complete") return {ref, std::move(m)};
            if (newest.empty()) {
                newest = ref.id + " (" + m.status;
                for (const auto& c : m.components)
                    if (c.status == "failed") newest += ", " + c.kind + " failed";
                newest += ")";
            }
        }
        if (newest.empty())
            throw Error(Kind::Verification,
                        "no readable backup in " + dir.string() +
                            ": every manifest is damaged (nightjar-restore --list shows why)");
        throw Error(Kind::Usage,
                    "no complete backup in " + dir.string() + ": the newest is " + newest +
                        ": restore it with 'latest-any' or its id (and --skip-… for what failed)");
    }
    const std::string name = fs::path(what).filename().string();
    for (const auto& r : refs)
        if (r.id == name || r.manifest == name) return {r, repo.load(r)};
    throw Error(Kind::Usage, "backup not found: " + what + " (not a published manifest in " + dir.string() +
                                 "; nightjar-restore --list shows them)");
}

// A component that failed at capture has no (or an incomplete) backup: restoring the rest is an explicit
// choice (--skip-…), except a PostgreSQL database that failed alone and is not selected.
void refuse_failed_components(const Manifest& m, const std::vector<std::string>& skip,
                              const RestoreOptions& ropts) {
    for (const auto& c : m.components) {
        if (c.status != "failed" || contains(skip, c.kind)) continue;
        std::vector<std::string> parts;  // postgres: the databases (and pg-globals) that failed
        if (c.kind == "postgres" && c.details.is_object() && c.details.contains("databases") &&
            c.details["databases"].is_object())
            for (const auto& [name, d] : c.details["databases"].items())
                if (d.is_object() && d.value("status", "") == "failed") parts.push_back(name);
        bool matters = parts.empty();
        for (const auto& p : parts)
            matters =
                matters || (p == "pg-globals" ? !ropts.skip_globals
                                              : ropts.db_selected.empty() || contains(ropts.db_selected, p));
        if (!matters) {
            log::warn("backup ", m.id,
                      ": postgres failed at capture for what is not restored here: ", c.error);
            continue;
        }
        throw Error(Kind::Usage,
                    "backup " + m.id + " is " + m.status + ": component " + c.kind + " failed at capture (" +
                        (c.error.empty() ? "no reason recorded" : c.error) +
                        "), so it cannot be restored from this backup: pass " + skip_flag(c.kind) +
                        " to restore the rest" +
                        (c.kind == "postgres" ? ", or --db NAME for the databases that were dumped" : ""));
    }
}

// Where each selected artifact goes, printed before anything else the restore says.
std::string target_line(const Component& component, const Artifact& a, const RestoreOptions& ropts) {
    std::string t = component.describe_target(a, ropts);
    if (t.empty() && a.component == "files")
        t = ropts.target_dir
                ? "under " + ropts.target_dir->string() + " (--target-dir)"
                : "in place: the paths recorded in the manifest (--target-dir restores elsewhere)";
    return a.component + " " + a.name + " -> " + (t.empty() ? "(no target)" : t);
}

}  // namespace

int run_restore(const RestoreCliOptions& o) {
    log::configure({.min_level = log::Level::Info,
                    .format = o.log_format == "json" ? log::Format::Json : log::Format::Text,
                    .quiet = o.quiet});
    if (!o.log_file.empty()) log::set_file(o.log_file);
    if (!o.list && o.backup.empty())
        throw Error(Kind::Usage, "name a backup: a manifest path, a backup id, 'latest' or 'latest-any'");
    const fs::path backup_dir = resolve_backup_dir(o);
    PosixStorage disk(backup_dir);
    // Restore never writes into the backup dir: the read-only wrapper turns any attempt into an error.
    ReadOnlyStorage storage(disk);
    RepositoryReader repo(storage);
    if (o.list) return list_backups(repo, o);
    // Shared with other readers, exclusive with a prune's deletions: the backup cannot vanish mid-restore.
    Lock reading = lock_for_reading(
        disk.root(), {.limit_s = 60, .on_wait = [] { log::warn("waiting for a prune to finish deleting"); }});
    failpoint("restore:locked");

    Manifest manifest = choose_backup(repo, o.backup, backup_dir).second;
    log::info("backup ", manifest.id, " (", manifest.status, ", taken ", manifest.started_at, " on ",
              manifest.host, ")");
    auto skip = o.skipped_kinds();
    RestoreOptions ropts = restore_options(o, manifest);
    refuse_failed_components(manifest, skip, ropts);
    std::vector<const Artifact*> selected;
    bool globals_left = false;
    for (const auto& a : manifest.artifacts) {
        if (contains(skip, a.component)) continue;
        if (a.component == "postgres" && a.format == kPgGlobalsFormat && ropts.skip_globals) {
            globals_left = !o.skip_globals;
            continue;
        }
        if (a.component == "postgres" && !o.dbs.empty() && a.format == kPgDumpFormat &&
            !contains(o.dbs, pg_artifact_database(a)))
            continue;
        selected.push_back(&a);
    }
    if (globals_left)
        log::info(
            "postgres: roles and tablespaces (globals) are not restored: databases are selected (--db) or "
            "renamed (--db-name); --globals restores them too");
    if (selected.empty())
        throw Error(Kind::Usage, "nothing to restore: every artifact of " + manifest.id + " is skipped");

    ropts.reopen_content = [&repo](const Artifact& a) { return open_unchecked_content(repo, a); };
    json summary{{"id", manifest.id}, {"dry_run", o.dry_run}, {"artifacts", json::array()}};
    std::vector<std::unique_ptr<Component>> components;
    int bad = 0;
    Progress progress;
    // A streamed artifact's stored bytes are proven on a thread of their own, beside the start of its restore
    // (which reads ahead but writes nothing before `verified` has returned).
    std::vector<std::future<VerifyOutcome>> proving(selected.size());
    std::vector<bool> streamed(selected.size(), false);
    auto report_verify = [&](std::size_t i, const VerifyOutcome& v, bool streamed) {
        const Artifact* a = selected[i];
        if (v.ok())
            log::info("verify ", a->name, " (", a->path, "): OK",
                      streamed ? " (stored bytes; the content is proven as it is restored)" : "");
        else
            log::error("verify ", a->name, " (", a->path, "): ", verify_status_name(v.status), ": ",
                       v.detail);
        bad += v.ok() ? 0 : 1;
        summary["artifacts"][i]["verify"] = verify_status_name(v.status);
        summary["artifacts"][i]["detail"] = v.detail;
    };
    for (const Artifact* a : selected) components.push_back(make_restore_component(a->component, ropts));
    // The one rule, made visible: every component restores to the endpoint recorded in the manifest unless a
    // flag overrides it.
    for (std::size_t i = 0; i < selected.size(); ++i)
        log::info("target: ", target_line(*components[i], *selected[i], ropts));
    for (std::size_t i = 0; i < selected.size(); ++i) {
        const Artifact* a = selected[i];
        Component& component = *components[i];
        summary["artifacts"].push_back({{"name", a->name}, {"component", a->component}, {"path", a->path}});
        // A dry run checks each format in full. A real restore of a component that proves its content as it
        // applies it checks the stored bytes only, and decompresses once, in the restore.
        if (!o.dry_run && component.restores_while_verifying(*a)) {
            streamed[i] = true;
            proving[i] = std::async(std::launch::async, [&repo, a] { return verify_stored_bytes(repo, *a); });
            continue;
        }
        auto shown = [&progress, a](std::uint64_t n) { progress.update("verify " + a->name, n); };
        VerifyOutcome v = verify_artifact(repo, *a, component, shown);
        progress.done();
        report_verify(i, v, false);
    }
    // Waits for the proofs still running; true when every artifact passed.
    auto proven = [&] {
        for (std::size_t i = 0; i < selected.size(); ++i)
            if (proving[i].valid()) report_verify(i, proving[i].get(), true);
        return bad == 0;
    };
    auto unproven = [&] {
        summary["ok"] = false;
        if (o.json) std::cout << summary.dump(2) << std::endl;
        return Error(Kind::Verification, std::to_string(bad) + " of " + std::to_string(selected.size()) +
                                             " artifact(s) failed verification" +
                                             (o.dry_run ? "" : "; nothing was restored"));
    };
    if (bad > 0) {
        proven();
        throw unproven();
    }

    // A target that cannot be reached or checked (Kind::SourceUnavailable from a plan) ends the run with exit
    // 3 before anything is written.
    std::vector<std::string> unreachable;
    auto plan_of = [&](std::size_t i) {
        try {
            return components[i]->plan_restore(*selected[i], ropts);
        } catch (const Error& e) {
            if (e.kind() != Kind::SourceUnavailable) throw;
            log::error("cannot check the target of ", selected[i]->name, ": ", e.what());
            unreachable.push_back(e.what());
            summary["artifacts"][i]["target_error"] = e.what();
            return RestorePlan{};
        }
    };
    auto unreachable_error = [&] {
        return Error(
            Kind::SourceUnavailable,
            std::string(o.dry_run ? "dry run" : "restore refused, nothing was written") +
                ": a target cannot be checked: " + unreachable.front() +
                (unreachable.size() > 1 ? " (and " + std::to_string(unreachable.size() - 1) + " more)" : ""));
    };

    if (o.dry_run) {
        int refused = 0;
        for (std::size_t i = 0; i < selected.size(); ++i) {
            RestorePlan plan = plan_of(i);
            for (const auto& line : plan.lines) log::info("would restore: ", line);
            for (const auto& r : plan.refusals) log::error("would refuse: ", r);
            refused += static_cast<int>(plan.refusals.size());
            summary["artifacts"][i]["plan"] = plan.summary;
            summary["artifacts"][i]["refusals"] = plan.refusals;
        }
        summary["ok"] = refused == 0 && unreachable.empty();
        if (o.json) std::cout << summary.dump(2) << std::endl;
        if (!unreachable.empty()) throw unreachable_error();
        if (refused > 0) return exit_code(Kind::RestoreFailed);
        log::info("dry run: every artifact verified; nothing was written");
        return 0;
    }

    // Every refusal (a non-empty database, an unsafe path, an existing file) is found before anything is
    // written.
    std::vector<std::string> refusals;
    for (std::size_t i = 0; i < selected.size(); ++i)
        for (auto& r : plan_of(i).refusals) refusals.push_back(std::move(r));
    if (!unreachable.empty()) {
        if (!proven()) throw unproven();
        summary["ok"] = false;
        if (o.json) std::cout << summary.dump(2) << std::endl;
        throw unreachable_error();
    }
    if (!refusals.empty()) {
        if (!proven()) throw unproven();  // a damaged artifact is the first thing to say
        for (const auto& r : refusals) log::error("refused: ", r);
        summary["ok"] = false;
        summary["refusals"] = refusals;
        if (o.json) std::cout << summary.dump(2) << std::endl;
        throw Error(
            Kind::RestoreFailed,
            "restore refused, nothing was written: " + refusals.front() +
                (refusals.size() > 1 ? " (and " + std::to_string(refusals.size() - 1) + " more)" : ""));
    }

    install_interrupt_handlers();
    int failed = 0;
    std::optional<Error> first;
    // Nothing is written before every proof is in; a damaged artifact ends the restore with nothing written.
    ropts.before_write = [&] {
        if (!proven()) throw Error(Kind::Verification, "an artifact failed verification");
    };
    for (std::size_t i = 0; i < selected.size(); ++i) {
        const Artifact& a = *selected[i];
        try {
            check_interrupted();
            if (!streamed[i]) ropts.before_write();
            // A streamed artifact's stored bytes are proven beside it (before_write waits for that proof).
            auto content = open_verified_content(repo, a, streamed[i]);
            RestoreReport report = components[i]->restore(a, *content, ropts);
            for (const auto& line : report.lines) log::info(line);
            for (const auto& p : report.problems) log::error(a.name, ": ", p);
            summary["artifacts"][i]["restore"] = report.summary;
            summary["artifacts"][i]["problems"] = report.problems;
            if (!report.problems.empty()) {
                ++failed;
                if (!first) first = Error(Kind::RestoreFailed, a.name + ": " + report.problems.front());
            }
        } catch (const Error& e) {
            if (!proven()) throw unproven();  // also when the restore failed before it asked
            if (e.kind() == Kind::Interrupted || e.kind() == Kind::Internal) throw;
            log::error(e.what());
            summary["artifacts"][i]["error"] = e.what();
            ++failed;
            if (!first) first = e;
        }
    }
    summary["ok"] = failed == 0;
    if (o.json) std::cout << summary.dump(2) << std::endl;
    if (failed == 0) {
        log::info("restore of ", manifest.id, " complete");
        return 0;
    }
    if (failed < static_cast<int>(selected.size())) {
        log::error("restore applied to only some components: ", failed, " of ", selected.size(), " failed");
        return exit_code(Kind::Partial);
    }
    return exit_code(*first);
}

}  // namespace nightjar
