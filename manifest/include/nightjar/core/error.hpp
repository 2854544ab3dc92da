#pragma once
// Error kinds and the single table that maps them to process exit codes.
#include <stdexcept>
#include <string>
#include <string_view>

namespace nightjar {

enum class Kind {
    Usage,              // bad flags
    Config,             // bad config file, the field named
    SourceUnavailable,  // PostgreSQL/Redis/files unreachable, auth failed, dump tool failed
    Verification,       // artifact missing, wrong size or digest, format invalid, manifest edited
    LockHeld,           // another run holds the repository lock
    Partial,            // backup published as partial / restore applied to only some components
    RestoreFailed,      // target refused or a post-restore check mismatched
    CdcResume,          // connectors may still be paused
    Storage,            // backup dir unwritable, disk full, fsync/rename failed
    Interrupted,        // stopped by a signal (exit code 128 + signal)
    Internal,           // bug or unexpected exception
};

class Error : public std::runtime_error {
public:
    // The message names the thing and what to do; it never contains a secret.
    Error(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    // For Kind::Interrupted: the signal that stopped the run.
    Error(Kind kind, const std::string& message, int signal)
        : std::runtime_error(message), kind_(kind), signal_(signal) {}
    Kind kind() const noexcept { return kind_; }
    int signal() const noexcept { return signal_; }

private:
    Kind kind_;
    int signal_ = 0;
};

// The exit code for a kind. Interrupted maps to 128 + signal (130 when the signal is unknown).
int exit_code(Kind kind, int signal = 0) noexcept;
inline int exit_code(const Error& e) noexcept {
    return exit_code(e.kind(), e.signal());
}
std::string_view kind_name(Kind kind) noexcept;

// Throws Kind::Storage with "what: path: strerror(errno)".
[[noreturn]] void throw_errno(Kind kind, std::string_view what, const std::string& thing);

}  // namespace nightjar
