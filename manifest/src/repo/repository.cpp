#include "nightjar/repo/repository.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "nightjar/core/clock.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/failpoint.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/io/age.hpp"
#include "nightjar/io/age_rotation.hpp"
#include "nightjar/io/sha256.hpp"
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

std::string encrypted_manifest_file_name(const std::string& id) {
    return manifest_file_name(id) + ".age";
}

namespace {

// The id in "<prefix><id><suffix>", or "" when `name` is not of that shape or the id is malformed.
std::string id_between(const std::string& name, std::string_view prefix, std::string_view suffix) {
    if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) || !name.ends_with(suffix))
        return "";
    std::string id = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    return is_backup_id(id) ? id : "";
}

}  // namespace

std::vector<BackupRef> RepositoryReader::list() const {
    std::map<std::string, BackupRef> by_id;
    std::set<std::string> encrypted_manifests;
    for (const auto& e : storage_.list(".")) {
        if (e.is_dir) continue;
        const std::string& n = e.name;
        if (std::string id = id_between(n, "manifest_", ".json"); !id.empty()) {
            auto& ref = by_id[id];
            if (ref.index.empty()) ref = {id, n, ""};
        } else if (std::string iid = id_between(n, "index_", ".json"); !iid.empty()) {
            // The index is the commit record of an encrypted backup: it wins over a plain manifest_<id>.json.
            by_id[iid] = {iid, encrypted_manifest_file_name(iid), n};
        } else if (std::string aid = id_between(n, "manifest_", ".json.age"); !aid.empty()) {
            encrypted_manifests.insert(aid);
        }
    }
    // An encrypted manifest with no index: listed, but loading it needs --allow-unsigned.
    for (const auto& id : encrypted_manifests)
        if (!by_id.count(id)) by_id[id] = {id, encrypted_manifest_file_name(id), ""};
    std::vector<BackupRef> refs;
    for (auto& [id, ref] : by_id) refs.push_back(std::move(ref));
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
    if (ref.encrypted()) return load_encrypted(ref, false);
    std::string what = "manifest " + storage_.describe(ref.manifest);
    Manifest m = parse_manifest(read_manifest_text(storage_, ref.manifest, what), what);
    if (m.id != ref.id)
        throw Error(Kind::Verification, what + ": /id: is " + m.id + ", the file name says " + ref.id);
    return m;
}

Manifest RepositoryReader::load_summary(const BackupRef& ref) const {
    if (!ref.encrypted()) return load(ref);
    return load_encrypted(ref, !keys_.has_identity());
}

BackupIndex RepositoryReader::load_index(const BackupRef& ref, bool check_signature) const {
    if (ref.index.empty()) throw Error(Kind::Internal, "load_index: backup " + ref.id + " has no index");
    const std::string what = "index " + storage_.describe(ref.index);
    BackupIndex idx = parse_index(read_manifest_text(storage_, ref.index, what), what);
    const VerifyIndexOptions options{.allow_unsigned = keys_.allow_unsigned, .expected_id = ref.id};
    if (check_signature) {
        verify_index(idx, keys_.trusted_hosts, options);
    } else if (idx.id != ref.id) {
        throw Error(Kind::Verification, "backup " + ref.id + ": its index names backup " + idx.id +
                                            ": the index was copied from another backup");
    }
    if (idx.encryption != "age")
        throw Error(Kind::Verification, what + ": /encryption: is \"" + idx.encryption +
                                            "\" beside an encrypted manifest: the index was edited");
    return idx;
}

namespace {

// What the index alone tells: enough for listing, retention and stored-bytes verification.
Manifest manifest_from_index(const BackupIndex& idx) {
    Manifest m;
    m.id = idx.id;
    m.status = idx.status;
    m.started_at = idx.started_at;
    m.finished_at = idx.finished_at;
    m.host = idx.host;
    m.options = {{"encryption", "age"}};
    for (const auto& o : idx.artifacts) {
        Artifact a;
        a.path = o.path;
        a.name = fs::path(o.path).filename().string();
        a.size = o.size;
        a.sha256 = o.sha256;
        a.set_pipeline({.codec = io::Codec::Zstd, .level = 3, .cipher = io::Cipher::Age});
        m.artifacts.push_back(std::move(a));
    }
    return m;
}

// Collects what a decrypter writes, with a cap.
class CappedString final : public io::Writer {
public:
    CappedString(std::string& out, std::string what) : out_(out), what_(std::move(what)) {}
    void write(io::Bytes b) override {
        if (out_.size() + b.size() > kManifestMaxBytes)
            throw Error(Kind::Verification, what_ + ": decrypts to more than the " +
                                                std::to_string(kManifestMaxBytes >> 20) +
                                                " MiB a manifest may have");
        out_.append(io::as_chars(b));
    }
    void finish() override {}

private:
    std::string& out_;
    std::string what_;
};

// Reads a string held in memory.
class TextReader final : public io::Reader {
public:
    explicit TextReader(const std::string& text) : text_(text) {}
    std::size_t read(io::MutableBytes buf) override {
        std::size_t n = std::min(buf.size(), text_.size() - pos_);
        std::memcpy(buf.data(), text_.data() + pos_, n);
        pos_ += n;
        return n;
    }

private:
    const std::string& text_;
    std::size_t pos_ = 0;
};

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
}

}  // namespace

Manifest RepositoryReader::load_encrypted(const BackupRef& ref, bool summary) const {
    const std::string what = "manifest " + storage_.describe(ref.manifest);
    std::optional<BackupIndex> idx;
    if (ref.index.empty()) {
        check_unindexed_backup(ref.id, {.allow_unsigned = keys_.allow_unsigned, .expected_id = ref.id});
        if (summary)
            throw Error(Kind::Verification, "backup " + ref.id +
                                                ": encrypted and without an index: nothing about it can be "
                                                "read without an identity (encryption.identity_file)");
    } else {
        idx = load_index(ref, !summary || !keys_.trusted_hosts.empty());
        if (summary) return manifest_from_index(*idx);
    }
    if (!keys_.has_identity())
        throw Error(Kind::Verification,
                    "backup " + ref.id + ": its manifest and artifacts are encrypted with age" +
                        (idx ? " (recipients " + join(idx->recipients) + ")" : std::string()) +
                        ": no identity to decrypt them: set encryption.identity_file in the config to the "
                        "AGE-SECRET-KEY-1... file of one of those recipients (mode 0600)");
    const std::string cipher = read_manifest_text(storage_, ref.manifest, what);
    if (idx) {
        if (cipher.size() != idx->manifest.size || io::sha256_hex(cipher) != idx->manifest.sha256)
            throw Error(Kind::Verification,
                        what + ": " + std::to_string(cipher.size()) +
                            " bytes that do not match the size and SHA-256 its signed index records: the "
                            "encrypted manifest was replaced or damaged");
    }
    std::string plain;
    try {
        CappedString sink(plain, what);
        io::AgeDecryptWriter dec(keys_.identities, sink);
        TextReader stored(cipher);
        io::RotationAwareReader age_file(stored, keys_.identities, rotation_headers(ref.manifest));
        io::pump(age_file, dec);
        dec.finish();
    } catch (const io::AgeError& e) {
        throw io::AgeError(e.failure(), what + ": cannot decrypt: " + e.what());
    }
    Manifest m = parse_manifest(plain, what);
    if (m.id != ref.id)
        throw Error(Kind::Verification, what + ": /id: is " + m.id + ", the file name says " + ref.id);
    if (idx) {
        bool same = m.artifacts.size() == idx->artifacts.size() && m.status == idx->status &&
                    m.host == idx->host && m.started_at == idx->started_at;
        for (std::size_t i = 0; same && i < m.artifacts.size(); ++i) {
            const Artifact& a = m.artifacts[i];
            const IndexObject& o = idx->artifacts[i];
            same = a.path == o.path && a.size == o.size && a.sha256 == o.sha256;
        }
        if (!same)
            throw Error(Kind::Verification, what +
                                                ": differs from its signed index (status, host, time or "
                                                "artifacts): the backup was tampered with");
    }
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

io::RotationHeaderSource RepositoryReader::rotation_headers(const std::string& path) const {
    return [&storage = storage_, path](unsigned n) -> std::unique_ptr<io::Reader> {
        return storage.open_regular(io::age_header_object_name(path, n)).reader;
    };
}

std::string RepositoryReader::check_rotation_headers(const std::string& path) const {
    const fs::path p(path);
    const std::string stem = p.filename().string() + ".age-header.";
    for (const auto& e : storage_.list(p.parent_path().empty() ? fs::path(".") : p.parent_path())) {
        if (e.is_dir || !e.name.starts_with(stem)) continue;
        const std::string number = e.name.substr(stem.size());
        if (number.empty() || number.size() > 2 ||
            !std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; }))
            continue;
        const unsigned n = static_cast<unsigned>(std::stoul(number));
        if (n == 0 || n > io::kMaxRotationHeaders ||
            io::age_header_object_name(path, n) != (p.parent_path() / e.name).string())
            continue;
        const std::string name = io::age_header_object_name(path, n);
        RegularFile file = storage_.open_regular(name);
        if (!file.reader)
            return "rotation header " + storage_.describe(name) + ": " +
                   (file.missing ? std::string("vanished while it was checked")
                                 : "is " + file.not_regular + ", not a regular file");
        try {
            io::check_age_header_object(*file.reader);
        } catch (const io::AgeError& e) {
            return "rotation header " + storage_.describe(name) + ": " + e.what();
        }
    }
    return "";
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
        return storage_.stat(manifest_file_name(id)) || storage_.stat(encrypted_manifest_file_name(id)) ||
               storage_.stat(index_file_name(id)) || storage_.stat(id) || storage_.stat(".staging-" + id);
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
        if (!e.is_dir && (e.name.rfind("manifest_", 0) == 0 || e.name.rfind("index_", 0) == 0) &&
            (e.name.find(".json.tmp-") != std::string::npos ||
             e.name.find(".json.age.tmp-") != std::string::npos))
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
    if (storage_.stat(manifest_file_name(id)) || storage_.stat(index_file_name(id)) ||
        storage_.stat(encrypted_manifest_file_name(id)) || storage_.stat(id))
        throw Error(Kind::Storage, "backup id already taken: " + storage_.describe(id) +
                                       ": another run published it; run again for a fresh id");
    return Staging(storage_, id, spec, std::move(keys), tuning);
}

namespace {

// `text` age-encrypted to `recipients`, in memory (a manifest is at most a few MiB).
std::string age_encrypt(std::string_view text, const std::vector<io::AgeRecipient>& recipients) {
    io::AgeEncryptFilter enc(recipients);
    std::vector<std::byte> scratch;
    std::string out;
    out.append(io::as_chars(enc.process(io::as_bytes(text), scratch)));
    out.append(io::as_chars(enc.finish(scratch)));
    return out;
}

}  // namespace

void RepositoryWriter::publish(Staging&& staging, const Manifest& manifest,
                               const PublishEncryption* encryption) {
    if (manifest.id != staging.id())
        throw Error(Kind::Internal, "publish: manifest id differs from staging id");
    if (encryption && (!encryption->signing_key || encryption->recipients.empty()))
        throw Error(Kind::Internal, "publish: encryption without recipients or signing key");
    // Everything that can fail on its own before the backup dir changes.
    std::string encrypted_manifest;
    std::optional<BackupIndex> index;
    if (encryption) {
        encrypted_manifest = age_encrypt(serialize(manifest), encryption->recipients);
        index = make_index(manifest,
                           {encrypted_manifest_file_name(manifest.id), encrypted_manifest.size(),
                            io::sha256_hex(encrypted_manifest)},
                           encryption->recipient_fingerprints);
        sign_index(*index, *encryption->signing_key);
    }
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
    if (!encryption) {
        // Last and create-only: the backup exists from here on, and a second publisher of this id fails.
        auto out = storage_.open_write(manifest_file_name(manifest.id),
                                       {.atomic = true, .sync = true, .create_only = true});
        out->write(io::as_bytes(serialize(manifest)));
        failpoint("publish:before-manifest-rename");
        out->finish();
        failpoint("publish:after-manifest");
        return;
    }
    // Encrypted: the manifest first (not yet a backup: list() shows nothing loadable without the index),
    // then the signed index, last and create-only: the backup exists from here on.
    {
        auto out = storage_.open_write(encrypted_manifest_file_name(manifest.id),
                                       {.atomic = true, .sync = true, .create_only = true});
        out->write(io::as_bytes(encrypted_manifest));
        out->finish();
    }
    failpoint("publish:before-index");
    auto out = storage_.open_write(index_file_name(manifest.id),
                                   {.atomic = true, .sync = true, .create_only = true});
    out->write(io::as_bytes(serialize(*index)));
    failpoint("publish:before-manifest-rename");
    out->finish();
    failpoint("publish:after-manifest");
}

void RepositoryWriter::remove(const BackupRef& ref) {
    if (!ref.index.empty()) {
        storage_.remove(ref.index);  // the commit record first
        if (storage_.capabilities().directory_sync) storage_.sync_dir(".");
    }
    storage_.remove(ref.manifest);
    if (ref.encrypted())
        for (const auto& e : storage_.list_prefix(ref.manifest + ".age-header.")) storage_.remove(e.name);
    if (storage_.capabilities().directory_sync) storage_.sync_dir(".");
    failpoint("remove:after-manifest");
    storage_.remove_tree(ref.id);
    storage_.remove("verified_" + ref.id + ".json");               // its verification record, if any
    storage_.remove_tree(std::string(kDrillsDir) + "/" + ref.id);  // its drill records, if any
}

}  // namespace nightjar
