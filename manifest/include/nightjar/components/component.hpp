#pragma once
// One interface per kind of source. Each component dumps itself into staging, verifies its own format,
// plans a restore against a target, and restores itself.
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/components/redis/config.hpp"
#include "nightjar/io/stream.hpp"
#include "nightjar/repo/manifest.hpp"

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
};

struct DumpResult {
    std::vector<Artifact> artifacts;
    std::vector<std::string> warnings;
    nlohmann::json details = nlohmann::json::object();
    std::vector<std::string> failures;  // parts that failed (one database): the component is recorded as
                                        // failed, the artifacts of its other parts are kept
};

enum class VerifyStatus { Ok, Missing, SizeMismatch, DigestMismatch, FormatInvalid };
std::string_view verify_status_name(VerifyStatus s);

struct VerifyOutcome {
    VerifyStatus status = VerifyStatus::Ok;
    std::string detail;  // what exactly is wrong, empty when Ok
    bool ok() const { return status == VerifyStatus::Ok; }
};

// Options that reach a component's restore; each component reads the ones it understands.
struct RestoreOptions {
    std::string backup_id;                            // the backup being restored (for replaced-file folders)
    std::optional<std::filesystem::path> target_dir;  // files: restore under this dir instead of "/"
    bool clean = false;                               // replace a non-empty target
    bool redis_flush =
        false;           // redis live mode: FLUSHALL the target first (else keys not in the backup stay)
    bool force = false;  // overwrite an existing output file (redis file mode)
    std::string redis_mode = "live";  // redis: "live" into a running server, "file" for an operator
    std::optional<std::filesystem::path> redis_rdb_path =
        std::nullopt;  // redis file mode: where to write the RDB
    std::optional<redis::Endpoint> redis_target =
        std::nullopt;  // redis live mode: the server to load, whole (default: the recorded endpoint)
    std::string redis_host = "";  // redis live mode: override the recorded host (--redis-host)
    int redis_port = 0;           // redis live mode: override the recorded port when > 0 (--redis-port)
    std::optional<redis::Endpoint> redis_config =
        std::nullopt;  // redis: the config's endpoint, for its credentials and renamed commands
    nlohmann::json extra = nlohmann::json::object();  // component-specific overrides from the CLI
    std::string db_host = "";  // postgres: restore to this server, not the recorded one
    int db_port = 0;           // postgres: its port (0 = the recorded one)
    std::string db_user = "";  // postgres: connect as this role ("" = the recorded one)
    std::map<std::string, std::string> db_rename = {};  // postgres: --db-name OLD=NEW, restore OLD into NEW
    int jobs = 0;                  // postgres: pg_restore jobs; 0 = one per core, at most 4
    bool skip_globals = false;     // postgres: do not restore roles and tablespaces
    bool allow_special = false;    // files: FIFOs, devices and sockets the manifest declares may be restored
    bool globals_replace = false;  // postgres: alter existing roles/tablespaces too (--globals=replace)
    std::vector<std::string> db_selected = {};  // postgres: --db NAME (empty = every database of the backup)
    bool redis_merge = false;  // redis live mode: load into a non-empty target, keeping its other keys
    // Another reader of an artifact's decompressed content from its start, without digest checks (the
    // `content` a restore is given proves them), for a restore that reads in parallel. May be empty.
    std::function<std::unique_ptr<io::Reader>(const Artifact&)> reopen_content = {};
    // A component that restores while verifying calls this before its first write: it returns once every
    // artifact's stored bytes are proven, or throws Kind::Verification (nothing may be written then).
    std::function<void()> before_write = {};
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
    virtual RestorePlan plan_restore(const Artifact& artifact, const RestoreOptions& options) const = 0;
    // Where the artifact would be restored, for the dry run's first lines ("" = the caller describes it).
    virtual std::string describe_target(const Artifact& artifact, const RestoreOptions& options) const {
        (void)artifact;
        (void)options;
        return "";
    }
    // True when restore() proves this artifact's content as it applies it: it reads the stream to its end,
    // where a digest mismatch throws, and checks the format on the way. The verify pass of a real restore
    // then proves only the stored bytes (size and SHA-256, no decompression), beside the start of restore(),
    // which calls RestoreOptions::before_write before it writes anything; the artifact is decompressed once.
    // By default the whole chain and verify() run first, and restore() reads the content a second time.
    virtual bool restores_while_verifying(const Artifact& artifact) const {
        (void)artifact;
        return false;
    }
    // `content` is the artifact's content, its digests checked at the end of the stream.
    virtual RestoreReport restore(const Artifact& artifact, io::Reader& content,
                                  const RestoreOptions& options) = 0;
    // A failure of this component ends the whole backup run (nothing is published).
    virtual bool fail_fast() const { return false; }
};

// The component kinds named by the --skip-config, --skip-db and --skip-redis flags that are set.
std::vector<std::string> skipped_kinds(bool skip_config, bool skip_db, bool skip_redis);

// The components of a backup run, in order, minus the skipped kinds. Kinds not configured are left out.
std::vector<std::unique_ptr<Component>> make_components(const Config& config,
                                                        const std::vector<std::string>& skip);
// The component that restores artifacts of `kind` (no config needed). Kind::Verification for an unknown kind.
// `options` carries what its verify must know beforehand (files: allow_special).
std::unique_ptr<Component> make_restore_component(std::string_view kind, const RestoreOptions& options = {});

}  // namespace nightjar
