#include "nightjar/components/redis/rdb_check.hpp"

#include <cstdio>
#include <cstring>

#include "nightjar/io/crc64.hpp"

namespace nightjar::redis {

namespace {

constexpr std::size_t kTrailer = 8;

std::string hex64(std::uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

}  // namespace

std::string RdbSummary::crc_text() const {
    return checksum_enabled ? hex64(stored_crc) : "disabled";
}

void RdbCheck::absorb(const unsigned char* p, std::size_t n) {
    if (n == 0) return;
    crc_ = io::crc64_redis(crc_, io::Bytes(reinterpret_cast<const std::byte*>(p), n));
    last_absorbed_ = p[n - 1];
}

void RdbCheck::update(io::Bytes in) {
    const auto* p = reinterpret_cast<const unsigned char*>(in.data());
    std::size_t n = in.size();
    for (std::size_t i = 0; size_ + i < sizeof header_ && i < n; ++i) header_[size_ + i] = p[i];
    size_ += n;
    // Keep the last kTrailer bytes back: they may be the trailer, which the CRC does not cover.
    if (n >= kTrailer) {
        absorb(tail_, tail_len_);
        absorb(p, n - kTrailer);
        std::memcpy(tail_, p + n - kTrailer, kTrailer);
        tail_len_ = kTrailer;
        return;
    }
    std::memcpy(tail_ + tail_len_, p, n);
    tail_len_ += n;
    if (tail_len_ > kTrailer) {
        std::size_t extra = tail_len_ - kTrailer;
        absorb(tail_, extra);
        std::memmove(tail_, tail_ + extra, kTrailer);
        tail_len_ = kTrailer;
    }
}

RdbSummary RdbCheck::summary() const {
    RdbSummary s;
    s.size = size_;
    if (size_ < 9) {
        s.problem = "too short to be an RDB file (" + std::to_string(size_) + " bytes)";
        return s;
    }
    if (std::memcmp(header_, "REDIS", 5) != 0) {
        s.problem = "not an RDB file: it does not start with the REDIS magic";
        return s;
    }
    for (int i = 5; i < 9; ++i) {
        if (header_[i] < '0' || header_[i] > '9') {
            s.problem = "not an RDB file: the version after the REDIS magic is not 4 digits";
            return s;
        }
        s.version = s.version * 10 + (header_[i] - '0');
    }
    if (s.version < 1 || s.version > kMaxKnownRdbVersion) {
        s.problem = "unsupported RDB version " + std::to_string(s.version) + " (this build knows 1-" +
                    std::to_string(kMaxKnownRdbVersion) + ")";
        return s;
    }
    if (s.version < 5) {  // no checksum trailer before RDB 5: the file ends with the EOF opcode
        unsigned char last = tail_len_ ? tail_[tail_len_ - 1] : last_absorbed_;
        if (size_ < 10 || last != 0xFF)
            s.problem = "truncated: the RDB does not end with the EOF opcode (0xFF)";
        return s;
    }
    if (size_ < 9 + 1 + kTrailer) {
        s.problem =
            "truncated: " + std::to_string(size_) + " bytes, too short for the EOF opcode and checksum";
        return s;
    }
    // size_ >= 18, so the tail holds exactly the 8 trailer bytes and the EOF opcode was absorbed last.
    if (last_absorbed_ != 0xFF) {
        s.problem = "truncated: no EOF opcode (0xFF) before the 8-byte checksum";
        return s;
    }
    for (std::size_t i = 0; i < kTrailer; ++i)
        s.stored_crc |= static_cast<std::uint64_t>(tail_[i]) << (8 * i);
    s.computed_crc = crc_;
    s.checksum_enabled = s.stored_crc != 0;
    if (s.checksum_enabled && s.stored_crc != s.computed_crc)
        s.problem = "CRC64 mismatch: the trailer says " + hex64(s.stored_crc) + ", the content gives " +
                    hex64(s.computed_crc);
    return s;
}

int rdb_version_for_redis(const std::string& v) {
    int major = 0, minor = 0;
    if (std::sscanf(v.c_str(), "%d.%d", &major, &minor) != 2) return 0;
    if (major > 7 || (major == 7 && minor >= 4)) return 12;
    if (major == 7 && minor >= 2) return 11;
    if (major == 7) return 10;
    if (major >= 5) return 9;
    if (major == 4) return 8;
    if (major == 3 && minor >= 2) return 7;
    return 6;
}

}  // namespace nightjar::redis
