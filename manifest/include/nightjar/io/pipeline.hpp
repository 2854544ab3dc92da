#pragma once
// The one artifact pipeline, built from a PipelineSpec recorded on every artifact.
// Write: content SHA-256 + size -> [stage thread] compress -> [encrypt] -> stored SHA-256 + size -> sink.
// Read:  stored SHA-256 + size -> [decrypt] -> decompress -> content SHA-256 + size, with a proof mode:
// the stored bytes only (no key needed), or everything.
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "nightjar/core/json_fields.hpp"
#include "nightjar/io/age.hpp"
#include "nightjar/io/age_rotation.hpp"
#include "nightjar/io/filter.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/io/threaded_writer.hpp"
#include "nightjar/io/zstd.hpp"

namespace nightjar::io {

enum class Codec { Zstd, None };
enum class Cipher { None, Age };
std::string_view codec_name(Codec codec);     // "zstd" | "none"
std::string_view cipher_name(Cipher cipher);  // "none" | "age"

// What one artifact's bytes went through between its content and its stored file.
struct PipelineSpec {
    Codec codec = Codec::Zstd;
    int level = 3;  // zstd level 1-19; 0 with codec none, or when a legacy manifest did not record it
    Cipher cipher = Cipher::None;

    bool operator==(const PipelineSpec&) const = default;
    // {"codec": "zstd", "level": 3, "cipher": "none"} ("level" left out with codec none).
    nlohmann::json to_json() const;
    // Strict: unknown fields and values are refused with their JSON pointer, as `f`'s kind.
    static PipelineSpec from_json(const JsonFields& f);
    // What a manifest without "pipeline" means: its "compression" codec, level not recorded, no cipher.
    static PipelineSpec legacy(Codec codec);
    // The zstd pipeline of today with the configured level, no cipher.
    static PipelineSpec zstd(const ZstdOptions& options);
    // "zstd-3", "zstd-3+age", "none", for log lines.
    std::string describe() const;
};

// How to run the codec: never recorded, never needed to read.
struct CodecTuning {
    int threads = 2;                              // zstd worker threads; 0 = on the stage thread
    std::size_t job_size = std::size_t{2} << 20;  // zstd job size with threads (see ZstdOptions)
    bool stage_thread = true;                     // run compress/encrypt/sink on a thread of their own
};
CodecTuning tuning_of(const ZstdOptions& options);

// Keys for the write chain: the public keys an encrypted artifact is sealed to.
struct WriteKeys {
    std::vector<AgeRecipient> recipients;  // X25519 recipients (none by default)
};

// Keys for the read chain: what may open an encrypted artifact (nothing by default).
struct ReadKeys {
    AgeIdentities identities;
};

// The two digests of one artifact: what the write chain measured, what the read chain expects.
struct PipelineDigests {
    std::uint64_t stored_size = 0;
    std::string stored_sha256;
    std::uint64_t content_size = 0;
    std::string content_sha256;
};

// The write chain into `sink` (which it finishes). The caller's thread hashes the content; the stage thread
// compresses, encrypts, hashes the stored bytes and writes. A spec that wants age with no recipient throws
// Kind::Config naming `what` from the constructor, before any byte exists: never a cleartext fallback.
class WritePipeline final : public Writer {
public:
    WritePipeline(const PipelineSpec& spec, const WriteKeys& keys, Writer& sink, std::string what,
                  CodecTuning tuning = {});
    ~WritePipeline() override;
    WritePipeline(const WritePipeline&) = delete;
    WritePipeline& operator=(const WritePipeline&) = delete;
    void write(Bytes data) override;
    void finish() override;
    // Content bytes taken so far (for progress).
    std::uint64_t content_bytes() const;
    // Valid after finish(): the stored and content digests.
    const PipelineDigests& digests() const;
    const PipelineSpec& spec() const { return spec_; }

private:
    struct Stages;
    PipelineSpec spec_;
    std::string what_;
    std::unique_ptr<Stages> stages_;
    PipelineDigests digests_;
    bool finished_ = false;
};

enum class Proof {
    StoredOnly,  // stored size + SHA-256 (+ the age header's structure when encrypted): no key needed
    Full,        // the stored digests, then decrypt + decompress + the content digests
    Unchecked,   // decoded content with no digest judged (a second reader beside a checked one)
};

struct ReadOptions {
    Proof proof = Proof::Full;
    bool stored_proven =
        false;  // Full: the stored SHA-256 was proven by an earlier read; only the size is judged
    std::function<void(std::uint64_t)> progress;  // told the stored bytes read so far
    RotationHeaderSource rotation_headers;  // an age artifact's rotation headers, tried when no identity
                                            // opens its own header (none by default); the stored-bytes
                                            // proof stays on the artifact
};

// How a proof ended.
enum class ProofStatus {
    Ok,
    StoredMismatch,   // stored size or SHA-256 differs from the expected
    ContentMismatch,  // the stored bytes match but the decoded content's digests do not
    Invalid,          // the stored bytes match but do not decrypt/decompress (or the age structure is bad)
};
struct ProofResult {
    ProofStatus status = ProofStatus::Ok;
    std::string detail;  // names the artifact, empty when Ok
    bool ok() const { return status == ProofStatus::Ok; }
};

// The read chain over `src` (the stored bytes). A spec that wants age with no identity throws
// Kind::Verification naming `what` from the constructor (Full, Unchecked). Every error it raises for bad
// bytes is Kind::Verification and names `what`.
class ReadPipeline final : public Reader {
public:
    ReadPipeline(Reader& src, const PipelineSpec& spec, PipelineDigests expected, const ReadKeys& keys,
                 std::string what, ReadOptions options = {});
    ~ReadPipeline() override;
    ReadPipeline(const ReadPipeline&) = delete;
    ReadPipeline& operator=(const ReadPipeline&) = delete;
    // Full and Unchecked: the decoded content. Full judges at end of stream, the stored digests first, then
    // the content digests; a mismatch throws Kind::Verification naming `what`. StoredOnly: Kind::Internal.
    std::size_t read(MutableBytes buf) override;
    // Reads everything left and judges what the proof mode covers; bad bytes give a result, not a throw.
    ProofResult prove();
    // After read() threw: reads the rest of the stored bytes (undecoded) and says what the bytes were.
    ProofResult settle(const Error& error);
    std::uint64_t stored_bytes() const;
    const PipelineSpec& spec() const { return spec_; }

private:
    struct Stages;
    bool stored_ok() const;
    void judge();
    PipelineSpec spec_;
    PipelineDigests expected_;
    std::string what_;
    ReadOptions options_;
    std::unique_ptr<Stages> stages_;
    bool judged_ = false;
    bool content_mismatch_ = false;
};

}  // namespace nightjar::io
