#include "nightjar/components/redis/sync_stream.hpp"

#include <algorithm>
#include <cstring>

#include "nightjar/core/error.hpp"

namespace nightjar::redis {

namespace {

constexpr std::size_t kMaxHeader = 512;

std::string printable(const std::string& s) {
    std::string out;
    for (char c : s.substr(0, 120)) out.push_back(static_cast<unsigned char>(c) < 0x20 ? '?' : c);
    return out;
}

}  // namespace

SyncHeader parse_sync_header(const std::string& line) {
    if (!line.empty() && line[0] == '-')
        throw SyncRefused("the server refused SYNC: " + printable(line.substr(1)));
    SyncHeader h;
    if (line.rfind("$EOF:", 0) == 0) {
        if (line.size() < 5 + kEofMarkSize)
            throw Error(Kind::SourceUnavailable,
                        "SYNC: end mark shorter than 40 bytes in header: " + printable(line));
        h.eof_mark = true;
        h.mark = line.substr(5, kEofMarkSize);
        return h;
    }
    if (line.size() < 2 || line[0] != '$' ||
        !std::all_of(line.begin() + 1, line.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        line.size() > 21)
        throw Error(Kind::SourceUnavailable,
                    "SYNC: unexpected reply instead of a bulk header: " + printable(line) +
                        ": is this a Redis server, and is the sync command name right?");
    h.length = std::stoull(line.substr(1));
    return h;
}

void EofMarkScanner::feed(io::Bytes in, const std::function<void(io::Bytes)>& emit,
                          const std::function<bool()>& is_end) {
    if (done_) return;
    buf_.insert(buf_.end(), in.begin(), in.end());
    const auto* mark = reinterpret_cast<const std::byte*>(mark_.data());
    std::size_t pos = 0;
    for (;;) {
        auto begin = buf_.begin() + static_cast<std::ptrdiff_t>(pos);
        auto hit = std::search(begin, buf_.end(), mark, mark + mark_.size());
        if (hit == buf_.end()) break;
        auto at = static_cast<std::size_t>(hit - buf_.begin());
        if (at > pos) emit(io::Bytes(buf_.data() + pos, at - pos));
        if (is_end()) {
            done_ = true;
            buf_.clear();
            return;
        }
        emit(io::Bytes(buf_.data() + at, 1));  // not the end: the occurrence was data; look again one byte on
        pos = at + 1;
    }
    std::size_t keep = std::min(mark_.size() - 1, buf_.size() - pos);
    std::size_t upto = buf_.size() - keep;
    if (upto > pos) emit(io::Bytes(buf_.data() + pos, upto - pos));
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(upto));
}

SyncStreamResult stream_sync_payload(io::Reader& raw, io::Writer& out, RdbCheck& check,
                                     const std::function<void(std::uint64_t)>& tick) {
    SyncStreamResult result;
    std::vector<std::byte> buf(io::kChunkSize);
    std::size_t have = 0, start = 0;
    // The header: skip keep-alive newlines, then read one line.
    std::string line;
    bool header_done = false;
    while (!header_done) {
        if (tick) tick(0);
        std::size_t n = raw.read(io::MutableBytes(buf.data(), buf.size()));
        if (n == 0)
            throw Error(Kind::SourceUnavailable,
                        "SYNC: the server closed the connection before sending the RDB header");
        have = n;
        start = 0;
        while (start < have) {
            char c = static_cast<char>(buf[start++]);
            if (c == '\n') {
                if (line.empty()) {
                    ++result.keepalives;
                    continue;
                }
                header_done = true;
                break;
            }
            line.push_back(c);
            if (line.size() > kMaxHeader)
                throw Error(Kind::SourceUnavailable, "SYNC: no bulk header in the first " +
                                                         std::to_string(kMaxHeader) + " bytes of the reply");
        }
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    result.header = parse_sync_header(line);

    auto emit = [&](io::Bytes b) {
        check.update(b);
        out.write(b);
        result.payload_bytes += b.size();
    };
    io::Bytes first(buf.data() + start, have - start);
    if (!result.header.eof_mark) {
        std::uint64_t left = result.header.length;
        auto take = [&](io::Bytes b) {
            auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, b.size()));
            if (n) emit(b.first(n));
            left -= n;
        };
        take(first);
        while (left > 0) {
            if (tick) tick(result.payload_bytes);
            std::size_t n = raw.read(io::MutableBytes(buf.data(), buf.size()));
            if (n == 0)
                throw Error(Kind::SourceUnavailable, "SYNC: the connection closed after " +
                                                         std::to_string(result.payload_bytes) + " of " +
                                                         std::to_string(result.header.length) + " RDB bytes");
            take(io::Bytes(buf.data(), n));
        }
        return result;
    }
    EofMarkScanner scanner(result.header.mark);
    std::string rejected;  // why the last occurrence of the mark was not the end
    auto is_end = [&] {
        RdbSummary s = check.summary();
        if (!s.ok()) rejected = s.problem;
        return s.ok();
    };
    scanner.feed(first, emit, is_end);
    while (!scanner.done()) {
        if (tick) tick(result.payload_bytes);
        std::size_t n = raw.read(io::MutableBytes(buf.data(), buf.size()));
        if (n == 0) {
            std::string msg = "SYNC: the connection closed after " + std::to_string(result.payload_bytes) +
                              " bytes without a complete RDB before the end mark";
            if (!rejected.empty()) msg += " (at the last mark: " + rejected + ")";
            throw Error(Kind::SourceUnavailable, msg);
        }
        scanner.feed(io::Bytes(buf.data(), n), emit, is_end);
    }
    return result;
}

}  // namespace nightjar::redis
