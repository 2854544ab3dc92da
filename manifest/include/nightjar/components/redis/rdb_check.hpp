#pragma once
// A streaming structure check of an RDB file: the "REDIS%04d" magic and a supported version at the start, the
// 0xFF EOF opcode right before the trailer, and the 8-byte little-endian CRC64 trailer (RDB version 5 and
// later; a stored 0 means the server ran with `rdbchecksum no`). Nothing is buffered beyond the last 8 bytes.
#include <cstdint>
#include <string>
#include <vector>

#include "nightjar/io/filter.hpp"

namespace nightjar::redis {

inline constexpr int kMaxKnownRdbVersion = 12;  // Redis 7.4

struct RdbSummary {
    int version = 0;                 // from the magic, 0 when unreadable
    std::uint64_t size = 0;          // bytes seen
    bool checksum_enabled = false;   // a non-zero trailer (version >= 5)
    std::uint64_t stored_crc = 0;    // the trailer
    std::uint64_t computed_crc = 0;  // CRC64 of every byte before the trailer
    std::string problem;             // empty when the bytes form a complete, intact RDB
    bool ok() const { return problem.empty(); }
    // "e9c6d914c4b8d9ca", or "disabled" when the server wrote no checksum.
    std::string crc_text() const;
};

// An observer Filter: feed it the whole RDB in any chunking, then ask summary().
class RdbCheck final : public io::Filter {
public:
    io::Bytes process(io::Bytes in, std::vector<std::byte>&) override {
        update(in);
        return in;
    }
    void update(io::Bytes in);
    // The verdict on the bytes seen so far (cheap: callable at any point, e.g. at a candidate end of stream).
    RdbSummary summary() const;

private:
    void absorb(const unsigned char* p, std::size_t n);  // bytes known not to be the trailer
    unsigned char header_[9] = {};
    std::uint64_t size_ = 0;
    std::uint64_t crc_ = 0;
    unsigned char last_absorbed_ = 0;
    unsigned char tail_[16] = {};  // the most recent bytes, at most 8 kept between calls
    std::size_t tail_len_ = 0;
};

// The RDB version a Redis server writes, from its version string ("7.0.15" -> 10); 0 when unknown.
int rdb_version_for_redis(const std::string& redis_version);

}  // namespace nightjar::redis
