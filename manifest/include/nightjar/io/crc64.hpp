#pragma once
// Redis's CRC64 (CRC-64/REDIS: Jones polynomial, reflected, init 0, xorout 0), the checksum of RDB files and
// DUMP payloads. crc64_redis(0, "123456789") == 0xe9c6d914c4b8d9ca.
#include <cstdint>

#include "nightjar/io/stream.hpp"

namespace nightjar::io {

// Continues `crc` over `data` (start from 0).
std::uint64_t crc64_redis(std::uint64_t crc, Bytes data) noexcept;

}  // namespace nightjar::io
