#pragma once
// One artifact being written: the write pipeline (io/pipeline) from a component's bytes to a stored file.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "nightjar/io/pipeline.hpp"
#include "nightjar/io/zstd.hpp"
#include "nightjar/repo/manifest.hpp"

namespace nightjar {

// What the pipeline measured while an artifact was written.
struct StoredDigest {
    std::uint64_t size = 0;
    std::string sha256;
    std::uint64_t content_size = 0;
    std::string content_sha256;
};

// The write pipeline of one artifact into `file`: content -> sha256 + size -> [stage thread] compress ->
// [encrypt] -> sha256 + size -> file. The caller reads and hashes the next piece while the stage thread
// compresses, encrypts and writes the previous ones.
class ArtifactWriter final : public io::Writer {
public:
    // Today's zstd pipeline at `zstd.level`, no cipher.
    ArtifactWriter(std::unique_ptr<io::Writer> file, io::ZstdOptions zstd, std::string path,
                   std::function<void(std::uint64_t)> on_progress = {});
    // The pipeline `spec` describes; a spec with cipher age and no recipient in `keys` throws Kind::Config
    // naming the artifact before any byte is written.
    ArtifactWriter(std::unique_ptr<io::Writer> file, const io::PipelineSpec& spec, const io::WriteKeys& keys,
                   io::CodecTuning tuning, std::string path,
                   std::function<void(std::uint64_t)> on_progress = {});
    void write(io::Bytes data) override;
    void finish() override;
    // Valid after finish().
    const StoredDigest& digest() const { return digest_; }
    const std::string& path() const { return path_; }
    const io::PipelineSpec& spec() const { return pipeline_->spec(); }
    // An Artifact filled with path, sizes, digests, compression and pipeline; the caller adds the rest.
    Artifact artifact(std::string component, std::string name, std::string format) const;

private:
    std::unique_ptr<io::Writer> file_;
    std::string path_;
    std::unique_ptr<io::WritePipeline> pipeline_;  // after file_: stopped before the file goes
    std::function<void(std::uint64_t)> on_progress_;
    StoredDigest digest_;
    bool finished_ = false;
};

}  // namespace nightjar
