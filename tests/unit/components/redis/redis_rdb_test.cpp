// Redis's CRC64, the streaming RDB check, the SYNC header parser and the end-mark scanner: no server needed.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "nightjar/components/redis/client.hpp"
#include "nightjar/components/redis/rdb_check.hpp"
#include "nightjar/components/redis/sync_stream.hpp"
#include "nightjar/io/crc64.hpp"
#include "support/commands.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using namespace nightjar::redis;
namespace fs = std::filesystem;
using namespace std::string_literals;

namespace {

std::string le64(std::uint64_t v) {
    std::string s;
    for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return s;
}

// A minimal valid RDB: header, one AUX field, EOF, CRC64 trailer.
std::string make_rdb(int version = 10, bool checksum = true) {
    char magic[10];
    std::snprintf(magic, sizeof magic, "REDIS%04d", version);
    std::string body = std::string(magic) +
                       "\xfa\x09redis-ver\x06"
                       "7.0.15"
                       "\xfe\x00\xfb\x01\x00\x00\x01k\x01v\xff"s;
    std::uint64_t crc = checksum ? io::crc64_redis(0, io::as_bytes(body)) : 0;
    return body + le64(crc);
}

RdbSummary check_in_pieces(const std::string& data, std::size_t piece) {
    RdbCheck c;
    for (std::size_t i = 0; i < data.size(); i += piece)
        c.update(io::as_bytes(std::string_view(data).substr(i, piece)));
    return c.summary();
}

class ChunkReader final : public io::Reader {
public:
    explicit ChunkReader(std::vector<std::string> chunks) : chunks_(std::move(chunks)) {}
    std::size_t read(io::MutableBytes buf) override {
        if (i_ >= chunks_.size()) return 0;
        std::string& c = chunks_[i_];
        std::size_t n = std::min(buf.size(), c.size() - pos_);
        std::memcpy(buf.data(), c.data() + pos_, n);
        pos_ += n;
        if (pos_ == c.size()) ++i_, pos_ = 0;
        return n;
    }

private:
    std::vector<std::string> chunks_;
    std::size_t i_ = 0, pos_ = 0;
};

class StringWriter final : public io::Writer {
public:
    void write(io::Bytes b) override { out.append(io::as_chars(b)); }
    void finish() override {}
    std::string out;
};

std::vector<std::string> split_every(const std::string& s, std::size_t n) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < s.size(); i += n) out.push_back(s.substr(i, n));
    return out;
}

const std::string kMark(40, 'a');

}  // namespace

TEST_CASE("crc64_redis matches Redis's check value", "[unit][redis]") {
    CHECK(io::crc64_redis(0, io::as_bytes("123456789")) == 0xe9c6d914c4b8d9caULL);
    SECTION("split anywhere, same result") {
        std::string s = "123456789abcdefghijklmnopqrstuvwxyz";
        std::uint64_t whole = io::crc64_redis(0, io::as_bytes(s));
        for (std::size_t cut = 0; cut <= s.size(); ++cut) {
            std::uint64_t crc = io::crc64_redis(0, io::as_bytes(std::string_view(s).substr(0, cut)));
            CHECK(io::crc64_redis(crc, io::as_bytes(std::string_view(s).substr(cut))) == whole);
        }
    }
}

TEST_CASE("the RDB check reads header, EOF opcode and CRC64 in any chunking", "[unit][redis]") {
    std::string rdb = make_rdb();
    for (std::size_t piece : {1, 3, 7, 8, 9, 1000}) {
        INFO("piece " << piece);
        RdbSummary s = check_in_pieces(rdb, piece);
        CHECK(s.ok());
        CHECK(s.version == 10);
        CHECK(s.checksum_enabled);
        CHECK(s.stored_crc == s.computed_crc);
    }
    SECTION("a flipped byte is a CRC64 mismatch") {
        rdb[15] ^= 0x01;
        CHECK_THAT(check_in_pieces(rdb, 5).problem, Catch::Contains("CRC64 mismatch"));
    }
    SECTION("truncation loses the EOF opcode") {
        CHECK_THAT(check_in_pieces(rdb.substr(0, rdb.size() - 3), 4).problem, Catch::Contains("truncated"));
    }
    SECTION("a zero trailer means checksums off") {
        RdbSummary s = check_in_pieces(make_rdb(10, false), 2);
        CHECK(s.ok());
        CHECK(s.crc_text() == "disabled");
    }
    SECTION("wrong magic, unknown version, too short") {
        CHECK_THAT(check_in_pieces("RADIS0010" + rdb.substr(9), 4).problem, Catch::Contains("REDIS magic"));
        CHECK_THAT(check_in_pieces(make_rdb(13), 4).problem, Catch::Contains("unsupported RDB version 13"));
        CHECK_THAT(check_in_pieces("REDIS", 4).problem, Catch::Contains("too short"));
    }
}

TEST_CASE("the RDB check accepts every file of the shared corpus and rejects damaged copies",
          "[unit][redis]") {
    fs::path dir = test::shared_dir() / "corpus/redis-rdb";
    REQUIRE(fs::is_directory(dir));
    std::map<std::string, std::string> crc{{"list-quicklist.rdb", "enabled"},
                                           {"encodings.rdb", "none"},
                                           {"hash-zipmap.rdb", "none"},
                                           {"corrupt_ziplist.rdb", "disabled"}};
    int files = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        std::string name = e.path().filename().string();
        INFO(name);
        std::string data = test::read_file(e.path());
        RdbSummary s = check_in_pieces(data, 64);
        CHECK(s.ok());  // the corrupt_* files are damaged inside values, which this structural check does not
                        // parse
        CHECK(s.version >= 3);
        if (crc[name] == "enabled") CHECK(s.checksum_enabled);
        if (crc[name] == "disabled") CHECK(s.crc_text() == "disabled");
        if (s.version >= 5 && s.checksum_enabled) {
            std::string bad = data;
            bad[bad.size() / 2] ^= 0x20;
            CHECK_FALSE(check_in_pieces(bad, 64).ok());
        }
        CHECK_FALSE(check_in_pieces(data.substr(0, data.size() - 2), 64).ok());
        ++files;
    }
    CHECK(files == 8);
}

TEST_CASE("rdb_version_for_redis maps server versions", "[unit][redis]") {
    CHECK(rdb_version_for_redis("7.0.15") == 10);
    CHECK(rdb_version_for_redis("7.2.4") == 11);
    CHECK(rdb_version_for_redis("7.4.0") == 12);
    CHECK(rdb_version_for_redis("6.2.14") == 9);
    CHECK(rdb_version_for_redis("4.0.9") == 8);
    CHECK(rdb_version_for_redis("junk") == 0);
}

TEST_CASE("SYNC headers: sized, end-mark, refusals", "[unit][redis]") {
    SyncHeader sized = parse_sync_header("$1234");
    CHECK_FALSE(sized.eof_mark);
    CHECK(sized.length == 1234);
    SyncHeader eof = parse_sync_header("$EOF:" + kMark);
    CHECK(eof.eof_mark);
    CHECK(eof.mark == kMark);
    CHECK_THROWS_MATCHES(parse_sync_header("-NOPERM this user has no permissions to run the 'sync' command"),
                         Error, test::IsError(Kind::SourceUnavailable, "refused SYNC: NOPERM"));
    CHECK_THROWS_AS(parse_sync_header("-ERR x"), SyncRefused);
    CHECK_THROWS_MATCHES(parse_sync_header("+OK"), Error,
                         test::IsError(Kind::SourceUnavailable, "bulk header"));
    CHECK_THROWS_MATCHES(parse_sync_header("$EOF:short"), Error,
                         test::IsError(Kind::SourceUnavailable, "40 bytes"));
}

TEST_CASE("the end-mark scanner finds the mark across reads and drops it", "[unit][redis]") {
    std::string rdb = make_rdb();
    std::string wire = "\n\n\n$EOF:" + kMark + "\r\n" + rdb + kMark;
    for (std::size_t piece : {1, 2, 13, 39, 40, 41, 64, 4096}) {
        INFO("piece " << piece);
        ChunkReader raw(split_every(wire, piece));
        StringWriter out;
        RdbCheck check;
        SyncStreamResult r = stream_sync_payload(raw, out, check);
        CHECK(out.out == rdb);
        CHECK(r.keepalives == 3);
        CHECK(r.header.eof_mark);
        CHECK(check.summary().ok());
    }
    SECTION("a mark inside the data is data: only a mark after a complete RDB ends the stream") {
        std::string body = "REDIS0010\xfa\x01k\x28"s + kMark + "\xff"s;
        std::string with_mark = body + le64(io::crc64_redis(0, io::as_bytes(body)));
        ChunkReader raw(split_every("$EOF:" + kMark + "\r\n" + with_mark + kMark + "\n\n", 7));
        StringWriter out;
        RdbCheck check;
        stream_sync_payload(raw, out, check);
        CHECK(out.out == with_mark);
    }
    SECTION("bytes after the mark (old servers' keep-alives) are ignored") {
        ChunkReader raw({"$EOF:" + kMark + "\r\n" + rdb + kMark + "\n\n\n"});
        StringWriter out;
        RdbCheck check;
        stream_sync_payload(raw, out, check);
        CHECK(out.out == rdb);
    }
    SECTION("a connection closed before the mark is an error") {
        ChunkReader raw({"$EOF:" + kMark + "\r\n" + rdb});
        StringWriter out;
        RdbCheck check;
        CHECK_THROWS_MATCHES(stream_sync_payload(raw, out, check), Error,
                             test::IsError(Kind::SourceUnavailable, "without a complete RDB"));
    }
}

TEST_CASE("the sized SYNC form reads exactly its length", "[unit][redis]") {
    std::string rdb = make_rdb();
    for (std::size_t piece : {1, 5, 100}) {
        ChunkReader raw(split_every("\n$" + std::to_string(rdb.size()) + "\r\n" + rdb, piece));
        StringWriter out;
        RdbCheck check;
        SyncStreamResult r = stream_sync_payload(raw, out, check);
        CHECK(out.out == rdb);
        CHECK(r.keepalives == 1);
        CHECK(r.payload_bytes == rdb.size());
    }
    ChunkReader cut({"$" + std::to_string(rdb.size() + 10) + "\r\n" + rdb});
    StringWriter out;
    RdbCheck check;
    CHECK_THROWS_MATCHES(stream_sync_payload(cut, out, check), Error,
                         test::IsError(Kind::SourceUnavailable, "closed after"));
}

TEST_CASE("INFO and keyspace parsing", "[unit][redis]") {
    auto info =
        parse_info("# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=5\r\ndb12:keys=7,expires=0,avg_ttl=0\r\n");
    Keyspace ks = parse_keyspace(info);
    REQUIRE(ks.size() == 2);
    CHECK(ks[0].keys == 3);
    CHECK(ks[0].expires == 1);
    CHECK(ks[12].keys == 7);
}
