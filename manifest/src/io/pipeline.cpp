#include "nightjar/io/pipeline.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include "nightjar/core/error.hpp"

namespace nightjar::io {

std::string_view codec_name(Codec codec) {
    return codec == Codec::Zstd ? "zstd" : "none";
}

std::string_view cipher_name(Cipher cipher) {
    return cipher == Cipher::Age ? "age" : "none";
}

nlohmann::json PipelineSpec::to_json() const {
    nlohmann::json j{{"codec", codec_name(codec)}, {"cipher", cipher_name(cipher)}};
    if (codec == Codec::Zstd) j["level"] = level;
    return j;
}

PipelineSpec PipelineSpec::from_json(const JsonFields& f) {
    f.only({"codec", "level", "cipher"});
    PipelineSpec spec;
    const std::string codec = f.choice("codec", {"zstd", "none"}, "");
    if (codec.empty()) f.fail("codec", "required field is missing");
    spec.codec = codec == "zstd" ? Codec::Zstd : Codec::None;
    if (spec.codec == Codec::Zstd) {
        spec.level = static_cast<int>(f.integer("level", 1, 19));
    } else {
        if (f.has("level")) f.fail("level", "a level belongs to a codec, and the codec is none");
        spec.level = 0;
    }
    const std::string cipher = f.choice("cipher", {"none", "age"}, "");
    if (cipher.empty()) f.fail("cipher", "required field is missing");
    spec.cipher = cipher == "age" ? Cipher::Age : Cipher::None;
    return spec;
}

PipelineSpec PipelineSpec::legacy(Codec codec) {
    return {.codec = codec, .level = 0, .cipher = Cipher::None};
}

PipelineSpec PipelineSpec::zstd(const ZstdOptions& options) {
    return {.codec = Codec::Zstd, .level = options.level, .cipher = Cipher::None};
}

std::string PipelineSpec::describe() const {
    std::string s(codec_name(codec));
    if (codec == Codec::Zstd && level > 0) s += "-" + std::to_string(level);
    if (cipher == Cipher::Age) s += "+age";
    return s;
}

CodecTuning tuning_of(const ZstdOptions& options) {
    return {.threads = options.threads, .job_size = options.job_size};
}

namespace {

bool has_identity(const ReadKeys& keys) {
    return !keys.identities.x25519.empty() || keys.identities.passphrase.has_value();
}

// The age decrypter whose errors name the artifact.
class NamedAgeDecrypt final : public Filter {
public:
    NamedAgeDecrypt(const AgeIdentities& ids, std::string what) : inner_(ids), what_(std::move(what)) {}
    Bytes process(Bytes in, std::vector<std::byte>& scratch) override {
        try {
            return inner_.process(in, scratch);
        } catch (const AgeError& e) {
            throw AgeError(e.failure(), what_ + ": " + e.what());
        }
    }
    Bytes finish(std::vector<std::byte>& scratch) override {
        try {
            return inner_.finish(scratch);
        } catch (const AgeError& e) {
            throw AgeError(e.failure(), what_ + ": " + e.what());
        }
    }

private:
    AgeDecryptFilter inner_;
    std::string what_;
};

// The age file to decrypt (io/age_rotation), whose errors name the artifact.
class NamedRotationReader final : public Reader {
public:
    NamedRotationReader(Reader& artifact, const AgeIdentities& ids, RotationHeaderSource headers,
                        std::string what)
        : inner_(artifact, ids, std::move(headers)), what_(std::move(what)) {}
    std::size_t read(MutableBytes buf) override {
        try {
            return inner_.read(buf);
        } catch (const AgeError& e) {
            throw AgeError(e.failure(), what_ + ": " + e.what());
        }
    }

private:
    RotationAwareReader inner_;
    std::string what_;
};

// Tells `progress` the stored bytes read so far after every read.
class ProgressReader final : public Reader {
public:
    ProgressReader(Reader& src, const SizeFilter& size, std::function<void(std::uint64_t)> progress)
        : src_(src), size_(size), progress_(std::move(progress)) {}
    std::size_t read(MutableBytes buf) override {
        std::size_t n = src_.read(buf);
        if (progress_) progress_(size_.bytes());
        return n;
    }

private:
    Reader& src_;
    const SizeFilter& size_;
    std::function<void(std::uint64_t)> progress_;
};

}  // namespace

// ---- write ----

struct WritePipeline::Stages {
    FilterChain content;
    Sha256Filter& content_sha;
    SizeFilter& content_size;
    FilterChain stored;
    Sha256Filter* stored_sha = nullptr;
    SizeFilter* stored_size = nullptr;
    FilteredWriter stored_writer;
    std::vector<std::byte> pending;         // small writes gathered into pieces worth a thread hand-off
    std::unique_ptr<ThreadedWriter> stage;  // last: stopped first when the pipeline is dropped

    explicit Stages(Writer& sink)
        : content_sha(content.add<Sha256Filter>()),
          content_size(content.add<SizeFilter>()),
          stored_writer(stored, sink) {}
    Writer& head() { return stage ? static_cast<Writer&>(*stage) : stored_writer; }
    void hand_off() {
        if (pending.empty()) return;
        stage->write(pending);
        pending.clear();
    }
};

WritePipeline::WritePipeline(const PipelineSpec& spec, const WriteKeys& keys, Writer& sink, std::string what,
                             CodecTuning tuning)
    : spec_(spec), what_(std::move(what)) {
    if (spec_.cipher == Cipher::Age && keys.recipients.empty())
        throw Error(Kind::Config,
                    what_ +
                        ": the pipeline encrypts with age and no recipient was given: configure "
                        "at least one age1... recipient (nothing is written in clear instead)");
    if (spec_.codec == Codec::Zstd && (spec_.level < 1 || spec_.level > 19))
        throw Error(Kind::Config,
                    what_ + ": zstd level " + std::to_string(spec_.level) + " is out of range: use 1-19");
    stages_ = std::make_unique<Stages>(sink);
    auto& st = *stages_;
    if (spec_.codec == Codec::Zstd)
        st.stored.add<ZstdCompressFilter>(
            ZstdOptions{.level = spec_.level, .threads = tuning.threads, .job_size = tuning.job_size});
    if (spec_.cipher == Cipher::Age) st.stored.add<AgeEncryptFilter>(keys.recipients);
    st.stored_sha = &st.stored.add<Sha256Filter>();
    st.stored_size = &st.stored.add<SizeFilter>();
    if (tuning.stage_thread) {
        st.stage = std::make_unique<ThreadedWriter>(st.stored_writer);
        st.pending.reserve(kChunkSize);
    }
}

WritePipeline::~WritePipeline() = default;

void WritePipeline::write(Bytes data) {
    if (finished_) throw Error(Kind::Internal, what_ + ": written after it was finished");
    auto& st = *stages_;
    st.content.process(data);
    if (!st.stage) {
        st.stored_writer.write(data);
        return;
    }
    // Hand the stage thread pieces of at most kChunkSize: memory stays (queue depth + 1) x 1 MiB whatever
    // size the caller writes in.
    while (!data.empty()) {
        std::size_t n = std::min(data.size(), kChunkSize - st.pending.size());
        st.pending.insert(st.pending.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
        data = data.subspan(n);
        if (st.pending.size() == kChunkSize) st.hand_off();
    }
}

void WritePipeline::finish() {
    if (finished_) return;
    auto& st = *stages_;
    if (st.stage) st.hand_off();
    st.content.finish([](Bytes) {});
    st.head().finish();
    finished_ = true;
    digests_ = {st.stored_size->bytes(), st.stored_sha->hex(), st.content_size.bytes(), st.content_sha.hex()};
}

std::uint64_t WritePipeline::content_bytes() const {
    return stages_->content_size.bytes();
}

const PipelineDigests& WritePipeline::digests() const {
    if (!finished_) throw Error(Kind::Internal, what_ + ": digests asked for before the pipeline finished");
    return digests_;
}

// ---- read ----

struct ReadPipeline::Stages {
    FilterChain stored;
    Sha256Filter* stored_sha = nullptr;  // null when the stored bytes were proven by an earlier read
    SizeFilter* stored_size = nullptr;
    std::optional<FilteredReader> stored_reader;
    std::optional<ProgressReader> counted;        // the stored bytes, progress told
    std::optional<NamedRotationReader> rotation;  // the stored bytes with a rotation header when one opens
    FilterChain decrypt;
    std::optional<FilteredReader> decrypted;
    std::unique_ptr<ZstdReader> zstd;
    FilterChain content;
    Sha256Filter* content_sha = nullptr;
    SizeFilter* content_size = nullptr;
    std::optional<FilteredReader> content_reader;

    // What the codec reads from: the plaintext stored stream.
    Reader& plain() { return decrypted ? static_cast<Reader&>(*decrypted) : *counted; }
};

ReadPipeline::ReadPipeline(Reader& src, const PipelineSpec& spec, PipelineDigests expected,
                           const ReadKeys& keys, std::string what, ReadOptions options)
    : spec_(spec), expected_(std::move(expected)), what_(std::move(what)), options_(std::move(options)) {
    const bool decode = options_.proof != Proof::StoredOnly;
    if (decode && spec_.cipher == Cipher::Age && !has_identity(keys))
        throw Error(Kind::Verification,
                    what_ +
                        ": it is encrypted with age and no identity was given: configure the identity file "
                        "that holds the key it was encrypted to");
    stages_ = std::make_unique<Stages>();
    auto& st = *stages_;
    const bool hash_stored =
        options_.proof == Proof::StoredOnly || (options_.proof == Proof::Full && !options_.stored_proven);
    if (hash_stored) st.stored_sha = &st.stored.add<Sha256Filter>();
    st.stored_size = &st.stored.add<SizeFilter>();
    st.stored_reader.emplace(src, st.stored);
    st.counted.emplace(*st.stored_reader, *st.stored_size, options_.progress);
    if (!decode) return;
    if (spec_.cipher == Cipher::Age) {
        st.decrypt.add<NamedAgeDecrypt>(keys.identities, what_);
        Reader* age_file = &*st.counted;
        if (options_.rotation_headers) {
            st.rotation.emplace(*st.counted, keys.identities, options_.rotation_headers, what_);
            age_file = &*st.rotation;
        }
        st.decrypted.emplace(*age_file, st.decrypt);
    }
    Reader* codec = &st.plain();
    if (spec_.codec == Codec::Zstd) {
        st.zstd = std::make_unique<ZstdReader>(st.plain(), what_);
        codec = st.zstd.get();
    }
    if (options_.proof == Proof::Full) {
        st.content_sha = &st.content.add<Sha256Filter>();
        st.content_size = &st.content.add<SizeFilter>();
    }
    st.content_reader.emplace(*codec, st.content);
}

ReadPipeline::~ReadPipeline() = default;

std::uint64_t ReadPipeline::stored_bytes() const {
    return stages_->stored_size->bytes();
}

bool ReadPipeline::stored_ok() const {
    auto& st = *stages_;
    return st.stored_size->bytes() == expected_.stored_size &&
           (!st.stored_sha || st.stored_sha->hex() == expected_.stored_sha256);
}

void ReadPipeline::judge() {
    auto& st = *stages_;
    // Anything after the end of the zstd frame still belongs to the stored digest (and, encrypted, must
    // still authenticate).
    drain(st.plain());
    if (!stored_ok())
        throw Error(Kind::Verification, what_ + ": SHA-256 of the stored file does not match the manifest");
    if (st.content_size->bytes() != expected_.content_size ||
        st.content_sha->hex() != expected_.content_sha256) {
        content_mismatch_ = true;
        throw Error(Kind::Verification,
                    what_ + ": SHA-256 of the decompressed content does not match the manifest");
    }
}

std::size_t ReadPipeline::read(MutableBytes buf) {
    auto& st = *stages_;
    if (!st.content_reader)
        throw Error(Kind::Internal, what_ + ": a stored-bytes-only proof has no content to read");
    std::size_t n = st.content_reader->read(buf);
    if (n == 0 && options_.proof == Proof::Full && !judged_) {
        judged_ = true;
        judge();
    }
    return n;
}

ProofResult ReadPipeline::settle(const Error& error) {
    drain(*stages_->counted);
    if (!stored_ok())
        return {ProofStatus::StoredMismatch, "SHA-256 of the stored file does not match the manifest"};
    if (content_mismatch_) return {ProofStatus::ContentMismatch, error.what()};
    return {ProofStatus::Invalid, error.what()};
}

ProofResult ReadPipeline::prove() {
    auto& st = *stages_;
    if (options_.proof == Proof::StoredOnly) {
        std::optional<std::string> structure;
        if (spec_.cipher == Cipher::Age) {
            try {
                check_age_structure(*st.counted);
            } catch (const AgeError& e) {
                structure = what_ + ": " + e.what();
            }
        }
        drain(*st.counted);
        if (!stored_ok())
            return {ProofStatus::StoredMismatch, "SHA-256 of the stored file does not match the manifest"};
        if (structure) return {ProofStatus::Invalid, *structure};
        return {};
    }
    try {
        drain(*this);
    } catch (const Error& e) {
        if (e.kind() != Kind::Verification) throw;
        return settle(e);
    }
    return {};
}

}  // namespace nightjar::io
