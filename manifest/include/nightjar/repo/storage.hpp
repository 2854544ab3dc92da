#pragma once
// Where backups live. PosixStorage is a directory on disk; ReadOnlyStorage wraps any Storage and refuses
// every mutation, which is how a dry run proves it wrote nothing.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/io/stream.hpp"

namespace nightjar {

struct WriteOptions {
    bool atomic = true;      // write to a temporary name, then rename into place on finish()
    bool sync = true;        // fsync the file (and its directory after the rename)
    std::uint32_t mode = 0;  // permission bits of the new file, whatever the umask; 0 = the storage's
                             // file mode (PosixStorage: StorageModes::file)
};

// Permission bits of what a PosixStorage creates, applied whatever the umask (backups hold database
// contents). `repository.mode`: "private" (the default) or "group" (0750/0640, for a backup group).
struct StorageModes {
    std::uint32_t dir = 0700;   // directories it creates (the backup dir, staging, artifact dirs)
    std::uint32_t file = 0600;  // files it creates when WriteOptions::mode is 0
};
StorageModes storage_modes(const std::string& repository_mode);

struct Entry {
    std::string name;
    bool is_dir = false;
    std::uint64_t size = 0;
    std::string stamp;  // from stat(): changes whenever the content may have (POSIX: inode, mtime and ctime
                        // in ns); "" when the backend cannot tell
};

// A file opened for reading only when it is a regular file: never through a symlink, never blocking on a
// FIFO, with the size of what was opened (not of what a path named a moment earlier).
struct RegularFile {
    std::unique_ptr<io::Reader> reader;  // null when missing or not a regular file
    std::uint64_t size = 0;              // fstat of the opened descriptor
    bool missing = false;                // nothing under that name
    std::string not_regular;             // what is there instead: "a FIFO", "a symbolic link", ...
};

class Storage {
public:
    virtual ~Storage() = default;
    // Relative paths only; errors throw Kind::Storage naming the path (Kind::Verification when missing).
    // Only a regular file is read (a FIFO, a device or a symlink is Kind::Verification).
    virtual std::unique_ptr<io::Reader> open_read(const std::filesystem::path& rel) const = 0;
    // What open_read does, with the outcome as a value; I/O errors other than absence throw Kind::Storage.
    // The default (for a backend with no file types) is stat() then open_read().
    virtual RegularFile open_regular(const std::filesystem::path& rel) const;
    virtual std::unique_ptr<io::Writer> open_write(const std::filesystem::path& rel,
                                                   WriteOptions options = {}) = 0;
    // Entries directly below `dir`; an absent dir is empty.
    virtual std::vector<Entry> list(const std::filesystem::path& dir) const = 0;
    virtual std::optional<Entry> stat(const std::filesystem::path& rel) const = 0;
    virtual void make_dir(const std::filesystem::path& rel) = 0;
    virtual void rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
    virtual void remove(const std::filesystem::path& rel) = 0;
    virtual void remove_tree(const std::filesystem::path& rel) = 0;
    virtual void sync_dir(const std::filesystem::path& rel) = 0;
    // Human name of the location, for messages.
    virtual std::string describe(const std::filesystem::path& rel) const = 0;
};

class PosixStorage final : public Storage {
public:
    explicit PosixStorage(std::filesystem::path root, StorageModes modes = {})
        : root_(std::move(root)), modes_(modes) {}
    const std::filesystem::path& root() const { return root_; }
    const StorageModes& modes() const { return modes_; }
    std::unique_ptr<io::Reader> open_read(const std::filesystem::path& rel) const override;
    RegularFile open_regular(const std::filesystem::path& rel) const override;
    std::unique_ptr<io::Writer> open_write(const std::filesystem::path& rel,
                                           WriteOptions options = {}) override;
    std::vector<Entry> list(const std::filesystem::path& dir) const override;
    std::optional<Entry> stat(const std::filesystem::path& rel) const override;
    void make_dir(const std::filesystem::path& rel) override;
    void rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
    void remove(const std::filesystem::path& rel) override;
    void remove_tree(const std::filesystem::path& rel) override;
    void sync_dir(const std::filesystem::path& rel) override;
    std::string describe(const std::filesystem::path& rel) const override;

private:
    std::filesystem::path abs(const std::filesystem::path& rel) const;
    std::filesystem::path root_;
    StorageModes modes_;
};

class ReadOnlyStorage final : public Storage {
public:
    explicit ReadOnlyStorage(const Storage& inner) : inner_(inner) {}
    std::unique_ptr<io::Reader> open_read(const std::filesystem::path& rel) const override {
        return inner_.open_read(rel);
    }
    RegularFile open_regular(const std::filesystem::path& rel) const override {
        return inner_.open_regular(rel);
    }
    std::vector<Entry> list(const std::filesystem::path& dir) const override { return inner_.list(dir); }
    std::optional<Entry> stat(const std::filesystem::path& rel) const override { return inner_.stat(rel); }
    std::string describe(const std::filesystem::path& rel) const override { return inner_.describe(rel); }
    // Every mutation throws Kind::Internal: reaching one in a dry run is a bug.
    std::unique_ptr<io::Writer> open_write(const std::filesystem::path& rel, WriteOptions = {}) override;
    void make_dir(const std::filesystem::path& rel) override;
    void rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
    void remove(const std::filesystem::path& rel) override;
    void remove_tree(const std::filesystem::path& rel) override;
    void sync_dir(const std::filesystem::path& rel) override;

private:
    [[noreturn]] void refuse(const char* op, const std::filesystem::path& rel) const;
    const Storage& inner_;
};

// Rejects absolute paths and any `..` component: a manifest or archive may never name a place outside.
bool is_safe_relative(const std::filesystem::path& rel);

}  // namespace nightjar
