#include "nightjar/repo/verify.hpp"

#include <optional>
#include <vector>

#include "nightjar/core/error.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/io/zstd.hpp"

namespace nightjar {

std::string_view verify_status_name(VerifyStatus s) {
    switch (s) {
        case VerifyStatus::Ok:
            return "ok";
        case VerifyStatus::Missing:
            return "missing";
        case VerifyStatus::SizeMismatch:
            return "size-mismatch";
        case VerifyStatus::DigestMismatch:
            return "digest-mismatch";
        case VerifyStatus::FormatInvalid:
            return "format-invalid";
    }
    return "format-invalid";
}

namespace {

// Reader over an artifact: stored bytes through digests and decompression; checks digests at EOF.
class VerifiedContent final : public io::Reader {
public:
    VerifiedContent(std::unique_ptr<io::Reader> file, const Artifact& artifact, VerifyProgress progress = {},
                    bool stored_proven = false)
        : progress_(std::move(progress)),
          file_(std::move(file)),
          artifact_(artifact),
          stored_sha_(stored_proven ? nullptr : &stored_.add<io::Sha256Filter>()),
          stored_size_(stored_.add<io::SizeFilter>()),
          stored_reader_(*file_, stored_),
          content_sha_(content_.add<io::Sha256Filter>()),
          content_size_(content_.add<io::SizeFilter>()) {
        if (artifact.compression == "zstd") {
            zstd_ = std::make_unique<io::ZstdReader>(stored_reader_, "artifact " + artifact.path);
            content_reader_ = std::make_unique<io::FilteredReader>(*zstd_, content_);
        } else {
            content_reader_ = std::make_unique<io::FilteredReader>(stored_reader_, content_);
        }
    }
    std::size_t read(io::MutableBytes buf) override {
        std::size_t n = content_reader_->read(buf);
        if (progress_) progress_(stored_size_.bytes());
        if (n == 0 && !checked_) {
            checked_ = true;
            check();
        }
        return n;
    }
    // After a decompression error: read the rest of the stored file so its digest can be judged.
    void drain_stored() { io::drain(stored_reader_); }
    bool content_mismatch() const { return content_mismatch_; }
    bool stored_ok() {
        return stored_size_.bytes() == artifact_.size &&
               (!stored_sha_ || stored_sha_->hex() == artifact_.sha256);
    }

private:
    VerifyProgress progress_;
    void check() {
        // Anything after the end of the zstd frame still belongs to the stored digest.
        io::drain(stored_reader_);
        if (!stored_ok())
            throw Error(Kind::Verification, "artifact " + artifact_.path +
                                                ": SHA-256 of the stored file does not match the manifest");
        if (content_size_.bytes() != artifact_.content_size ||
            content_sha_.hex() != artifact_.content_sha256) {
            content_mismatch_ = true;
            throw Error(Kind::Verification,
                        "artifact " + artifact_.path +
                            ": SHA-256 of the decompressed content does not match the manifest");
        }
    }
    std::unique_ptr<io::Reader> file_;
    const Artifact& artifact_;
    io::FilterChain stored_;
    io::Sha256Filter* stored_sha_;  // null when the stored bytes were proven by an earlier read
    io::SizeFilter& stored_size_;
    io::FilteredReader stored_reader_;
    std::unique_ptr<io::ZstdReader> zstd_;
    io::FilterChain content_;
    io::Sha256Filter& content_sha_;
    io::SizeFilter& content_size_;
    std::unique_ptr<io::FilteredReader> content_reader_;
    bool checked_ = false;
    bool content_mismatch_ = false;
};

// The stored file through zstd, nothing else.
class UncheckedContent final : public io::Reader {
public:
    UncheckedContent(std::unique_ptr<io::Reader> file, const Artifact& artifact) : file_(std::move(file)) {
        if (artifact.compression == "zstd")
            zstd_ = std::make_unique<io::ZstdReader>(*file_, "artifact " + artifact.path);
    }
    std::size_t read(io::MutableBytes buf) override { return zstd_ ? zstd_->read(buf) : file_->read(buf); }

private:
    std::unique_ptr<io::Reader> file_;
    std::unique_ptr<io::ZstdReader> zstd_;
};

}  // namespace

std::unique_ptr<io::Reader> open_unchecked_content(const RepositoryReader& repo, const Artifact& artifact) {
    return std::make_unique<UncheckedContent>(repo.open_artifact(artifact), artifact);
}

std::unique_ptr<io::Reader> open_verified_content(const RepositoryReader& repo, const Artifact& artifact,
                                                  bool stored_proven) {
    return std::make_unique<VerifiedContent>(repo.open_artifact(artifact), artifact, VerifyProgress{},
                                             stored_proven);
}

VerifyOutcome verify_artifact(const RepositoryReader& repo, const Artifact& artifact,
                              const Component& component, const VerifyProgress& progress) {
    return verify_artifact(
        repo, artifact, [&](io::Reader& content) { return component.verify(artifact, content); }, progress);
}

namespace {

// The stored file opened as a regular file of the recorded size, or why not (missing, wrong size, a FIFO or
// a symlink), decided on the opened descriptor before anything is read.
struct OpenedArtifact {
    std::unique_ptr<io::Reader> reader;
    std::optional<VerifyOutcome> problem;
};

OpenedArtifact open_checked(const RepositoryReader& repo, const Artifact& artifact) {
    RegularFile file = repo.storage().open_regular(artifact.path);
    const std::string where = repo.storage().describe(artifact.path);
    if (file.missing)
        return {nullptr, VerifyOutcome{VerifyStatus::Missing, "artifact file is missing: " + where}};
    if (!file.reader)
        return {nullptr, VerifyOutcome{VerifyStatus::Missing,
                                       "artifact " + artifact.path + ": " + where + " is " +
                                           file.not_regular + ", not a regular file: refusing to read it"}};
    if (file.size != artifact.size)
        return {nullptr, VerifyOutcome{VerifyStatus::SizeMismatch, "size is " + std::to_string(file.size) +
                                                                       " bytes, the manifest says " +
                                                                       std::to_string(artifact.size)}};
    return {std::move(file.reader), std::nullopt};
}

}  // namespace

VerifyOutcome verify_stored_bytes(const RepositoryReader& repo, const Artifact& artifact,
                                  const VerifyProgress& progress) {
    OpenedArtifact opened = open_checked(repo, artifact);
    if (opened.problem) return *opened.problem;
    auto& file = opened.reader;
    io::FilterChain chain;
    auto& sha = chain.add<io::Sha256Filter>();
    auto& size = chain.add<io::SizeFilter>();
    io::FilteredReader stored(*file, chain);
    std::vector<std::byte> buf(io::kChunkSize);
    while (stored.read(buf))
        if (progress) progress(size.bytes());
    if (size.bytes() != artifact.size || sha.hex() != artifact.sha256)
        return {VerifyStatus::DigestMismatch, "SHA-256 of the stored file does not match the manifest"};
    return {};
}

VerifyOutcome verify_artifact(const RepositoryReader& repo, const Artifact& artifact,
                              const std::function<VerifyOutcome(io::Reader&)>& check,
                              const VerifyProgress& progress) {
    OpenedArtifact opened = open_checked(repo, artifact);
    if (opened.problem) return *opened.problem;
    VerifiedContent content(std::move(opened.reader), artifact, progress);
    VerifyOutcome format;
    try {
        format = check(content);
        io::drain(content);  // the component may stop early; the digests need every byte
    } catch (const Error& e) {
        if (e.kind() != Kind::Verification) throw;
        content.drain_stored();
        if (!content.stored_ok())
            return {VerifyStatus::DigestMismatch, "SHA-256 of the stored file does not match the manifest"};
        if (content.content_mismatch()) return {VerifyStatus::DigestMismatch, e.what()};
        return {VerifyStatus::FormatInvalid, e.what()};
    }
    return format;
}

}  // namespace nightjar
