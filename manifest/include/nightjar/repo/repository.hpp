#pragma once
// A backup directory: published backups (manifest_<id>.json + <id>/), staging for the run in progress, and
// the lock. RepositoryReader is all that restore and verify may use; only the backup run holds a writer.
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nightjar/io/pipeline.hpp"
#include "nightjar/io/zstd.hpp"
#include "nightjar/repo/artifact_writer.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/storage.hpp"

namespace nightjar {

struct BackupRef {
    std::string id;
    std::string manifest;  // file name relative to the backup dir
};

// The staging directory of one run: `.staging-<id>/`. Dropped unless published.
class Staging {
public:
    Staging(Storage& storage, std::string id, io::ZstdOptions zstd);
    // Kind::Config (naming the backup) when the spec wants age and no recipient was given: before the
    // staging dir exists, so nothing is written in clear instead.
    Staging(Storage& storage, std::string id, const io::PipelineSpec& spec, io::WriteKeys keys,
            io::CodecTuning tuning = {});
    Staging(Staging&&) noexcept;
    ~Staging();
    const std::string& id() const { return id_; }
    // A new artifact file `file_name` inside the backup, written through the run's pipeline; its manifest
    // path is "<id>/<file_name>", with ".age" appended when the pipeline encrypts.
    std::unique_ptr<ArtifactWriter> artifact(const std::string& file_name,
                                             std::function<void(std::uint64_t)> on_progress = {});
    // Removes an artifact written by a failed component (the same `file_name` given to artifact()).
    void discard(const std::string& file_name);
    const io::PipelineSpec& spec() const { return pipeline_.spec; }
    std::string dir() const { return ".staging-" + id_; }
    void release() { storage_ = nullptr; }

private:
    std::string stored_name(const std::string& file_name) const;
    Storage* storage_;
    std::string id_;
    struct Pipeline {
        io::PipelineSpec spec;   // recorded on every artifact
        io::WriteKeys keys;      // the recipients when spec.cipher is age
        io::CodecTuning tuning;  // zstd threads and job size
    } pipeline_;
};

class RepositoryReader {
public:
    explicit RepositoryReader(const Storage& storage) : storage_(storage) {}
    // Published backups only (a manifest_<id>.json exists), newest first. Staging dirs are never listed.
    std::vector<BackupRef> list() const;
    Manifest load(const BackupRef& ref) const;
    // Resolves "latest" or a backup id or a manifest file name.
    BackupRef find(const std::string& what) const;
    // Opens the stored file only when it is a regular file (no symlink, FIFO or device) whose opened size is
    // the recorded one; anything else is Kind::Verification naming the artifact, before a byte is read.
    std::unique_ptr<io::Reader> open_artifact(const Artifact& artifact) const;
    std::optional<Entry> stat_artifact(const Artifact& artifact) const;
    const Storage& storage() const { return storage_; }

private:
    const Storage& storage_;
};

// Holds the repository lock (flock on `.nightjar.lock`) for its lifetime. A lock left by a dead process is
// free again because the kernel drops flock locks with their process.
class Lock {
public:
    explicit Lock(const std::filesystem::path& file, std::uint32_t mode = 0600);  // mode of a new lock file
    struct Adopt {};
    Lock(Adopt, int locked_fd) : fd_(locked_fd) {}  // owns a descriptor that already holds a lock (or -1)
    Lock(Lock&&) noexcept;
    ~Lock();

private:
    int fd_ = -1;
};

class RepositoryWriter : public RepositoryReader {
public:
    explicit RepositoryWriter(PosixStorage& storage) : RepositoryReader(storage), storage_(storage) {}
    // Creates the backup dir if needed and takes the lock; Kind::LockHeld names the holder's pid.
    Lock lock();
    // A fresh id for `now` (suffixed _2, _3... when taken).
    std::string next_id(std::int64_t now) const;
    // Removes staging dirs of crashed runs (call with the lock held), then creates ours.
    Staging begin(const std::string& id, io::ZstdOptions zstd);
    // The same for a run whose artifacts go through `pipeline` (e.g. encrypted to recipients). A spec
    // with cipher age and no recipient is Kind::Config before anything is removed or created.
    Staging begin(const std::string& id, const io::PipelineSpec& spec, io::WriteKeys keys,
                  io::CodecTuning tuning = {});
    // Renames staging to <id>/, fsyncs, then writes manifest_<id>.json atomically: the backup now exists.
    void publish(Staging&& staging, const Manifest& manifest);
    // Deletes the manifest first (the backup stops existing atomically), then its artifacts.
    void remove(const BackupRef& ref);
    std::vector<std::string> stale_staging() const;
    PosixStorage& storage() { return storage_; }

private:
    PosixStorage& storage_;
};

inline constexpr const char* kLockFile = ".nightjar.lock";
// Readers' lock: restores and dry runs hold it shared while they read a backup; a prune holds it exclusive
// while it deletes, so a backup never disappears under a restore. Separate from kLockFile, so a restore can
// run while a backup is being taken.
inline constexpr const char* kReadersLockFile = ".nightjar.readers.lock";

struct LockWait {
    int limit_s = 60;               // give up after this long with Kind::LockHeld
    std::function<void()> on_wait;  // called once when the lock is taken and we start waiting
};

// A shared hold on the readers' lock of `backup_dir`. A backup dir we cannot create the lock file in (read
// only, not ours) is read without one, with a warning: nothing can prune there either.
Lock lock_for_reading(const std::filesystem::path& backup_dir, const LockWait& wait = {});
// The exclusive hold a prune takes before it deletes anything (Kind::LockHeld after `wait.limit_s`).
Lock lock_for_deleting(const std::filesystem::path& backup_dir, const LockWait& wait = {});

}  // namespace nightjar
