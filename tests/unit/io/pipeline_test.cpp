#include <sys/resource.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>

#include "nightjar/io/filter.hpp"
#include "nightjar/io/pipeline.hpp"
#include "nightjar/io/process.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/io/zstd.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/verify.hpp"
#include "support/corrupt.hpp"
#include "support/manifests.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;

namespace {

std::string random_text(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    const char* words[] = {"alpha ", "beta ", "gamma ", "delta\n", "epsilon ", "zeta "};
    std::size_t i = 0;
    while (i < n) {
        if (rng() % 4 == 0) {
            s[i++] = static_cast<char>(rng() & 0xff);
        } else {
            for (const char* w = words[rng() % 6]; *w && i < n; ++w) s[i++] = *w;
        }
    }
    return s;
}

class StringReader final : public io::Reader {
public:
    explicit StringReader(std::string s, std::size_t step = 7777) : s_(std::move(s)), step_(step) {}
    std::size_t read(io::MutableBytes buf) override {
        std::size_t n = std::min({buf.size(), s_.size() - pos_, step_});
        std::memcpy(buf.data(), s_.data() + pos_, n);
        pos_ += n;
        return n;
    }

private:
    std::string s_;
    std::size_t step_;
    std::size_t pos_ = 0;
};

class StringWriter final : public io::Writer {
public:
    void write(io::Bytes b) override { s.append(io::as_chars(b)); }
    void finish() override { finished = true; }
    std::string s;
    bool finished = false;
};

}  // namespace

TEST_CASE("sha256 of the pipeline equals sha256sum of the same bytes", "[pipeline]") {
    test::TempDir dir;
    std::string data = random_text(3 * 1024 * 1024 + 17, 1);
    test::write_file(dir / "data", data);
    RunResult r = run_capture({"sha256sum", (dir / "data").string()});
    REQUIRE(r.status == 0);
    std::string expected = r.out.substr(0, 64);

    SECTION("in one call") {
        CHECK(io::sha256_hex(data) == expected);
    }
    SECTION("through a filtered reader in odd-sized pieces") {
        StringReader src(data);
        io::FilterChain chain;
        auto& sha = chain.add<io::Sha256Filter>();
        auto& size = chain.add<io::SizeFilter>();
        io::FilteredReader reader(src, chain);
        CHECK(io::drain(reader) == data.size());
        CHECK(sha.hex() == expected);
        CHECK(size.bytes() == data.size());
    }
    SECTION("known vector") {
        CHECK(io::sha256_hex(std::string_view("abc")) ==
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}

TEST_CASE("zstd compression streams and round-trips, and the zstd tool reads it", "[pipeline]") {
    test::TempDir dir;
    std::string data = random_text(5 * 1024 * 1024, 2);
    PosixStorage storage(dir.path());
    storage.make_dir("a");
    auto file = storage.open_write("a/x.zst");
    ArtifactWriter writer(std::move(file), {.level = 3, .threads = 0}, "a/x.zst");
    for (std::size_t i = 0; i < data.size(); i += 100000)
        writer.write(io::as_bytes(std::string_view(data).substr(i, 100000)));
    writer.finish();
    const StoredDigest& d = writer.digest();
    CHECK(d.content_size == data.size());
    CHECK(d.content_sha256 == io::sha256_hex(data));
    CHECK(d.size == std::filesystem::file_size(dir / "a/x.zst"));
    CHECK(d.size < data.size());
    CHECK(d.sha256 == io::sha256_hex(test::read_file(dir / "a/x.zst")));

    SECTION("our reader") {
        auto in = storage.open_read("a/x.zst");
        io::ZstdReader z(*in, "x");
        StringWriter out;
        io::pump(z, out);
        CHECK(out.s == data);
    }
    SECTION("the zstd command") {
        RunResult r = run_capture({"zstd", "-d", "-c", (dir / "a/x.zst").string()});
        REQUIRE(r.status == 0);
        CHECK(r.out == data);
    }
    SECTION("a flipped byte either fails decompression or changes the content (the digests catch it)") {
        std::string bytes = test::read_file(dir / "a/x.zst");
        bytes[bytes.size() / 2] = static_cast<char>(~bytes[bytes.size() / 2]);
        StringReader src(bytes);
        io::ZstdReader z(src, "artifact x");
        StringWriter out;
        try {
            io::pump(z, out);
            CHECK(out.s != data);
        } catch (const Error& e) {
            CHECK_THAT(e, test::IsError(Kind::Verification, "artifact x"));
        }
    }
    SECTION("data that is not zstd is refused") {
        StringReader src("plain text, not compressed");
        io::ZstdReader z(src, "artifact y");
        REQUIRE_THROWS_MATCHES(io::drain(z), Error, test::IsError(Kind::Verification, "artifact y"));
    }
}

TEST_CASE("an empty stream compresses and decompresses to nothing", "[pipeline]") {
    io::FilterChain chain;
    chain.add<io::ZstdCompressFilter>();
    StringWriter out;
    io::FilteredWriter w(chain, out);
    w.finish();
    CHECK(out.finished);
    REQUIRE_FALSE(out.s.empty());
    StringReader src(out.s);
    io::ZstdReader z(src, "empty");
    CHECK(io::drain(z) == 0);
}

// ---- the pipeline builders (io/pipeline) ----

namespace {

using io::Cipher;
using io::Codec;
using io::PipelineSpec;
namespace fs = std::filesystem;

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
}

struct Written {
    std::string stored;
    io::PipelineDigests digests;
};

Written write_through(const PipelineSpec& spec, const io::WriteKeys& keys, const std::string& content,
                      io::CodecTuning tuning = {}, std::size_t piece = 100000) {
    StringWriter sink;
    io::WritePipeline w(spec, keys, sink, "artifact x", tuning);
    for (std::size_t i = 0; i < content.size(); i += piece)
        w.write(io::as_bytes(std::string_view(content).substr(i, piece)));
    w.finish();
    CHECK(sink.finished);
    return {sink.s, w.digests()};
}

std::string read_through(const std::string& stored, const PipelineSpec& spec,
                         const io::PipelineDigests& expected, const io::ReadKeys& keys,
                         io::Proof proof = io::Proof::Full) {
    StringReader src(stored, 9999);
    io::ReadPipeline r(src, spec, expected, keys, "artifact x", {.proof = proof});
    StringWriter out;
    io::pump(r, out);
    return out.s;
}

io::ProofResult prove(const std::string& stored, const PipelineSpec& spec,
                      const io::PipelineDigests& expected, const io::ReadKeys& keys, io::Proof proof) {
    StringReader src(stored, 9999);
    io::ReadPipeline r(src, spec, expected, keys, "artifact x", {.proof = proof});
    return r.prove();
}

struct AgeKeys {
    io::AgeIdentity identity = io::AgeIdentity::generate();
    io::WriteKeys write() const { return {{identity.recipient()}}; }
    io::ReadKeys read() const {
        io::ReadKeys k;
        k.identities.x25519.push_back(identity);
        return k;
    }
};

// Where the age payload (the nonce) starts in an encrypted stream.
std::size_t payload_start(const std::string& stored) {
    return stored.find("\n---") != std::string::npos ? stored.find('\n', stored.find("\n---") + 1) + 1 : 0;
}

const std::vector<PipelineSpec> kSpecs = {
    {.codec = Codec::Zstd, .level = 3, .cipher = Cipher::None},
    {.codec = Codec::Zstd, .level = 1, .cipher = Cipher::Age},
    {.codec = Codec::None, .level = 0, .cipher = Cipher::None},
    {.codec = Codec::None, .level = 0, .cipher = Cipher::Age},
};

}  // namespace

TEST_CASE("pipeline spec: JSON round trip and strict parsing", "[pipeline][spec]") {
    for (const auto& spec : kSpecs) {
        nlohmann::json j = spec.to_json();
        CHECK(PipelineSpec::from_json(JsonFields(j, "m", Kind::Verification)) == spec);
    }
    CHECK(kSpecs[0].to_json() == nlohmann::json{{"codec", "zstd"}, {"level", 3}, {"cipher", "none"}});
    CHECK(kSpecs[3].to_json() == nlohmann::json{{"codec", "none"}, {"cipher", "age"}});
    CHECK(kSpecs[1].describe() == "zstd-1+age");
    CHECK(PipelineSpec::legacy(Codec::Zstd).describe() == "zstd");
    auto parse = [](nlohmann::json j) {
        return PipelineSpec::from_json(JsonFields(j, "m", Kind::Verification));
    };
    REQUIRE_THROWS_MATCHES(parse({{"codec", "lz4"}, {"level", 3}, {"cipher", "none"}}), Error,
                           test::IsError(Kind::Verification, "m: /codec:"));
    REQUIRE_THROWS_MATCHES(parse({{"codec", "zstd"}, {"level", 3}, {"cipher", "aes"}}), Error,
                           test::IsError(Kind::Verification, "m: /cipher:"));
    REQUIRE_THROWS_MATCHES(parse({{"codec", "zstd"}, {"level", 3}}), Error,
                           test::IsError(Kind::Verification, "/cipher: required field is missing"));
    REQUIRE_THROWS_MATCHES(parse({{"codec", "zstd"}, {"level", 30}, {"cipher", "none"}}), Error,
                           test::IsError(Kind::Verification, "/level:"));
    REQUIRE_THROWS_MATCHES(parse({{"codec", "none"}, {"level", 3}, {"cipher", "none"}}), Error,
                           test::IsError(Kind::Verification, "/level: a level belongs to a codec"));
    REQUIRE_THROWS_MATCHES(parse({{"codec", "zstd"}, {"level", 3}, {"cipher", "none"}, {"key", "x"}}), Error,
                           test::IsError(Kind::Verification, "/key"));
}

TEST_CASE("pipeline: every spec round-trips in one pass, both digests measured", "[pipeline]") {
    AgeKeys keys;
    const std::vector<std::size_t> sizes = {0, 1, io::kAgeChunkSize, io::kAgeChunkSize + 1,
                                            3 * 1024 * 1024 + 12345};
    for (const auto& spec : kSpecs) {
        for (std::size_t n : sizes) {
            for (bool threaded : {true, false}) {
                INFO(spec.describe() << ", " << n << " bytes, stage thread " << threaded);
                std::string content = random_text(n, static_cast<unsigned>(n) + 3);
                Written w =
                    write_through(spec, keys.write(), content, {.threads = 0, .stage_thread = threaded});
                CHECK(w.digests.content_size == n);
                CHECK(w.digests.content_sha256 == io::sha256_hex(content));
                CHECK(w.digests.stored_size == w.stored.size());
                CHECK(w.digests.stored_sha256 == io::sha256_hex(w.stored));
                if (spec.cipher == Cipher::Age) {
                    CHECK(w.stored.rfind("age-encryption.org/v1\n", 0) == 0);
                    if (n >= 64) CHECK(w.stored.find(content.substr(0, 64)) == std::string::npos);
                }
                if (spec.cipher == Cipher::None && spec.codec == Codec::None) CHECK(w.stored == content);
                CHECK(read_through(w.stored, spec, w.digests, keys.read()) == content);
                CHECK(read_through(w.stored, spec, w.digests, keys.read(), io::Proof::Unchecked) == content);
                CHECK(prove(w.stored, spec, w.digests, keys.read(), io::Proof::Full).ok());
                // The stored bytes are proven without any key.
                CHECK(prove(w.stored, spec, w.digests, {}, io::Proof::StoredOnly).ok());
            }
        }
    }
}

TEST_CASE("pipeline: a content mismatch is told apart from a stored mismatch", "[pipeline]") {
    AgeKeys keys;
    std::string content = random_text(200000, 5);
    for (const auto& spec : kSpecs) {
        INFO(spec.describe());
        Written w = write_through(spec, keys.write(), content);
        io::PipelineDigests wrong_content = w.digests;
        wrong_content.content_sha256 = io::sha256_hex(std::string_view("other"));
        REQUIRE_THROWS_MATCHES(
            read_through(w.stored, spec, wrong_content, keys.read()), Error,
            test::IsError(Kind::Verification,
                          "artifact x: SHA-256 of the decompressed content does not match"));
        io::ProofResult r = prove(w.stored, spec, wrong_content, keys.read(), io::Proof::Full);
        CHECK(r.status == io::ProofStatus::ContentMismatch);
        CHECK(prove(w.stored, spec, wrong_content, {}, io::Proof::StoredOnly).ok());
        io::PipelineDigests wrong_stored = w.digests;
        wrong_stored.stored_sha256 = io::sha256_hex(std::string_view("other"));
        REQUIRE_THROWS_MATCHES(
            read_through(w.stored, spec, wrong_stored, keys.read()), Error,
            test::IsError(Kind::Verification, "artifact x: SHA-256 of the stored file does not match"));
        CHECK(prove(w.stored, spec, wrong_stored, {}, io::Proof::StoredOnly).status ==
              io::ProofStatus::StoredMismatch);
        CHECK(prove(w.stored, spec, wrong_stored, keys.read(), io::Proof::Full).status ==
              io::ProofStatus::StoredMismatch);
    }
}

TEST_CASE("pipeline fails closed: age with no recipient or no identity is an error naming the artifact",
          "[pipeline][age]") {
    const PipelineSpec age{.codec = Codec::Zstd, .level = 3, .cipher = Cipher::Age};
    SECTION("no recipient: nothing reaches the sink") {
        StringWriter sink;
        REQUIRE_THROWS_MATCHES(io::WritePipeline(age, {}, sink, "artifact 2024/db.zst"), Error,
                               test::IsError(Kind::Config,
                                             "artifact 2024/db.zst: the pipeline encrypts with age "
                                             "and no recipient was given"));
        CHECK(sink.s.empty());
    }
    SECTION("no identity: Full and Unchecked refuse before reading, StoredOnly needs none") {
        AgeKeys keys;
        Written w = write_through(age, keys.write(), "secret rows");
        for (auto proof : {io::Proof::Full, io::Proof::Unchecked}) {
            StringReader src(w.stored);
            REQUIRE_THROWS_MATCHES(
                io::ReadPipeline(src, age, w.digests, {}, "artifact 2024/db.zst", {.proof = proof}), Error,
                test::IsError(Kind::Verification,
                              "artifact 2024/db.zst: it is encrypted with age and no identity"));
        }
        CHECK(prove(w.stored, age, w.digests, {}, io::Proof::StoredOnly).ok());
    }
    SECTION("a staging dir is never created for an encrypting run without recipients") {
        test::TempDir dir;
        PosixStorage storage(dir.path());
        RepositoryWriter repo(storage);
        REQUIRE_THROWS_MATCHES(
            repo.begin("20240101_000000", age, {}), Error,
            test::IsError(Kind::Config, "backup 20240101_000000: artifacts are to be encrypted"));
        CHECK(std::filesystem::is_empty(dir.path()));
    }
}

TEST_CASE("pipeline: damaged or mis-keyed encrypted artifacts give one clear error naming the artifact",
          "[pipeline][age]") {
    AgeKeys keys;
    // No codec, so the age chunk layout is that of the content: 4 full chunks and a short last one.
    const PipelineSpec spec{.codec = Codec::None, .level = 0, .cipher = Cipher::Age};
    const std::size_t sealed = io::kAgeChunkSize + 16;
    std::string content = random_bytes(4 * io::kAgeChunkSize + 1000, 11);
    Written w = write_through(spec, keys.write(), content);
    const std::size_t payload = payload_start(w.stored);
    REQUIRE(payload > 0);
    const std::size_t chunks = payload + 16;  // after the nonce
    REQUIRE(w.stored.size() == chunks + 4 * sealed + 1000 + 16);
    auto chunk_at = [&](std::size_t i) { return chunks + i * sealed; };

    struct Case {
        std::string name;
        std::string bytes;
        std::string message;
    };
    std::vector<Case> cases;
    auto flipped = [&](std::size_t at) {
        std::string s = w.stored;
        s[at] = static_cast<char>(s[at] ^ 0x01);
        return s;
    };
    cases.push_back({"flipped byte in the header", flipped(payload / 2), "artifact x: age: "});
    cases.push_back({"flipped byte in the header MAC", flipped(payload - 3), "artifact x: age: "});
    cases.push_back({"flipped byte in a middle chunk", flipped(chunk_at(2) + 100),
                     "artifact x: age: payload: chunk 2 fails to authenticate"});
    cases.push_back({"flipped byte in the last chunk", flipped(chunk_at(4) + 10),
                     "artifact x: age: payload: chunk 4 fails to authenticate"});
    {
        std::string s = w.stored;
        std::string c1 = s.substr(chunk_at(1), sealed), c2 = s.substr(chunk_at(2), sealed);
        s.replace(chunk_at(1), sealed, c2);
        s.replace(chunk_at(2), sealed, c1);
        cases.push_back({"chunks swapped", s, "artifact x: age: payload: chunk 1 fails to authenticate"});
    }
    cases.push_back({"truncated inside the last chunk", w.stored.substr(0, w.stored.size() - 100),
                     "artifact x: age: payload: chunk 4 fails to authenticate"});
    cases.push_back({"truncated at a chunk boundary", w.stored.substr(0, chunk_at(4)),
                     "artifact x: age: payload: truncated after chunk 3: the final chunk is missing"});
    cases.push_back(
        {"truncated inside the header", w.stored.substr(0, payload / 2), "artifact x: age: header"});

    for (const auto& c : cases) {
        INFO(c.name);
        StringReader src(c.bytes, 9999);
        io::ReadPipeline r(src, spec, w.digests, keys.read(), "artifact x");
        StringWriter out;
        REQUIRE_THROWS_MATCHES(io::pump(r, out), Error, test::IsError(Kind::Verification, c.message));
        // Only authenticated plaintext came out, and never past the damage.
        CHECK(out.s == content.substr(0, out.s.size()));
        // Both proofs name the damage as the stored bytes differing from the manifest.
        CHECK(prove(c.bytes, spec, w.digests, keys.read(), io::Proof::Full).status ==
              io::ProofStatus::StoredMismatch);
        CHECK(prove(c.bytes, spec, w.digests, {}, io::Proof::StoredOnly).status ==
              io::ProofStatus::StoredMismatch);
    }
    SECTION("a truncation that the manifest agrees with is still caught without a key") {
        std::string cut = w.stored.substr(0, payload / 2);
        io::PipelineDigests d = w.digests;
        d.stored_size = cut.size();
        d.stored_sha256 = io::sha256_hex(cut);
        io::ProofResult r = prove(cut, spec, d, {}, io::Proof::StoredOnly);
        CHECK(r.status == io::ProofStatus::Invalid);
        CHECK_THAT(r.detail, Catch::StartsWith("artifact x: age: header"));
    }
    SECTION("the wrong identity") {
        AgeKeys other;
        REQUIRE_THROWS_MATCHES(read_through(w.stored, spec, w.digests, other.read()), Error,
                               test::IsError(Kind::Verification, "artifact x: age: no identity matches"));
        io::ProofResult r = prove(w.stored, spec, w.digests, other.read(), io::Proof::Full);
        CHECK(r.status == io::ProofStatus::Invalid);
        CHECK_THAT(r.detail, Catch::Contains("artifact x: age: no identity matches"));
        CHECK(prove(w.stored, spec, w.digests, {}, io::Proof::StoredOnly).ok());
    }
    SECTION("a cleartext file where an encrypted one is recorded") {
        io::PipelineDigests d{content.size(), io::sha256_hex(content), content.size(),
                              io::sha256_hex(content)};
        REQUIRE_THROWS_MATCHES(read_through(content, spec, d, keys.read()), Error,
                               test::IsError(Kind::Verification, "artifact x: age: header"));
        CHECK(prove(content, spec, d, {}, io::Proof::StoredOnly).status == io::ProofStatus::Invalid);
    }
}

TEST_CASE("pipeline interop: age -d and zstd -d read what we write, and we read what age -r wrote",
          "[pipeline][age]") {
    test::TempDir dir;
    RunResult kg = run_capture({"age-keygen", "-o", (dir / "key").string()});
    REQUIRE(kg.status == 0);
    auto ids = io::read_identity_file(dir / "key");
    io::ReadKeys read_keys;
    read_keys.identities.x25519 = ids;
    const io::WriteKeys write_keys{{ids[0].recipient()}};
    for (const auto& spec : {kSpecs[1], kSpecs[3]}) {
        for (std::size_t n : {std::size_t{0}, io::kAgeChunkSize, std::size_t{300000}}) {
            INFO(spec.describe() << ", " << n << " bytes");
            std::string content = spec.codec == Codec::None ? random_bytes(n, 7) : random_text(n, 7);
            // Ours -> age -d [-> zstd -d].
            Written w = write_through(spec, write_keys, content);
            test::write_file(dir / "ours.age", w.stored);
            // To stdout: age -o creates no file for an empty plaintext.
            RunResult d =
                run_capture({"age", "-d", "-i", (dir / "key").string(), (dir / "ours.age").string()});
            INFO(d.err);
            REQUIRE(d.status == 0);
            if (spec.codec == Codec::Zstd) {
                test::write_file(dir / "ours.zst", d.out);
                RunResult z = run_capture({"zstd", "-d", "-c", (dir / "ours.zst").string()});
                REQUIRE(z.status == 0);
                CHECK(z.out == content);
            } else {
                CHECK(d.out == content);
            }
            // [zstd ->] age -r -> ours.
            test::write_file(dir / "plain", content);
            std::string plain = (dir / "plain").string();
            if (spec.codec == Codec::Zstd) {
                REQUIRE(run_capture({"zstd", "-q", "-f", "-o", (dir / "plain.zst").string(), plain}).status ==
                        0);
                plain = (dir / "plain.zst").string();
            }
            RunResult e = run_capture(
                {"age", "-r", ids[0].recipient().str(), "-o", (dir / "theirs.age").string(), plain});
            REQUIRE(e.status == 0);
            std::string theirs = test::read_file(dir / "theirs.age");
            io::PipelineDigests expected{theirs.size(), io::sha256_hex(theirs), content.size(),
                                         io::sha256_hex(content)};
            CHECK(read_through(theirs, spec, expected, read_keys) == content);
            CHECK(prove(theirs, spec, expected, {}, io::Proof::StoredOnly).ok());
        }
    }
}

TEST_CASE("an encrypted backup: staged, published, proven without a key, read with one", "[pipeline][age]") {
    test::TempDir dir;
    PosixStorage storage(dir.path());
    RepositoryWriter repo(storage);
    Lock lock = repo.lock();
    AgeKeys keys;
    const std::string id = "20240101_000000";
    const PipelineSpec spec{.codec = Codec::Zstd, .level = 3, .cipher = Cipher::Age};
    const std::string content = random_text(500000, 9);
    Manifest m;
    {
        Staging staging = repo.begin(id, spec, keys.write(), {.threads = 0});
        auto w = staging.artifact("db.pgdump.zst");
        w->write(io::as_bytes(content));
        w->finish();
        m = test::complete_manifest(id, {w->artifact("postgres", "db-app", "pg_dump-custom")});
        repo.publish(std::move(staging), m);
    }
    const Artifact& a = m.artifacts[0];
    CHECK(a.path == id + "/db.pgdump.zst.age");
    CHECK(a.compression == "zstd");
    REQUIRE(a.pipeline.has_value());
    CHECK(*a.pipeline == spec);
    Manifest back = parse_manifest(serialize(m), "m");
    CHECK(back.artifacts[0].spec() == spec);
    CHECK(std::filesystem::exists(dir / a.path));
    CHECK(test::read_file(dir / a.path).rfind("age-encryption.org/v1\n", 0) == 0);

    CHECK(verify_stored_bytes(repo, a).ok());
    auto echo = [&](io::Reader& r) {
        StringWriter out;
        io::pump(r, out);
        return out.s == content ? VerifyOutcome{}
                                : VerifyOutcome{VerifyStatus::FormatInvalid, "content differs"};
    };
    CHECK(verify_artifact(repo, a, echo, keys.read()).ok());
    REQUIRE_THROWS_MATCHES(
        verify_artifact(repo, a, echo), Error,
        test::IsError(Kind::Verification, "artifact " + a.path + ": it is encrypted with age"));
    REQUIRE_THROWS_MATCHES(open_verified_content(repo, a), Error,
                           test::IsError(Kind::Verification, "artifact " + a.path));
    REQUIRE_THROWS_MATCHES(open_unchecked_content(repo, a), Error,
                           test::IsError(Kind::Verification, "artifact " + a.path));
    for (bool stored_proven : {false, true}) {
        auto in = open_verified_content(repo, a, keys.read(), stored_proven);
        StringWriter out;
        io::pump(*in, out);
        CHECK(out.s == content);
    }
    {
        auto in = open_unchecked_content(repo, a, keys.read());
        StringWriter out;
        io::pump(*in, out);
        CHECK(out.s == content);
    }
    AgeKeys other;
    VerifyOutcome v = verify_artifact(repo, a, echo, other.read());
    CHECK(v.status == VerifyStatus::FormatInvalid);
    CHECK_THAT(v.detail, Catch::Contains("artifact " + a.path + ": age: no identity matches"));
    test::flip_byte(dir / a.path, static_cast<std::int64_t>(std::filesystem::file_size(dir / a.path) / 2));
    CHECK(verify_stored_bytes(repo, a).status == VerifyStatus::DigestMismatch);
    CHECK(verify_artifact(repo, a, echo, keys.read()).status == VerifyStatus::DigestMismatch);
}

TEST_CASE("pipeline: a 1 GiB generated stream goes through zstd and age both ways in flat memory",
          "[pipeline][age]") {
    AgeKeys keys;
    const PipelineSpec spec{.codec = Codec::Zstd, .level = 1, .cipher = Cipher::Age};
    const std::uint64_t n = (std::uint64_t{1} << 30) + 1;
    auto peak_kib = [] {
        rusage u{};
        getrusage(RUSAGE_SELF, &u);
        return u.ru_maxrss;
    };
    const long peak_before = peak_kib();
    StringWriter sink;
    io::WritePipeline w(spec, keys.write(), sink, "artifact big", {.threads = 0});
    std::vector<std::byte> zeros(io::kChunkSize);
    for (std::uint64_t left = n; left > 0;) {
        std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(left, zeros.size()));
        w.write(io::Bytes(zeros.data(), k));
        left -= k;
    }
    w.finish();
    CHECK(w.digests().content_size == n);
    CHECK(sink.s.size() < (std::size_t{1} << 20));  // zeros compress: the stored file is small
    StringReader src(sink.s);
    io::ReadPipeline r(src, spec, w.digests(), keys.read(), "artifact big");
    std::vector<std::byte> buf(io::kChunkSize);
    std::uint64_t got = 0;
    bool all_zero = true;
    while (std::size_t k = r.read(buf)) {
        got += k;
        all_zero = all_zero && std::all_of(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(k),
                                           [](std::byte b) { return b == std::byte{0}; });
    }
    CHECK(got == n);
    CHECK(all_zero);
    CHECK(peak_kib() - peak_before < 64 * 1024);  // the process peak grew by less than 64 MiB for 1 GiB
}
