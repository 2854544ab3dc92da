#include "nightjar/io/fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "nightjar/core/error.hpp"

namespace nightjar::io {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.release();
    }
    return *this;
}

UniqueFd::~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<FdReader> FdReader::open(const std::filesystem::path& path, Kind missing_kind) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_errno(errno == ENOENT ? missing_kind : Kind::Storage, "cannot open", path.string());
    return std::make_unique<FdReader>(UniqueFd(fd), path.string());
}

std::size_t FdReader::read(MutableBytes buf) {
    for (;;) {
        ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno != EINTR) throw_errno(Kind::Storage, "read failed", what_);
    }
}

void write_all(int fd, Bytes data, const std::string& what) {
    const std::byte* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(Kind::Storage, "write failed", what);
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

void FdWriter::write(Bytes data) {
    write_all(fd_, data, what_);
}

void fsync_dir(const std::filesystem::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw_errno(Kind::Storage, "cannot open directory for fsync", dir.string());
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) {
        errno = err;
        throw_errno(Kind::Storage, "fsync failed", dir.string());
    }
}

}  // namespace nightjar::io
