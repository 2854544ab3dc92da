#include "nightjar/components/postgres/archive_walker.hpp"

#include <algorithm>

#include "nightjar/core/error.hpp"

namespace nightjar::postgres {

namespace {

constexpr int kBlockData = 1;   // BLK_DATA
constexpr int kBlockBlobs = 3;  // BLK_BLOBS

std::string entry_name(const PgTocEntry& e) {
    return e.desc + " " + (e.schema.empty() ? "" : e.schema + ".") + e.tag;
}

}  // namespace

PgArchiveWalker::PgArchiveWalker(std::string what, std::size_t head_limit)
    : what_(std::move(what)), head_limit_(head_limit) {}

void PgArchiveWalker::fail(const std::string& why) const {
    throw Error(Kind::Verification, what_ + ": not a readable pg_dump archive: " + why);
}

void PgArchiveWalker::feed(io::Bytes piece) {
    if (archive_) return walk(piece);
    head_.append(io::as_chars(piece));
    archive_ = parse_pg_archive(io::as_bytes(head_), what_);
    if (!archive_) {
        if (head_.size() > head_limit_)
            fail("the table of contents is larger than " + std::to_string(head_limit_ >> 20) + " MiB");
        return;
    }
    for (const auto& e : archive_->toc)
        if (e.has_data) data_entries_.emplace(e.dump_id, false);
    pos_ = archive_->toc_end;
    std::string rest = head_.substr(archive_->toc_end);
    head_ = std::string();
    walk(io::as_bytes(rest));
}

void PgArchiveWalker::walk(io::Bytes data) {
    const int int_width = 1 + archive_->int_size;
    std::size_t i = 0;
    while (i < data.size()) {
        if (field_ == Field::Skip) {
            auto n = static_cast<std::size_t>(std::min<std::uint64_t>(skip_, data.size() - i));
            skip_ -= n;
            i += n;
            pos_ += n;
            if (skip_ == 0) field_ = Field::Length;
            continue;
        }
        if (field_ == Field::BlockType) {
            block_start_ = pos_;
            block_type_ = std::to_integer<int>(data[i]);
            ++i;
            ++pos_;
            if (block_type_ != kBlockData && block_type_ != kBlockBlobs)
                fail("unknown data block type " + std::to_string(block_type_) + " at offset " +
                     std::to_string(block_start_));
            field_ = Field::Id;
            continue;
        }
        int_bytes_[int_have_++] = std::to_integer<unsigned char>(data[i]);
        ++i;
        ++pos_;
        if (int_have_ < int_width) continue;
        // ReadInt: a sign byte, then the magnitude little-endian.
        std::uint64_t v = 0;
        for (int b = 1; b < int_width; ++b) v |= static_cast<std::uint64_t>(int_bytes_[b]) << (8 * (b - 1));
        int_have_ = 0;
        auto value = static_cast<std::int64_t>(v);
        on_integer(int_bytes_[0] ? -value : value);
    }
}

void PgArchiveWalker::on_integer(std::int64_t value) {
    switch (field_) {
        case Field::Id: {
            auto it = data_entries_.find(static_cast<int>(value));
            if (it == data_entries_.end())
                fail("a data block at offset " + std::to_string(block_start_) + " belongs to entry " +
                     std::to_string(value) + ", which has no data in the table of contents");
            if (it->second) fail("entry " + std::to_string(value) + " has two data blocks");
            it->second = true;
            block_id_ = it->first;
            offsets_[block_id_] = block_start_;
            order_.push_back(block_id_);
            in_blob_ = false;
            field_ = block_type_ == kBlockBlobs ? Field::Oid : Field::Length;
            return;
        }
        case Field::Length:
            if (value < 0)
                fail("negative chunk length in the data of entry " + std::to_string(block_id_) +
                     " at offset " + std::to_string(pos_));
            if (value > 0) {
                skip_ = static_cast<std::uint64_t>(value);
                field_ = Field::Skip;
            } else {
                field_ = in_blob_ ? Field::Oid : Field::BlockType;
            }
            return;
        case Field::Oid:
            in_blob_ = value != 0;
            field_ = in_blob_ ? Field::Length : Field::BlockType;
            return;
        case Field::BlockType:
        case Field::Skip:
            break;
    }
}

std::string PgArchiveWalker::finish() const {
    if (!archive_) return "the archive ends before its table of contents does";
    if (field_ != Field::BlockType || int_have_ != 0)
        return "the archive is cut short inside the data block of entry " + std::to_string(block_id_);
    for (const auto& e : archive_->toc)
        if (e.has_data && !offsets_.count(e.dump_id))
            return "the archive has no data block for " + entry_name(e) + " (entry " +
                   std::to_string(e.dump_id) + ")";
    return "";
}

}  // namespace nightjar::postgres
