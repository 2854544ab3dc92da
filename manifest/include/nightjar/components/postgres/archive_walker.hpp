#pragma once
// Walks a pg_dump custom-format archive as it streams past: the header and table of contents, then the
// framing of every data block (pg_backup_custom.c: a block type byte and the entry's dump id, then chunks of
// an int length and that many bytes, ended by a 0 length; a large-object block holds (oid, chunks) pairs
// ended by oid 0). It reads what pg_restore reads to find each block, without a server and without looking
// inside the rows, and notes where each block starts.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/components/postgres/archive.hpp"
#include "nightjar/core/error.hpp"

namespace nightjar::postgres {

class PgArchiveWalker {
public:
    // `what` names the archive in messages; the table of contents must end within `head_limit` bytes.
    PgArchiveWalker(std::string what, std::size_t head_limit);
    // The next piece of the stream. A malformed archive throws Kind::Verification naming `what`.
    void feed(io::Bytes piece);
    // At end of stream: "" when the archive is complete (the TOC read, every block framed to its end, one
    // block for every entry that has data and none for any other), else what is wrong.
    std::string finish() const;
    // Set once the table of contents has been read.
    const std::optional<PgArchive>& archive() const { return archive_; }
    // dump id -> offset of its data block from the start of the archive.
    const std::map<int, std::uint64_t>& block_offsets() const { return offsets_; }
    // The dump ids of the data blocks seen so far, in stream order.
    const std::vector<int>& block_order() const { return order_; }

private:
    enum class Field { BlockType, Id, Length, Oid, Skip };
    void walk(io::Bytes data);
    void on_integer(std::int64_t value);
    [[noreturn]] void fail(const std::string& why) const;

    std::string what_;
    std::size_t head_limit_;
    std::string head_;
    std::optional<PgArchive> archive_;
    std::map<int, bool> data_entries_;  // dump id -> has its block been seen
    std::map<int, std::uint64_t> offsets_;
    std::vector<int> order_;
    Field field_ = Field::BlockType;
    std::uint64_t pos_ = 0;   // offset of the next byte walked
    std::uint64_t skip_ = 0;  // bytes of the current chunk still to pass
    std::uint64_t block_start_ = 0;
    int block_type_ = 0;
    int block_id_ = 0;
    bool in_blob_ = false;
    unsigned char int_bytes_[9] = {};
    int int_have_ = 0;
};

}  // namespace nightjar::postgres
