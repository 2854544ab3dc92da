#include "nightjar/io/crc64.hpp"

#include <array>
#include <bit>
#include <cstring>

namespace nightjar::io {

namespace {

static_assert(std::endian::native == std::endian::little, "crc64_redis reads 8-byte words little-endian");

constexpr std::uint64_t kReflectedJones = 0x95ac9329ac4bc9b5ULL;

// Slicing-by-8: table[k][b] is the CRC of byte b followed by k zero bytes.
using Tables = std::array<std::array<std::uint64_t, 256>, 8>;

constexpr Tables make_tables() {
    Tables t{};
    for (std::uint64_t b = 0; b < 256; ++b) {
        std::uint64_t crc = b;
        for (int i = 0; i < 8; ++i) crc = (crc & 1) ? (crc >> 1) ^ kReflectedJones : crc >> 1;
        t[0][b] = crc;
    }
    for (std::size_t k = 1; k < 8; ++k)
        for (std::size_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
    return t;
}

constexpr Tables kTables = make_tables();

}  // namespace

std::uint64_t crc64_redis(std::uint64_t crc, Bytes data) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    std::size_t n = data.size();
    while (n >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8);  // little-endian hosts only (Debian amd64/arm64)
        crc ^= word;
        crc = kTables[7][crc & 0xff] ^ kTables[6][(crc >> 8) & 0xff] ^ kTables[5][(crc >> 16) & 0xff] ^
              kTables[4][(crc >> 24) & 0xff] ^ kTables[3][(crc >> 32) & 0xff] ^
              kTables[2][(crc >> 40) & 0xff] ^ kTables[1][(crc >> 48) & 0xff] ^ kTables[0][crc >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) crc = kTables[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

}  // namespace nightjar::io
