#pragma once
// Where backups live. One interface for every backend, with what a backend can do declared up front
// (StorageCapabilities) so the repository never assumes a POSIX directory: publish needs only create-only
// writes (see repository.hpp). PosixStorage is a directory on disk; ReadOnlyStorage wraps any Storage and
// refuses every mutation, which is how a dry run proves it wrote nothing; MemoryStorage
// (memory_storage.hpp) is a process-local object store. An object store (S3) implements the same calls:
// keys are paths, a "directory" is a key prefix ending in '/'.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/core/error.hpp"
#include "nightjar/io/stream.hpp"

namespace nightjar {

struct WriteOptions {
    bool atomic = true;  // nothing is visible under the name until finish() (POSIX: a temporary name, then
                         // rename; an object store: every PUT is atomic)
    bool sync = true;    // durable when finish() returns (POSIX: fsync the file and its directory)
    bool create_only = false;  // fail with StorageExists when the name exists (at open_write or at the
                               // latest at finish(), whichever the backend can tell first; an object store:
                               // PUT with If-None-Match: *); the existing file is never touched
    std::uint32_t mode = 0;    // permission bits of the new file, whatever the umask; 0 = the storage's
                               // file mode (PosixStorage: StorageModes::file); ignored where there are none
};

// A create-only write found the name taken (Kind::Storage). Two runs racing for one name: exactly one wins.
class StorageExists : public Error {
public:
    using Error::Error;
};

// Which part of a file a read returns.
struct ReadRange {
    std::uint64_t offset = 0;             // first byte; at or past the end: the read is empty
    std::optional<std::uint64_t> length;  // at most this many bytes; nullopt: to the end
};

// What a backend can do beyond the calls every backend has (write, read, ranged read, stat, list, remove).
// A call behind a missing capability throws Kind::Internal (a caller must check first), except sync_dir,
// which is a no-op where a finished write is already durable under its name.
struct StorageCapabilities {
    bool rename = false;          // rename() moves a file or a whole directory atomically
    bool directory_sync = false;  // names (created, renamed) are durable only after sync_dir() of their dir
    bool advisory_lock = false;   // try_lock() works (POSIX: flock); without it nothing keeps runs apart
    bool free_space = false;      // free_space() answers
};

// Permission bits of what a PosixStorage creates, applied whatever the umask (backups hold database
// contents). `repository.mode`: "private" (the default) or "group" (0750/0640, for a backup group).
struct StorageModes {
    std::uint32_t dir = 0700;   // directories it creates (the backup dir, staging, artifact dirs)
    std::uint32_t file = 0600;  // files it creates when WriteOptions::mode is 0
};
StorageModes storage_modes(const std::string& repository_mode);

struct Entry {
    std::string name;  // list()/stat(): the last path component; list_prefix(): the whole relative key
    bool is_dir = false;
    std::uint64_t size = 0;
    std::string stamp;       // from stat(): changes whenever the content may have (POSIX: inode, mtime and
                             // ctime in ns; an object store: the ETag); "" when the backend cannot tell
    std::int64_t mtime = 0;  // from stat(): last modification, Unix seconds (a directory or prefix: its own
                             // time where it has one, else its newest file's); 0 when unknown
};

// A file opened for reading only when it is a regular file: never through a symlink, never blocking on a
// FIFO, with the size of what was opened (not of what a path named a moment earlier).
struct RegularFile {
    std::unique_ptr<io::Reader> reader;  // null when missing or not a regular file
    std::uint64_t size = 0;              // fstat of the opened descriptor
    bool missing = false;                // nothing under that name
    std::string not_regular;             // what is there instead: "a FIFO", "a symbolic link", ...
};

// An advisory lock held until destroyed. It does not refer to the Storage that granted it, so it may
// outlive it.
class StorageLock {
public:
    virtual ~StorageLock() = default;
};

struct LockOptions {
    bool exclusive = true;           // false: shared with other shared holders
    bool record_holder = false;      // the holder writes its pid into the lock file (the repository lock), so
                                     // the next one who finds it taken can name it
    std::string what = "lock file";  // for messages: "cannot open <what>: <path>: <errno text>"
};

struct LockAttempt {
    std::unique_ptr<StorageLock> held;  // set when taken
    std::string holder;  // when someone else holds it: what the holder recorded (a pid), "" when unknown
};

class Storage {
public:
    virtual ~Storage() = default;
    virtual StorageCapabilities capabilities() const = 0;

    // Relative paths only; errors throw Kind::Storage naming the path (Kind::Verification when missing).
    // Only a regular file is read (a FIFO, a device or a symlink is Kind::Verification).
    virtual std::unique_ptr<io::Reader> open_read(const std::filesystem::path& rel,
                                                  ReadRange range = {}) const = 0;
    // What open_read does, with the outcome as a value; I/O errors other than absence throw Kind::Storage.
    // The default (for a backend with no file types) is stat() then open_read().
    virtual RegularFile open_regular(const std::filesystem::path& rel) const;
    // The writer's finish() commits (see WriteOptions); destroyed unfinished, nothing of it stays visible
    // under `rel` (an atomic write) and no earlier file of that name is harmed. Parent directories must
    // exist where the backend has directories (make_dir).
    virtual std::unique_ptr<io::Writer> open_write(const std::filesystem::path& rel,
                                                   WriteOptions options = {}) = 0;
    // Entries directly below `dir` (a subdirectory, or a common key prefix, once, with is_dir); an absent
    // dir is empty. Order unspecified.
    virtual std::vector<Entry> list(const std::filesystem::path& dir) const = 0;
    // Every file (not directory) whose relative key starts with `prefix` ("manifest_", "20240101_000000/"),
    // at any depth, named by its whole key ('/' separated), sorted by key. An object store's
    // ListObjectsV2 without delimiter. Symlinked directories are not followed.
    virtual std::vector<Entry> list_prefix(const std::string& prefix) const = 0;
    // nullopt when nothing is there. A directory (or a non-empty key prefix) is an Entry with is_dir.
    virtual std::optional<Entry> stat(const std::filesystem::path& rel) const = 0;
    // Creates `rel` and its missing parents (POSIX: StorageModes::dir); a no-op where there are no
    // directories (an empty directory need not be visible afterwards).
    virtual void make_dir(const std::filesystem::path& rel) = 0;
    // Capability `rename`: moves a file or directory; the target must not exist.
    virtual void rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
    // Absent is fine.
    virtual void remove(const std::filesystem::path& rel) = 0;
    // Removes `rel` and everything below it (a file, a directory, or every key under "rel/"); absent is fine.
    virtual void remove_tree(const std::filesystem::path& rel) = 0;
    // Makes the names in `rel` (created, renamed, removed) durable; a no-op without `directory_sync`.
    virtual void sync_dir(const std::filesystem::path& rel) = 0;
    // Capability `advisory_lock`: tries once, without waiting, to take the lock named by the file `rel`
    // (created when missing). Taken by someone else: an empty `held` and whatever they recorded. I/O
    // errors throw Kind::Storage. Allowed through ReadOnlyStorage: a reader's lock changes no backup.
    virtual LockAttempt try_lock(const std::filesystem::path& rel, const LockOptions& options) const;
    // Capability `free_space`: bytes a new file may still use; nullopt when it cannot be told.
    virtual std::optional<std::uint64_t> free_space() const { return std::nullopt; }
    // Human name of the location, for messages.
    virtual std::string describe(const std::filesystem::path& rel) const = 0;
};

class PosixStorage final : public Storage {
public:
    explicit PosixStorage(std::filesystem::path root, StorageModes modes = {})
        : root_(std::move(root)), modes_(modes) {}
    const std::filesystem::path& root() const { return root_; }
    const StorageModes& modes() const { return modes_; }
    StorageCapabilities capabilities() const override {
        return {.rename = true, .directory_sync = true, .advisory_lock = true, .free_space = true};
    }
    std::unique_ptr<io::Reader> open_read(const std::filesystem::path& rel,
                                          ReadRange range = {}) const override;
    RegularFile open_regular(const std::filesystem::path& rel) const override;
    std::unique_ptr<io::Writer> open_write(const std::filesystem::path& rel,
                                           WriteOptions options = {}) override;
    std::vector<Entry> list(const std::filesystem::path& dir) const override;
    std::vector<Entry> list_prefix(const std::string& prefix) const override;
    std::optional<Entry> stat(const std::filesystem::path& rel) const override;
    void make_dir(const std::filesystem::path& rel) override;
    void rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
    void remove(const std::filesystem::path& rel) override;
    void remove_tree(const std::filesystem::path& rel) override;
    void sync_dir(const std::filesystem::path& rel) override;
    LockAttempt try_lock(const std::filesystem::path& rel, const LockOptions& options) const override;
    std::optional<std::uint64_t> free_space() const override;
    std::string describe(const std::filesystem::path& rel) const override;

private:
    std::filesystem::path abs(const std::filesystem::path& rel) const;
    std::filesystem::path root_;
    StorageModes modes_;
};

class ReadOnlyStorage final : public Storage {
public:
    explicit ReadOnlyStorage(const Storage& inner) : inner_(inner) {}
    StorageCapabilities capabilities() const override { return inner_.capabilities(); }
    std::unique_ptr<io::Reader> open_read(const std::filesystem::path& rel,
                                          ReadRange range = {}) const override {
        return inner_.open_read(rel, range);
    }
    RegularFile open_regular(const std::filesystem::path& rel) const override {
        return inner_.open_regular(rel);
    }
    std::vector<Entry> list(const std::filesystem::path& dir) const override { return inner_.list(dir); }
    std::vector<Entry> list_prefix(const std::string& prefix) const override {
        return inner_.list_prefix(prefix);
    }
    std::optional<Entry> stat(const std::filesystem::path& rel) const override { return inner_.stat(rel); }
    LockAttempt try_lock(const std::filesystem::path& rel, const LockOptions& options) const override {
        return inner_.try_lock(rel, options);
    }
    std::optional<std::uint64_t> free_space() const override { return inner_.free_space(); }
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
