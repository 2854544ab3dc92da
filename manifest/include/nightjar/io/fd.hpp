#pragma once
// Readers and Writers over POSIX file descriptors.
#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "nightjar/core/error.hpp"
#include "nightjar/io/stream.hpp"

namespace nightjar::io {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept;
    ~UniqueFd();
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }
    explicit operator bool() const { return fd_ >= 0; }

private:
    int fd_ = -1;
};

// Reads a file or a pipe. Errors throw Kind::Storage naming `what` (e.g. the path).
class FdReader final : public Reader {
public:
    FdReader(UniqueFd fd, std::string what) : fd_(std::move(fd)), what_(std::move(what)) {}
    // Opens a path for reading; a missing file throws `missing_kind` (the caller decides what absence means).
    static std::unique_ptr<FdReader> open(const std::filesystem::path& path, Kind missing_kind);
    std::size_t read(MutableBytes buf) override;
    int fd() const { return fd_.get(); }

private:
    UniqueFd fd_;
    std::string what_;
};

// Writes to a descriptor; finish() does nothing beyond what the caller arranges (see storage for atomic
// files).
class FdWriter final : public Writer {
public:
    FdWriter(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
    void write(Bytes data) override;
    void finish() override {}

private:
    int fd_;
    std::string what_;
};

void write_all(int fd, Bytes data, const std::string& what);
void fsync_dir(const std::filesystem::path& dir);

}  // namespace nightjar::io
