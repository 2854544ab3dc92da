#pragma once
// Operator hooks around a backup: commands (argv, no shell) run before the components, after the backup,
// and on error, with the backup's id, dir, status and manifest path in their environment.
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nightjar {

class JsonFields;

struct HookCommand {
    std::vector<std::string>
        argv;                // program and arguments; a shell only if the operator writes ["sh","-c",...]
    double timeout_s = 300;  // killed (SIGTERM, then SIGKILL) after this long
};

struct HooksConfig {
    std::vector<HookCommand>
        before_backup;  // after CDC is paused, before the first component; a failure aborts
    std::vector<HookCommand> after_backup;   // on every way out, before the manifest is published
    std::vector<HookCommand> on_error;       // when the run fails (or is partial), before after_backup
    std::vector<HookCommand> after_publish;  // once the manifest is published (NIGHTJAR_MANIFEST exists);
                                             // a failure makes the exit non-zero, never unpublishes
    bool empty() const {
        return before_backup.empty() && after_backup.empty() && on_error.empty() && after_publish.empty();
    }
};

// Parses the "hooks" object; Kind::Config errors name the JSON pointer.
HooksConfig parse_hooks_config(const JsonFields& f);
// The list of commands at `key` (absent: none), for other hook points such as cdc.watch.on_alert.
std::vector<HookCommand> parse_hook_commands(const JsonFields& f, std::string_view key);

// Where argv[0] would be run from: itself when it holds a '/', else the first match on $PATH (as
// posix_spawnp looks it up). Empty when not found.
std::string resolve_program(const std::string& program);
// Dry-run preflight: one line per command whose program is not found on $PATH or is not an executable file,
// "hook <stage>[<i>]: <program>: ...".
std::vector<std::string> check_hooks(const HooksConfig& hooks);

// The environment every hook gets.
struct HookEnvironment {
    std::string backup_id;           // NIGHTJAR_BACKUP_ID
    std::string backup_dir;          // NIGHTJAR_BACKUP_DIR
    std::string status;              // NIGHTJAR_STATUS: running | complete | partial | failed | interrupted
    std::string manifest;            // NIGHTJAR_MANIFEST: where the manifest is (or will be) published
    std::string error;               // NIGHTJAR_ERROR: the error message, when the run failed
    std::vector<std::string> extra;  // more NAME=value entries (the watchdog's NIGHTJAR_CDC_*)
};

struct HookRun {
    std::string stage;  // before_backup | after_backup | on_error | after_publish
    std::vector<std::string> argv;
    int exit_code = -1;  // exit status, or 128 + signal
    bool timed_out = false;
    bool interrupted = false;  // stopped because nightjar got a signal
    double seconds = 0;
    bool ok() const { return exit_code == 0 && !timed_out && !interrupted; }
    nlohmann::json to_json() const;
};

struct HookRunOptions {
    bool stop_at_failure = false;  // before_backup: the first failure ends the stage
    bool interruptible = false;    // a signal to nightjar stops the running hook
};

// Runs the commands of one stage in order. Their stdout and stderr go to the log, line by line.
std::vector<HookRun> run_hooks(std::string_view stage, const std::vector<HookCommand>& commands,
                               const HookEnvironment& env, HookRunOptions options = {});

}  // namespace nightjar
