#include "nightjar/repo/verify.hpp"

#include <optional>
#include <vector>

#include "nightjar/core/error.hpp"
#include "nightjar/io/pipeline.hpp"

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

io::PipelineDigests expected_of(const Artifact& a) {
    return {a.size, a.sha256, a.content_size, a.content_sha256};
}

std::string what_of(const Artifact& a) {
    return "artifact " + a.path;
}

// An encrypted artifact is read with its rotation headers too (a recipient added after the backup).
io::ReadOptions with_rotation(const RepositoryReader& repo, const Artifact& artifact,
                              io::ReadOptions options) {
    if (artifact.spec().cipher == io::Cipher::Age)
        options.rotation_headers = repo.rotation_headers(artifact.path);
    return options;
}

// A read chain that owns the stored file it reads.
class ArtifactContent final : public io::Reader {
public:
    ArtifactContent(const RepositoryReader& repo, std::unique_ptr<io::Reader> file, const Artifact& artifact,
                    const io::ReadKeys& keys, io::ReadOptions options)
        : file_(std::move(file)),
          chain_(*file_, artifact.spec(), expected_of(artifact), keys, what_of(artifact),
                 with_rotation(repo, artifact, std::move(options))) {}
    std::size_t read(io::MutableBytes buf) override { return chain_.read(buf); }
    io::ReadPipeline& chain() { return chain_; }

private:
    std::unique_ptr<io::Reader> file_;
    io::ReadPipeline chain_;
};

VerifyOutcome outcome_of(const io::ProofResult& r) {
    switch (r.status) {
        case io::ProofStatus::Ok:
            return {};
        case io::ProofStatus::StoredMismatch:
        case io::ProofStatus::ContentMismatch:
            return {VerifyStatus::DigestMismatch, r.detail};
        case io::ProofStatus::Invalid:
            return {VerifyStatus::FormatInvalid, r.detail};
    }
    return {VerifyStatus::FormatInvalid, r.detail};
}

}  // namespace

std::unique_ptr<io::Reader> open_unchecked_content(const RepositoryReader& repo, const Artifact& artifact) {
    return open_unchecked_content(repo, artifact, io::ReadKeys{});
}

std::unique_ptr<io::Reader> open_unchecked_content(const RepositoryReader& repo, const Artifact& artifact,
                                                   const io::ReadKeys& keys) {
    return std::make_unique<ArtifactContent>(repo, repo.open_artifact(artifact), artifact, keys,
                                             io::ReadOptions{.proof = io::Proof::Unchecked});
}

std::unique_ptr<io::Reader> open_verified_content(const RepositoryReader& repo, const Artifact& artifact,
                                                  bool stored_proven) {
    return open_verified_content(repo, artifact, io::ReadKeys{}, stored_proven);
}

std::unique_ptr<io::Reader> open_verified_content(const RepositoryReader& repo, const Artifact& artifact,
                                                  const io::ReadKeys& keys, bool stored_proven) {
    return std::make_unique<ArtifactContent>(
        repo, repo.open_artifact(artifact), artifact, keys,
        io::ReadOptions{.proof = io::Proof::Full, .stored_proven = stored_proven});
}

VerifyOutcome verify_artifact(const RepositoryReader& repo, const Artifact& artifact,
                              const std::function<VerifyOutcome(io::Reader&)>& check,
                              const VerifyProgress& progress) {
    return verify_artifact(repo, artifact, check, io::ReadKeys{}, progress);
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
    io::ReadPipeline chain(*opened.reader, artifact.spec(), expected_of(artifact), io::ReadKeys{},
                           what_of(artifact), {.proof = io::Proof::StoredOnly, .progress = progress});
    return outcome_of(chain.prove());
}

VerifyOutcome verify_artifact(const RepositoryReader& repo, const Artifact& artifact,
                              const std::function<VerifyOutcome(io::Reader&)>& check,
                              const io::ReadKeys& keys, const VerifyProgress& progress) {
    OpenedArtifact opened = open_checked(repo, artifact);
    if (opened.problem) return *opened.problem;
    ArtifactContent content(repo, std::move(opened.reader), artifact, keys,
                            {.proof = io::Proof::Full, .progress = progress});
    VerifyOutcome format;
    try {
        format = check(content);
        io::drain(content);  // the component may stop early; the digests need every byte
    } catch (const Error& e) {
        if (e.kind() != Kind::Verification) throw;
        return outcome_of(content.chain().settle(e));
    }
    return format;
}

}  // namespace nightjar
