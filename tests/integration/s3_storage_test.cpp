// S3Storage (the Storage interface on a bucket prefix) against the real Ceph radosgw: streamed writes and
// reads, ranged reads at the edges, create-only, unfinished writes, listings, stat, removal, capabilities.
#include <catch2/catch.hpp>
#include <random>
#include <set>

#include "conformance/storage_conformance.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/repo/s3/s3_storage.hpp"
#include "support/commands.hpp"

using namespace nightjar;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<const s3::Client> shared_client() {
    static auto c = std::make_shared<const s3::Client>(
        s3::ClientOptions{.endpoint = test::required_env("NIGHTJAR_TEST_S3_ENDPOINT"),
                          .region = test::required_env("NIGHTJAR_TEST_S3_REGION"),
                          .retry = {.attempts = 3, .base = 50ms, .cap = 500ms}},
        s3::Credentials::from_file(test::required_env("NIGHTJAR_TEST_S3_ACCESS_KEY_ID"),
                                   test::required_env("NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE")));
    return c;
}

// A storage on a prefix nothing else uses.
std::shared_ptr<s3::S3Storage> fresh_storage(std::size_t part_size = 5u << 20) {
    static std::mt19937_64 rng{std::random_device{}()};
    return std::make_shared<s3::S3Storage>(
        shared_client(), s3::S3StorageOptions{.bucket = test::required_env("NIGHTJAR_TEST_S3_BUCKET"),
                                              .prefix = "storage-" + std::to_string(rng() % 1000000000),
                                              .multipart = {.part_size = part_size, .parallel_parts = 2}});
}

void write(Storage& s, const std::string& rel, const std::string& content, WriteOptions o = {}) {
    auto w = s.open_write(rel, o);
    w->write(io::as_bytes(content));
    w->finish();
}

std::string read(const Storage& s, const std::string& rel, ReadRange range = {}) {
    auto r = s.open_read(rel, range);
    std::string out;
    std::vector<std::byte> buf(1000);
    while (std::size_t n = r->read(buf)) out.append(io::as_chars({buf.data(), n}));
    return out;
}

}  // namespace

TEST_CASE("s3 storage: declares no rename, no directory sync, no lock, no free space", "[s3]") {
    auto s = fresh_storage();
    auto c = s->capabilities();
    CHECK_FALSE(c.rename);
    CHECK_FALSE(c.directory_sync);
    CHECK_FALSE(c.advisory_lock);
    CHECK_FALSE(c.free_space);
    CHECK_THROWS_MATCHES(s->rename("a", "b"), Error,
                         Catch::Predicate<Error>([](const Error& e) { return e.kind() == Kind::Internal; }));
    CHECK_THAT(s->describe("x/y"),
               Catch::StartsWith("s3://" + test::required_env("NIGHTJAR_TEST_S3_BUCKET") + "/storage-") &&
                   Catch::EndsWith("/x/y"));
    CHECK_THROWS_AS(s->key("../escape"), Error);
}

TEST_CASE("s3 storage: files stream in and out, ranged reads at the edges", "[s3]") {
    auto s = fresh_storage();
    std::string small = "hello, object store";
    write(*s, "dir/small.txt", small);
    CHECK(read(*s, "dir/small.txt") == small);
    CHECK(read(*s, "dir/small.txt", {.offset = 7}) == "object store");
    CHECK(read(*s, "dir/small.txt", {.offset = 7, .length = 6}) == "object");
    CHECK(read(*s, "dir/small.txt", {.offset = 7, .length = 1000}) == "object store");
    CHECK(read(*s, "dir/small.txt", {.offset = small.size()}).empty());
    CHECK(read(*s, "dir/small.txt", {.offset = small.size() + 10}).empty());
    CHECK(read(*s, "dir/small.txt", {.offset = 3, .length = 0}).empty());

    // A file of several parts, read back through the bounded streaming reader in small pieces.
    std::string big(13u << 20, '\0');
    std::mt19937_64 rng(5);
    for (auto& ch : big) ch = static_cast<char>(rng());
    auto w = s->open_write("dir/big.bin");
    for (std::size_t pos = 0; pos < big.size(); pos += 100000)
        w->write(io::as_bytes(std::string_view(big).substr(pos, 100000)));
    w->finish();
    auto r = s->open_read("dir/big.bin");
    io::Sha256 sha;
    std::vector<std::byte> buf(4096);
    std::uint64_t n = 0;
    while (std::size_t k = r->read(buf)) {
        sha.update({buf.data(), k});
        n += k;
    }
    CHECK(n == big.size());
    CHECK(sha.hex() == io::sha256_hex(big));
    // A reader dropped halfway stops its download.
    {
        auto partial = s->open_read("dir/big.bin");
        CHECK(partial->read(buf) > 0);
    }
    CHECK(read(*s, "dir/big.bin", {.offset = (5u << 20) - 2, .length = 4}) == big.substr((5u << 20) - 2, 4));

    try {
        read(*s, "dir/missing");
        FAIL("reading a missing file succeeded");
    } catch (const Error& e) {
        CHECK(e.kind() == Kind::Verification);
        CHECK_THAT(e.what(), Catch::Contains("dir/missing") && Catch::Contains("missing"));
    }
    auto regular = s->open_regular("dir/small.txt");
    REQUIRE(regular.reader);
    CHECK(regular.size == small.size());
    CHECK(s->open_regular("dir/missing").missing);
}

TEST_CASE("s3 storage: create-only writes and unfinished writes", "[s3]") {
    auto s = fresh_storage();
    write(*s, "manifest_1.json", "first", {.create_only = true});
    try {
        write(*s, "manifest_1.json", "second", {.create_only = true});
        FAIL("a create-only write replaced a file");
    } catch (const StorageExists& e) {
        CHECK(e.kind() == Kind::Storage);
        CHECK_THAT(e.what(), Catch::Contains("manifest_1.json") && Catch::Contains("exists already"));
    }
    CHECK(read(*s, "manifest_1.json") == "first");

    // Big enough to be multipart: create-only is checked at complete.
    std::string big(6u << 20, 'm');
    CHECK_THROWS_AS(write(*s, "manifest_1.json", big, {.create_only = true}), StorageExists);
    CHECK(read(*s, "manifest_1.json") == "first");

    {
        auto w = s->open_write("unfinished.bin");
        w->write(io::as_bytes(big));  // a part went up
    }
    CHECK_FALSE(s->stat("unfinished.bin"));
    CHECK(s->client()
              .list_multipart_uploads(test::required_env("NIGHTJAR_TEST_S3_BUCKET"), s->key(""))
              .empty());
}

TEST_CASE("s3 storage: list, list by prefix, stat, remove and remove_tree", "[s3]") {
    auto s = fresh_storage();
    write(*s, "manifest_a.json", "a");
    write(*s, "manifest_b.json", "bb");
    write(*s, "20260101_000000/postgres/db.dump", "dump");
    write(*s, "20260101_000000/redis.rdb", "rdb");
    write(*s, "20260102_000000/files.tar", "tar");

    std::set<std::pair<std::string, bool>> top;
    for (const auto& e : s->list("")) top.insert({e.name, e.is_dir});
    CHECK(top == std::set<std::pair<std::string, bool>>{{"manifest_a.json", false},
                                                        {"manifest_b.json", false},
                                                        {"20260101_000000", true},
                                                        {"20260102_000000", true}});
    std::set<std::pair<std::string, bool>> inner;
    for (const auto& e : s->list("20260101_000000")) inner.insert({e.name, e.is_dir});
    CHECK(inner == std::set<std::pair<std::string, bool>>{{"postgres", true}, {"redis.rdb", false}});
    CHECK(s->list("nothing").empty());

    auto manifests = s->list_prefix("manifest_");
    REQUIRE(manifests.size() == 2);
    CHECK(manifests[0].name == "manifest_a.json");
    CHECK(manifests[1].name == "manifest_b.json");
    CHECK(manifests[1].size == 2);
    auto deep = s->list_prefix("20260101_000000/");
    REQUIRE(deep.size() == 2);
    CHECK(deep[0].name == "20260101_000000/postgres/db.dump");

    auto f = s->stat("manifest_b.json");
    REQUIRE(f);
    CHECK_FALSE(f->is_dir);
    CHECK(f->size == 2);
    CHECK_FALSE(f->stamp.empty());
    auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    CHECK(std::abs(f->mtime - now.count()) < 300);
    auto d = s->stat("20260101_000000");
    REQUIRE(d);
    CHECK(d->is_dir);
    CHECK(d->mtime > 0);
    CHECK_FALSE(s->stat("absent"));

    s->remove("manifest_a.json");
    s->remove("manifest_a.json");  // absent is fine
    CHECK_FALSE(s->stat("manifest_a.json"));
    s->remove_tree("20260101_000000");
    CHECK_FALSE(s->stat("20260101_000000"));
    CHECK(s->list_prefix("20260101_000000/").empty());
    CHECK(s->stat("20260102_000000/files.tar"));
    s->remove_tree("absent");
}

// The storage conformance suite (tests/conformance, from the storage branch) on S3Storage over radosgw:
// every section gets a fresh, empty prefix.
TEST_CASE("s3 storage: conformance", "[s3][conformance]") {
    test::storage_conformance([] { return std::shared_ptr<Storage>(fresh_storage()); });
}

TEST_CASE("s3 storage: read-only conformance", "[s3][conformance]") {
    test::read_only_conformance([] { return std::shared_ptr<Storage>(fresh_storage()); });
}

TEST_CASE("s3 storage: publish conformance", "[s3][conformance]") {
    test::publish_conformance([] { return std::shared_ptr<Storage>(fresh_storage()); });
}
