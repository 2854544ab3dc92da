#pragma once
// Child processes without a shell: posix_spawn with an argv, extra environment (where secrets travel, never
// argv), stdout as a stream, stderr captured for error messages.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "nightjar/io/fd.hpp"
#include "nightjar/io/stream.hpp"

namespace nightjar {

struct SpawnOptions {
    std::vector<std::string> env;  // "NAME=value" entries added to (or replacing in) our environment
    bool stdout_pipe = false;      // stdout readable through Subprocess::out(); else /dev/null
    bool stdin_pipe = false;       // stdin writable through Subprocess::in(); else /dev/null
    bool capture_stderr = true;    // keep the last 64 KiB of stderr; else inherit ours
    std::optional<std::filesystem::path> cwd;  // working directory of the child
    bool new_process_group = false;            // its own group, so a terminal's Ctrl-C reaches only us
};

class Subprocess {
public:
    // Kind::SourceUnavailable when the program cannot be started (named with the reason).
    static Subprocess spawn(const std::vector<std::string>& argv, SpawnOptions options = {});
    Subprocess(Subprocess&&) noexcept;
    ~Subprocess();  // kills and reaps a child still running

    io::Reader& out();
    io::Writer& in();
    void close_in();  // EOF for the child's stdin
    // Waits for exit: the exit status, or 128 + signal when killed.
    int wait();
    // nullopt when still running after `timeout`.
    std::optional<int> wait_for(std::chrono::milliseconds timeout);
    void kill(int sig);
    pid_t pid() const { return pid_; }
    // What the child wrote on stderr (its last 64 KiB), trimmed. Complete once the child has exited.
    std::string stderr_text();
    const std::string& program() const { return program_; }

private:
    Subprocess() = default;
    struct Capture;
    pid_t pid_ = -1;
    std::string program_;
    std::optional<int> status_;
    std::unique_ptr<io::FdReader> out_;
    std::unique_ptr<io::FdWriter> in_;
    io::UniqueFd in_fd_;
    std::unique_ptr<Capture> capture_;
};

struct RunResult {
    int status = -1;
    std::string out;
    std::string err;
};
// Runs to completion, capturing stdout and stderr.
RunResult run_capture(const std::vector<std::string>& argv, SpawnOptions options = {});

// A child that exits early must surface as a write error on its stdin pipe, not kill us: SIGPIPE is ignored
// from the first call on.
void ignore_sigpipe();

// The first line of a text, trimmed (for quoting a tool's error in one line).
std::string first_line(const std::string& text);

}  // namespace nightjar
