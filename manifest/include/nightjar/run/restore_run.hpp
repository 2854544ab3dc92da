#pragma once
// The restore run, in the library so that nightjar-restore, a restore drill and a test all run the same
// policy. Five phases, each a function in restore_run.cpp:
//   select  the backup (latest, latest-any, an id) and the artifacts to restore (--skip-…, --db, globals)
//   prove   every selected artifact: the whole chain and the format in a dry run or for a component that
//           reads its content twice; the stored bytes only, beside the restore, for one that proves its
//           content as it applies it (RestoreGate holds the rule: nothing is written before every proof)
//   plan    each artifact against its target: every refusal and unreachable target is found before anything
//           is written; a dry run stops here, having run the same plan as the restore
//   apply   each artifact, through its component, with a RestoreContext (backup id, target root, clean, the
//           gate, a content reopener) and the component's own options (components/<name>/restore_options.hpp)
//   check   the components' post-restore comparisons and errors become the exit code: 0, 6 (some
//           components failed), or the first failure's own code
#include <filesystem>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/cdc/cdc_config.hpp"
#include "nightjar/components/component.hpp"
#include "nightjar/components/registry.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/repo/drill_record.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/run/encryption_config.hpp"

namespace nightjar {

// What to restore, from where, to where. The binary maps its flags to it; a drill fills it with its targets.
struct RestoreRequest {
    std::filesystem::path backup_dir = "";  // the repository; never written to (it is opened read-only)
    std::string backup = "latest";  // "latest" (newest complete), "latest-any", a backup id or manifest name
    bool dry_run = false;           // prove every artifact and plan against the targets; write nothing
    std::vector<std::string> skip = {};  // component kinds not restored ("files", "postgres", "redis")
    std::optional<std::filesystem::path> target_root = std::nullopt;  // files: under this dir, not "/"
    bool clean = false;                                               // replace targets that are not empty
    ComponentRestoreOptions components = {};                          // one block of options per component
    // Read for the credentials and renamed commands of a live Redis restore, when components.redis has no
    // credentials and the backup holds Redis ("" = none).
    std::string config_file = "";
    // Say why roles and tablespaces are left out when components.postgres.globals is Skip because of a
    // partial or side-by-side restore (not because the operator asked: --skip-globals).
    bool explain_skipped_globals = false;
    int lock_wait_s = 60;  // how long to wait for a prune that is deleting backups
    // CDC (issue 18): the config's cdc section (clusters, crash journal, cdc.restore). The connectors of the
    // restored databases are held (stop, else pause) while the restore writes and brought back after it;
    // nullopt: no connector is touched (a drill, a config without cdc).
    std::optional<cdc::CdcConfig> cdc = std::nullopt;
    // --cdc: "auto" (cdc.restore and the defaults: replay for sinks of the restored database), "replay",
    // "reanchor", or "none" (touch no connector; say what is out of step)
    std::string cdc_mode = "auto";
    // The restore host's `encryption` section: the identities that decrypt an encrypted backup and the
    // hosts whose index signatures are trusted (none: only plain backups restore).
    std::optional<EncryptionConfig> encryption = std::nullopt;
    bool allow_unsigned = false;  // --allow-unsigned: accept an encrypted backup whose index is unsigned
};

// The reader's keys for an `encryption` section (empty without one).
RepositoryKeys repository_keys(const std::optional<EncryptionConfig>& encryption, bool allow_unsigned);

// One selected artifact, as far as the run got with it.
struct ArtifactRestore {
    std::string name;       // the artifact's name in the manifest
    std::string component;  // its component kind
    std::string path;       // its path in the backup dir
    std::string target;     // "postgres db-app -> database ... on host:port (...)"
    std::optional<VerifyOutcome> verify = std::nullopt;      // its proof, once in
    std::optional<std::string> target_error = std::nullopt;  // its target could not be reached or checked
    std::optional<RestorePlan> plan = std::nullopt;          // a dry run's plan for it
    std::optional<RestoreReport> restore = std::nullopt;     // what its restore did
    std::optional<std::string> error = std::nullopt;         // why its restore failed
};

// What a restore run reports: rendered as log lines while it runs and as --json once at the end.
struct RestoreResult {
    std::string id;                                    // the backup restored (or verified)
    bool dry_run = false;                              // nothing was written
    bool ok = false;                                   // everything proven, planned and applied
    std::vector<ArtifactRestore> artifacts;            // the selected artifacts, in manifest order
    std::optional<std::vector<std::string>> refusals;  // a restore refused before anything was written
    int exit_code = 0;                                 // what the binary returns (when `error` is empty)
    std::optional<Error> error = std::nullopt;         // the failure, raised once the report is out
    // What was done with the connectors (cdc/restore_hold.hpp report(): per connector role, action, offsets
    // before and after, final state; a dry run adds "plan", the REST calls it would make); null: none.
    nlohmann::json cdc = nullptr;
};
void to_json(nlohmann::json& j, const RestoreResult& r);

// Runs the phases. Errors before there is anything to report (no such backup, a flag that names nothing,
// an interruption, a bug) are thrown; the others are in the result's `error`.
RestoreResult run_restore(const RestoreRequest& request);

// One row of `nightjar-restore --list`: a published backup, or one whose manifest cannot be read.
struct ListedBackup {
    std::string id;                   // backup id
    std::string manifest;             // manifest file name
    std::string status;               // complete, partial, ..., or "damaged"
    std::uint64_t stored_bytes = 0;   // bytes in the backup dir
    std::string components;           // "files,postgres,redis(failed)"; for a damaged one, the reason
    std::string encryption = "none";  // "age" or "none"
    std::optional<std::string> error = std::nullopt;     // why the manifest cannot be read
    std::int64_t age_seconds = 0;                        // since the backup was taken
    std::optional<LastDrill> last_drill = std::nullopt;  // its last drill (drills/<id>/), if any
};
// Every published backup, newest first; a damaged manifest is listed with its reason.
// An encrypted backup is listed from its index alone without an identity in `keys` (its components then
// read "(encrypted)"). `config_file` gives the endpoint and credentials of an s3:// backup dir.
std::vector<ListedBackup> list_backups(const std::filesystem::path& backup_dir,
                                       const RepositoryKeys& keys = {},
                                       const std::filesystem::path& config_file = {});
// The table (or with `json` one JSON array) that --list prints.
void print_backup_list(const std::vector<ListedBackup>& backups, bool json, std::ostream& out);

}  // namespace nightjar
