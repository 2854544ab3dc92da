// The threaded hand-off of the write pipeline: the same bytes and digests as the single-threaded chain,
// errors of the stage behind it surface on the caller's thread, and an early failure never deadlocks.
#include <atomic>
#include <catch2/catch.hpp>
#include <random>

#include "nightjar/io/filter.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/io/threaded_writer.hpp"
#include "nightjar/io/zstd.hpp"
#include "nightjar/repo/repository.hpp"
#include "support/matchers.hpp"

using namespace nightjar;
using test::IsError;

namespace {

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(rng() % 7 == 0 ? rng() & 0xff : 'a' + i % 5);
    return s;
}

class StringWriter final : public io::Writer {
public:
    void write(io::Bytes data) override { s.append(io::as_chars(data)); }
    void finish() override { finished = true; }
    std::string s;
    bool finished = false;
};

// Fails once it has taken `limit` bytes (a full disk), or at finish() (a failed fsync).
class FailingWriter final : public io::Writer {
public:
    explicit FailingWriter(std::size_t limit, bool fail_finish = false)
        : limit_(limit), fail_finish_(fail_finish) {}
    void write(io::Bytes data) override {
        taken += data.size();
        if (taken > limit_) throw Error(Kind::Storage, "write failed: disk full: free some space");
    }
    void finish() override {
        if (fail_finish_) throw Error(Kind::Storage, "fsync failed: artifact");
        finished = true;
    }
    std::atomic<std::size_t> taken{0};
    bool finished = false;

private:
    std::size_t limit_;
    bool fail_finish_;
};

// Writes `data` in uneven pieces.
void write_in_pieces(io::Writer& w, const std::string& data) {
    std::size_t pos = 0, step = 1;
    while (pos < data.size()) {
        std::size_t n = std::min(step, data.size() - pos);
        w.write(io::as_bytes(std::string_view(data).substr(pos, n)));
        pos += n;
        step = step * 3 % 200'003 + 1;
    }
}

}  // namespace

TEST_CASE("the threaded hand-off passes every byte in order", "[pipeline][threaded]") {
    const std::string data = random_bytes(3 << 20, 11);
    for (std::size_t depth : {1u, 4u}) {
        StringWriter out;
        io::ThreadedWriter w(out, {.depth = depth});
        write_in_pieces(w, data);
        w.finish();
        CHECK(out.finished);
        CHECK(out.s == data);
    }
}

TEST_CASE("an artifact's digests equal those of the plain filter chain", "[pipeline][threaded]") {
    const std::string data = random_bytes(5 << 20, 12);
    // The reference: the same filters in one plain chain.
    io::FilterChain chain;
    auto& content_sha = chain.add<io::Sha256Filter>();
    chain.add<io::ZstdCompressFilter>(io::ZstdOptions{.level = 3, .threads = 2});
    auto& stored_sha = chain.add<io::Sha256Filter>();
    StringWriter reference;
    io::FilteredWriter single(chain, reference);
    write_in_pieces(single, data);
    single.finish();

    auto file = std::make_unique<StringWriter>();
    StringWriter* stored = file.get();
    ArtifactWriter artifact(std::move(file), {.level = 3, .threads = 2}, "id/x.zst");
    write_in_pieces(artifact, data);
    artifact.finish();
    CHECK(artifact.digest().content_sha256 == content_sha.hex());
    CHECK(artifact.digest().content_sha256 == io::sha256_hex(data));
    CHECK(artifact.digest().content_size == data.size());
    CHECK(artifact.digest().sha256 == stored_sha.hex());
    CHECK(artifact.digest().sha256 == io::sha256_hex(stored->s));
    CHECK(artifact.digest().size == stored->s.size());
    CHECK(stored->s == reference.s);
    CHECK(stored->finished);
}

TEST_CASE("a failing stage behind the hand-off surfaces on the caller's thread", "[pipeline][threaded]") {
    const std::string data = random_bytes(1 << 20, 13);
    SECTION("a write error is rethrown by a later write or by finish, never swallowed") {
        FailingWriter out(1000);
        io::ThreadedWriter w(out, {.depth = 1});
        auto run = [&] {
            for (int i = 0; i < 64; ++i) write_in_pieces(w, data);  // far more than the queue holds
            w.finish();
        };
        REQUIRE_THROWS_MATCHES(run(), Error, IsError(Kind::Storage, "disk full"));
        CHECK_FALSE(out.finished);
        CHECK(out.taken < 64 * data.size());  // it stopped taking pieces after the failure
    }
    SECTION("an error of finish() is rethrown by finish()") {
        FailingWriter out(SIZE_MAX, true);
        io::ThreadedWriter w(out);
        write_in_pieces(w, data);
        REQUIRE_THROWS_MATCHES(w.finish(), Error, IsError(Kind::Storage, "fsync failed"));
    }
    SECTION("the artifact pipeline reports a full disk with the storage error") {
        auto file = std::make_unique<FailingWriter>(100);
        ArtifactWriter artifact(std::move(file), {.level = 1, .threads = 1}, "id/x.zst");
        auto run = [&] {
            for (int i = 0; i < 16; ++i) write_in_pieces(artifact, data);
            artifact.finish();
        };
        REQUIRE_THROWS_MATCHES(run(), Error, IsError(Kind::Storage, "disk full"));
    }
}

TEST_CASE("a producer that fails early drops the hand-off without a deadlock or a finish",
          "[pipeline][threaded]") {
    const std::string data = random_bytes(256 << 10, 14);
    StringWriter out;
    {
        io::ThreadedWriter w(out, {.depth = 2});
        write_in_pieces(w, data);
        // No finish(): the producer failed, the destructor must stop the thread and return.
    }
    CHECK_FALSE(out.finished);
    CHECK(out.s.size() <= data.size());
    CHECK(data.compare(0, out.s.size(), out.s) == 0);
    {
        FailingWriter failing(10);
        io::ThreadedWriter w(failing, {.depth = 1});
        CHECK_NOTHROW(w.write(io::as_bytes(data)));  // taken before the thread fails on it
        // Destroyed with the failure pending and no finish(): still no hang.
    }
}
