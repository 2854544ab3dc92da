#include "nightjar/run/offsite_copy.hpp"

#include <chrono>

#include "nightjar/core/error.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/core/signals.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/repo/backup_index.hpp"
#include "nightjar/repo/prune.hpp"
#include "nightjar/repo/repository.hpp"

namespace nightjar {

namespace {

constexpr std::size_t kCopyBuffer = 1u << 20;

// Streams `rel` from one store to the other; returns the SHA-256 and size of the bytes written.
std::pair<std::string, std::uint64_t> stream_copy(const Storage& from, Storage& to, const std::string& rel,
                                                  WriteOptions options) {
    auto in = from.open_read(rel);
    auto out = to.open_write(rel, options);
    io::Sha256 digest;
    std::uint64_t n = 0;
    std::vector<std::byte> buf(kCopyBuffer);
    while (std::size_t got = in->read(buf)) {
        check_interrupted();
        io::Bytes chunk{buf.data(), got};
        digest.update(chunk);
        out->write(chunk);
        n += got;
    }
    out->finish();
    return {digest.hex(), n};
}

}  // namespace

CopyOutcome copy_backup(const Storage& from, const Manifest& manifest, Storage& to,
                        const std::string& location, const CopyOptions& options) {
    CopyOutcome r{.location = location};
    // The commit record goes last: a plain backup's manifest, or an encrypted backup's signed index (after
    // its encrypted manifest; there is no plain manifest_<id>.json then).
    const std::string index_name = index_file_name(manifest.id);
    const bool encrypted = from.stat(index_name).has_value();
    const std::string manifest_name = encrypted ? index_name : manifest_file_name(manifest.id);
    const auto t0 = std::chrono::steady_clock::now();
    try {
        log::info("copy: backup ", manifest.id, " to ", location, " (", manifest.artifacts.size(),
                  " artifact(s), ", log::human_bytes(manifest.stored_bytes()), ")");
        if (to.stat(manifest_name))
            throw Error(Kind::Storage, manifest_name +
                                           " is already there: a copy of this id exists; nothing "
                                           "was overwritten");
        for (const auto& a : manifest.artifacts) {
            auto [sha, size] = stream_copy(from, to, a.path, {.atomic = true, .sync = true});
            // The stored bytes as they went out must be the ones the manifest records: a backup dir that
            // changed since publication is not shipped as if it were sound.
            if (size != a.size || sha != a.sha256)
                throw Error(Kind::Verification,
                            "artifact " + a.path + " read back as " + std::to_string(size) +
                                " bytes sha256 " + sha.substr(0, 16) + "..., the manifest records " +
                                std::to_string(a.size) + " bytes sha256 " + a.sha256.substr(0, 16) +
                                "...: the local backup is damaged; run nightjar-restore --dry-run on it");
            r.bytes += size;
        }
        if (encrypted)
            stream_copy(from, to, encrypted_manifest_file_name(manifest.id),
                        {.atomic = true, .sync = true, .create_only = true});
        // Last and create-only: the copy exists from here on.
        stream_copy(from, to, manifest_name, {.atomic = true, .sync = true, .create_only = true});
        r.ok = true;
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        log::info("copy: backup ", manifest.id, " published in ", location, " (", log::human_bytes(r.bytes),
                  " in ", log::round_seconds(secs), " s)");
    } catch (const Error& e) {
        if (e.kind() == Kind::Interrupted) throw;
        r.error =
            "copy to " + location + ": backup " + manifest.id + " was not copied: " + e.what() +
            ": the local backup is published and stays; the next run does not retry it, copy it by hand "
            "or check the store and credentials";
        log::error(r.error);
        try {  // what the failed copy left (never its commit record: it is written last)
            if (!to.stat(manifest_name)) {
                to.remove_tree(manifest.id);
                if (encrypted) to.remove(encrypted_manifest_file_name(manifest.id));
            }
        } catch (const std::exception& cleanup) {
            log::warn("copy: cannot remove the unfinished copy ", location, "/", manifest.id,
                      "/: ", cleanup.what());
        }
        return r;
    }
    if (!options.retention.empty()) {
        try {
            RepositoryWriter repo(to);
            PruneResult p =
                prune(repo, options.retention, options.now, false, 86400, {.keep_id = manifest.id});
            r.pruned = p.deleted;
        } catch (const Error& e) {
            if (e.kind() == Kind::Interrupted) throw;
            log::warn("copy: prune of ", location, " failed: ", e.what());
        }
    }
    return r;
}

std::vector<CopyOutcome> copy_to_all(const Storage& from, const Manifest& manifest,
                                     const std::vector<S3RepositoryConfig>& copies,
                                     const CopyOptions& options) {
    std::vector<CopyOutcome> out;
    for (const auto& c : copies) {
        const std::string location = s3_location(c).string();
        std::unique_ptr<Storage> to;
        try {
            to = open_s3_repository(c);
        } catch (const Error& e) {
            CopyOutcome r{.location = location};
            r.error = "copy to " + location + ": backup " + manifest.id + " was not copied: " + e.what();
            log::error(r.error);
            out.push_back(std::move(r));
            continue;
        }
        out.push_back(copy_backup(from, manifest, *to, location, options));
    }
    return out;
}

}  // namespace nightjar
