#pragma once
// A backup directory: published backups (manifest_<id>.json + <id>/), staging for the run in progress, and
// the lock. RepositoryReader is all that restore and verify may use; only the backup run holds a writer.
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nightjar/io/pipeline.hpp"
#include "nightjar/io/signing.hpp"
#include "nightjar/io/zstd.hpp"
#include "nightjar/repo/artifact_writer.hpp"
#include "nightjar/repo/backup_index.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/storage.hpp"

namespace nightjar {

struct BackupRef {
    std::string id;
    std::string manifest;  // file name relative to the backup dir ("manifest_<id>.json[.age]")
    std::string index;     // an encrypted backup's signed plaintext index ("index_<id>.json"); "" otherwise
    bool encrypted() const { return manifest.ends_with(".age"); }
};

// "manifest_<id>.json.age": the age-encrypted manifest of an encrypted backup (its index is the commit
// record, written after it).
std::string encrypted_manifest_file_name(const std::string& id);

// What a reader may use on encrypted backups (the restore host's `encryption` section).
struct RepositoryKeys {
    io::AgeIdentities identities;      // decrypt manifests and artifacts; none: the index-only view
    io::TrustedSigners trusted_hosts;  // pinned index signers (encryption.trusted_hosts)
    bool allow_unsigned = false;       // --allow-unsigned: accept an unsigned (legacy) encrypted backup
    bool has_identity() const { return !identities.x25519.empty() || identities.passphrase.has_value(); }
};

// What publish needs to encrypt the manifest and sign the index of an encrypted backup.
struct PublishEncryption {
    std::vector<io::AgeRecipient> recipients;         // the manifest is encrypted to them (at least one)
    const io::SigningKey* signing_key = nullptr;      // signs the index (required)
    std::vector<std::string> recipient_fingerprints;  // recorded in the index
};

// The staging directory of one run: `.staging-<id>/`, or `<id>/` itself on a backend without rename.
// Dropped unless published. artifact() and discard() may be called from several threads at once (the
// components of a run dump concurrently); each ArtifactWriter belongs to the thread that writes it.
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
    std::string dir() const { return dir_; }
    void release() { storage_ = nullptr; }

private:
    std::string stored_name(const std::string& file_name) const;
    std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();  // storage calls, one at a time
    Storage* storage_;
    std::string id_;
    std::string dir_;
    struct Pipeline {
        io::PipelineSpec spec;   // recorded on every artifact
        io::WriteKeys keys;      // the recipients when spec.cipher is age
        io::CodecTuning tuning;  // zstd threads and job size
    } pipeline_;
};

class RepositoryReader {
public:
    explicit RepositoryReader(const Storage& storage) : storage_(storage) {}
    // Published backups only (a manifest_<id>.json, or for an encrypted one its index_<id>.json, exists),
    // newest first. Staging dirs are never listed. An encrypted manifest with no index (written before
    // indexes, or a run cut between the two) is listed with an empty `index`; loading it needs
    // allow_unsigned.
    std::vector<BackupRef> list() const;
    // The whole manifest. An encrypted backup: its index is verified against keys().trusted_hosts (a bad
    // signature or an unpinned signer is Kind::Verification naming the host), the encrypted manifest's
    // stored size and SHA-256 are checked against the index, then it is decrypted with keys().identities
    // and parsed as a plain one (and must list the index's artifacts). Without an identity:
    // Kind::Verification saying which key is missing.
    Manifest load(const BackupRef& ref) const;
    // What listing, retention, prune and stored-bytes verification need: load() when an identity is at
    // hand, else a manifest built from the index alone (id, status, times, host, each artifact's path,
    // stored size and SHA-256, cipher age; no components). The index signature is checked when
    // trusted_hosts pins any host (or an identity is given). A plain backup: load().
    Manifest load_summary(const BackupRef& ref) const;
    // An encrypted backup's index, parsed and (with `check_signature`) verified. Kind::Verification.
    BackupIndex load_index(const BackupRef& ref, bool check_signature = true) const;
    void set_keys(RepositoryKeys keys) { keys_ = std::move(keys); }
    const RepositoryKeys& keys() const { return keys_; }
    // The identities as the artifact read chain takes them.
    io::ReadKeys read_keys() const { return {keys_.identities}; }
    // Resolves "latest" or a backup id or a manifest file name.
    BackupRef find(const std::string& what) const;
    // Opens the stored file only when it is a regular file (no symlink, FIFO or device) whose opened size is
    // the recorded one; anything else is Kind::Verification naming the artifact, before a byte is read.
    std::unique_ptr<io::Reader> open_artifact(const Artifact& artifact) const;
    std::optional<Entry> stat_artifact(const Artifact& artifact) const;
    // The rotation header objects (`<path>.age-header.<n>`, io/age_rotation) of an age file in the backup
    // dir, as the read chain tries them: only regular files.
    io::RotationHeaderSource rotation_headers(const std::string& path) const;
    // The key-less check of every rotation header object of `path` that exists (numbers 1..32): "" when
    // each is a well-formed header and nothing more, else the problem naming the object.
    std::string check_rotation_headers(const std::string& path) const;
    const Storage& storage() const { return storage_; }

private:
    Manifest load_encrypted(const BackupRef& ref, bool summary) const;
    const Storage& storage_;
    RepositoryKeys keys_;
};

// Holds a lock (the repository lock, or a hold on the readers' lock) for its lifetime; an empty Lock holds
// nothing (a backend without advisory locks, or a backup dir read without its readers' lock). POSIX: a
// lock left by a dead process is free again because the kernel drops flock locks with their process.
class Lock {
public:
    Lock() = default;
    explicit Lock(std::unique_ptr<StorageLock> held) : held_(std::move(held)) {}
    // The repository lock on `file` in a directory on disk (what RepositoryWriter::lock takes there);
    // `mode` for a new lock file. Kind::LockHeld names the holder's pid.
    explicit Lock(const std::filesystem::path& file, std::uint32_t mode = 0600);
    Lock(Lock&&) noexcept = default;
    Lock& operator=(Lock&&) noexcept = default;
    bool held() const { return held_ != nullptr; }

private:
    std::unique_ptr<StorageLock> held_;
};

// Publish is defined on what every backend can do: every artifact written and synced, then the manifest
// written last and create-only, so a listing never shows a backup without its manifest and two runs cannot
// publish one id. With the `rename` capability the artifacts are written into `.staging-<id>/` and renamed
// to `<id>/` before the manifest (today's on-disk layout); without it they go straight to `<id>/...`, and
// an `<id>/` with no manifest is what a crashed run left (removed by the next begin() or prune).
class RepositoryWriter : public RepositoryReader {
public:
    explicit RepositoryWriter(Storage& storage) : RepositoryReader(storage), storage_(storage) {}
    // Creates the backup dir if needed and takes the lock; Kind::LockHeld names the holder's pid. A backend
    // without advisory locks returns an empty Lock, with a warning.
    Lock lock();
    // A fresh id for `now` (suffixed _2, _3... when taken).
    std::string next_id(std::int64_t now) const;
    // Removes what crashed runs left (call with the lock held), then creates our staging.
    Staging begin(const std::string& id, io::ZstdOptions zstd);
    // The same for a run whose artifacts go through `pipeline` (e.g. encrypted to recipients). A spec
    // with cipher age and no recipient is Kind::Config before anything is removed or created.
    Staging begin(const std::string& id, const io::PipelineSpec& spec, io::WriteKeys keys,
                  io::CodecTuning tuning = {});
    // Syncs the artifacts' names, moves staging to <id>/ (with rename), then writes manifest_<id>.json
    // create-only and synced: the backup now exists. Kind::Storage (StorageExists) when that manifest exists.
    // With `encryption`: the manifest is written age-encrypted to its recipients as manifest_<id>.json.age
    // (create-only), then the signed plaintext index index_<id>.json, create-only and LAST: the index is
    // the commit record of an encrypted backup.
    void publish(Staging&& staging, const Manifest& manifest, const PublishEncryption* encryption = nullptr);
    // Deletes the commit record first (index, else manifest: the backup stops existing atomically), then
    // the encrypted manifest (and its rotation headers) and its artifacts.
    void remove(const BackupRef& ref);
    // Staging dirs (rename backends), unfinished manifests, and (without rename) artifact dirs with no
    // manifest: what begin() removes.
    std::vector<std::string> stale_staging() const;
    Storage& storage() { return storage_; }
    const Storage& storage() const { return storage_; }

private:
    Storage& storage_;
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

// A shared hold on the readers' lock of the backup dir in `storage`. One we cannot open (read only, not
// ours), or a backend without advisory locks, is read without it, with a warning: nothing can prune there
// either.
Lock lock_for_reading(const Storage& storage, const LockWait& wait = {});
// The exclusive hold a prune takes before it deletes anything (Kind::LockHeld after `wait.limit_s`). A
// backend without advisory locks: an empty Lock, with a warning.
Lock lock_for_deleting(const Storage& storage, const LockWait& wait = {});
// The same for a backup dir on disk.
Lock lock_for_reading(const std::filesystem::path& backup_dir, const LockWait& wait = {});
Lock lock_for_deleting(const std::filesystem::path& backup_dir, const LockWait& wait = {});

}  // namespace nightjar
