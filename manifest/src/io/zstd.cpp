#include "nightjar/io/zstd.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <string>

#include "nightjar/error.hpp"

namespace nightjar::io {
namespace {

std::string archive_message(archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown libarchive error";
}

}  // namespace

ZstdCompressFilter::ZstdCompressFilter(ZstdOptions options) : a_(archive_write_new()) {
    if (!a_) throw Error(Kind::Internal, "zstd: libarchive could not allocate a writer");
    auto check = [this](int rc, const char* what) {
        if (rc != ARCHIVE_OK)
            throw Error(Kind::Internal, std::string("zstd: ") + what + ": " + archive_message(a_));
    };
    check(archive_write_add_filter_zstd(a_), "add filter");
    check(archive_write_set_format_raw(a_), "set raw format");
    check(archive_write_set_filter_option(a_, "zstd", "compression-level",
                                          std::to_string(options.level).c_str()),
          "compression level");
    // Older libarchive builds lack the threads option; compression still works single-threaded.
    archive_write_set_filter_option(a_, "zstd", "threads", std::to_string(options.threads).c_str());
    // No blocking: every compressed byte goes straight to the callback, the stream ends exactly.
    check(archive_write_set_bytes_per_block(a_, 0), "bytes per block");
    check(archive_write_open(a_, this, nullptr, &ZstdCompressFilter::on_write, nullptr), "open");
    archive_entry* entry = archive_entry_new();
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_pathname(entry, "data");
    int rc = archive_write_header(a_, entry);
    archive_entry_free(entry);
    check(rc, "header");
}

ZstdCompressFilter::~ZstdCompressFilter() {
    if (a_) archive_write_free(a_);
}

long ZstdCompressFilter::on_write(archive*, void* self, const void* data, std::size_t n) {
    auto* me = static_cast<ZstdCompressFilter*>(self);
    auto* p = static_cast<const std::byte*>(data);
    if (me->out_) me->out_->insert(me->out_->end(), p, p + n);
    return static_cast<long>(n);
}

Bytes ZstdCompressFilter::process(Bytes in, std::vector<std::byte>& scratch) {
    scratch.clear();
    out_ = &scratch;
    if (archive_write_data(a_, in.data(), in.size()) < 0)
        throw Error(Kind::Internal, "zstd: compression failed: " + archive_message(a_));
    out_ = nullptr;
    return scratch;
}

Bytes ZstdCompressFilter::finish(std::vector<std::byte>& scratch) {
    scratch.clear();
    if (closed_) return {};
    out_ = &scratch;
    int rc = archive_write_close(a_);
    out_ = nullptr;
    closed_ = true;
    if (rc != ARCHIVE_OK) throw Error(Kind::Internal, "zstd: compression failed: " + archive_message(a_));
    return scratch;
}

ZstdReader::ZstdReader(Reader& src, std::string what) : src_(src), what_(std::move(what)), in_(kChunkSize) {}

ZstdReader::~ZstdReader() {
    if (a_) archive_read_free(a_);
}

long ZstdReader::on_read(archive*, void* self, const void** buffer) {
    auto* me = static_cast<ZstdReader*>(self);
    try {
        std::size_t n = me->src_.read(me->in_);
        *buffer = me->in_.data();
        return static_cast<long>(n);
    } catch (...) {
        me->pending_ = std::current_exception();
        return -1;
    }
}

void ZstdReader::open() {
    opened_ = true;
    a_ = archive_read_new();
    if (!a_) throw Error(Kind::Internal, "zstd: libarchive could not allocate a reader");
    archive_read_support_filter_zstd(a_);
    archive_read_support_format_raw(a_);
    int rc = archive_read_open(a_, this, nullptr, &ZstdReader::on_read, nullptr);
    if (pending_) std::rethrow_exception(pending_);
    archive_entry* entry = nullptr;
    if (rc == ARCHIVE_OK) {
        rc = archive_read_next_header(a_, &entry);
        if (pending_) std::rethrow_exception(pending_);
    }
    const bool is_zstd = archive_filter_count(a_) > 1 && archive_filter_code(a_, 0) == ARCHIVE_FILTER_ZSTD;
    if (rc == ARCHIVE_EOF || (rc != ARCHIVE_OK && is_zstd && archive_filter_bytes(a_, 0) == 0)) {
        // A valid zstd frame of empty content: the raw format finds nothing to bid on.
        eof_ = true;
        return;
    }
    if (rc != ARCHIVE_OK)
        throw Error(Kind::Verification, what_ + ": not a readable zstd stream: " + archive_message(a_));
    if (!is_zstd) throw Error(Kind::Verification, what_ + ": not zstd-compressed");
}

std::size_t ZstdReader::read(MutableBytes buf) {
    if (!opened_) open();
    if (eof_ || buf.empty()) return 0;
    la_ssize_t n = archive_read_data(a_, buf.data(), buf.size());
    if (pending_) std::rethrow_exception(pending_);
    if (n < 0) throw Error(Kind::Verification, what_ + ": corrupt zstd stream: " + archive_message(a_));
    if (n == 0) eof_ = true;
    return static_cast<std::size_t>(n);
}

}  // namespace nightjar::io
