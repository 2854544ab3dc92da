#include "nightjar/components/files/safe_fs.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <system_error>

#include "nightjar/core/error.hpp"

namespace nightjar::files {
namespace fs = std::filesystem;

namespace {

// 1: try openat2; 0: do not (the kernel lacks it, a filter refuses it, or a test turned it off).
std::atomic<int> g_openat2{1};

io::UniqueFd dup_fd(int fd) {
    int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0) throw_errno(Kind::RestoreFailed, "files: cannot duplicate a directory descriptor", "");
    return io::UniqueFd(d);
}

// openat2 beneath `dir` with no symlink anywhere; -1 with errno on failure. Marks openat2 unavailable when
// the kernel (or a seccomp filter) does not offer it.
int open_beneath(int dir, const std::string& rel) {
    if (g_openat2.load() == 0) {
        errno = ENOSYS;
        return -1;
    }
#ifdef SYS_openat2
    struct open_how how {};
    how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = ::syscall(SYS_openat2, dir, rel.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno == ENOSYS || errno == EPERM || errno == E2BIG || errno == EINVAL) g_openat2.store(0);
    return -1;
#else
    (void)dir;
    (void)rel;
    g_openat2.store(0);
    errno = ENOSYS;
    return -1;
#endif
}

}  // namespace

bool openat2_in_use() {
    if (g_openat2.load() == 1) {
        // Probe once: "." beneath the root of the filesystem always exists.
        int fd = open_beneath(AT_FDCWD, ".");
        if (fd >= 0) ::close(fd);
    }
    return g_openat2.load() == 1;
}

void set_openat2_allowed(bool allowed) {
    g_openat2.store(allowed ? 1 : 0);
}

std::optional<std::vector<std::string>> split_relative(std::string_view rel) {
    if (rel.empty() || rel.front() == '/') return std::nullopt;
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
        std::size_t end = rel.find('/', start);
        std::string_view part = rel.substr(start, end == std::string_view::npos ? rel.npos : end - start);
        if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos)
            return std::nullopt;
        parts.emplace_back(part);
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    return parts;
}

std::string join(const std::vector<std::string>& parts, std::size_t count) {
    std::string out;
    for (std::size_t i = 0; i < count && i < parts.size(); ++i) {
        if (i) out.push_back('/');
        out += parts[i];
    }
    return out;
}

std::optional<struct stat> stat_at(int dir_fd, const std::string& name, const std::string& shown) {
    struct stat st {};
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return st;
    if (errno == ENOENT) return std::nullopt;
    throw_errno(Kind::RestoreFailed, "files: cannot inspect", shown);
}

std::optional<SafeRoot> SafeRoot::open(const fs::path& root) {
    int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) return SafeRoot(io::UniqueFd(fd), root);
    if (errno == ENOENT) return std::nullopt;
    throw_errno(Kind::RestoreFailed, "files: cannot open the restore target", root.string());
}

SafeRoot SafeRoot::create(const fs::path& root) {
    std::error_code ec;
    fs::create_directories(root, ec);
    if (ec)
        throw Error(Kind::RestoreFailed,
                    "files: cannot create restore target " + root.string() + ": " + ec.message());
    auto opened = open(root);
    if (!opened) throw Error(Kind::RestoreFailed, "files: restore target vanished: " + root.string());
    return std::move(*opened);
}

std::string SafeRoot::shown(const std::string& rel) const {
    return (path_ / rel).string();
}

DirLookup SafeRoot::lookup_dir(const std::vector<std::string>& parts, std::size_t count, bool create,
                               mode_t create_mode) const {
    DirLookup out;
    if (count == 0) {
        out.fd = dup_fd(fd_.get());
        return out;
    }
    // The fast path: one openat2 that the kernel confines. Any failure is diagnosed by the walk below.
    int fast = open_beneath(fd_.get(), join(parts, count));
    if (fast >= 0) {
        out.fd = io::UniqueFd(fast);
        return out;
    }
    io::UniqueFd cur = dup_fd(fd_.get());
    for (std::size_t i = 0; i < count; ++i) {
        const std::string& name = parts[i];
        bool made = false;
        for (;;) {
            int fd = ::openat(cur.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0) {
                cur = io::UniqueFd(fd);
                break;
            }
            int err = errno;
            out.at = join(parts, i + 1);
            struct stat st {};
            if (::fstatat(cur.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                if (errno == ENOENT && create && !made) {
                    if (::mkdirat(cur.get(), name.c_str(), create_mode) != 0 && errno != EEXIST) {
                        out.blocked = Blocked::Error;
                        out.error = errno;
                        return out;
                    }
                    made = true;
                    continue;
                }
                out.blocked = errno == ENOENT ? Blocked::Missing : Blocked::Error;
                out.error = errno;
                return out;
            }
            out.blocked = S_ISLNK(st.st_mode)    ? Blocked::Symlink
                          : !S_ISDIR(st.st_mode) ? Blocked::NotDirectory
                                                 : Blocked::Error;
            out.error = err;
            return out;
        }
    }
    out.fd = std::move(cur);
    out.at.clear();
    return out;
}

}  // namespace nightjar::files
