#pragma once
// The two ends of every byte stream: a Reader is pulled from, a Writer is pushed into.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace nightjar::io {

using Bytes = std::span<const std::byte>;
using MutableBytes = std::span<std::byte>;

inline Bytes as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string_view as_chars(Bytes b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

class Writer {
public:
    virtual ~Writer() = default;
    virtual void write(Bytes data) = 0;
    // Flushes and commits; a Writer destroyed without finish() discards what it can.
    virtual void finish() = 0;
};

class Reader {
public:
    virtual ~Reader() = default;
    // Fills up to buf.size() bytes; returns 0 only at end of stream.
    virtual std::size_t read(MutableBytes buf) = 0;
};

inline constexpr std::size_t kChunkSize = 1 << 20;

// Copies src to dst in kChunkSize pieces until EOF (dst is not finished). Returns the byte count.
std::uint64_t pump(Reader& src, Writer& dst);
// Reads src to EOF and throws the bytes away (what a verify chain needs to drive its filters).
std::uint64_t drain(Reader& src);

// A Reader at end of stream from the start.
class EmptyReader final : public Reader {
public:
    std::size_t read(MutableBytes) override { return 0; }
};

// A Writer that discards everything (for running a filter chain for its observers only).
class NullWriter final : public Writer {
public:
    void write(Bytes) override {}
    void finish() override {}
};

}  // namespace nightjar::io
