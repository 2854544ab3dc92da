#include "nightjar/repo/storage.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <random>

#include "nightjar/core/error.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/io/fd.hpp"

namespace nightjar {
namespace fs = std::filesystem;

bool is_safe_relative(const fs::path& rel) {
    if (rel.empty() || rel.is_absolute() || rel.has_root_name() || rel.has_root_directory()) return false;
    if (rel.native().find('\0') != std::string::npos) return false;  // a C API would cut it short
    for (const auto& part : rel)
        if (part == "..") return false;
    return true;
}

namespace {

// Writes into `<final>.tmp-<random>`; finish() fsyncs, renames over `<final>` and fsyncs the directory.
// Destroyed unfinished, it removes the temporary file so no half file is ever visible under the final name.
class AtomicFileWriter final : public io::Writer {
public:
    AtomicFileWriter(fs::path final_path, WriteOptions options)
        : final_(std::move(final_path)), options_(options) {
        std::random_device rd;
        tmp_ = options_.atomic ? fs::path(final_.string() + ".tmp-" + std::to_string(rd())) : final_;
        struct stat st {};
        if (options_.create_only && ::lstat(final_.c_str(), &st) == 0) throw exists(final_);
        int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
        flags |= options_.create_only && !options_.atomic ? O_EXCL | O_NOFOLLOW : O_TRUNC;
        int fd = ::open(tmp_.c_str(), flags, options_.mode);
        if (fd < 0 && errno == EEXIST && options_.create_only) throw exists(final_);
        if (fd < 0) throw_errno(Kind::Storage, "cannot create file", tmp_.string());
        fd_ = io::UniqueFd(fd);
        // The umask never loosens or tightens it.
        if (::fchmod(fd, options_.mode) != 0) throw_errno(Kind::Storage, "cannot chmod", tmp_.string());
    }
    ~AtomicFileWriter() override {
        if (!done_ && options_.atomic) ::unlink(tmp_.c_str());
    }
    void write(io::Bytes data) override { io::write_all(fd_.get(), data, final_.string()); }
    void finish() override {
        if (done_) return;
        if (options_.sync && ::fsync(fd_.get()) != 0)
            throw_errno(Kind::Storage, "fsync failed", final_.string());
        if (::close(fd_.release()) != 0) throw_errno(Kind::Storage, "close failed", final_.string());
        if (options_.atomic && options_.create_only)
            publish_no_replace();
        else if (options_.atomic && ::rename(tmp_.c_str(), final_.c_str()) != 0)
            throw_errno(Kind::Storage, "rename failed", final_.string());
        done_ = true;
        if (options_.sync) io::fsync_dir(final_.parent_path());
    }

private:
    static StorageExists exists(const fs::path& path) {
        return StorageExists(Kind::Storage,
                             "cannot create: " + path.string() +
                                 ": it exists already (create-only write); nothing was changed");
    }
    // Moves the temporary file to the final name only if that name is free: renameat2(RENAME_NOREPLACE),
    // or link()+unlink() on a filesystem without it. Either way an existing file is never replaced.
    void publish_no_replace() {
        if (::renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, final_.c_str(), RENAME_NOREPLACE) == 0) return;
        if (errno == EEXIST) throw exists(final_);
        if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
            throw_errno(Kind::Storage, "rename failed", final_.string());
        if (::link(tmp_.c_str(), final_.c_str()) != 0) {
            if (errno == EEXIST) throw exists(final_);
            throw_errno(Kind::Storage, "cannot link into place", final_.string());
        }
        ::unlink(tmp_.c_str());
    }
    fs::path final_;
    fs::path tmp_;
    WriteOptions options_;
    io::UniqueFd fd_;
    bool done_ = false;
};

}  // namespace

fs::path PosixStorage::abs(const fs::path& rel) const {
    if (rel.empty() || rel == ".") return root_;
    if (!is_safe_relative(rel)) throw Error(Kind::Internal, "storage: refusing unsafe path: " + rel.string());
    return root_ / rel;
}

std::string PosixStorage::describe(const fs::path& rel) const {
    return abs(rel).string();
}

namespace {

std::string file_type_name(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a plain file";
}

}  // namespace

RegularFile Storage::open_regular(const fs::path& rel) const {
    RegularFile out;
    auto st = stat(rel);
    if (!st) {
        out.missing = true;
        return out;
    }
    if (st->is_dir) {
        out.not_regular = "a directory";
        return out;
    }
    out.size = st->size;
    out.reader = open_read(rel);
    return out;
}

RegularFile PosixStorage::open_regular(const fs::path& rel) const {
    const fs::path path = abs(rel);
    RegularFile out;
    // O_NOFOLLOW: a symlink is refused, not followed (to /dev/zero, say). O_NONBLOCK: opening a FIFO
    // returns at once instead of waiting for a writer; fstat below then refuses it.
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            out.missing = true;
            return out;
        }
        if (errno == ELOOP) {
            out.not_regular = "a symbolic link";
            return out;
        }
        throw_errno(Kind::Storage, "cannot open", path.string());
    }
    io::UniqueFd owned(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_errno(Kind::Storage, "cannot stat", path.string());
    if (!S_ISREG(st.st_mode)) {
        out.not_regular = file_type_name(st.st_mode);
        return out;
    }
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
        throw_errno(Kind::Storage, "cannot set blocking mode", path.string());
    out.size = static_cast<std::uint64_t>(st.st_size);
    out.reader = std::make_unique<io::FdReader>(std::move(owned), path.string());
    return out;
}

namespace {

// At most `left` bytes of `inner`.
class LimitedReader final : public io::Reader {
public:
    LimitedReader(std::unique_ptr<io::Reader> inner, std::uint64_t left)
        : inner_(std::move(inner)), left_(left) {}
    std::size_t read(io::MutableBytes buf) override {
        if (left_ == 0) return 0;
        if (buf.size() > left_) buf = buf.first(static_cast<std::size_t>(left_));
        std::size_t n = inner_->read(buf);
        left_ -= n;
        return n;
    }

private:
    std::unique_ptr<io::Reader> inner_;
    std::uint64_t left_;
};

std::unique_ptr<io::Reader> limit_reader(std::unique_ptr<io::Reader> inner,
                                         std::optional<std::uint64_t> length) {
    if (!length) return inner;
    return std::make_unique<LimitedReader>(std::move(inner), *length);
}

}  // namespace

std::unique_ptr<io::Reader> PosixStorage::open_read(const fs::path& rel, ReadRange range) const {
    RegularFile f = open_regular(rel);
    if (f.missing) throw Error(Kind::Verification, "cannot open: " + abs(rel).string() + ": no such file");
    if (!f.reader)
        throw Error(Kind::Verification, abs(rel).string() + ": is " + f.not_regular +
                                            ", not a regular file: refusing to read it");
    if (range.offset == 0) return limit_reader(std::move(f.reader), range.length);
    if (range.offset >= f.size) return std::make_unique<io::EmptyReader>();
    auto* fd_reader = static_cast<io::FdReader*>(f.reader.get());
    if (::lseek(fd_reader->fd(), static_cast<off_t>(range.offset), SEEK_SET) < 0)
        throw_errno(Kind::Storage, "cannot seek", abs(rel).string());
    return limit_reader(std::move(f.reader), range.length);
}

std::unique_ptr<io::Writer> PosixStorage::open_write(const fs::path& rel, WriteOptions options) {
    if (options.mode == 0) options.mode = modes_.file;
    return std::make_unique<AtomicFileWriter>(abs(rel), options);
}

StorageModes storage_modes(const std::string& repository_mode) {
    if (repository_mode == "group") return {.dir = 0750, .file = 0640};
    return {};
}

std::vector<Entry> PosixStorage::list(const fs::path& dir) const {
    std::vector<Entry> out;
    std::error_code ec;
    fs::directory_iterator it(abs(dir), ec);
    if (ec) {
        if (ec == std::errc::no_such_file_or_directory) return out;
        throw Error(Kind::Storage, "cannot list directory: " + abs(dir).string() + ": " + ec.message());
    }
    for (const auto& e : it) {
        Entry entry{e.path().filename().string(), e.is_directory(ec), 0, ""};
        if (!entry.is_dir) entry.size = e.file_size(ec);
        out.push_back(std::move(entry));
    }
    return out;
}

namespace {

// Every non-directory below `dir` (absolute) whose key (relative to the root, '/' separated) starts with
// `prefix`; directories are entered only when their key could still lead to a match.
void walk_prefix(const fs::path& dir, const std::string& key_dir, const std::string& prefix,
                 std::vector<Entry>& out) {
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) {
        if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) return;
        throw Error(Kind::Storage, "cannot list directory: " + dir.string() + ": " + ec.message());
    }
    for (const auto& e : it) {
        const std::string key = key_dir + e.path().filename().string();
        const bool is_dir = e.symlink_status(ec).type() == fs::file_type::directory;
        if (is_dir) {
            const std::string sub = key + "/";
            // The subtree can hold a match when one key is a prefix of the other.
            if (sub.compare(0, std::min(sub.size(), prefix.size()), prefix, 0,
                            std::min(sub.size(), prefix.size())) == 0)
                walk_prefix(e.path(), sub, prefix, out);
            continue;
        }
        if (key.rfind(prefix, 0) != 0) continue;
        struct stat st {};
        if (::lstat(e.path().c_str(), &st) != 0) continue;  // gone meanwhile
        out.push_back(
            {key, false, static_cast<std::uint64_t>(st.st_size), "", static_cast<std::int64_t>(st.st_mtime)});
    }
}

}  // namespace

std::vector<Entry> PosixStorage::list_prefix(const std::string& prefix) const {
    if (prefix.find('\0') != std::string::npos)
        throw Error(Kind::Internal, "storage: refusing unsafe prefix");
    // Start from the deepest directory the prefix names whole, which must be a safe relative path.
    const auto slash = prefix.rfind('/');
    const std::string key_dir = slash == std::string::npos ? "" : prefix.substr(0, slash + 1);
    std::vector<Entry> out;
    walk_prefix(key_dir.empty() ? root_ : abs(key_dir.substr(0, key_dir.size() - 1)), key_dir, prefix, out);
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
    return out;
}

std::optional<Entry> PosixStorage::stat(const fs::path& rel) const {
    struct stat st {};
    if (::lstat(abs(rel).c_str(), &st) != 0) {
        if (errno == ENOENT) return std::nullopt;
        throw_errno(Kind::Storage, "cannot stat", abs(rel).string());
    }
    auto ns = [](const struct timespec& t) {
        return std::to_string(static_cast<long long>(t.tv_sec) * 1000000000LL + t.tv_nsec);
    };
    return Entry{rel.filename().string(), S_ISDIR(st.st_mode), static_cast<std::uint64_t>(st.st_size),
                 std::to_string(st.st_ino) + ":" + ns(st.st_mtim) + ":" + ns(st.st_ctim),
                 static_cast<std::int64_t>(st.st_mtime)};
}

void PosixStorage::make_dir(const fs::path& rel) {
    // Each missing directory is created with modes_.dir, whatever the umask; existing ones are left as they
    // are.
    std::vector<fs::path> missing;
    for (fs::path p = abs(rel); !p.empty(); p = p.parent_path()) {
        struct stat st {};
        if (::stat(p.c_str(), &st) == 0) break;
        missing.push_back(p);
        if (p == p.parent_path()) break;
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        if (::mkdir(it->c_str(), modes_.dir) != 0) {
            if (errno == EEXIST) continue;
            throw_errno(Kind::Storage, "cannot create directory", it->string());
        }
        if (::chmod(it->c_str(), modes_.dir) != 0) throw_errno(Kind::Storage, "cannot chmod", it->string());
    }
}

void PosixStorage::rename(const fs::path& from, const fs::path& to) {
    if (::rename(abs(from).c_str(), abs(to).c_str()) != 0)
        throw_errno(Kind::Storage, "rename failed", abs(from).string() + " -> " + abs(to).string());
}

void PosixStorage::remove(const fs::path& rel) {
    if (::unlink(abs(rel).c_str()) != 0 && errno != ENOENT)
        throw_errno(Kind::Storage, "cannot remove", abs(rel).string());
}

void PosixStorage::remove_tree(const fs::path& rel) {
    std::error_code ec;
    fs::remove_all(abs(rel), ec);
    if (ec) throw Error(Kind::Storage, "cannot remove: " + abs(rel).string() + ": " + ec.message());
}

void PosixStorage::sync_dir(const fs::path& rel) {
    io::fsync_dir(abs(rel));
}

namespace {

class FdLock final : public StorageLock {
public:
    explicit FdLock(io::UniqueFd fd) : fd_(std::move(fd)) {}  // closing the descriptor drops the flock

private:
    io::UniqueFd fd_;
};

// The repository lock's file: read-write (the holder records its pid), created with `mode`.
int open_holder_lock(const fs::path& file, std::uint32_t mode) {
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, mode);
    if (fd >= 0) (void)::fchmod(fd, mode);  // whatever the umask (another owner's file stays as it is)
    return fd;
}

// A shared lock's file (the readers' lock): a regular file, never a link, never blocking, opened read-only
// so whoever may read the backups may take it. A new one gets `mode` whatever the umask.
int open_shared_lock(const fs::path& file, std::uint32_t mode) {
    int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
        if (fd >= 0)
            ::fchmod(fd, mode);
        else if (errno == EEXIST)
            fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    }
    if (fd < 0) return -1;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        errno = EINVAL;
        return -1;
    }
    return fd;
}

}  // namespace

LockAttempt PosixStorage::try_lock(const fs::path& rel, const LockOptions& options) const {
    const fs::path file = abs(rel);
    int fd =
        options.record_holder ? open_holder_lock(file, modes_.file) : open_shared_lock(file, modes_.file);
    if (fd < 0) throw_errno(Kind::Storage, "cannot open " + options.what, file.string());
    io::UniqueFd owned(fd);
    for (;;) {
        if (::flock(fd, (options.exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) break;
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK) throw_errno(Kind::Storage, "cannot lock", file.string());
        LockAttempt taken;
        if (options.record_holder) {
            char buf[32] = {};
            ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
            if (n > 0) taken.holder.assign(buf, static_cast<std::size_t>(n));
            while (!taken.holder.empty() && (taken.holder.back() == '\n' || taken.holder.back() == ' '))
                taken.holder.pop_back();
        }
        return taken;
    }
    if (options.record_holder) {
        // We hold the lock: record our pid for the next one who finds it taken.
        std::string pid = std::to_string(::getpid()) + "\n";
        if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0)
            log::warn("could not record pid in lock file ", file.string());
    }
    return {std::make_unique<FdLock>(std::move(owned)), ""};
}

std::optional<std::uint64_t> PosixStorage::free_space() const {
    // The root may not exist yet: ask the filesystem it will be created on.
    fs::path probe = root_;
    std::error_code ec;
    while (!probe.empty() && !fs::exists(probe, ec) && probe != probe.root_path())
        probe = probe.parent_path();
    struct statvfs vfs {};
    if (probe.empty() || ::statvfs(probe.c_str(), &vfs) != 0) return std::nullopt;
    return static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

LockAttempt Storage::try_lock(const fs::path& rel, const LockOptions&) const {
    throw Error(Kind::Internal, "storage has no advisory locks: " + describe(rel));
}

void ReadOnlyStorage::refuse(const char* op, const fs::path& rel) const {
    throw Error(Kind::Internal, std::string("dry run attempted to ") + op + ": " + inner_.describe(rel));
}
std::unique_ptr<io::Writer> ReadOnlyStorage::open_write(const fs::path& rel, WriteOptions) {
    refuse("write", rel);
}
void ReadOnlyStorage::make_dir(const fs::path& rel) {
    refuse("create a directory", rel);
}
void ReadOnlyStorage::rename(const fs::path& from, const fs::path&) {
    refuse("rename", from);
}
void ReadOnlyStorage::remove(const fs::path& rel) {
    refuse("remove", rel);
}
void ReadOnlyStorage::remove_tree(const fs::path& rel) {
    refuse("remove", rel);
}
void ReadOnlyStorage::sync_dir(const fs::path& rel) {
    refuse("sync", rel);
}

}  // namespace nightjar
