#include "nightjar/run/backup_run.hpp"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>

#include "nightjar/cdc/coordinator.hpp"
#include "nightjar/cdc/state_file.hpp"
#include "nightjar/cdc/window.hpp"
#include "nightjar/core/clock.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/failpoint.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/core/progress.hpp"
#include "nightjar/core/signals.hpp"
#include "nightjar/io/pipeline.hpp"
#include "nightjar/io/signing.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/object_lock.hpp"
#include "nightjar/repo/prune.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/run/drill.hpp"
#include "nightjar/run/hooks.hpp"
#include "nightjar/run/monitoring.hpp"
#include "nightjar/run/offsite_copy.hpp"
#include "nightjar/run/offsite_journal.hpp"
#include "nightjar/run/offsite_lease.hpp"
#include "nightjar/run/repository_config.hpp"

namespace nightjar {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string host_name() {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    return buf;
}

// The nearest existing ancestor of `dir`: where a new backup dir would be created.
fs::path existing_ancestor(fs::path dir) {
    while (!dir.empty() && !fs::exists(dir) && dir != dir.root_path()) dir = dir.parent_path();
    return dir;
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

// The manifest a published backup has: manifest_<id>.json, or encrypted manifest_<id>.json.age.
std::string published_name(const Config& config, const std::string& id) {
    return config.encryption ? encrypted_manifest_file_name(id) : manifest_file_name(id);
}

// The keys a backup host reads its own repository with (prune, listing): the identities and pinned hosts
// of its `encryption` section, and its own signing key pinned for itself, so that its own indexes verify.
RepositoryKeys backup_host_keys(const Config& config, const io::SigningKey* own) {
    RepositoryKeys keys;
    if (!config.encryption) return keys;
    for (const auto& id : config.encryption->identities) keys.identities.x25519.push_back(id);
    keys.trusted_hosts = config.encryption->trusted_hosts;
    std::optional<io::SigningKey> loaded;
    if (!own) {
        std::error_code ec;
        if (std::filesystem::exists(config.encryption->signing_key_file, ec)) {
            try {
                loaded.emplace(io::SigningKey::load(config.encryption->signing_key_file));
                own = &*loaded;
            } catch (const Error& e) {
                log::warn("encryption: ", e.what(), ": this host's own indexes are read unverified");
            }
        }
    }
    if (own) keys.trusted_hosts[host_name()].push_back(own->public_key());
    return keys;
}

}  // namespace

// What the phases hand each other.
struct BackupRun::State {
    std::unique_ptr<Storage> storage;  // open_repository(): the backup dir, or the S3 prefix
    std::optional<RepositoryWriter> repo;
    std::optional<Lock> lock;
    BackupLease lease;  // s3wire: leases/<host>.json on an object store (no locks there)
    fs::path backup_dir;
    Manifest manifest;
    std::optional<RunJournal> journal;  // s3wire: runs/<id>.json in an object store, outlives staging
    std::optional<Staging> staging;
    std::optional<io::SigningKey> signing;   // signs the index of an encrypted backup
    std::optional<cdc::CdcCoordinator> cdc;  // set when this run pauses and resumes CDC
    HookEnvironment hook_env;
    json hook_runs = json::array();
    Progress progress;
    DumpContext dump_context;
    int failed = 0;                      // components that failed (their other parts may have artifacts)
    std::optional<Error> first_failure;  // the first component's failure
    std::exception_ptr failure;          // what ended the guarded phases: nothing is published
    std::optional<Error> cdc_error;      // CDC could not be resumed
    std::string hook_failure;            // an after_publish hook failed
    // The components phase (several threads): cancellation, and the snapshots CDC may be held for.
    std::atomic<bool> cancelled{false};  // a fatal failure elsewhere: a running dump stops at its next check
    std::mutex snapshot_mutex;           // guards the three below
    std::vector<char> snapshot_done;     // per component: its last consistency point is fixed
    std::size_t snapshots_pending = 0;   // components whose last point is not fixed yet
    std::thread cdc_release;             // resumes the connectors held until the snapshots, beside the dumps

    ~State() {
        if (cdc_release.joinable()) cdc_release.join();
    }

    std::vector<HookRun> run_stage(std::string_view stage, const std::vector<HookCommand>& commands,
                                   HookRunOptions o) {
        auto runs = run_hooks(stage, commands, hook_env, o);
        for (const auto& r : runs) hook_runs.push_back(r.to_json());
        return runs;
    }
};

BackupRun::BackupRun(const BackupRequest& request, std::vector<std::unique_ptr<Component>> components)
    : request_(request), components_(std::move(components)), s_(std::make_unique<State>()) {
    report_.backup_dir = request.backup_dir.string();
}

BackupRun::~BackupRun() = default;

int BackupRun::run() {
    lock();
    start();
    log::Scope backup_scope{{"backup_id", s_->manifest.id}};  // structured field of JSON log lines
    try {
        heal_leftovers();
        pause_cdc();
        before_hooks();
        back_up_components();
    } catch (...) {
        s_->failure = std::current_exception();
    }
    resume_cdc();  // every way out passes here: before hooks, publication or exit
    after_hooks();
    publish();  // rethrows the failure: nothing is published
    after_publish();
    const int drill_code = drill_after_backup();  // 0, or 7: the published backup's drill failed
    int code = 0;
    if (s_->cdc_error) throw *s_->cdc_error;
    if (!s_->hook_failure.empty()) {
        log::error(s_->hook_failure);
        report_.add_error(s_->hook_failure);
        code = exit_code(Kind::Partial);
    } else if (s_->failed > 0) {
        code = exit_code(Kind::Partial);
    }
    if (drill_code != 0) code = drill_code;
    // s3wire: the copies (repository.copies) of what was just published; a failed one makes the run partial
    const bool prune_copies = code == 0 || request_.prune_on_failure;
    for (const auto& copy :
         copy_to_all(*s_->storage, s_->manifest, request_.config.repository.copies,
                     {.retention = prune_copies ? request_.retention : RetentionPolicy{}, .now = unix_now()}))
        if (!copy.ok) {
            report_.add_error(copy.error);
            code = std::max(code, exit_code(Kind::Partial));  // a failed drill (7) still wins
        }
    if (code == 0 || request_.prune_on_failure)
        prune();
    else if (!request_.retention.empty())
        log::warn("prune: skipped because this run did not fully succeed (--prune-on-failure overrides)");
    return code;
}

// ---- lock: one run at a time per repository ----
void BackupRun::lock() {
    s_->storage = open_repository(request_.backup_dir, request_.config.repository);  // s3wire
    s_->repo.emplace(*s_->storage);
    s_->lock.emplace(s_->repo->lock());
    s_->lease.take(*s_->storage, "",
                   std::int64_t{60} * request_.config.repository.lease_stale_minutes);  // s3wire
    failpoint("backup:locked");
}

// ---- start: the backup id and its staging dir (begin() removes what interrupted runs left) ----
void BackupRun::start() {
    State& s = *s_;
    const Config& config = request_.config;
    s.backup_dir = request_.backup_dir;
    // s3wire: the CDC journal is a file on this host; an S3 location is no directory to keep one in.
    const fs::path cdc_dir = is_s3_location(s.backup_dir) ? fs::path() : s.backup_dir;
    const std::int64_t started = unix_now();
    Manifest& manifest = s.manifest;
    // s3wire: what killed runs of this host left in the store, first: a run killed in this same second
    // left runs/<id>.json under the id this run is about to take.
    heal_crashed_runs(*s.storage, "");
    manifest.id = s.repo->next_id(started);
    manifest.started_at = rfc3339_utc(started);
    manifest.host = host_name();
    manifest.nightjar_version = NIGHTJAR_VERSION;
    // The one pipeline every artifact of this run goes through (io/pipeline), recorded on each artifact.
    io::PipelineSpec pipeline = io::PipelineSpec::zstd(config.compression);
    io::WriteKeys keys;
    if (config.encryption) {
        // Encrypted to the configured recipients: never a cleartext fallback (begin() refuses age with no
        // recipient, and the config refused a section without one).
        pipeline.cipher = io::Cipher::Age;
        keys.recipients = config.encryption->recipients;
        bool created = false;
        s.signing.emplace(io::SigningKey::load_or_create(config.encryption->signing_key_file, &created));
        if (created)
            log::warn("encryption: created this host's index signing key ",
                      config.encryption->signing_key_file.string(),
                      "; pin its public key on every restore and drill host: \"trusted_hosts\": {\"",
                      manifest.host, "\": [\"", s.signing->public_key().str(), "\"]}");
    }
    s.repo->set_keys(backup_host_keys(config, s.signing ? &*s.signing : nullptr));
    manifest.options = {
        {"skip", request_.skip},
        {"compression", {{"codec", std::string(io::codec_name(pipeline.codec))}, {"level", pipeline.level}}},
        {"encryption", std::string(io::cipher_name(pipeline.cipher))}};
    if (config.cdc) manifest.options["skip_cdc"] = request_.skip_cdc;
    log::info("backup ", manifest.id, " into ", s.backup_dir.string(),
              config.encryption
                  ? " (encrypted with age to " + std::to_string(keys.recipients.size()) + " recipient(s))"
                  : "");
    s.journal.emplace(*s.storage, manifest.id);
    lock_new_backup(*s.repo, manifest.id, request_.retention);  // s3lock: retain-until from the retention
    s.staging.emplace(
        s.repo->begin(manifest.id, pipeline, std::move(keys), io::tuning_of(config.compression)));

    if (config.cdc && !request_.skip_cdc) {
        s.cdc.emplace(*config.cdc, cdc::CdcRunInfo{.backup_dir = cdc_dir, .backup_id = manifest.id});
    } else if (config.cdc) {
        if (!request_.quiet)
            log::warn("cdc: --skip-cdc: connectors are neither paused nor resumed by this run");
        manifest.cdc = {{"mode", "skipped"}, {"paused", false}, {"reason", "--skip-cdc"}};
        if (auto left = cdc::read_cdc_journal(*config.cdc, cdc_dir); left && !left->connectors.empty())
            log::warn("cdc: a previous run left ", left->connectors.size(),
                      " connector(s) paused; --skip-cdc leaves them so: run nightjar-backup --resume-cdc");
    }
    s.hook_env = HookEnvironment{.backup_id = manifest.id,
                                 .backup_dir = s.backup_dir.string(),
                                 .status = "running",
                                 .manifest = (s.backup_dir / published_name(config, manifest.id)).string(),
                                 .error = ""};
    s.dump_context = DumpContext{
        .check_interrupted = [] { check_interrupted(); },
        .progress = [&s](const std::string& label, std::uint64_t n) { s.progress.update(label, n); }};
    report_.id = manifest.id;
}

// ---- heal_leftovers: what a previous run left paused is resumed first ----
void BackupRun::heal_leftovers() {
    if (s_->cdc) s_->cdc->heal_previous();
}

// ---- pause_cdc ----
void BackupRun::pause_cdc() {
    if (s_->cdc) s_->cdc->pause();
    check_interrupted();
}

// ---- before_hooks: a failing before_backup hook means the backup is not started ----
void BackupRun::before_hooks() {
    for (const auto& r : s_->run_stage("before_backup", request_.config.hooks.before_backup,
                                       {.stop_at_failure = true, .interruptible = true})) {
        check_interrupted();
        if (!r.ok())
            throw Error(Kind::SourceUnavailable,
                        "hook before_backup: " + r.argv.at(0) + " failed with exit code " +
                            std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") +
                            ": the backup was not started; see the hook's output above");
    }
}

// ---- components: each dumps into staging; a failing source fails only its component ----

int backup_parallelism(int configured, std::size_t components) {
    const int n = static_cast<int>(std::max<std::size_t>(components, 1));
    if (configured > 0) return std::min(configured, n);
    // Memory: each running component holds its own pipeline (zstd window and jobs, buffers, a child's pipe);
    // three fit the run's 100 MB with room. Cores: a dump mostly waits on its server, so two run on one core.
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    return std::min({n, 3, std::max(2, cores)});
}

// What one component's dump gave, merged into the report and manifest in config order.
struct BackupRun::Outcome {
    Component* component = nullptr;
    bool ran = false;                 // its dump was started
    bool cancelled = false;           // stopped because another component's failure ended the run
    std::exception_ptr fatal;         // a failure that ends the run (fail_fast, Storage, Interrupted...)
    ComponentResult result;           // what the manifest records
    std::vector<Artifact> artifacts;  // in the component's own order
    std::uint64_t stored = 0;         // stored bytes of its artifacts
    double seconds = 0;               // its wall time
    std::optional<Error> failure;     // it failed (not fatally): the run's first_failure candidate
};

void BackupRun::back_up_components() {
    State& s = *s_;
    const std::size_t n = components_.size();
    const int parallel = backup_parallelism(request_.config.parallel, n);
    s.manifest.options["parallel"] = parallel;
    {
        std::lock_guard lock(s.snapshot_mutex);
        s.snapshot_done.assign(n, 0);
        s.snapshots_pending = 0;
        // Only the components the hold is for (cdc.hold_for) keep the connectors held.
        const std::vector<std::string> hold_for =
            request_.config.cdc ? request_.config.cdc->hold_for : std::vector<std::string>{};
        for (std::size_t i = 0; i < n; ++i)
            if (components_[i]->takes_snapshot() &&
                std::find(hold_for.begin(), hold_for.end(), components_[i]->kind()) != hold_for.end())
                ++s.snapshots_pending;
            else
                s.snapshot_done[i] = 1;
        if (s.snapshots_pending == 0) release_cdc_locked();  // nothing CDC waits for
    }
    std::vector<Outcome> outcomes(n);
    for (std::size_t i = 0; i < n; ++i) outcomes[i].component = components_[i].get();
    if (parallel <= 1) {
        // One after another, in config order: a fatal failure stops the run before the next one starts.
        for (std::size_t i = 0; i < n; ++i) {
            check_interrupted();
            back_up_component(i, outcomes[i]);
            record_component(outcomes[i]);
            if (outcomes[i].fatal) std::rethrow_exception(outcomes[i].fatal);
        }
    } else {
        log::info("backing up ", n, " component(s), ", parallel, " at a time");
        std::atomic<std::size_t> next{0};
        std::mutex fatal_mutex;
        std::exception_ptr first_fatal;  // the failure that ended the run, not the cancellations it caused
        auto worker = [&] {
            log::Scope backup_scope{{"backup_id", s.manifest.id}};
            for (;;) {
                if (s.cancelled || interrupted_signal()) return;
                const std::size_t i = next++;
                if (i >= n) return;
                back_up_component(i, outcomes[i]);
                if (outcomes[i].fatal && !outcomes[i].cancelled) {
                    std::lock_guard lock(fatal_mutex);
                    if (!first_fatal) first_fatal = outcomes[i].fatal;
                    s.cancelled = true;
                }
            }
        };
        std::vector<std::thread> threads;
        for (int t = 0; t < parallel; ++t) threads.emplace_back(worker);
        for (auto& t : threads) t.join();
        for (auto& o : outcomes) record_component(o);
        if (first_fatal) std::rethrow_exception(first_fatal);
    }
    check_interrupted();
    if (s_->failed == static_cast<int>(components_.size()) && s_->manifest.artifacts.empty()) {
        log::error("every component failed: nothing was published");
        throw *s_->first_failure;
    }
}

// Runs on the run's thread (parallel 1) or a worker's; never throws: what happened is in `o`.
void BackupRun::back_up_component(std::size_t index, Outcome& o) {
    State& s = *s_;
    Component& c = *o.component;
    const std::string kind(c.kind());
    log::Scope component_scope{{"component", kind}};
    o.ran = true;
    auto t0 = std::chrono::steady_clock::now();
    o.result = ComponentResult{kind, "ok", "", json::object()};
    DumpContext context = s.dump_context;
    context.check_interrupted = [&s] {
        check_interrupted();
        if (s.cancelled)
            throw Error(Kind::Interrupted, "stopped: another component's failure ended the backup run");
    };
    context.progress = [&s, kind](const std::string& label, std::uint64_t n) {
        s.progress.update(kind, label, n);
    };
    context.snapshot_taken = [this, index](const std::string& what, bool last) {
        snapshot_point(index, what, last);
    };
    try {
        DumpResult dump = c.dump(context, *s.staging);
        s.progress.done(kind);
        for (auto& w : dump.warnings) log::warn(c.kind(), ": ", w);
        for (auto& a : dump.artifacts) {
            o.stored += a.size;
            log::info(c.kind(), ": ", a.name, " ", log::human_bytes(a.content_size), " -> ",
                      log::human_bytes(a.size), " sha256 ", a.sha256.substr(0, 16), "...");
            o.artifacts.push_back(std::move(a));
        }
        o.result.details = std::move(dump.details);
        if (!dump.failures.empty()) {
            // Some parts failed (one database of several): the component failed; its other artifacts stay.
            for (auto& f : dump.failures) log::error(f);
            o.result.status = "failed";
            o.result.error = dump.failures.front();
            for (std::size_t i = 1; i < dump.failures.size(); ++i) o.result.error += "; " + dump.failures[i];
            o.failure = Error(Kind::SourceUnavailable, dump.failures.front());
        }
    } catch (const Error& e) {
        s.progress.done(kind);
        // A signal or a failing backup dir ends the whole run; a failing source only its component.
        if (e.kind() == Kind::Interrupted || e.kind() == Kind::Storage || e.kind() == Kind::Internal) {
            o.fatal = std::current_exception();
            o.cancelled = e.kind() == Kind::Interrupted && s.cancelled && !interrupted_signal();
        } else if (c.fail_fast()) {
            log::error(c.kind(), ": fail_fast is set: the backup stops here and nothing is published");
            o.fatal = std::current_exception();
        } else {
            log::error(e.what());
            o.result.status = "failed";
            o.result.error = e.what();
            o.failure = e;
        }
    } catch (...) {
        s.progress.done(kind);
        o.fatal = std::current_exception();
    }
    o.seconds =
        log::round_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    snapshot_point(index, "", true);  // whatever it did, this component fixes no further point
}

// Merges one component's outcome into the report and the manifest (on the run's thread, in config order).
void BackupRun::record_component(Outcome& o) {
    State& s = *s_;
    if (!o.ran || o.fatal) return;  // never started, or it ended the run: the run's error says so
    for (auto& a : o.artifacts) s.manifest.artifacts.push_back(std::move(a));
    if (o.failure) {
        ++s.failed;
        if (!s.first_failure) s.first_failure = *o.failure;
    }
    report_.components.push_back(ComponentRunReport{.kind = o.result.kind,
                                                    .status = o.result.status,
                                                    .stored_bytes = o.stored,
                                                    .seconds = o.seconds,
                                                    .error = o.result.error});
    s.manifest.components.push_back(std::move(o.result));
}

// A component fixed a consistency point (any thread). Once every component has fixed its last one, the
// connectors held "until the snapshot" are resumed beside the dumps.
void BackupRun::snapshot_point(std::size_t index, const std::string& what, bool last) {
    State& s = *s_;
    std::lock_guard lock(s.snapshot_mutex);
    if (index >= s.snapshot_done.size() || s.snapshot_done[index]) return;
    if (!what.empty()) log::info("snapshot of ", what, " taken");
    if (!last) return;
    s.snapshot_done[index] = 1;
    if (--s.snapshots_pending == 0) release_cdc_locked();
}

void BackupRun::release_cdc_locked() {
    State& s = *s_;
    if (!s.cdc || s.cdc_release.joinable() || !s.cdc->holds_until_snapshot()) return;
    const std::string id = s.manifest.id;
    s.cdc_release = std::thread([&s, id] {
        log::Scope backup_scope{{"backup_id", id}};
        try {
            s.cdc->release_after_snapshot();
        } catch (const std::exception& e) {
            // resume_cdc() tries again whatever this round left held.
            log::error("cdc: resuming the connectors held until the snapshots failed: ", e.what());
        }
    });
}

// ---- resume_cdc: always, exactly what this run paused ----
void BackupRun::resume_cdc() {
    State& s = *s_;
    if (s.cdc_release.joinable()) s.cdc_release.join();  // the early resume's round ends first
    if (s.cdc) {
        s.cdc->resume();
        s.manifest.cdc = s.cdc->record();
        report_.cdc = s.manifest.cdc;
        if (!s.cdc->resume_failures().empty()) s.cdc_error = cdc_resume_error(s.cdc->resume_failures());
    }
    if (!s.failure && interrupted_signal()) {
        try {
            check_interrupted();
        } catch (...) {
            s.failure = std::current_exception();
        }
    }
}

// ---- after_hooks: on_error first (it pages), then after_backup; both before publication ----
void BackupRun::after_hooks() {
    State& s = *s_;
    const HooksConfig& hooks = request_.config.hooks;
    s.hook_env.status = hook_status(s.failure, s.failed > 0, s.cdc_error.has_value());
    s.hook_env.error = s.cdc_error ? s.cdc_error->what() : error_text(s.failure);
    if (s.failure || s.failed > 0 || s.cdc_error) s.run_stage("on_error", hooks.on_error, {});
    s.run_stage("after_backup", hooks.after_backup, {});
    if (!hooks.empty()) {
        s.manifest.hooks = s.hook_runs;
        report_.hooks = s.hook_runs;
    }
}

// ---- publish: only a run whose guarded phases all returned; the manifest is written last ----
void BackupRun::publish() {
    State& s = *s_;
    if (s.failure) {
        if (s.cdc_error) {
            log::error(error_text(s.failure));
            throw *s.cdc_error;
        }
        std::rethrow_exception(s.failure);
    }
    s.lease.check();  // s3lock: another run took the lease over: it publishes, not this one
    Manifest& manifest = s.manifest;
    manifest.status = s.failed > 0 ? "partial" : "complete";
    manifest.finished_at = rfc3339_utc(unix_now());
    if (const auto& enc = request_.config.encryption) {
        const PublishEncryption encryption{.recipients = enc->recipients,
                                           .signing_key = &*s.signing,
                                           .recipient_fingerprints = enc->recipient_fingerprints()};
        s.repo->publish(std::move(*s.staging), manifest, &encryption);
    } else {
        s.repo->publish(std::move(*s.staging), manifest);
    }
    s.staging.reset();
    report_.status = manifest.status;
    if (s.failed > 0) {
        std::string list;
        for (const auto& c : manifest.components)
            if (c.status != "ok") list += (list.empty() ? "" : "; ") + c.kind + ": " + c.error;
        report_.error = "backup " + manifest.id + " published as partial: " + list;
    }
    report_.stored_bytes = manifest.stored_bytes();
    const std::string name = published_name(request_.config, manifest.id);
    report_.manifest = (s.backup_dir / name).string();
    for (const auto& line : summary_lines(report_)) log::info(line);
    log::info("published ", name, request_.config.encryption ? " and " + index_file_name(manifest.id) : "",
              " (", manifest.status, ", ", log::human_bytes(manifest.stored_bytes()), ")");
}

// ---- after_publish: the manifest exists now (the off-site copy's place); never unpublishes ----
void BackupRun::after_publish() {
    State& s = *s_;
    const HooksConfig& hooks = request_.config.hooks;
    if (!s.cdc_error) s.hook_env.status = s.manifest.status;
    for (const auto& r : s.run_stage("after_publish", hooks.after_publish, {}))
        if (!r.ok() && s.hook_failure.empty())
            s.hook_failure = "hook after_publish: " + r.argv.at(0) +
                             (r.timed_out ? std::string(" timed out")
                                          : " failed with exit code " + std::to_string(r.exit_code)) +
                             ": backup " + s.manifest.id +
                             " is published and stays; see the hook's output above";
    if (!hooks.after_publish.empty()) report_.hooks = s.hook_runs;
}

// ---- drill: drill.after_backup proves the backup just published restores (run/drill), before the prune ----
// A failed drill never unpublishes: the run exits 7 and its end ping goes to /fail with the reason.
int BackupRun::drill_after_backup() {
    State& s = *s_;
    const Config& config = request_.config;
    if (!config.drill || !config.drill->after_backup) return 0;
    DrillRequest d;
    d.backup_dir = s.backup_dir;
    d.which = s.manifest.id;
    d.random_skip_days = config.drill->random_skip_days;
    d.monitoring = config.monitoring;  // the drill's metric lines; the ping is this run's own, at its end
    d.ping = false;
    d.encryption = config.encryption;
    // Signed with this host's key when encryption is configured, and only records it trusts count.
    const RepositoryKeys keys = backup_host_keys(config, s.signing ? &*s.signing : nullptr);
    if (s.signing) d.signing_key = &*s.signing;
    if (config.encryption) d.trusted_signers = &keys.trusted_hosts;
    log::info("drill: proving backup ", s.manifest.id, " restores (drill.after_backup)");
    std::string failure;
    try {
        DrillReport r = run_drill(d);
        report_.drill = r.to_json();
        if (r.ok)
            log::info("backed up and proven: backup ", s.manifest.id, " restored into throwaway servers in ",
                      log::seconds(r.seconds), " s (RTO), every check passed; evidence ", r.record);
        else
            failure = "drill: backup " + s.manifest.id +
                      " is published, but its restore drill FAILED (exit " + std::to_string(r.exit_code) +
                      "): " + r.reason + ": the backup stays; see nightjar-restore drill " + s.manifest.id;
    } catch (const Error& e) {
        if (e.kind() == Kind::Interrupted) throw;
        report_.drill = nlohmann::json{{"backup_id", s.manifest.id}, {"ok", false}, {"reason", e.what()}};
        failure = "drill: backup " + s.manifest.id +
                  " is published, but its restore drill could not run: " + e.what();
    }
    if (failure.empty()) return 0;
    log::error(failure);
    report_.add_error(failure);
    return exit_code(Kind::RestoreFailed);
}

// ---- prune: retention, never the backup this run has just published ----
void BackupRun::prune() {
    if (request_.retention.empty()) return;
    const RepositoryKeys keys =
        backup_host_keys(request_.config, s_->signing ? &*s_->signing : nullptr);  // pinned drill signers
    PruneResult r =
        nightjar::prune(*s_->repo, request_.retention, unix_now(), false, 86400,
                        {.keep_id = s_->manifest.id,
                         .drill_signers = request_.config.encryption ? &keys.trusted_hosts : nullptr});
    report_.pruned = r.deleted;
    for (const auto& e : r.errors) report_.add_error(e);
}

// ---- the nightly run with its monitoring ----

namespace {

// Pings and metrics at the end of a run, whatever its outcome. Never throws.
void report_to_monitoring(const BackupRequest& request, std::int64_t started, const RunReport& report) {
    const Config& config = request.config;
    Pinger pinger(config.monitoring);
    const std::string body = ping_body(report);
    if (report.exit_code.value_or(0) == 0)
        pinger.success(body);
    else
        pinger.failure(body);
    if (config.monitoring.metrics_file.empty()) return;
    try {
        RunMetrics m = run_metrics(report, started, unix_now());
        auto storage = open_repository(request.backup_dir, config.repository);  // s3wire
        m.backups_kept = RepositoryReader(*storage).list().size();
        write_metrics(config.monitoring.metrics_file, m);
    } catch (const std::exception& e) {
        log::warn("monitoring: cannot write metrics file ", config.monitoring.metrics_file.string(), ": ",
                  e.what());
    }
}

}  // namespace

int run_backup(const BackupRequest& request, const std::function<void(const RunReport&)>& on_report) {
    auto components = make_components(component_configs(request.config), request.skip);
    if (components.empty())
        throw Error(Kind::Config, "config " + request.config.source.string() +
                                      ": nothing to back up (no component configured, or all skipped)");
    install_interrupt_handlers();
    const std::int64_t started = unix_now();
    Pinger(request.config.monitoring).start();
    RunReport report;
    std::exception_ptr failure;
    int code = 0;
    {  // the run's lock, staging and CDC session end before the report goes out
        BackupRun run(request, std::move(components));
        try {
            code = run.run();
            report = run.report();
        } catch (const Error& e) {
            report = run.report();
            report.error = e.what();
            code = exit_code(e);
            failure = std::current_exception();
        }
    }
    report.exit_code = code;
    report_to_monitoring(request, started, report);
    if (on_report) on_report(report);
    if (failure) std::rethrow_exception(failure);
    return code;
}

// ---- the other modes of nightjar-backup ----

int check_backup(const BackupRequest& request, json* out) {
    const Config& config = request.config;
    const fs::path& backup_dir = request.backup_dir;
    auto components = make_components(component_configs(config), request.skip);
    if (components.empty())
        throw Error(Kind::Config, "config " + config.source.string() +
                                      ": nothing to back up (no component configured, or all skipped)");
    json summary{{"dry_run", true}, {"backup_dir", backup_dir.string()}, {"components", json::array()}};
    if (config.encryption) {
        log::info("plan: encryption: every artifact and the manifest encrypted with age to ",
                  config.encryption->recipients.size(), " recipient(s); the index signed with ",
                  config.encryption->signing_key_file.string());
        summary["encryption"] = "age";
    } else {
        if (!request.quiet)
            log::warn(
                "encryption: none: the backup would be written in clear (configure an \"encryption\" "
                "section with age recipients to encrypt it)");
        summary["encryption"] = "none";
    }
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
    if (config.cdc && !request.skip_cdc) {
        cdc::CdcCoordinator cdc(*config.cdc, {.backup_dir = backup_dir, .backup_id = ""});
        cdc::CdcCheckReport r = cdc.check();
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
    const bool s3 = is_s3_location(backup_dir);
    fs::path probe = s3 ? fs::path() : existing_ancestor(backup_dir);
    std::string storage_msg;
    struct statvfs vfs {};
    if (s3) {  // s3wire: the store answers a listing of the prefix with these credentials
        storage_msg = probe_repository(backup_dir, config.repository);
    } else if (::access(probe.c_str(), W_OK) != 0) {
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
    if (out) *out = std::move(summary);
    if (source_problem) return exit_code(Kind::SourceUnavailable);
    if (storage_problem) return exit_code(Kind::Storage);
    if (config_problem) return exit_code(Kind::Config);
    log::info("dry run: everything checks out; nothing was written");
    return 0;
}

int resume_cdc_only(const BackupRequest& request) {
    const Config& config = request.config;
    const fs::path& backup_dir = request.backup_dir;
    install_interrupt_handlers();
    auto storage = open_repository(backup_dir, config.repository);  // s3wire
    RepositoryWriter repo(*storage);
    Lock lock = repo.lock();
    const cdc::CdcConfig cdc_config = config.cdc.value_or(cdc::CdcConfig{});
    std::optional<cdc::CdcPauseState> state;
    try {
        state = cdc::read_cdc_journal(cdc_config, backup_dir);  // host-wide, whatever --backup-dir says
    } catch (const cdc::CdcStateDamaged&) {
        state = cdc::CdcPauseState{.connectors = {{}}};  // heal_previous() moves it aside and alerts
    }
    if (!state || state->connectors.empty()) {
        log::info("cdc: no state file in ", cdc::cdc_journal_file(cdc_config).string(),
                  ": nothing was left paused");
        return 0;
    }
    if (state->owner == "window" && !cdc::window_expired(*state, unix_now())) {
        log::info("cdc: the connectors in ", cdc::cdc_journal_file(cdc_config).string(),
                  " are held by a pause window until ", state->window_until.value_or("?"),
                  ": left paused (end it early with nightjar-backup cdc resume)");
        return 0;
    }
    cdc::CdcCoordinator cdc(cdc_config, {.backup_dir = backup_dir, .backup_id = ""});
    cdc.heal_previous();
    if (!cdc.resume_failures().empty()) throw cdc_resume_error(cdc.resume_failures());
    log::info("cdc: every connector a previous run left paused is resumed");
    return 0;
}

int prune_only(const BackupRequest& request, bool dry_run, json* out) {
    auto storage = open_repository(request.backup_dir, request.config.repository);  // s3wire
    RepositoryWriter repo(*storage);
    repo.set_keys(backup_host_keys(request.config, nullptr));
    std::optional<Lock> lock;
    if (!dry_run) lock.emplace(repo.lock());
    if (request.retention.empty()) log::warn("prune: no retention policy configured: every backup is kept");
    PruneResult r = prune(repo, request.retention, unix_now(), dry_run);
    json summary{{"dry_run", dry_run}, {"kept", r.kept}, {"deleted", r.deleted}, {"backups", json::array()}};
    if (!dry_run)  // s3wire: this host's multipart uploads older than a day (what no live run is writing)
        if (auto aborted = abort_stale_uploads(*storage, unix_now()); !aborted.empty())
            summary["aborted_uploads"] = aborted;
    for (const auto& d : r.decisions)
        summary["backups"].push_back({{"id", d.id}, {"keep", d.keep}, {"reasons", d.reasons}});
    if (!r.errors.empty()) summary["errors"] = r.errors;
    if (out) *out = std::move(summary);
    return r.errors.empty() ? 0 : exit_code(Kind::Partial);  // s3lock: a delete the store refused
}

}  // namespace nightjar
