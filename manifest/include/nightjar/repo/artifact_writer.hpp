#pragma once
// One artifact being written: the write pipeline from a component's bytes to a stored file.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nightjar/io/filter.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/io/threaded_writer.hpp"
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

// The one write pipeline: content -> sha256 + size -> [stage thread] zstd -> sha256 + size -> atomic file.
// The caller reads and hashes the next piece while the stage thread compresses and writes the previous ones.
class ArtifactWriter final : public io::Writer {
public:
    ArtifactWriter(std::unique_ptr<io::Writer> file, io::ZstdOptions zstd, std::string path,
                   std::function<void(std::uint64_t)> on_progress = {});
    void write(io::Bytes data) override;
    void finish() override;
    // Valid after finish().
    const StoredDigest& digest() const { return digest_; }
    const std::string& path() const { return path_; }
    // An Artifact filled with path, sizes, digests and compression; the caller adds the rest.
    Artifact artifact(std::string component, std::string name, std::string format) const;

private:
    void hand_off();
    std::unique_ptr<io::Writer> file_;
    // On the caller's thread: the content digests. On the stage thread: compression, stored digests, file.
    io::FilterChain content_;
    io::Sha256Filter& content_sha_;
    io::SizeFilter& content_size_;
    io::FilterChain stored_;
    io::ZstdCompressFilter& compress_;
    io::Sha256Filter& stored_sha_;
    io::SizeFilter& stored_size_;
    io::FilteredWriter stored_writer_;
    io::ThreadedWriter stage_;
    std::vector<std::byte> pending_;  // small writes gathered into pieces worth a thread hand-off
    std::string path_;
    std::function<void(std::uint64_t)> on_progress_;
    StoredDigest digest_;
    bool finished_ = false;
};

}  // namespace nightjar
