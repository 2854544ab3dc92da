// The S3 client through tests/support/s3_fault_proxy.py in front of the real radosgw: dropped connections,
// 503 bursts, stalls and resets in the middle of a part, with the stored object still exact; a download cut
// midway resumes where it stopped; a fault that does not pass gives up with the reason.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <random>
#include <thread>

#include "nightjar/io/process.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/repo/s3/client.hpp"
#include "nightjar/repo/s3/multipart_writer.hpp"
#include "support/commands.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct FaultProxy {
    test::TempDir dir;
    std::optional<Subprocess> proc;
    int port = 0;
    FaultProxy(const std::string& plan, const std::string& match, double stall_seconds = 6) {
        std::string target = test::required_env("NIGHTJAR_TEST_S3_ENDPOINT");
        target = target.substr(target.find("://") + 3);
        SpawnOptions o;
        o.capture_stderr = true;
        proc.emplace(Subprocess::spawn(
            {"python3", (test::source_dir() / "tests/support/s3_fault_proxy.py").string(), "--target", target,
             "--plan", plan, "--match", match, "--stall-seconds", std::to_string(stall_seconds), "--log",
             (dir / "log").string(), "--port-file", (dir / "port").string()},
            o));
        for (int i = 0; i < 400 && !fs::exists(dir / "port"); ++i) std::this_thread::sleep_for(25ms);
        REQUIRE(fs::exists(dir / "port"));
        port = std::stoi(test::read_file(dir / "port"));
    }
    ~FaultProxy() {
        proc->kill(SIGTERM);
        proc->wait();
    }
    std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port); }
    // How many requests met each fault.
    int count(const std::string& fault) const {
        if (!fs::exists(dir / "log")) return 0;
        std::string log = test::read_file(dir / "log");
        int n = 0;
        for (std::size_t p = 0; (p = log.find(fault + " ", p)) != std::string::npos; ++p)
            if (p == 0 || log[p - 1] == '\n') ++n;
        return n;
    }
};

s3::Client make_client(const std::string& endpoint, int attempts = 6) {
    return s3::Client(
        {.endpoint = endpoint,
         .region = test::required_env("NIGHTJAR_TEST_S3_REGION"),
         .retry = {.attempts = attempts, .base = 50ms, .cap = 400ms},
         .stall_timeout = 2s},
        s3::Credentials::from_file(test::required_env("NIGHTJAR_TEST_S3_ACCESS_KEY_ID"),
                                   test::required_env("NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE")));
}

std::string bucket() {
    return test::required_env("NIGHTJAR_TEST_S3_BUCKET");
}

std::string fresh_key(const std::string& name) {
    static std::mt19937_64 rng{std::random_device{}()};
    return "faults-" + name + "-" + std::to_string(rng() % 1000000000);
}

std::vector<std::byte> pseudo_random(std::size_t n, std::uint64_t seed) {
    std::vector<std::byte> out(n);
    std::mt19937_64 rng(seed);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>(rng() >> 13);
    return out;
}

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

}  // namespace

TEST_CASE("s3 faults: a multipart upload survives drops, 503 bursts, a stall and resets mid-part", "[s3]") {
    FaultProxy proxy("503,503,503,reset,drop,stall,reset,pass,503", "partNumber=");
    auto client = make_client(proxy.endpoint());
    std::string key = fresh_key("multipart");
    auto data = pseudo_random(22u << 20, 11);
    s3::MultipartWriter w(client, bucket(), key, {.part_size = 5u << 20, .parallel_parts = 2});
    for (std::size_t pos = 0; pos < data.size(); pos += 1u << 20)
        w.write({data.data() + pos, std::min<std::size_t>(1u << 20, data.size() - pos)});
    w.finish();
    CHECK(w.parts() == 5);
    CHECK(proxy.count("503") == 4);
    CHECK(proxy.count("reset") == 2);
    CHECK(proxy.count("drop") == 1);
    CHECK(proxy.count("stall") == 1);

    auto direct = make_client(test::required_env("NIGHTJAR_TEST_S3_ENDPOINT"));
    HashWriter h;
    direct.get_object(bucket(), key, h);
    CHECK(h.n == data.size());
    CHECK(h.sha.hex() == io::sha256_hex(io::Bytes(data.data(), data.size())));
    CHECK(direct.list_multipart_uploads(bucket(), key).empty());
}

TEST_CASE("s3 faults: a download cut midway resumes from where it stopped", "[s3]") {
    std::string key = fresh_key("download");
    auto data = pseudo_random(9u << 20, 5);
    auto direct = make_client(test::required_env("NIGHTJAR_TEST_S3_ENDPOINT"));
    direct.put_object(bucket(), key, s3::MemoryBody({data.data(), data.size()}));

    FaultProxy proxy("cut,cut", "GET /" + bucket() + "/" + key);
    auto client = make_client(proxy.endpoint());
    HashWriter h;
    CHECK(client.get_object(bucket(), key, h) == data.size());
    CHECK(h.sha.hex() == io::sha256_hex(io::Bytes(data.data(), data.size())));
    CHECK(proxy.count("cut") == 2);

    // And a ranged read cut midway.
    FaultProxy proxy2("cut", "GET /" + bucket() + "/" + key);
    auto client2 = make_client(proxy2.endpoint());
    HashWriter r;
    CHECK(client2.get_object(bucket(), key, r, s3::Range{.offset = 1000, .length = 3u << 20}) == (3u << 20));
    CHECK(r.sha.hex() == io::sha256_hex(io::Bytes(data.data() + 1000, 3u << 20)));
    CHECK(proxy2.count("cut") == 1);
}

TEST_CASE("s3 faults: a 503 burst longer than the retries gives up naming the status and code", "[s3]") {
    FaultProxy proxy("503,503,503,503", "PUT");
    auto client = make_client(proxy.endpoint(), 3);
    std::string key = fresh_key("giveup");
    try {
        client.put_object(bucket(), key, s3::MemoryBody(io::as_bytes(std::string("x"))));
        FAIL("a put through a 503 burst longer than the retries succeeded");
    } catch (const s3::S3Error& e) {
        CHECK(e.status() == 503);
        CHECK(e.code() == "SlowDown");
        CHECK_THAT(e.what(), Catch::Contains("HTTP 503 SlowDown (after 3 tries)") && Catch::Contains(key));
    }
    CHECK(proxy.count("503") == 3);
}

TEST_CASE("s3 faults: a multipart upload whose part keeps failing is aborted, leaving no parts", "[s3]") {
    FaultProxy proxy("503,503,503,503,503,503,503,503", "partNumber=2&");
    auto client = make_client(proxy.endpoint(), 2);
    std::string key = fresh_key("aborted");
    auto data = pseudo_random(16u << 20, 8);
    s3::MultipartWriter w(client, bucket(), key, {.part_size = 5u << 20, .parallel_parts = 2});
    CHECK_THROWS_AS(
        [&] {
            w.write({data.data(), data.size()});
            w.finish();
        }(),
        s3::S3Error);
    auto direct = make_client(test::required_env("NIGHTJAR_TEST_S3_ENDPOINT"));
    CHECK(direct.list_multipart_uploads(bucket(), key).empty());
    CHECK_FALSE(direct.head_object(bucket(), key));
}
