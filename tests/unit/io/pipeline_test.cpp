#include <catch2/catch.hpp>
#include <random>

#include "nightjar/core/process.hpp"
#include "nightjar/io/filter.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/io/zstd.hpp"
#include "nightjar/repo/repository.hpp"
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
