#include "nightjar/repo/artifact_writer.hpp"

#include <utility>

#include "nightjar/core/error.hpp"
#include "nightjar/core/failpoint.hpp"

namespace nightjar {

ArtifactWriter::ArtifactWriter(std::unique_ptr<io::Writer> file, io::ZstdOptions zstd, std::string path,
                               std::function<void(std::uint64_t)> on_progress)
    : ArtifactWriter(std::move(file), io::PipelineSpec::zstd(zstd), io::WriteKeys{}, io::tuning_of(zstd),
                     std::move(path), std::move(on_progress)) {}

ArtifactWriter::ArtifactWriter(std::unique_ptr<io::Writer> file, const io::PipelineSpec& spec,
                               const io::WriteKeys& keys, io::CodecTuning tuning, std::string path,
                               std::function<void(std::uint64_t)> on_progress)
    : file_(std::move(file)),
      path_(std::move(path)),
      pipeline_(std::make_unique<io::WritePipeline>(spec, keys, *file_, "artifact " + path_, tuning)),
      on_progress_(std::move(on_progress)) {}

void ArtifactWriter::write(io::Bytes data) {
    pipeline_->write(data);
    if (on_progress_) on_progress_(pipeline_->content_bytes());
}

void ArtifactWriter::finish() {
    if (finished_) return;
    failpoint("artifact:before-finish");
    pipeline_->finish();
    finished_ = true;
    const io::PipelineDigests& d = pipeline_->digests();
    digest_ = {d.stored_size, d.stored_sha256, d.content_size, d.content_sha256};
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
    a.set_pipeline(pipeline_->spec());
    return a;
}

}  // namespace nightjar
