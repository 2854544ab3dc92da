#include "nightjar/io/zstd.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <zstd.h>

#include <string>

#include "nightjar/core/error.hpp"

namespace nightjar::io {
namespace {

std::string archive_message(archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown libarchive error";
}

}  // namespace

ZstdCompressFilter::ZstdCompressFilter(ZstdOptions options) : cctx_(ZSTD_createCCtx()) {
    if (!cctx_) throw Error(Kind::Internal, "zstd: cannot allocate a compression context");
    auto set = [this](ZSTD_cParameter p, int value, const char* what) {
        std::size_t rc = ZSTD_CCtx_setParameter(cctx_, p, value);
        if (ZSTD_isError(rc))
            throw Error(Kind::Internal, std::string("zstd: cannot set ") + what + " to " +
                                            std::to_string(value) + ": " + ZSTD_getErrorName(rc));
    };
    set(ZSTD_c_compressionLevel, options.level, "compression level");
    // A libzstd built without threads refuses nbWorkers: compression then stays on the calling thread.
    if (options.threads > 0 &&
        !ZSTD_isError(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_nbWorkers, options.threads)))
        set(ZSTD_c_jobSize, static_cast<int>(options.job_size), "job size");
}

ZstdCompressFilter::~ZstdCompressFilter() {
    ZSTD_freeCCtx(cctx_);
}

Bytes ZstdCompressFilter::drain(Bytes in, int mode, std::vector<std::byte>& scratch) {
    const auto directive = static_cast<ZSTD_EndDirective>(mode);
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    scratch.clear();
    std::size_t used = 0;
    for (;;) {
        if (scratch.size() - used < ZSTD_CStreamOutSize()) scratch.resize(used + ZSTD_CStreamOutSize());
        ZSTD_outBuffer output{scratch.data() + used, scratch.size() - used, 0};
        std::size_t left = ZSTD_compressStream2(cctx_, &output, &input, directive);
        if (ZSTD_isError(left))
            throw Error(Kind::Internal, std::string("zstd: compression failed: ") + ZSTD_getErrorName(left));
        used += output.pos;
        // continue: done once the input is taken; end: done once the frame is flushed whole.
        if (directive == ZSTD_e_end ? left == 0 : input.pos == input.size) break;
    }
    scratch.resize(used);
    return scratch;
}

Bytes ZstdCompressFilter::process(Bytes in, std::vector<std::byte>& scratch) {
    return drain(in, ZSTD_e_continue, scratch);
}

Bytes ZstdCompressFilter::finish(std::vector<std::byte>& scratch) {
    scratch.clear();
    if (closed_) return {};
    closed_ = true;
    return drain({}, ZSTD_e_end, scratch);
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
