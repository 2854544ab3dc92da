#include "nightjar/run/restore_run.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <ostream>

#include "nightjar/cdc/restore_hold.hpp"
#include "nightjar/components/postgres/connection.hpp"
#include "nightjar/components/postgres/postgres_component.hpp"
#include "nightjar/core/clock.hpp"
#include "nightjar/core/failpoint.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/core/progress.hpp"
#include "nightjar/core/signals.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/verify.hpp"
#include "nightjar/run/config.hpp"
#include "nightjar/run/repository_config.hpp"

namespace nightjar {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool is_latest(const std::string& what) {
    return what == "latest" || what == "latest-any";
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
}

std::string skip_flag(const std::string& kind) {
    if (kind == "files") return "--skip-config";
    if (kind == "postgres") return "--skip-db";
    if (kind == "redis") return "--skip-redis";
    return "--skip-" + kind;
}

std::string and_more(const std::vector<std::string>& all) {
    return all.front() + (all.size() > 1 ? " (and " + std::to_string(all.size() - 1) + " more)" : "");
}

// `latest`: the newest complete backup; `latest-any`: the newest of any status; else an id or manifest name.
// A manifest that cannot be read is passed over by `latest` with a warning (--list names the reason).
Manifest choose_backup(const RepositoryReader& repo, const std::string& what, const fs::path& dir) {
    auto refs = repo.list();
    if (is_latest(what)) {
        if (refs.empty()) return repo.load(repo.find("latest"));  // throws: no published backup
        std::string newest;
        std::optional<Error> first_error;
        for (const auto& ref : refs) {
            Manifest m;
            try {
                m = repo.load(ref);
            } catch (const Error& e) {
                if (e.kind() == Kind::Interrupted) throw;
                log::warn("passing over backup ", ref.id, ", which cannot be read: ", e.what());
                if (!first_error) first_error = e;
                continue;
            }
            if (what == "latest-any" || m.status == "complete") return m;
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
                            ": every manifest is damaged (nightjar-restore --list shows why)" +
                            (first_error && repo.list().front().encrypted()
                                 ? std::string("; the newest: ") + first_error->what()
                                 : std::string()));
        throw Error(Kind::Usage,
                    "no complete backup in " + dir.string() + ": the newest is " + newest +
                        ": restore it with 'latest-any' or its id (and --skip-… for what failed)");
    }
    const std::string name = fs::path(what).filename().string();
    for (const auto& r : refs)
        if (r.id == name || r.manifest == name) return repo.load(r);
    throw Error(Kind::Usage, "backup not found: " + what + " (not a published manifest in " + dir.string() +
                                 "; nightjar-restore --list shows them)");
}

// A component that failed at capture has no (or an incomplete) backup: restoring the rest is an explicit
// choice (--skip-…), except a PostgreSQL database that failed alone and is not selected.
void refuse_failed_components(const Manifest& m, const std::vector<std::string>& skip,
                              const postgres::PostgresRestoreOptions& pg) {
    for (const auto& c : m.components) {
        if (c.status != "failed" || contains(skip, c.kind)) continue;
        std::vector<std::string> parts;  // postgres: the databases (and pg-globals) that failed
        if (c.kind == "postgres" && c.details.is_object() && c.details.contains("databases") &&
            c.details["databases"].is_object())
            for (const auto& [name, d] : c.details["databases"].items())
                if (d.is_object() && d.value("status", "") == "failed") parts.push_back(name);
        bool matters = parts.empty();
        for (const auto& p : parts)
            matters = matters || (p == "pg-globals" ? pg.globals != postgres::PgGlobals::Skip
                                                    : pg.databases.empty() || contains(pg.databases, p));
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

// Where an artifact goes, printed before anything else the restore says.
std::string target_line(const Component& component, const Artifact& a, const RestoreContext& context) {
    std::string t = component.describe_target(a, context);
    if (t.empty() && a.component == "files")
        t = context.target_root
                ? "under " + context.target_root->string() + " (--target-dir)"
                : "in place: the paths recorded in the manifest (--target-dir restores elsewhere)";
    return a.component + " " + a.name + " -> " + (t.empty() ? "(no target)" : t);
}

// One run: the request, the repository it reads, and what each phase leaves for the next.
class RestoreRun {
public:
    explicit RestoreRun(const RestoreRequest& request)
        : request_(request),
          options_(request.components),
          disk_(open_repository(request.backup_dir, request.config_file)),  // s3wire: a dir or s3://
          storage_(*disk_),
          repo_(storage_),
          gate_([this](std::size_t i, const VerifyOutcome& v, bool beside) { report_proof(i, v, beside); }) {
        repo_.set_keys(repository_keys(request.encryption, request.allow_unsigned));
    }

    RestoreResult run() {
        // Shared with other readers, exclusive with a prune's deletions: the backup cannot vanish
        // mid-restore.
        reading_.emplace(lock_for_reading(*disk_, {.limit_s = request_.lock_wait_s, .on_wait = [] {
                                                       log::warn("waiting for a prune to finish deleting");
                                                   }}));
        failpoint("restore:locked");
        if (request_.dry_run && !repo_.keys().has_identity())
            if (std::optional<BackupRef> ref = keyless_choice()) {
                prove_stored_only(*ref);
                return std::move(result_);
            }
        select();
        plan_cdc();
        if (prove() && plan()) apply_and_check();
        report_cdc();
        return std::move(result_);
    }

private:
    const RestoreRequest& request_;
    ComponentRestoreOptions options_;  // the request's, plus what the backup itself tells (Redis credentials)
    std::unique_ptr<Storage> disk_;    // s3wire: open_repository()
    ReadOnlyStorage storage_;          // restore never writes into the backup dir: any attempt is an error
    RepositoryReader repo_;
    std::optional<Lock> reading_;  // held until the last proof thread has stopped reading
    Manifest manifest_;
    RestoreContext context_;
    std::vector<const Artifact*> selected_;
    std::vector<std::unique_ptr<Component>> components_;  // one per selected artifact
    std::vector<bool> beside_;                            // its proof runs beside its restore
    RestoreGate gate_;
    std::vector<std::string> unreachable_;  // targets that could not be checked
    RestoreResult result_;

    // ---- a dry run without an identity: what the indexes prove of an encrypted backup ----
    // The encrypted backup a key-less dry run names (nullopt: it is not encrypted, or none qualifies: the
    // ordinary path then says why).
    std::optional<BackupRef> keyless_choice() const {
        const auto refs = repo_.list();
        if (is_latest(request_.backup)) {
            for (const auto& ref : refs) {
                if (!ref.encrypted()) return std::nullopt;
                try {
                    if (request_.backup == "latest-any" || repo_.load_summary(ref).status == "complete")
                        return ref;
                } catch (const Error& e) {
                    if (e.kind() == Kind::Interrupted) throw;
                    log::warn("passing over backup ", ref.id, ", which cannot be read: ", e.what());
                }
            }
            return std::nullopt;
        }
        const std::string name = fs::path(request_.backup).filename().string();
        for (const auto& ref : refs)
            if (ref.id == name || ref.manifest == name)
                return ref.encrypted() ? std::optional(ref) : std::nullopt;
        return std::nullopt;
    }

    // Every artifact's stored size, SHA-256 and age structure against the (signed) index, and every
    // rotation header's structure: all that can be proven without a key. Nothing is decrypted.
    void prove_stored_only(const BackupRef& ref) {
        manifest_ = repo_.load_summary(ref);
        log::info("backup ", manifest_.id, " (", manifest_.status, ", taken ", manifest_.started_at, " on ",
                  manifest_.host,
                  "): encrypted and no identity: proving the stored bytes only (sizes, "
                  "SHA-256s, age header structure, rotation headers); decryption and content need "
                  "encryption.identity_file");
        result_.id = manifest_.id;
        result_.dry_run = true;
        std::size_t failed = 0;
        for (const auto& a : manifest_.artifacts) {
            VerifyOutcome v = verify_stored_bytes(repo_, a);
            if (v.ok())
                if (std::string problem = repo_.check_rotation_headers(a.path); !problem.empty())
                    v = {VerifyStatus::FormatInvalid, problem};
            if (v.ok())
                log::info("verify ", a.name, " (", a.path, "): OK (stored bytes)");
            else
                log::error("verify ", a.name, " (", a.path, "): ", verify_status_name(v.status), ": ",
                           v.detail);
            failed += v.ok() ? 0 : 1;
            result_.artifacts.push_back(
                {.name = a.name, .component = a.component, .path = a.path, .verify = v});
        }
        if (std::string problem = repo_.check_rotation_headers(ref.manifest); !problem.empty()) {
            log::error("verify ", ref.manifest, ": ", problem);
            ++failed;
        }
        result_.ok = failed == 0;
        if (failed > 0)
            result_.error =
                Error(Kind::Verification, "dry run without an identity: " + std::to_string(failed) +
                                              " object(s) of backup " + manifest_.id +
                                              " failed verification of their stored bytes");
        else
            log::info(
                "dry run without an identity: the stored bytes of every artifact verified; nothing was "
                "written (decryption and content are proven only with an identity)");
    }

    // ---- select: the backup, then its artifacts ----
    void select() {
        manifest_ = choose_backup(repo_, request_.backup, request_.backup_dir);
        log::info("backup ", manifest_.id, " (", manifest_.status, ", taken ", manifest_.started_at, " on ",
                  manifest_.host, ")");
        const auto& skip = request_.skip;
        const postgres::PostgresRestoreOptions& pg = options_.postgres;
        postgres::check_pg_renames(manifest_, pg);
        // The target is the endpoint recorded in the manifest unless the options override it; the config's
        // redis section gives only the credentials and renamed commands.
        const bool live_redis = options_.redis.mode == redis::RedisRestoreMode::Live &&
                                !contains(skip, "redis") &&
                                std::any_of(manifest_.artifacts.begin(), manifest_.artifacts.end(),
                                            [](const Artifact& a) { return a.component == "redis"; });
        if (live_redis && !options_.redis.credentials && !request_.config_file.empty()) {
            Config c = load_config(request_.config_file);
            if (c.redis) options_.redis.credentials = c.redis->endpoint;
        }
        refuse_failed_components(manifest_, skip, pg);
        bool globals_left = false;
        for (const auto& a : manifest_.artifacts) {
            if (contains(skip, a.component)) continue;
            if (a.component == "postgres" && a.format == postgres::kPgGlobalsFormat &&
                pg.globals == postgres::PgGlobals::Skip) {
                globals_left = request_.explain_skipped_globals;
                continue;
            }
            if (a.component == "postgres" && !pg.databases.empty() && a.format == postgres::kPgDumpFormat &&
                !contains(pg.databases, postgres::pg_artifact_database(a)))
                continue;
            selected_.push_back(&a);
        }
        if (globals_left)
            log::info(
                "postgres: roles and tablespaces (globals) are not restored: databases are selected (--db) "
                "or "
                "renamed (--db-name); --globals restores them too");
        if (selected_.empty())
            throw Error(Kind::Usage, "nothing to restore: every artifact of " + manifest_.id + " is skipped");

        context_ = RestoreContext{.backup_id = manifest_.id,
                                  .target_root = request_.target_root,
                                  .clean = request_.clean,
                                  .gate = &gate_,
                                  .reopen_content = [this](const Artifact& a) {
                                      return open_unchecked_content(repo_, a, repo_.read_keys());
                                  }};
        result_.id = manifest_.id;
        result_.dry_run = request_.dry_run;
        beside_.assign(selected_.size(), false);
        for (const Artifact* a : selected_) {
            components_.push_back(make_restore_component(a->component, options_));
            result_.artifacts.push_back({.name = a->name, .component = a->component, .path = a->path});
        }
        // The one rule, made visible: every component restores to the endpoint recorded in the manifest
        // unless a flag overrides it.
        for (std::size_t i = 0; i < selected_.size(); ++i) {
            result_.artifacts[i].target = target_line(*components_[i], *selected_[i], context_);
            log::info("target: ", result_.artifacts[i].target);
        }
    }

    // ---- prove: every artifact, before (or, for a streamed one, beside) anything written ----
    // A dry run checks each format in full. A real restore of a component that proves its content as it
    // applies it checks the stored bytes only, on a thread of its own beside the start of its restore (which
    // reads ahead but writes nothing before the gate opens), and decompresses once, in the restore.
    bool prove() {
        Progress progress;
        for (std::size_t i = 0; i < selected_.size(); ++i) {
            const Artifact* a = selected_[i];
            if (!request_.dry_run && components_[i]->restores_while_verifying(*a)) {
                beside_[i] = true;
                gate_.prove_beside(i, [this, a] { return verify_stored_bytes(repo_, *a); });
                continue;
            }
            auto shown = [&progress, a](std::uint64_t n) { progress.update("verify " + a->name, n); };
            VerifyOutcome v = verify_artifact(repo_, *a, *components_[i], repo_.read_keys(), shown);
            progress.done();
            gate_.record(i, v);
        }
        if (gate_.failed() == 0) return true;
        gate_.settle();
        unproven();
        return false;
    }

    void report_proof(std::size_t i, const VerifyOutcome& v, bool beside) {
        const Artifact* a = selected_[i];
        if (v.ok())
            log::info("verify ", a->name, " (", a->path, "): OK",
                      beside ? " (stored bytes; the content is proven as it is restored)" : "");
        else
            log::error("verify ", a->name, " (", a->path, "): ", verify_status_name(v.status), ": ",
                       v.detail);
        result_.artifacts[i].verify = v;
    }

    // The run ends with nothing written: an artifact failed its proof.
    void unproven() {
        result_.ok = false;
        result_.error = Error(Kind::Verification, std::to_string(gate_.failed()) + " of " +
                                                      std::to_string(selected_.size()) +
                                                      " artifact(s) failed verification" +
                                                      (request_.dry_run ? "" : "; nothing was restored"));
    }

    // ---- plan: the same plan for a dry run and a restore; every refusal found before anything is written
    // ---- A target that cannot be reached or checked (Kind::SourceUnavailable from a plan) ends the run with
    // exit 3 before anything is written.
    RestorePlan plan_of(std::size_t i) {
        try {
            return components_[i]->plan_restore(*selected_[i], context_);
        } catch (const Error& e) {
            if (e.kind() != Kind::SourceUnavailable) throw;
            log::error("cannot check the target of ", selected_[i]->name, ": ", e.what());
            unreachable_.push_back(e.what());
            result_.artifacts[i].target_error = e.what();
            return RestorePlan{};
        }
    }

    Error unreachable_error() const {
        return Error(Kind::SourceUnavailable,
                     std::string(request_.dry_run ? "dry run" : "restore refused, nothing was written") +
                         ": a target cannot be checked: " + and_more(unreachable_));
    }

    // True when the restore may go on to apply. A dry run never does: it reports the plan.
    bool plan() {
        if (request_.dry_run) {
            std::size_t refused = 0;
            for (std::size_t i = 0; i < selected_.size(); ++i) {
                RestorePlan p = plan_of(i);
                for (const auto& line : p.lines) log::info("would restore: ", line);
                for (const auto& r : p.refusals) log::error("would refuse: ", r);
                refused += p.refusals.size();
                result_.artifacts[i].plan = std::move(p);
            }
            result_.ok = refused == 0 && unreachable_.empty();
            if (!unreachable_.empty())
                result_.error = unreachable_error();
            else if (refused > 0)
                result_.exit_code = exit_code(Kind::RestoreFailed);
            else
                log::info("dry run: every artifact verified; nothing was written");
            return false;
        }
        std::vector<std::string> refusals;
        for (std::size_t i = 0; i < selected_.size(); ++i)
            for (auto& r : plan_of(i).refusals) refusals.push_back(std::move(r));
        if (unreachable_.empty() && refusals.empty()) return true;
        if (!gate_.settle()) {  // a damaged artifact is the first thing to say
            unproven();
            return false;
        }
        result_.ok = false;
        if (!unreachable_.empty()) {
            result_.error = unreachable_error();
            return false;
        }
        for (const auto& r : refusals) log::error("refused: ", r);
        result_.error =
            Error(Kind::RestoreFailed, "restore refused, nothing was written: " + and_more(refusals));
        result_.refusals = std::move(refusals);
        return false;
    }

    // ---- apply: each artifact through its component, none before the gate opens ----
    // False when an artifact turned out unproven: the run ends there.
    bool apply() {
        install_interrupt_handlers();
        for (std::size_t i = 0; i < selected_.size(); ++i) {
            const Artifact& a = *selected_[i];
            ArtifactRestore& out = result_.artifacts[i];
            try {
                check_interrupted();
                // A streamed artifact's stored bytes are proven beside it: its component waits on the gate
                // before its first write. Any other waits here.
                if (!beside_[i]) gate_.wait_until_proven();
                auto content = open_verified_content(repo_, a, repo_.read_keys(), beside_[i]);
                RestoreReport report = components_[i]->restore(a, *content, context_);
                for (const auto& line : report.lines) log::info(line);
                for (const auto& p : report.problems) log::error(a.name, ": ", p);
                out.restore = std::move(report);
            } catch (const Error& e) {
                if (!gate_.settle()) {  // also when the restore failed before it waited on the gate
                    unproven();
                    return false;
                }
                if (e.kind() == Kind::Interrupted || e.kind() == Kind::Internal) throw;
                log::error(e.what());
                out.error = e.what();
                if (!first_failure_) first_failure_ = e;
            }
        }
        return true;
    }

    // ---- check: the components' own post-restore comparisons, and the exit code ----
    void check() {
        std::size_t failed = 0;
        for (std::size_t i = 0; i < selected_.size(); ++i) {
            const ArtifactRestore& out = result_.artifacts[i];
            if (out.error) {
                ++failed;
            } else if (out.restore && !out.restore->problems.empty()) {
                ++failed;
                if (!first_failure_)
                    first_failure_ =
                        Error(Kind::RestoreFailed, out.name + ": " + out.restore->problems.front());
            }
        }
        result_.ok = failed == 0;
        if (failed == 0) {
            log::info("restore of ", manifest_.id, " complete");
            result_.exit_code = 0;
        } else if (failed < selected_.size()) {
            log::error("restore applied to only some components: ", failed, " of ", selected_.size(),
                       " failed");
            result_.exit_code = exit_code(Kind::Partial);
        } else {
            result_.exit_code = exit_code(*first_failure_);
        }
    }

    std::optional<Error> first_failure_;  // the first artifact's failure, for the exit code

    // ---- cdc (issue 18): the connectors of the restored databases held still while it writes ----
    std::unique_ptr<cdc::CdcRestoreHold> cdc_;  // set when the config has a cdc section and a db is restored

    // After select: which connectors, their roles and modes, the worker's features (GETs and the PATCH {}
    // probe only). A dry run logs the calls it would make; --cdc=none says what will be out of step.
    void plan_cdc() {
        const std::string& mode = request_.cdc_mode;
        if (mode != "auto" && mode != "replay" && mode != "reanchor" && mode != "none")
            throw Error(Kind::Usage, "--cdc=" + mode + ": expected replay, reanchor or none");
        if (!request_.cdc || request_.cdc->clusters.empty()) {
            if (mode != "auto")
                throw Error(Kind::Usage, "--cdc=" + mode +
                                             ": the config has no cdc section (cdc.kafka_connect): pass "
                                             "--config FILE with one, or leave --cdc out");
            return;
        }
        cdc::CdcRestoreRequest r;
        r.backup_id = manifest_.id;
        r.backup_time = parse_backup_id_time(manifest_.id);
        r.manifest_cdc = manifest_.cdc;
        if (mode != "auto") r.cdc = mode;
        const postgres::PostgresRestoreOptions& pg = options_.postgres;
        const Artifact* pg_artifact = nullptr;
        for (const Artifact* a : selected_) {
            if (a->component != "postgres" || a->format != postgres::kPgDumpFormat) continue;
            const std::string db = postgres::pg_artifact_database(*a);
            r.databases.push_back(db);
            r.renamed = r.renamed || pg.rename.count(db) > 0;
            pg_artifact = a;
        }
        if (r.databases.empty()) {
            log::info("cdc: no PostgreSQL database is restored: no connector is held");
            return;
        }
        if (pg_artifact) {
            // reanchor's SQL (drop a leftover slot, execute-snapshot signals) goes to the restored database
            // on the restore's target: the recorded server unless --db-host/--db-port/--db-user say
            // otherwise.
            const json src = pg_artifact->source.is_object() ? pg_artifact->source : json::object();
            postgres::PgTarget base;
            base.endpoint.host = pg.host.empty() ? src.value("host", "") : pg.host;
            base.endpoint.port = pg.port ? pg.port : src.value("port", 0);
            base.endpoint.user = pg.user.empty() ? src.value("user", "") : pg.user;
            base.endpoint.passfile = src.value("passfile", "");
            std::error_code ec;
            if (!base.endpoint.passfile.empty() && !fs::exists(base.endpoint.passfile, ec))
                base.endpoint.passfile.clear();
            auto rename = pg.rename;
            r.connect = [base, rename](const std::string& database) {
                postgres::PgTarget t = base;
                auto it = rename.find(database);
                t.database = it == rename.end() ? database : it->second;
                return std::make_unique<postgres::PgConnection>(t);
            };
        }
        cdc_ = std::make_unique<cdc::CdcRestoreHold>(*request_.cdc, request_.cdc->restore, std::move(r));
        if (mode == "none") cdc_->leave_alone();
        if (request_.dry_run) {
            for (const auto& line : cdc_->describe()) log::info("would: ", line);
        } else {
            cdc_->plan();
        }
    }

    // apply and check with the connectors held: hold() after every proof and plan (never before), and
    // bring_back() on every way out: success, a failed restore, an exception, a signal (SIGTERM is a flag
    // that apply polls, so the run gets here and brings them back before it exits 128 + signal).
    void apply_and_check() {
        install_interrupt_handlers();
        if (cdc_ && request_.cdc_mode != "none") {
            // Every proof first, the stored bytes of a streamed artifact included: a damaged backup never
            // touches a connector.
            if (!gate_.settle()) {
                unproven();
                return;
            }
            try {
                cdc_->hold();
            } catch (const Error& e) {
                cdc_->bring_back(false);  // what was held before a journal or lock failure
                if (e.kind() == Kind::Internal) throw;
                log::error(e.what());
                result_.ok = false;
                result_.error = e;
                return;
            }
            failpoint("restore:cdc-held");
        }
        bool applied = false;
        try {
            applied = apply();
            if (applied) check();
        } catch (...) {
            if (cdc_) cdc_->bring_back(false);
            throw;
        }
        if (cdc_) cdc_->bring_back(applied && databases_restored());
    }

    // Every selected PostgreSQL database came back without an error: a replay or reanchor makes sense;
    // otherwise the connectors are resumed as they were held.
    bool databases_restored() const {
        for (std::size_t i = 0; i < selected_.size(); ++i) {
            if (selected_[i]->component != "postgres") continue;
            const ArtifactRestore& out = result_.artifacts[i];
            if (out.error || !out.restore || !out.restore->problems.empty()) return false;
        }
        return true;
    }

    // The report's "cdc" field, and the exit code: the hold's 8 (a connector may still be held, or came back
    // FAILED) or 6 (a replay or reanchor could not be done) when the restore's own is 0.
    void report_cdc() {
        if (!cdc_) return;
        result_.cdc = cdc_->report();
        if (request_.dry_run) {
            result_.cdc["plan"] = cdc_->describe();
            return;
        }
        const int code = cdc_->exit_code();
        if (code != 0 && !result_.error && result_.exit_code == 0) {
            result_.exit_code = code;
            log::error(code == exit_code(Kind::CdcResume)
                           ? "cdc: connectors may still be held or came back FAILED after the restore: see "
                             "above; nightjar-backup --resume-cdc (or the next backup) resumes what is "
                             "still journalled"
                           : "cdc: the restore is complete but CDC is not back in step: see the warnings "
                             "and manual steps above");
        }
    }
};

}  // namespace

void to_json(json& j, const RestoreResult& r) {
    j = {{"id", r.id}, {"dry_run", r.dry_run}, {"ok", r.ok}, {"artifacts", json::array()}};
    for (const auto& a : r.artifacts) {
        json o{{"name", a.name}, {"component", a.component}, {"path", a.path}};
        if (a.verify) {
            o["verify"] = verify_status_name(a.verify->status);
            o["detail"] = a.verify->detail;
        }
        if (a.target_error) o["target_error"] = *a.target_error;
        if (a.plan) {
            o["plan"] = a.plan->summary;
            o["refusals"] = a.plan->refusals;
        }
        if (a.restore) {
            o["restore"] = a.restore->summary;
            o["problems"] = a.restore->problems;
        }
        if (a.error) o["error"] = *a.error;
        j["artifacts"].push_back(std::move(o));
    }
    if (r.refusals) j["refusals"] = *r.refusals;
    if (!r.cdc.is_null()) j["cdc"] = r.cdc;
}

RestoreResult run_restore(const RestoreRequest& request) {
    return RestoreRun(request).run();
}

RepositoryKeys repository_keys(const std::optional<EncryptionConfig>& encryption, bool allow_unsigned) {
    RepositoryKeys keys{.identities = {}, .trusted_hosts = {}, .allow_unsigned = allow_unsigned};
    if (!encryption) return keys;
    keys.identities.x25519 = encryption->identities;
    keys.trusted_hosts = encryption->trusted_hosts;
    return keys;
}

// ---- listing ----

std::vector<ListedBackup> list_backups(const fs::path& backup_dir, const RepositoryKeys& keys,
                                       const fs::path& config_file) {
    auto disk = open_repository(backup_dir, config_file);  // s3wire: a dir or s3://
    ReadOnlyStorage storage(*disk);
    RepositoryReader repo(storage);
    repo.set_keys(keys);
    std::vector<ListedBackup> out;
    const auto now = unix_now();
    for (const auto& ref : repo.list()) {
        ListedBackup row{.id = ref.id, .manifest = ref.manifest};
        row.encryption = ref.encrypted() ? "age" : "none";
        try {
            Manifest m = repo.load_summary(ref);
            row.status = m.status;
            row.stored_bytes = m.stored_bytes();
            for (const auto& c : m.components)
                if (c.status != "skipped")
                    row.components += (row.components.empty() ? "" : ",") + c.kind +
                                      (c.status == "ok" ? "" : "(" + c.status + ")");
            if (ref.encrypted() && !keys.has_identity()) row.components = "(encrypted)";
        } catch (const std::exception& e) {
            // One bad manifest is that backup damaged, shown with the reason; the others are still listed.
            row.status = "damaged";
            row.components = e.what();
            row.error = e.what();
        }
        row.age_seconds = now - parse_backup_id_time(ref.id);
        row.last_drill = last_drill(storage, ref.id);
        out.push_back(std::move(row));
    }
    return out;
}

namespace {
std::string age(std::int64_t seconds) {
    if (seconds < 0) return "?";
    if (seconds < 3600) return std::to_string(seconds / 60) + "m";
    if (seconds < 86400 * 2) return std::to_string(seconds / 3600) + "h";
    return std::to_string(seconds / 86400) + "d";
}
}  // namespace

void print_backup_list(const std::vector<ListedBackup>& backups, bool as_json, std::ostream& out) {
    if (as_json) {
        json rows = json::array();
        for (const auto& b : backups) {
            json row{{"id", b.id},
                     {"manifest", b.manifest},
                     {"status", b.status},
                     {"age_seconds", b.age_seconds},
                     {"encryption", b.encryption}};
            if (b.error)
                row["error"] = *b.error;
            else
                row.update({{"stored_bytes", b.stored_bytes}, {"components", b.components}});
            if (b.last_drill)
                row["last_drill"] = {{"record", b.last_drill->file},
                                     {"finished_at", rfc3339_utc(b.last_drill->time)},
                                     {"passed", b.last_drill->passed},
                                     {"reason", b.last_drill->reason}};
            rows.push_back(std::move(row));
        }
        out << rows.dump(2) << std::endl;
        return;
    }
    out << "ID                  AGE    STATUS    ENC   SIZE        COMPONENTS\n";
    for (const auto& b : backups) {
        const std::string size = b.error ? "" : log::human_bytes(b.stored_bytes);
        char line[256];
        std::snprintf(line, sizeof line, "%-19s %-6s %-9s %-5s %-11s %s\n", b.id.c_str(),
                      age(b.age_seconds).c_str(), b.status.c_str(), b.encryption.c_str(), size.c_str(),
                      b.components.c_str());
        std::string text = line;
        if (b.last_drill) {  // after the components, so a list without drills reads as before
            text.pop_back();
            text += std::string("  drill ") + (b.last_drill->passed ? "passed " : "FAILED ") +
                    age(unix_now() - b.last_drill->time) + " ago\n";
        }
        out << text;
    }
}

}  // namespace nightjar
