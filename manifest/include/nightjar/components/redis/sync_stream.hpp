#pragma once
// The raw part of a SYNC transfer (after the REPLCONF replies): keep-alive newlines, then a bulk header, then
// the RDB. Two header forms: "$<length>\r\n" (disk-backed) and "$EOF:<40 chars>\r\n" (diskless), where the
// RDB is followed by the same 40-character mark. The mark is searched for across reads with a sliding
// window and is never part of the payload.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nightjar/components/redis/rdb_check.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/io/stream.hpp"

namespace nightjar::redis {

inline constexpr std::size_t kEofMarkSize = 40;

struct SyncHeader {
    bool eof_mark = false;     // diskless form: the payload ends at `mark`
    std::string mark;          // the 40-character end mark
    std::uint64_t length = 0;  // sized form: payload bytes
};

// The server answered SYNC (or REPLCONF) with an error: no permission, renamed command, managed service.
class SyncRefused : public Error {
public:
    explicit SyncRefused(const std::string& message) : Error(Kind::SourceUnavailable, message) {}
};

// Parses the header line without its "\r\n". A "-ERR ..." line is the server refusing: SyncRefused.
SyncHeader parse_sync_header(const std::string& line);

// Finds the end mark in a byte stream fed in arbitrary pieces. Bytes that cannot be the start of a mark are
// passed to `emit` as soon as possible; at most 39 bytes are held back.
class EofMarkScanner {
public:
    explicit EofMarkScanner(std::string mark) : mark_(std::move(mark)) {}
    // `is_end` is asked at each occurrence of the mark, after every byte before it was emitted: true ends the
    // stream there (the rest of `in` is ignored); false makes the occurrence ordinary data.
    void feed(io::Bytes in, const std::function<void(io::Bytes)>& emit, const std::function<bool()>& is_end);
    bool done() const { return done_; }

private:
    std::string mark_;
    std::vector<std::byte> buf_;
    bool done_ = false;
};

struct SyncStreamResult {
    SyncHeader header;
    std::uint64_t keepalives = 0;  // bare "\n" bytes before the header
    std::uint64_t payload_bytes = 0;
};

// Reads a SYNC transfer from `raw` and writes the RDB (and nothing else) to `out`, feeding `check` too. Ends
// at the length or at a mark where `check` says the RDB is complete. A transfer cut short is
// Kind::SourceUnavailable. `tick` runs between reads (interruption checks, progress).
SyncStreamResult stream_sync_payload(io::Reader& raw, io::Writer& out, RdbCheck& check,
                                     const std::function<void(std::uint64_t)>& tick = {});

}  // namespace nightjar::redis
