#include "nightjar/repo/artifact_writer.hpp"

#include <utility>

#include "nightjar/core/error.hpp"
#include "nightjar/core/failpoint.hpp"

namespace nightjar {

ArtifactWriter::ArtifactWriter(std::unique_ptr<io::Writer> file, io::ZstdOptions zstd, std::string path,
                               std::function<void(std::uint64_t)> on_progress)
    : file_(std::move(file)),
      content_sha_(content_.add<io::Sha256Filter>()),
      content_size_(content_.add<io::SizeFilter>()),
      compress_(stored_.add<io::ZstdCompressFilter>(zstd)),
      stored_sha_(stored_.add<io::Sha256Filter>()),
      stored_size_(stored_.add<io::SizeFilter>()),
      stored_writer_(stored_, *file_),
      stage_(stored_writer_),
      path_(std::move(path)),
      on_progress_(std::move(on_progress)) {
    pending_.reserve(io::kChunkSize);
}

void ArtifactWriter::hand_off() {
    if (pending_.empty()) return;
    stage_.write(pending_);
    pending_.clear();
}

void ArtifactWriter::write(io::Bytes data) {
    content_.process(data);
    // Hand the stage thread pieces of at most kChunkSize: memory stays (queue depth + 1) x 1 MiB whatever
    // size the caller writes in.
    while (!data.empty()) {
        std::size_t n = std::min(data.size(), io::kChunkSize - pending_.size());
        pending_.insert(pending_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
        data = data.subspan(n);
        if (pending_.size() == io::kChunkSize) hand_off();
    }
    if (on_progress_) on_progress_(content_size_.bytes());
}

void ArtifactWriter::finish() {
    if (finished_) return;
    failpoint("artifact:before-finish");
    hand_off();
    content_.finish([](io::Bytes) {});
    stage_.finish();
    finished_ = true;
    digest_ = {stored_size_.bytes(), stored_sha_.hex(), content_size_.bytes(), content_sha_.hex()};
}

Artifact ArtifactWriter::artifact(std::string component, std::string name, std::string format) const {
    if (!finished_) throw Error(Kind::Internal, "artifact " + path_ + " described before it was finished");
    Artifact a;
    a.component = std::move(component);
    a.name = std::move(name);
    a.path = path_;
    a.size = digest_.size;
    a.sha256 = digest_.sha256;
    a.content_size = digest_.content_size;
    a.content_sha256 = digest_.content_sha256;
    a.format = std::move(format);
    a.compression = "zstd";
    return a;
}

}  // namespace nightjar
