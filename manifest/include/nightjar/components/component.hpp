#pragma once
// One interface per kind of source. Each component dumps itself into staging, verifies its own format,
// plans a restore against a target, and restores itself.
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/io/stream.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/verify.hpp"

namespace nightjar {

class Staging;
struct Config;

// What a dry run reports for a component; writes nothing.
struct CheckReport {
    std::vector<std::string> plan;      // human lines: what would be backed up
    std::vector<std::string> problems;  // each a reason the real run would fail
    std::vector<std::string> warnings;  // reported, not fatal
    std::uint64_t estimated_bytes = 0;  // upper bound of the content size, for the free-space check
};

struct DumpContext {
    std::function<void()> check_interrupted;  // throws Kind::Interrupted after a signal
    std::function<void(const std::string&, std::uint64_t)> progress;  // (artifact, content bytes so far)
    // Called by the component once per consistency point it fixes, right after it is fixed (postgres: a
    // database's snapshot is exported; redis: the server forked its snapshot), with `last` true when the
    // component takes no further one. CDC connectors held "until the snapshot" (cdc.hold) are resumed
    // once every component's last point is in; a component's dump returning (or failing) counts as its
    // last point. May be empty (a unit test, a dry run).
    std::function<void(const std::string& what, bool last)> snapshot_taken = {};

    void took_snapshot(const std::string& what, bool last) const {
        if (snapshot_taken) snapshot_taken(what, last);
    }
};

struct DumpResult {
    std::vector<Artifact> artifacts;
    std::vector<std::string> warnings;
    nlohmann::json details = nlohmann::json::object();
    std::vector<std::string> failures;  // parts that failed (one database): the component is recorded as
                                        // failed, the artifacts of its other parts are kept
};

// The one rule of a restore: nothing is written before every selected artifact is proven. The run records
// each artifact's proof here, made before the restore or still running beside it; every component waits on
// the gate before its first write, and the run waits on it before it hands a component its content.
class RestoreGate {
public:
    // Told once per artifact, when its proof is in (`beside`: a proof of the stored bytes that ran beside the
    // start of a restore, which proves the content itself as it reads it).
    using OnProven = std::function<void(std::size_t index, const VerifyOutcome& outcome, bool beside)>;

    explicit RestoreGate(OnProven on_proven = {});
    ~RestoreGate();
    RestoreGate(const RestoreGate&) = delete;
    RestoreGate& operator=(const RestoreGate&) = delete;

    // A proof made before the restore (the whole read chain and the component's verify).
    void record(std::size_t index, const VerifyOutcome& outcome);
    // A proof that runs on a thread of its own, beside the start of the restore.
    void prove_beside(std::size_t index, std::function<VerifyOutcome()> proof);
    // Waits for every proof still running; true when every artifact passed.
    bool settle();
    // Returns once every artifact is proven; Kind::Verification when one failed: nothing may be written then.
    void wait_until_proven();
    // The artifacts whose proof failed so far.
    std::size_t failed() const;

private:
    struct Pending;
    OnProven on_proven_;
    mutable std::mutex m_;
    std::vector<std::unique_ptr<Pending>> pending_;
    std::size_t failed_ = 0;
};

// What every component's restore is given, beside its own options (components/<name>/restore_options.hpp).
struct RestoreContext {
    std::string backup_id = "";  // the backup being restored (names the folder of replaced files)
    std::optional<std::filesystem::path> target_root = std::nullopt;  // files: under this dir, not "/"
    bool clean = false;  // replace a non-empty target (postgres: drop and recreate; redis: flush first)
    RestoreGate* gate = nullptr;  // every write waits on it (null: nothing to wait for, as in a unit test)
    // Another reader of an artifact's decompressed content from its start, without digest checks (the
    // `content` a restore is given proves them), for a restore that reads in parallel. May be empty.
    std::function<std::unique_ptr<io::Reader>(const Artifact&)> reopen_content = {};

    // A component calls this before its first write (see RestoreGate::wait_until_proven).
    void wait_until_proven() const {
        if (gate) gate->wait_until_proven();
    }
};

// A dry-run preview of a restore.
struct RestorePlan {
    std::vector<std::string> lines;     // "new /etc/x", "changed ...", summary lines
    std::vector<std::string> refusals;  // reasons the restore would be refused (nothing is written then)
    nlohmann::json summary = nlohmann::json::object();
};

struct RestoreReport {
    std::vector<std::string> lines;     // what was done
    std::vector<std::string> problems;  // post-restore mismatches or refused entries: the restore failed
    nlohmann::json summary = nlohmann::json::object();
};

class Component {
public:
    virtual ~Component() = default;
    virtual std::string_view kind() const = 0;
    virtual CheckReport check() const = 0;
    virtual DumpResult dump(DumpContext& context, Staging& staging) = 0;
    // Format-level check of an artifact's decompressed content, read to its end.
    virtual VerifyOutcome verify(const Artifact& artifact, io::Reader& content) const = 0;
    // What restore() would do with the artifact, and every reason it would refuse; writes nothing.
    virtual RestorePlan plan_restore(const Artifact& artifact, const RestoreContext& context) const = 0;
    // Where the artifact would be restored, for the dry run's first lines ("" = the caller describes it).
    virtual std::string describe_target(const Artifact& artifact, const RestoreContext& context) const {
        (void)artifact;
        (void)context;
        return "";
    }
    // True when restore() proves this artifact's content as it applies it: it reads the stream to its end,
    // where a digest mismatch throws, and checks the format on the way. The verify pass of a real restore
    // then proves only the stored bytes (size and SHA-256, no decompression), beside the start of restore(),
    // which calls RestoreContext::wait_until_proven before it writes anything; the artifact is decompressed
    // once. By default the whole chain and verify() run first, and restore() reads the content a second time.
    virtual bool restores_while_verifying(const Artifact& artifact) const {
        (void)artifact;
        return false;
    }
    // `content` is the artifact's content, its digests checked at the end of the stream.
    // The restore's own options were given to the component when it was made (make_restore_component).
    virtual RestoreReport restore(const Artifact& artifact, io::Reader& content,
                                  const RestoreContext& context) = 0;
    // A failure of this component ends the whole backup run (nothing is published).
    virtual bool fail_fast() const { return false; }
    // True when dump() fixes a consistency point that CDC connectors must be held for (see
    // DumpContext::snapshot_taken). The safe default: the connectors wait for this component's dump.
    virtual bool takes_snapshot() const { return true; }
};

// The verify chain (repo/verify.hpp) with the component's own format check on the content.
inline VerifyOutcome verify_artifact(const RepositoryReader& repo, const Artifact& artifact,
                                     const Component& component, const io::ReadKeys& keys,
                                     const VerifyProgress& progress = {}) {
    return verify_artifact(
        repo, artifact, [&](io::Reader& content) { return component.verify(artifact, content); }, keys,
        progress);
}
inline VerifyOutcome verify_artifact(const RepositoryReader& repo, const Artifact& artifact,
                                     const Component& component, const VerifyProgress& progress = {}) {
    return verify_artifact(repo, artifact, component, io::ReadKeys{}, progress);
}

}  // namespace nightjar
