#include "nightjar/repo/storage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "nightjar/core/error.hpp"
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
        int fd = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, options_.mode);
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
        if (options_.atomic && ::rename(tmp_.c_str(), final_.c_str()) != 0)
            throw_errno(Kind::Storage, "rename failed", final_.string());
        done_ = true;
        if (options_.sync) io::fsync_dir(final_.parent_path());
    }

private:
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

std::unique_ptr<io::Reader> PosixStorage::open_read(const fs::path& rel) const {
    RegularFile f = open_regular(rel);
    if (f.missing) throw Error(Kind::Verification, "cannot open: " + abs(rel).string() + ": no such file");
    if (!f.reader)
        throw Error(Kind::Verification, abs(rel).string() + ": is " + f.not_regular +
                                            ", not a regular file: refusing to read it");
    return std::move(f.reader);
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
                 std::to_string(st.st_ino) + ":" + ns(st.st_mtim) + ":" + ns(st.st_ctim)};
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
