#pragma once
// The one safe-extraction layer of the files component: every path below a restore target is resolved
// component by component from a directory fd of the target (openat with O_NOFOLLOW|O_DIRECTORY, or
// openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS when the kernel has it), never by string, and never
// through a symlink. The plan, the change comparison, the move-aside and every write use it.
#include <sys/stat.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nightjar/io/fd.hpp"

namespace nightjar::files {

// A relative path as its components. nullopt when it is empty or absolute, or has an empty, "." or ".."
// component ("etc//x", "./etc", "a/../b"), or a NUL byte (a system call would cut the name there).
std::optional<std::vector<std::string>> split_relative(std::string_view rel);
std::string join(const std::vector<std::string>& parts, std::size_t count);

// Why a walk down the target stopped before it reached the directory asked for.
enum class Blocked {
    None,          // the directory was reached (`fd` is open)
    Missing,       // a component does not exist (everything below it is new)
    Symlink,       // a component is a symlink: never followed
    NotDirectory,  // a component is a file, a device, ...
    Error,         // anything else (`error` is the errno)
};

struct DirLookup {
    io::UniqueFd fd;  // the directory reached, when blocked == None
    Blocked blocked = Blocked::None;
    std::string at;  // the relative path of the component that stopped the walk
    int error = 0;   // errno, for Blocked::Error
};

// The metadata of `name` in the directory `dir_fd`, never following a symlink; nullopt when absent.
// Other errors throw Kind::RestoreFailed naming `shown`.
std::optional<struct stat> stat_at(int dir_fd, const std::string& name, const std::string& shown);

// A restore target held open as a directory fd.
class SafeRoot {
public:
    // Opens `root` (the operator's path; a symlink there is the operator's choice and is followed).
    // nullopt when it does not exist; Kind::RestoreFailed when it is not a directory or cannot be opened.
    static std::optional<SafeRoot> open(const std::filesystem::path& root);
    // Creates `root` and its missing parents first.
    static SafeRoot create(const std::filesystem::path& root);

    int fd() const { return fd_.get(); }
    const std::filesystem::path& path() const { return path_; }
    // "<root>/<rel>" for messages.
    std::string shown(const std::string& rel) const;

    // Walks down the first `count` components of `parts`. With `create`, missing directories are made
    // (mode 0755, or `create_mode`); a symlink or a non-directory still stops the walk.
    DirLookup lookup_dir(const std::vector<std::string>& parts, std::size_t count, bool create = false,
                         mode_t create_mode = 0755) const;

private:
    SafeRoot(io::UniqueFd fd, std::filesystem::path path) : fd_(std::move(fd)), path_(std::move(path)) {}
    io::UniqueFd fd_;
    std::filesystem::path path_;
};

// Whether openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) is used (decided once, at runtime: ENOSYS, or a
// seccomp filter that refuses it, means the component walk alone). Tests turn it off to cover the fallback.
bool openat2_in_use();
void set_openat2_allowed(bool allowed);

}  // namespace nightjar::files
