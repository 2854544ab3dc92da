#pragma once
// zstd through libarchive's raw format: a compressing Filter and a decompressing Reader.
#include <exception>
#include <memory>
#include <string>

#include "nightjar/io/filter.hpp"

struct archive;

namespace nightjar::io {

struct ZstdOptions {
    int level = 3;    // 1-19; 3 is zstd's own default: fast with a good ratio
    int threads = 0;  // extra zstd worker threads (libarchive's zstd "threads"); 0 = compress on the calling thread
};

class ZstdCompressFilter final : public Filter {
public:
    explicit ZstdCompressFilter(ZstdOptions options = {});
    ~ZstdCompressFilter() override;
    Bytes process(Bytes in, std::vector<std::byte>& scratch) override;
    Bytes finish(std::vector<std::byte>& scratch) override;

private:
    static long on_write(archive*, void* self, const void* data, std::size_t n);
    archive* a_ = nullptr;
    std::vector<std::byte>* out_ = nullptr;
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
