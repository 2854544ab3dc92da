#pragma once
// zstd: a compressing Filter (libzstd's streaming API, for its bounded multithreaded jobs) and a
// decompressing Reader (libarchive's raw format).
#include <exception>
#include <memory>
#include <string>

#include "nightjar/io/filter.hpp"

struct archive;
struct ZSTD_CCtx_s;

namespace nightjar::io {

struct ZstdOptions {
    int level = 3;    // 1-19; 3 is zstd's own default: fast with a good ratio
    int threads = 2;  // zstd worker threads; 0 = compress on the calling thread
    // Bytes of input each worker compresses at a time when threads > 0. zstd's own choice at level 3 is 8
    // MiB, and it keeps several jobs' input and output in flight: over 100 MiB with 2 workers, 260 MiB on
    // incompressible data. 2 MiB keeps zstd near 19 MiB (33 MiB incompressible) and compresses a PostgreSQL
    // dump as small as zstd's default does.
    std::size_t job_size = std::size_t{2} << 20;
};

class ZstdCompressFilter final : public Filter {
public:
    explicit ZstdCompressFilter(ZstdOptions options = {});
    ~ZstdCompressFilter() override;
    Bytes process(Bytes in, std::vector<std::byte>& scratch) override;
    Bytes finish(std::vector<std::byte>& scratch) override;

private:
    Bytes drain(Bytes in, int mode, std::vector<std::byte>& scratch);
    ZSTD_CCtx_s* cctx_ = nullptr;
    bool closed_ = false;
};

// Decompresses a zstd stream pulled from `src`. A corrupt stream throws Kind::Verification naming `what`.
class ZstdReader final : public Reader {
public:
    ZstdReader(Reader& src, std::string what);
    ~ZstdReader() override;
    std::size_t read(MutableBytes buf) override;

private:
    static long on_read(archive*, void* self, const void** buffer);
    void open();
    Reader& src_;
    std::string what_;
    archive* a_ = nullptr;
    std::vector<std::byte> in_;
    std::exception_ptr pending_;  // an exception from `src_`, carried across libarchive's C frames
    bool opened_ = false;
    bool eof_ = false;
};

}  // namespace nightjar::io
