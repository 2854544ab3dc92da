#include "nightjar/repo/repository.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "nightjar/core/clock.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/failpoint.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/repo/drill_record.hpp"

namespace nightjar {
namespace fs = std::filesystem;

namespace {
// Without locks, an artifact dir with no manifest is only taken for a crashed run's once this old (prune's
// grace).
constexpr std::int64_t kStaleAfterS = 86400;

void check_can_write(const std::string& id, const io::PipelineSpec& spec, const io::WriteKeys& keys) {
    if (spec.cipher == io::Cipher::Age && keys.recipients.empty())
        throw Error(Kind::Config,
                    "backup " + id +
                        ": artifacts are to be encrypted with age and no recipient was given: "
                        "configure at least one age1... recipient (nothing is written in clear)");
}

}  // namespace

Staging::Staging(Storage& storage, std::string id, io::ZstdOptions zstd)
    : Staging(storage, std::move(id), io::PipelineSpec::zstd(zstd), {}, io::tuning_of(zstd)) {}

Staging::Staging(Storage& storage, std::string id, const io::PipelineSpec& spec, io::WriteKeys keys,
                 io::CodecTuning tuning)
    : storage_(&storage),
      id_(std::move(id)),
      dir_(storage.capabilities().rename ? ".staging-" + id_ : id_),
      pipeline_{spec, std::move(keys), tuning} {
    check_can_write(id_, pipeline_.spec, pipeline_.keys);
    storage_->make_dir(dir());
}

Staging::Staging(Staging&& o) noexcept
    : mutex_(std::move(o.mutex_)),
      storage_(o.storage_),
      id_(std::move(o.id_)),
      dir_(std::move(o.dir_)),
      pipeline_(std::move(o.pipeline_)) {
    o.storage_ = nullptr;
}

Staging::~Staging() {
    if (!storage_) return;
    try {
        storage_->remove_tree(dir());
    } catch (const std::exception& e) {
        log::warn("could not drop staging dir: ", e.what());
    }
}

std::string Staging::stored_name(const std::string& file_name) const {
    if (!is_safe_relative(file_name) || file_name.find('/') != std::string::npos)
        throw Error(Kind::Internal, "artifact file name must be a plain name: " + file_name);
    return pipeline_.spec.cipher == io::Cipher::Age ? file_name + ".age" : file_name;
}

std::unique_ptr<ArtifactWriter> Staging::artifact(const std::string& file_name,
                                                  std::function<void(std::uint64_t)> on_progress) {
    const std::string name = stored_name(file_name);
    std::lock_guard lock(*mutex_);
    // Without rename the file is written where the backup will be read: never over someone else's.
    auto file = storage_->open_write(fs::path(dir()) / name,
                                     {.atomic = true, .sync = true, .create_only = dir() == id_});
    return std::make_unique<ArtifactWriter>(std::move(file), pipeline_.spec, pipeline_.keys, pipeline_.tuning,
                                            id_ + "/" + name, std::move(on_progress));
}

void Staging::discard(const std::string& file_name) {
    std::lock_guard lock(*mutex_);
    storage_->remove(fs::path(dir()) / stored_name(file_name));
}

std::vector<BackupRef> RepositoryReader::list() const {
    std::vector<BackupRef> refs;
    for (const auto& e : storage_.list(".")) {
        if (e.is_dir) continue;
        const std::string& n = e.name;
        const std::string prefix = "manifest_", suffix = ".json";
        if (n.size() <= prefix.size() + suffix.size() || n.rfind(prefix, 0) != 0 ||
            n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0)
            continue;
        std::string id = n.substr(prefix.size(), n.size() - prefix.size() - suffix.size());
        if (is_backup_id(id)) refs.push_back({id, n});
    }
    // Ids sort by time; a suffix (_2) sorts after its base second.
    std::sort(refs.begin(), refs.end(), [](const BackupRef& a, const BackupRef& b) {
        auto key = [](const std::string& id) {
            std::string base = id.substr(0, 15);
            int n = id.size() > 16 ? std::stoi(id.substr(16)) : 1;
            return std::make_pair(base, n);
        };
        return key(a.id) > key(b.id);
    });
    return refs;
}

namespace {

// The manifest's bytes, read from a regular file through its descriptor with a cap (a file that grows while
// it is read stops at the limit too).
std::string read_manifest_text(const Storage& storage, const fs::path& rel, const std::string& what) {
    RegularFile file = storage.open_regular(rel);
    if (file.missing) throw Error(Kind::Verification, what + ": the file is missing");
    if (!file.reader)
        throw Error(Kind::Verification, what + ": is " + file.not_regular + ", not a regular file");
    auto too_large = [&] {
        return Error(Kind::Verification, what + ": larger than the " +
                                             std::to_string(kManifestMaxBytes >> 20) +
                                             " MiB a manifest may have");
    };
    if (file.size > kManifestMaxBytes) throw too_large();
    std::string text;
    std::vector<std::byte> buf(64 * 1024);
    while (std::size_t n = file.reader->read(buf)) {
        text.append(reinterpret_cast<const char*>(buf.data()), n);
        if (text.size() > kManifestMaxBytes) throw too_large();
    }
    return text;
}

}  // namespace

Manifest RepositoryReader::load(const BackupRef& ref) const {
    std::string what = "manifest " + storage_.describe(ref.manifest);
    Manifest m = parse_manifest(read_manifest_text(storage_, ref.manifest, what), what);
    if (m.id != ref.id)
        throw Error(Kind::Verification, what + ": /id: is " + m.id + ", the file name says " + ref.id);
    return m;
}

BackupRef RepositoryReader::find(const std::string& what) const {
    auto refs = list();
    if (what == "latest") {
        if (refs.empty())
            throw Error(Kind::Verification, "no published backup in " + storage_.describe(".") +
                                                ": run nightjar-backup first or pass --backup-dir");
        return refs.front();
    }
    std::string name = fs::path(what).filename().string();
    for (const auto& r : refs)
        if (r.id == name || r.manifest == name) return r;
    throw Error(Kind::Verification, "backup not found: " + what + " (not a published manifest in " +
                                        storage_.describe(".") + "; nightjar-restore --list shows them)");
}

std::unique_ptr<io::Reader> RepositoryReader::open_artifact(const Artifact& artifact) const {
    RegularFile file = storage_.open_regular(artifact.path);
    const std::string where = storage_.describe(artifact.path);
    if (file.missing) throw Error(Kind::Verification, "artifact file is missing: " + where);
    if (!file.reader)
        throw Error(Kind::Verification, "artifact " + artifact.path + ": " + where + " is " +
                                            file.not_regular + ", not a regular file: refusing to read it");
    if (file.size != artifact.size)
        throw Error(Kind::Verification, "artifact " + artifact.path + ": size is " +
                                            std::to_string(file.size) + " bytes, the manifest says " +
                                            std::to_string(artifact.size));
    return std::move(file.reader);
}

std::optional<Entry> RepositoryReader::stat_artifact(const Artifact& artifact) const {
    return storage_.stat(artifact.path);
}

namespace {

// The repository lock of `storage`, or Kind::LockHeld naming the holder.
Lock take_repository_lock(const Storage& storage) {
    LockAttempt attempt = storage.try_lock(kLockFile, {.exclusive = true, .record_holder = true});
    if (!attempt.held) {
        std::string dir = fs::path(storage.describe(kLockFile)).parent_path().string();
        throw Error(Kind::LockHeld, "backup dir is locked by another nightjar run: " + dir + " (pid " +
                                        (attempt.holder.empty() ? "unknown" : attempt.holder) +
                                        "): wait for it to finish or stop it");
    }
    return Lock(std::move(attempt.held));
}

// The readers' lock with a bounded wait; an empty attempt when still held by others after `wait.limit_s`.
LockAttempt readers_lock_waiting(const Storage& storage, bool exclusive, const LockWait& wait) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait.limit_s);
    bool told = false;
    for (;;) {
        LockAttempt attempt =
            storage.try_lock(kReadersLockFile, {.exclusive = exclusive, .what = "the readers' lock"});
        if (attempt.held) return attempt;
        if (std::chrono::steady_clock::now() >= deadline) return attempt;
        if (!told && wait.on_wait) wait.on_wait();
        told = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

}  // namespace

Lock::Lock(const fs::path& file, std::uint32_t mode) {
    PosixStorage dir(file.parent_path(), {.dir = 0700, .file = mode});
    LockAttempt attempt = dir.try_lock(file.filename(), {.exclusive = true, .record_holder = true});
    if (!attempt.held)
        throw Error(Kind::LockHeld,
                    "backup dir is locked by another nightjar run: " + file.parent_path().string() +
                        " (pid " + (attempt.holder.empty() ? "unknown" : attempt.holder) +
                        "): wait for it to finish or stop it");
    held_ = std::move(attempt.held);
}

Lock lock_for_reading(const Storage& storage, const LockWait& wait) {
    const std::string where = storage.describe(".");
    if (!storage.capabilities().advisory_lock) {
        log::warn("backup dir ", where,
                  " has no advisory locks: reading without the readers' lock; a prune running now could "
                  "delete what is being read");
        return Lock();
    }
    LockAttempt attempt;
    try {
        attempt = readers_lock_waiting(storage, false, wait);
    } catch (const Error& e) {
        if (e.kind() != Kind::Storage) throw;
        log::warn(e.what(),
                  ": reading without the readers' lock; a prune running now could delete what is "
                  "being read");
        return Lock();
    }
    if (!attempt.held)
        throw Error(Kind::LockHeld, "backup dir is being pruned: " + where +
                                        ": a prune is deleting backups; try again when it has finished");
    return Lock(std::move(attempt.held));
}

Lock lock_for_deleting(const Storage& storage, const LockWait& wait) {
    const std::string where = storage.describe(".");
    if (!storage.capabilities().advisory_lock) {
        log::warn("backup dir ", where,
                  " has no advisory locks: deleting without waiting for restores that may be reading");
        return Lock();
    }
    LockAttempt attempt = readers_lock_waiting(storage, true, wait);
    if (!attempt.held)
        throw Error(Kind::LockHeld, "prune: a restore or dry run is still reading " + where + " after " +
                                        std::to_string(wait.limit_s) +
                                        " s: nothing was deleted; prune again when it has finished "
                                        "(nightjar-backup --prune-only)");
    return Lock(std::move(attempt.held));
}

Lock lock_for_reading(const fs::path& backup_dir, const LockWait& wait) {
    return lock_for_reading(PosixStorage(backup_dir), wait);
}

Lock lock_for_deleting(const fs::path& backup_dir, const LockWait& wait) {
    return lock_for_deleting(PosixStorage(backup_dir), wait);
}

Lock RepositoryWriter::lock() {
    storage_.make_dir(".");
    if (!storage_.capabilities().advisory_lock) {
        log::warn("backup dir ", storage_.describe("."),
                  " has no advisory locks: nothing keeps a second run from writing at the same time");
        return Lock();
    }
    Lock held = take_repository_lock(storage_);
    // The readers' lock file exists from the first backup on, so restores never have to create it.
    try {
        (void)storage_.try_lock(kReadersLockFile, {.exclusive = false, .what = "the readers' lock"});
    } catch (const Error&) {
        // As before: a readers' lock that cannot be had is the readers' concern.
    }
    return held;
}

std::string RepositoryWriter::next_id(std::int64_t now) const {
    std::string base = backup_id_for(now);
    auto taken = [this](const std::string& id) {
        return storage_.stat(manifest_file_name(id)) || storage_.stat(id) || storage_.stat(".staging-" + id);
    };
    if (!taken(base)) return base;
    for (int n = 2; n < 1000; ++n) {
        std::string id = base + "_" + std::to_string(n);
        if (!taken(id)) return id;
    }
    throw Error(Kind::Storage, "too many backups in one second: " + base);
}

std::vector<std::string> RepositoryWriter::stale_staging() const {
    std::vector<std::string> out;
    const bool rename = storage_.capabilities().rename;
    std::vector<std::string> published;
    if (!rename)
        for (const auto& ref : list()) published.push_back(ref.id);
    for (const auto& e : storage_.list(".")) {
        if (e.is_dir && e.name.rfind(".staging-", 0) == 0) out.push_back(e.name);
        // Without rename a run writes straight into <id>/: one with no manifest is a crashed run's, since
        // we hold the lock. Without a lock either, only once it is old enough not to be a live run's.
        if (e.is_dir && !rename && is_backup_id(e.name) &&
            std::find(published.begin(), published.end(), e.name) == published.end()) {
            bool ours = storage_.capabilities().advisory_lock;
            if (!ours) {
                auto st = storage_.stat(e.name);
                ours = st && st->mtime > 0 && unix_now() - st->mtime > kStaleAfterS;
            }
            if (ours) out.push_back(e.name);
        }
        // A manifest whose atomic write was cut short: never a backup, only litter.
        if (!e.is_dir && e.name.rfind("manifest_", 0) == 0 && e.name.find(".json.tmp-") != std::string::npos)
            out.push_back(e.name);
    }
    return out;
}

Staging RepositoryWriter::begin(const std::string& id, io::ZstdOptions zstd) {
    return begin(id, io::PipelineSpec::zstd(zstd), {}, io::tuning_of(zstd));
}

Staging RepositoryWriter::begin(const std::string& id, const io::PipelineSpec& spec, io::WriteKeys keys,
                                io::CodecTuning tuning) {
    check_can_write(id, spec, keys);
    for (const auto& dir : stale_staging()) {
        log::warn("removing what an interrupted run left: ", storage_.describe(dir));
        storage_.remove_tree(dir);
    }
    // Staging is dropped with everything in it: it must never be a published backup's place.
    if (storage_.stat(manifest_file_name(id)) || storage_.stat(id))
        throw Error(Kind::Storage, "backup id already taken: " + storage_.describe(id) +
                                       ": another run published it; run again for a fresh id");
    return Staging(storage_, id, spec, std::move(keys), tuning);
}

void RepositoryWriter::publish(Staging&& staging, const Manifest& manifest) {
    if (manifest.id != staging.id())
        throw Error(Kind::Internal, "publish: manifest id differs from staging id");
    const StorageCapabilities caps = storage_.capabilities();
    // Artifact files were synced as each was finished; now make the directory entries durable.
    if (caps.directory_sync) storage_.sync_dir(staging.dir());
    if (caps.rename) {
        failpoint("publish:before-rename");
        storage_.rename(staging.dir(), staging.id());
    }
    staging.release();
    if (caps.directory_sync) storage_.sync_dir(".");
    failpoint("publish:before-manifest");
    // Last and create-only: the backup exists from here on, and a second publisher of this id fails.
    auto out = storage_.open_write(manifest_file_name(manifest.id),
                                   {.atomic = true, .sync = true, .create_only = true});
    out->write(io::as_bytes(serialize(manifest)));
    failpoint("publish:before-manifest-rename");
    out->finish();
    failpoint("publish:after-manifest");
}

void RepositoryWriter::remove(const BackupRef& ref) {
    storage_.remove(ref.manifest);
    if (storage_.capabilities().directory_sync) storage_.sync_dir(".");
    failpoint("remove:after-manifest");
    storage_.remove_tree(ref.id);
    storage_.remove("verified_" + ref.id + ".json");               // its verification record, if any
    storage_.remove_tree(std::string(kDrillsDir) + "/" + ref.id);  // its drill records, if any
}

}  // namespace nightjar
