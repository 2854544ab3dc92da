#include "run.hpp"

#include <algorithm>
#include <chrono>
#include <future>
#include <iostream>
#include <nlohmann/json.hpp>

#include "nightjar/component.hpp"
#include "nightjar/components/postgres.hpp"
#include "nightjar/config.hpp"
#include "nightjar/error.hpp"
#include "nightjar/failpoint.hpp"
#include "nightjar/log.hpp"
#include "nightjar/manifest.hpp"
#include "nightjar/progress.hpp"
#include "nightjar/repository.hpp"
#include "nightjar/signals.hpp"
#include "nightjar/verify.hpp"

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

// Where the backups are: --backup-dir, else the directory of a manifest path, else the config's backup_dir.
fs::path resolve_backup_dir(const RestoreCliOptions& o) {
    if (!o.backup_dir.empty()) return fs::absolute(o.backup_dir);
    if (!o.backup.empty() && o.backup != "latest" && o.backup.find('/') != std::string::npos) {
        if (!fs::exists(o.backup))
            throw Error(Kind::Verification, "manifest not found: " + o.backup + ": check the path");
        return fs::absolute(o.backup).parent_path();
    }
    if (!o.config.empty()) {
        Config c = load_config(o.config);
        if (!c.backup_dir.empty()) return fs::absolute(c.backup_dir);
    }
    if (!o.backup.empty() && fs::exists(o.backup)) return fs::absolute(o.backup).parent_path();
    throw Error(Kind::Usage, "which backup dir? pass --backup-dir DIR, a manifest path, or --config FILE");
}

void apply_postgres_options(const RestoreCliOptions& o, const Manifest& manifest, RestoreOptions& ropts) {
    ropts.db_host = o.db_host;
    ropts.db_port = o.db_port;
    ropts.db_user = o.db_user;
    ropts.jobs = o.jobs;
    ropts.skip_globals = o.skip_globals;
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
    ropts.redis_mode = !o.redis_mode.empty() ? o.redis_mode : o.redis_rdb_path.empty() ? "live" : "file";
    if (!o.redis_rdb_path.empty()) ropts.redis_rdb_path = fs::absolute(o.redis_rdb_path);
    if (!o.config.empty()) {
        Config c = load_config(o.config);
        if (c.redis) ropts.redis_target = c.redis->endpoint;
    }
    if (!o.redis_host.empty() || o.redis_port > 0) {
        if (!ropts.redis_target) ropts.redis_target.emplace();
        if (!o.redis_host.empty()) ropts.redis_target->host = o.redis_host;
        if (o.redis_port > 0) ropts.redis_target->port = o.redis_port;
    }
    apply_postgres_options(o, manifest, ropts);
    return ropts;
}

}  // namespace

int run_restore(const RestoreCliOptions& o) {
    log::configure({.min_level = log::Level::Info, .format = log::Format::Text, .quiet = o.quiet});
    if (!o.list && o.backup.empty())
        throw Error(Kind::Usage, "name a backup: a manifest path, a backup id, or 'latest'");
    PosixStorage disk(resolve_backup_dir(o));
    // Restore never writes into the backup dir: the read-only wrapper turns any attempt into an error.
    ReadOnlyStorage storage(disk);
    RepositoryReader repo(storage);
    if (o.list) return list_backups(repo, o);
    // Shared with other readers, exclusive with a prune's deletions: the backup cannot vanish mid-restore.
    Lock reading = lock_for_reading(
        disk.root(), {.limit_s = 60, .on_wait = [] { log::warn("waiting for a prune to finish deleting"); }});
    failpoint("restore:locked");

    BackupRef ref = repo.find(o.backup);
    Manifest manifest = repo.load(ref);
    log::info("backup ", manifest.id, " (", manifest.status, ", taken ", manifest.started_at, " on ",
              manifest.host, ")");
    auto skip = o.skipped_kinds();
    std::vector<const Artifact*> selected;
    for (const auto& a : manifest.artifacts)
        if (std::find(skip.begin(), skip.end(), a.component) == skip.end() &&
            !(o.skip_globals && a.format == kPgGlobalsFormat))
            selected.push_back(&a);
    if (selected.empty())
        throw Error(Kind::Usage, "nothing to restore: every artifact of " + manifest.id + " is skipped");

    RestoreOptions ropts = restore_options(o, manifest);
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
    for (std::size_t i = 0; i < selected.size(); ++i) {
        const Artifact* a = selected[i];
        components.push_back(make_restore_component(a->component, ropts));
        Component& component = *components.back();
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

    if (o.dry_run) {
        int refused = 0;
        for (std::size_t i = 0; i < selected.size(); ++i) {
            RestorePlan plan = components[i]->plan_restore(*selected[i], ropts);
            for (const auto& line : plan.lines) log::info("would restore: ", line);
            for (const auto& r : plan.refusals) log::error("would refuse: ", r);
            refused += static_cast<int>(plan.refusals.size());
            summary["artifacts"][i]["plan"] = plan.summary;
            summary["artifacts"][i]["refusals"] = plan.refusals;
        }
        summary["ok"] = refused == 0;
        if (o.json) std::cout << summary.dump(2) << std::endl;
        if (refused > 0) return exit_code(Kind::RestoreFailed);
        log::info("dry run: every artifact verified; nothing was written");
        return 0;
    }

    // Every refusal (a non-empty database, an unsafe path, an existing file) is found before anything is
    // written.
    std::vector<std::string> refusals;
    for (std::size_t i = 0; i < selected.size(); ++i)
        for (auto& r : components[i]->plan_restore(*selected[i], ropts).refusals)
            refusals.push_back(std::move(r));
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
