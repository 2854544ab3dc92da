#include "nightjar/run/hooks.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <thread>

#include "nightjar/core/error.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/core/signals.hpp"
#include "nightjar/io/process.hpp"

namespace nightjar {

using nlohmann::json;

std::vector<HookCommand> parse_hook_commands(const JsonFields& f, std::string_view key) {
    std::vector<HookCommand> out;
    if (!f.has(key)) return out;
    const json& list = f.array(key);
    for (std::size_t i = 0; i < list.size(); ++i) {
        JsonFields c = f.element(key, i);
        c.only({"argv", "timeout_s"});
        HookCommand h;
        h.argv = c.strings_or("argv", {});
        if (!c.has("argv")) c.fail("argv", "required field is missing");
        if (h.argv.empty() || h.argv[0].empty()) c.fail("argv", "expected a program and its arguments");
        h.timeout_s = c.number_or("timeout_s", 0.1, 86400, h.timeout_s);
        out.push_back(std::move(h));
    }
    return out;
}

namespace {

std::string render(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
    return s;
}

void log_lines(const std::string& prefix, const std::string& text) {
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(start, end - start);
        if (!line.empty()) log::info(prefix, line);
        start = end + 1;
    }
}

}  // namespace

HooksConfig parse_hooks_config(const JsonFields& f) {
    f.only({"before_backup", "after_backup", "on_error", "after_publish"});
    return HooksConfig{.before_backup = parse_hook_commands(f, "before_backup"),
                       .after_backup = parse_hook_commands(f, "after_backup"),
                       .on_error = parse_hook_commands(f, "on_error"),
                       .after_publish = parse_hook_commands(f, "after_publish")};
}

namespace {
bool executable_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}
}  // namespace

std::string resolve_program(const std::string& program) {
    if (program.find('/') != std::string::npos) return program;
    const char* env = std::getenv("PATH");
    std::string path = env ? env : "/bin:/usr/bin";
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t end = path.find(':', start);
        if (end == std::string::npos) end = path.size();
        std::string dir = path.substr(start, end - start);
        std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + program;
        if (executable_file(candidate)) return candidate;
        start = end + 1;
    }
    return "";
}

std::vector<std::string> check_hooks(const HooksConfig& hooks) {
    std::vector<std::string> problems;
    auto stage = [&](std::string_view name, const std::vector<HookCommand>& commands) {
        for (std::size_t i = 0; i < commands.size(); ++i) {
            const std::string& program = commands[i].argv.at(0);
            std::string prefix =
                "hook " + std::string(name) + "[" + std::to_string(i) + "]: " + program + ": ";
            std::string found = resolve_program(program);
            struct stat st {};
            if (found.empty())
                problems.push_back(prefix + "not found on PATH (" +
                                   std::string(std::getenv("PATH") ? std::getenv("PATH") : "") +
                                   "): install it or give its absolute path in /hooks/" + std::string(name) +
                                   "/" + std::to_string(i) + "/argv/0");
            else if (::stat(found.c_str(), &st) != 0)
                problems.push_back(prefix + "does not exist: fix /hooks/" + std::string(name) + "/" +
                                   std::to_string(i) + "/argv/0");
            else if (!S_ISREG(st.st_mode) || ::access(found.c_str(), X_OK) != 0)
                problems.push_back(prefix + "is not an executable file: chmod +x it or fix /hooks/" +
                                   std::string(name) + "/" + std::to_string(i) + "/argv/0");
        }
    };
    stage("before_backup", hooks.before_backup);
    stage("on_error", hooks.on_error);
    stage("after_backup", hooks.after_backup);
    stage("after_publish", hooks.after_publish);
    return problems;
}

json HookRun::to_json() const {
    json j{{"stage", stage}, {"argv", argv}, {"exit_code", exit_code}, {"seconds", seconds}};
    if (timed_out) j["timed_out"] = true;
    if (interrupted) j["interrupted"] = true;
    return j;
}

std::vector<HookRun> run_hooks(std::string_view stage, const std::vector<HookCommand>& commands,
                               const HookEnvironment& env, HookRunOptions options) {
    std::vector<HookRun> runs;
    for (std::size_t i = 0; i < commands.size(); ++i) {
        const HookCommand& cmd = commands[i];
        HookRun run{.stage = std::string(stage), .argv = cmd.argv};
        std::string prefix = "hook " + std::string(stage) + "[" + std::to_string(i) + "]: ";
        log::info(prefix, "running ", render(cmd.argv));
        auto t0 = std::chrono::steady_clock::now();
        SpawnOptions spawn;
        spawn.env = {"NIGHTJAR_BACKUP_ID=" + env.backup_id, "NIGHTJAR_BACKUP_DIR=" + env.backup_dir,
                     "NIGHTJAR_STATUS=" + env.status, "NIGHTJAR_MANIFEST=" + env.manifest,
                     "NIGHTJAR_ERROR=" + env.error};
        spawn.env.insert(spawn.env.end(), env.extra.begin(), env.extra.end());
        spawn.stdout_pipe = true;
        spawn.capture_stderr = true;
        // Its own group: a timeout or a signal stops the hook and whatever it started.
        spawn.new_process_group = true;
        try {
            Subprocess p = Subprocess::spawn(cmd.argv, spawn);
            std::string out;
            std::thread reader([&] {
                std::vector<std::byte> buf(8192);
                try {
                    while (std::size_t n = p.out().read(buf)) {
                        if (out.size() < 256 * 1024) out.append(reinterpret_cast<const char*>(buf.data()), n);
                    }
                } catch (const std::exception&) {
                }
            });
            auto deadline = t0 + std::chrono::milliseconds(static_cast<std::int64_t>(cmd.timeout_s * 1000));
            std::optional<int> status;
            while (!(status = p.wait_for(std::chrono::milliseconds(50)))) {
                bool signalled = options.interruptible && interrupted_signal() != 0;
                if (std::chrono::steady_clock::now() < deadline && !signalled) continue;
                run.timed_out = !signalled;
                run.interrupted = signalled;
                ::kill(-p.pid(), SIGTERM);
                if (!(status = p.wait_for(std::chrono::seconds(2)))) {
                    ::kill(-p.pid(), SIGKILL);
                    status = p.wait();
                }
                break;
            }
            ::kill(-p.pid(), SIGKILL);  // anything the hook left behind holding our pipe
            reader.join();
            run.exit_code = *status;
            log_lines(prefix + "stdout: ", out);
            log_lines(prefix + "stderr: ", p.stderr_text());
        } catch (const Error& e) {
            log::error(prefix, e.what());
            run.exit_code = 127;
        }
        run.seconds =
            log::round_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        if (run.timed_out)
            log::error(prefix, render(cmd.argv), " timed out after ", cmd.timeout_s,
                       " s (timeout_s) and was killed");
        else if (run.interrupted)
            log::warn(prefix, render(cmd.argv), " stopped: nightjar was interrupted");
        else if (run.exit_code != 0)
            log::error(prefix, render(cmd.argv), " failed with exit code ", run.exit_code);
        else
            log::info(prefix, "exit code 0");
        runs.push_back(run);
        if (!run.ok() && options.stop_at_failure) break;
        if (run.interrupted) break;
    }
    return runs;
}

}  // namespace nightjar
