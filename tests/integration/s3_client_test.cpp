// The S3 client against the real Ceph radosgw that services_start brings up (scripts/lib/ceph.sh): every
// call, create-only writes, multipart (streamed, parallel, aborted), listings past one page, keys that need
// percent-encoding, object lock, and a bad secret.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <set>

#include "nightjar/io/sha256.hpp"
#include "nightjar/repo/s3/client.hpp"
#include "nightjar/repo/s3/multipart_writer.hpp"
#include "support/commands.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using namespace std::chrono_literals;

namespace {

s3::ClientOptions client_options() {
    return {.endpoint = test::required_env("NIGHTJAR_TEST_S3_ENDPOINT"),
            .region = test::required_env("NIGHTJAR_TEST_S3_REGION"),
            .retry = {.attempts = 3, .base = 50ms, .cap = 500ms}};
}

s3::Credentials credentials() {
    return s3::Credentials::from_file(test::required_env("NIGHTJAR_TEST_S3_ACCESS_KEY_ID"),
                                      test::required_env("NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE"));
}

s3::Client& client() {
    static s3::Client c(client_options(), credentials());
    return c;
}

std::string bucket() {
    return test::required_env("NIGHTJAR_TEST_S3_BUCKET");
}

// A prefix no other test (or earlier run) uses.
std::string fresh_prefix(const std::string& name) {
    static std::mt19937_64 rng{std::random_device{}()};
    return "t-" + name + "-" + std::to_string(rng() % 1000000000) + "/";
}

class StringWriter final : public io::Writer {
public:
    void write(io::Bytes b) override { s.append(io::as_chars(b)); }
    void finish() override {}
    std::string s;
};

class HashWriter final : public io::Writer {
public:
    void write(io::Bytes b) override {
        sha.update(b);
        n += b.size();
    }
    void finish() override {}
    io::Sha256 sha;
    std::uint64_t n = 0;
};

std::string get(const std::string& key, std::optional<s3::Range> range = std::nullopt) {
    StringWriter w;
    client().get_object(bucket(), key, w, range);
    return w.s;
}

void put(const std::string& key, const std::string& content, s3::PutOptions o = {}) {
    client().put_object(bucket(), key, s3::MemoryBody(io::as_bytes(content)), o);
}

// Deterministic pseudo-random bytes, so a multipart stream is not all one repeated block.
std::vector<std::byte> pseudo_random(std::size_t n, std::uint64_t seed) {
    std::vector<std::byte> out(n);
    std::mt19937_64 rng(seed);
    for (std::size_t i = 0; i < n; i += 8) {
        std::uint64_t v = rng();
        for (std::size_t j = 0; j < 8 && i + j < n; ++j) out[i + j] = static_cast<std::byte>(v >> (8 * j));
    }
    return out;
}

}  // namespace

TEST_CASE("s3 client: put, head, get, ranged get, delete against radosgw", "[s3]") {
    std::string key = fresh_prefix("basic") + "object.bin";
    std::string content = "0123456789abcdefghijklmnopqrstuvwxyz";
    put(key, content);

    auto info = client().head_object(bucket(), key);
    REQUIRE(info);
    CHECK(info->size == content.size());
    CHECK(info->etag.size() == 32);  // the MD5, unquoted
    CHECK(info->etag.find('"') == std::string::npos);

    CHECK(get(key) == content);
    CHECK(get(key, s3::Range{.offset = 10, .length = 5}) == "abcde");
    CHECK(get(key, s3::Range{.offset = 30}) == "uvwxyz");

    CHECK_FALSE(client().head_object(bucket(), key + ".missing"));
    try {
        get(key + ".missing");
        FAIL("GET of a missing key succeeded");
    } catch (const s3::S3Error& e) {
        CHECK(e.status() == 404);
        CHECK(e.code() == "NoSuchKey");
        CHECK(e.kind() == Kind::Storage);
        CHECK_THAT(e.what(), Catch::Contains(key + ".missing") && Catch::Contains("HTTP 404 NoSuchKey"));
    }

    client().delete_object(bucket(), key);
    CHECK_FALSE(client().head_object(bucket(), key));
    client().delete_object(bucket(), key);  // deleting what is not there succeeds, as on S3
}

TEST_CASE("s3 client: an empty object and a file body", "[s3]") {
    std::string prefix = fresh_prefix("bodies");
    put(prefix + "empty", "");
    CHECK(client().head_object(bucket(), prefix + "empty")->size == 0);
    CHECK(get(prefix + "empty").empty());

    test::TempDir dir;
    std::string content(3 * 1024 * 1024 + 17, 'q');
    test::write_file(dir / "f", content);
    client().put_object(bucket(), prefix + "file", s3::FileBody(dir / "f"));
    HashWriter h;
    CHECK(client().get_object(bucket(), prefix + "file", h) == content.size());
    CHECK(h.sha.hex() == io::sha256_hex(content));
}

TEST_CASE("s3 client: a create-only put of an existing key is a distinct error and keeps the object",
          "[s3]") {
    std::string key = fresh_prefix("create-only") + "manifest.json";
    put(key, "first", {.create_only = true});
    try {
        put(key, "second", {.create_only = true});
        FAIL("a create-only put replaced an existing object");
    } catch (const s3::ObjectExistsError& e) {
        CHECK(e.status() == 412);
        CHECK_THAT(e.what(), Catch::Contains("HTTP 412") && Catch::Contains(key));
    }
    CHECK(get(key) == "first");
    put(key, "third");  // a plain put replaces
    CHECK(get(key) == "third");
}

TEST_CASE("s3 client: a 40 MiB stream uploads in parallel parts and is stored byte for byte", "[s3]") {
    std::string key = fresh_prefix("multipart") + "dump.zst";
    const std::size_t total = 40u << 20;
    auto data = pseudo_random(total, 42);
    s3::MultipartWriter w(client(), bucket(), key,
                          {.part_size = 5u << 20, .parallel_parts = 3, .put = {.create_only = true}});
    // Odd-sized writes, so parts are cut inside writes.
    std::size_t pos = 0, step = 777777;
    while (pos < total) {
        std::size_t n = std::min(step, total - pos);
        w.write({data.data() + pos, n});
        pos += n;
    }
    w.finish();
    CHECK(w.parts() == 8);
    CHECK(w.bytes() == total);
    CHECK(w.peak_buffer_bytes() <= 3u * (5u << 20));
    CHECK(w.peak_buffer_bytes() >= 2u * (5u << 20));  // parts really were in flight together

    auto info = client().head_object(bucket(), key);
    REQUIRE(info);
    CHECK(info->size == total);
    CHECK(info->etag.ends_with("-8"));
    HashWriter h;
    client().get_object(bucket(), key, h);
    CHECK(h.n == total);
    CHECK(h.sha.hex() == io::sha256_hex(io::Bytes(data.data(), data.size())));
    CHECK(client().list_multipart_uploads(bucket(), key).empty());

    // A ranged read across a part boundary.
    StringWriter r;
    client().get_object(bucket(), key, r, s3::Range{.offset = (5u << 20) - 3, .length = 6});
    CHECK(r.s == std::string(reinterpret_cast<const char*>(data.data()) + (5u << 20) - 3, 6));

    // Create-only on complete: a second upload to the same key is refused, and aborted.
    s3::MultipartWriter again(client(), bucket(), key,
                              {.part_size = 5u << 20, .parallel_parts = 2, .put = {.create_only = true}});
    again.write({data.data(), 11u << 20});
    CHECK_THROWS_AS(again.finish(), s3::ObjectExistsError);
    CHECK(client().list_multipart_uploads(bucket(), key).empty());
    HashWriter h2;
    client().get_object(bucket(), key, h2);
    CHECK(h2.sha.hex() == io::sha256_hex(io::Bytes(data.data(), data.size())));
}

TEST_CASE("s3 client: a stream shorter than one part is a single put", "[s3]") {
    std::string key = fresh_prefix("small") + "small";
    s3::MultipartWriter w(client(), bucket(), key, {.part_size = 5u << 20});
    w.write(io::as_bytes("hello"));
    w.finish();
    CHECK(w.upload_id().empty());
    CHECK(w.parts() == 0);
    CHECK(get(key) == "hello");
}

TEST_CASE("s3 client: the multipart calls one by one, and abort leaves no upload", "[s3]") {
    std::string key = fresh_prefix("parts") + "big";
    auto data = pseudo_random(6u << 20, 7);
    std::string id = client().create_multipart(bucket(), key);
    CHECK_FALSE(id.empty());
    std::string e1 = client().upload_part(bucket(), key, id, 1, {data.data(), 5u << 20});
    std::string e2 = client().upload_part(bucket(), key, id, 2, {data.data() + (5u << 20), 1u << 20});
    auto parts = client().list_parts(bucket(), key, id);
    REQUIRE(parts.size() == 2);
    CHECK(parts[0].number == 1);
    CHECK(parts[0].etag == e1);
    CHECK(parts[0].size == (5u << 20));
    CHECK(parts[1].etag == e2);
    auto uploads = client().list_multipart_uploads(bucket(), key);
    REQUIRE(uploads.size() == 1);
    CHECK(uploads[0].upload_id == id);
    CHECK(uploads[0].key == key);

    client().abort_multipart(bucket(), key, id);
    CHECK(client().list_multipart_uploads(bucket(), key).empty());
    CHECK_THROWS_AS(client().list_parts(bucket(), key, id), s3::S3Error);  // radosgw: NoSuchKey
    CHECK_FALSE(client().head_object(bucket(), key));

    // A part below 5 MiB that is not the last: the store refuses the complete.
    std::string id2 = client().create_multipart(bucket(), key);
    std::string a = client().upload_part(bucket(), key, id2, 1, {data.data(), 1u << 20});
    std::string b = client().upload_part(bucket(), key, id2, 2, {data.data(), 1u << 20});
    try {
        client().complete_multipart(bucket(), key, id2, {{1, a, 0}, {2, b, 0}});
        FAIL("complete with a too small part succeeded");
    } catch (const s3::S3Error& e) {
        CHECK(e.code() == "EntityTooSmall");
    }
    client().abort_multipart(bucket(), key, id2);
    CHECK(client().list_multipart_uploads(bucket(), key).empty());
}

TEST_CASE("s3 client: a multipart writer dropped before finish aborts its upload", "[s3]") {
    std::string key = fresh_prefix("dropped") + "partial";
    auto data = pseudo_random(12u << 20, 9);
    {
        s3::MultipartWriter w(client(), bucket(), key, {.part_size = 5u << 20, .parallel_parts = 2});
        w.write({data.data(), data.size()});
        CHECK_FALSE(w.upload_id().empty());
        CHECK(client().list_multipart_uploads(bucket(), key).size() == 1);
    }
    CHECK(client().list_multipart_uploads(bucket(), key).empty());
    CHECK_FALSE(client().head_object(bucket(), key));
}

TEST_CASE("s3 client: listing follows continuation tokens and groups by delimiter", "[s3]") {
    std::string prefix = fresh_prefix("list");
    std::set<std::string> want;
    for (int i = 0; i < 23; ++i) {
        std::string k = prefix + (i % 2 ? "odd/" : "even/") + "k" + std::to_string(i);
        put(k, std::to_string(i));
        want.insert(k);
    }
    put(prefix + "top", "t");
    want.insert(prefix + "top");

    auto all = client().list_objects(bucket(), prefix, {.max_keys = 5});
    std::set<std::string> got;
    for (const auto& o : all.objects) got.insert(o.key);
    CHECK(got == want);
    CHECK(all.objects.size() == want.size());  // no duplicates across pages

    auto top = client().list_objects(bucket(), prefix, {.delimiter = "/", .max_keys = 1});
    REQUIRE(top.objects.size() == 1);
    CHECK(top.objects[0].key == prefix + "top");
    CHECK(top.objects[0].size == 1);
    CHECK(std::set<std::string>(top.common_prefixes.begin(), top.common_prefixes.end()) ==
          std::set<std::string>{prefix + "even/", prefix + "odd/"});

    CHECK(client().list_objects(bucket(), prefix + "nothing-here/").objects.empty());
}

TEST_CASE("s3 client: listing more than 1000 keys", "[s3]") {
    std::string prefix = fresh_prefix("many");
    for (int i = 0; i < 1003; ++i) put(prefix + std::to_string(i), "");
    auto all = client().list_objects(bucket(), prefix);
    std::set<std::string> keys;
    for (const auto& o : all.objects) keys.insert(o.key);
    CHECK(keys.size() == 1003);
    CHECK(all.objects.size() == 1003);
}

TEST_CASE("s3 client: keys that need percent-encoding round-trip through put, get, list and delete", "[s3]") {
    std::string prefix = fresh_prefix("encoding");
    std::vector<std::string> keys = {
        prefix + "with space and+plus=equals&amp",
        prefix + "unicode-\xc3\xbc\xe2\x82\xac",
        prefix + "quote\"and<angle>",
        prefix + "percent%2F-literal",
        prefix + "tilde~star*(paren)!'",
        prefix + "dir/./dot//double",
        prefix + "hash#question?semi;colon:comma,",
    };
    for (const auto& k : keys) {
        INFO(k);
        put(k, "content of " + k);
        CHECK(get(k) == "content of " + k);
        CHECK(client().head_object(bucket(), k));
    }
    auto listed = client().list_objects(bucket(), prefix);
    std::set<std::string> got;
    for (const auto& o : listed.objects) got.insert(o.key);
    CHECK(got == std::set<std::string>(keys.begin(), keys.end()));
    // A prefix with characters to encode, in the query string.
    CHECK(client().list_objects(bucket(), prefix + "with space").objects.size() == 1);
    for (const auto& k : keys) client().delete_object(bucket(), k);
    CHECK(client().list_objects(bucket(), prefix).objects.empty());
}

TEST_CASE("s3 client: object lock refuses an early delete, and retention can be extended", "[s3]") {
    std::string lock_bucket = test::required_env("NIGHTJAR_TEST_S3_LOCK_BUCKET");
    std::string key = fresh_prefix("locked") + "backup.tar.zst";
    auto until = std::chrono::system_clock::now() + 24h;
    s3::PutOptions o{.lock = s3::ObjectLock{.mode = s3::LockMode::Compliance, .retain_until = until}};
    client().put_object(lock_bucket, key, s3::MemoryBody(io::as_bytes(std::string("precious"))), o);
    auto info = client().head_object(lock_bucket, key);
    REQUIRE(info);
    REQUIRE_FALSE(info->version_id.empty());
    try {
        client().delete_object(lock_bucket, key, info->version_id);
        FAIL("a locked object version was deleted");
    } catch (const s3::S3Error& e) {
        CHECK(e.status() == 403);
        CHECK(e.code() == "AccessDenied");
        CHECK_THAT(e.what(), Catch::Contains(key));
    }
    // Extending works; shortening a compliance lock does not.
    client().put_object_retention(lock_bucket, key,
                                  {.mode = s3::LockMode::Compliance, .retain_until = until + 48h});
    CHECK_THROWS_AS(client().put_object_retention(
                        lock_bucket, key, {.mode = s3::LockMode::Compliance, .retain_until = until - 12h}),
                    s3::S3Error);
    StringWriter w;
    client().get_object(lock_bucket, key, w);
    CHECK(w.s == "precious");

    // Multipart with a lock: each part carries Content-MD5, as a lock-enabled bucket requires.
    auto data = pseudo_random(6u << 20, 3);
    s3::MultipartWriter mw(client(), lock_bucket, key + ".multi", {.part_size = 5u << 20, .put = o});
    mw.write({data.data(), data.size()});
    mw.finish();
    CHECK(client().head_object(lock_bucket, key + ".multi")->size == data.size());
}

TEST_CASE("s3 client: a bad secret is a clear 403 that does not show the secret", "[s3]") {
    std::string wrong = "not-the-secret-" + std::to_string(std::random_device{}());
    s3::Client bad(client_options(), {test::required_env("NIGHTJAR_TEST_S3_ACCESS_KEY_ID"), wrong, {}});
    try {
        bad.put_object(bucket(), "never", s3::MemoryBody(io::as_bytes(std::string("x"))));
        FAIL("a put with a wrong secret succeeded");
    } catch (const s3::S3Error& e) {
        CHECK(e.status() == 403);
        CHECK(e.code() == "SignatureDoesNotMatch");
        CHECK_THAT(e.what(), Catch::Contains("HTTP 403 SignatureDoesNotMatch") &&
                                 Catch::Contains("check the access key id and the secret key"));
        CHECK_THAT(e.what(), !Catch::Contains(wrong));
    }
    s3::Client unknown(client_options(), {"NOSUCHKEYID", wrong, {}});
    try {
        unknown.list_objects(bucket(), "");
        FAIL("a listing with an unknown key id succeeded");
    } catch (const s3::S3Error& e) {
        CHECK(e.status() == 403);
        CHECK(e.code() == "InvalidAccessKeyId");
    }
}

TEST_CASE("s3 client: an unreachable endpoint is retried, then named", "[s3]") {
    auto o = client_options();
    o.endpoint = "http://127.0.0.1:1";
    s3::Client c(o, credentials());
    try {
        c.head_object(bucket(), "x");
        FAIL("a request to a closed port succeeded");
    } catch (const s3::S3Error& e) {
        CHECK(e.status() == 0);
        CHECK_THAT(e.what(), Catch::Contains("no reply") && Catch::Contains("after 3 tries") &&
                                 Catch::Contains("http://127.0.0.1:1"));
    }
}

TEST_CASE("s3 client: credentials from a file must be private, from the environment must be complete",
          "[s3]") {
    test::TempDir dir;
    test::write_file(dir / "secret", "abc\n");
    ::chmod((dir / "secret").c_str(), 0644);
    try {
        s3::Credentials::from_file("id", dir / "secret");
        FAIL("a world-readable secret file was accepted");
    } catch (const Error& e) {
        CHECK(e.kind() == Kind::Config);
        CHECK_THAT(e.what(), Catch::Contains("chmod 600"));
        CHECK_THAT(e.what(), !Catch::Contains("abc"));
    }
    ::chmod((dir / "secret").c_str(), 0600);
    auto c = s3::Credentials::from_file("id", dir / "secret");
    CHECK(c.secret_access_key == "abc");
    CHECK(c.access_key_id == "id");
}

TEST_CASE("s3 client: part sizes grow so 10000 parts hold a very long stream", "[s3]") {
    const std::size_t base = 16u << 20;
    CHECK(s3::part_size_for(1, base) == base);
    CHECK(s3::part_size_for(1000, base) == base);
    CHECK(s3::part_size_for(1001, base) == 2 * base);
    CHECK(s3::part_size_for(9000, base) == 256 * base);
    CHECK(s3::part_size_for(10000, base) == s3::kMaxPartSize);  // 512 x 16 MiB, capped at 5 GiB
    std::uint64_t total = 0;
    for (int i = 1; i <= s3::kMaxParts; ++i) total += s3::part_size_for(i, base);
    CHECK(total > (std::uint64_t{12} << 40));  // more than 12 TiB
    CHECK(s3::part_size_for(10000, std::size_t{1} << 30) == s3::kMaxPartSize);
    // A size hint raises the base so the expected size fits in 9000 parts.
    CHECK(s3::base_part_size({.part_size = 16u << 20, .expected_size = std::uint64_t{1} << 40}) >=
          (std::uint64_t{1} << 40) / 9000);
    CHECK(s3::base_part_size({.part_size = 1u << 20}) == s3::kMinPartSize);
}

TEST_CASE("s3 client: the bandwidth limit holds for a parallel multipart upload", "[s3]") {
    std::string key = fresh_prefix("bandwidth") + "limited";
    auto data = pseudo_random(10u << 20, 21);
    auto o = client_options();
    s3::Client c(o, credentials());
    // 5 MiB/s for the whole upload, split across 2 parts in flight: 10 MiB takes about 2 s.
    s3::MultipartWriter w(c, bucket(), key,
                          {.part_size = 5u << 20, .parallel_parts = 2, .bandwidth_limit = 5u << 20});
    auto t0 = std::chrono::steady_clock::now();
    w.write({data.data(), data.size()});
    w.finish();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO("10 MiB at 5 MiB/s took " << s << " s");
    CHECK(s >= 1.8);  // never more than 10% over the limit
    CHECK(s < 6.0);   // and not throttled far below it
    CHECK(c.head_object(bucket(), key)->size == data.size());
}

TEST_CASE("s3 client: credentials from the AWS environment", "[s3]") {
    std::string secret = test::read_file(test::required_env("NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE"));
    ::setenv("AWS_ACCESS_KEY_ID", test::required_env("NIGHTJAR_TEST_S3_ACCESS_KEY_ID").c_str(), 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", secret.c_str(), 1);
    ::unsetenv("AWS_SESSION_TOKEN");
    auto creds = s3::Credentials::from_env();
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
    s3::Client c(client_options(), creds);
    std::string key = fresh_prefix("env") + "k";
    c.put_object(bucket(), key, s3::MemoryBody(io::as_bytes(std::string("env"))));
    CHECK(c.head_object(bucket(), key)->size == 3);
    ::unsetenv("AWS_ACCESS_KEY_ID");
    try {
        s3::Credentials::from_env();
        FAIL("credentials from an empty environment");
    } catch (const Error& e) {
        CHECK(e.kind() == Kind::Config);
        CHECK_THAT(e.what(), Catch::Contains("AWS_ACCESS_KEY_ID"));
    }
}
