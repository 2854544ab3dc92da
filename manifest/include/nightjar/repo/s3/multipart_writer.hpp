#pragma once
// A streaming multipart upload as an io::Writer: bytes are cut into parts that upload while the stream goes
// on, `parallel_parts` at a time, with memory bounded by `memory_budget` whatever the stream's length. A
// stream shorter than one part is one PutObject. A failure (or destruction before finish()) aborts the
// upload, so no parts are left billed; finish() completes it (create-only when asked).
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nightjar/repo/s3/client.hpp"

namespace nightjar::s3 {

inline constexpr std::size_t kMinPartSize = 5u << 20;              // S3's floor for every part but the last
inline constexpr std::size_t kMaxPartSize = std::size_t{5} << 30;  // S3's ceiling for one part
inline constexpr int kMaxParts = 10000;                            // S3's ceiling for one upload

struct MultipartOptions {
    std::size_t part_size = 16u << 20;  // first part size (>= 5 MiB); grows so 10,000 parts always suffice
    int parallel_parts = 4;             // parts uploading at once
    std::uint64_t expected_size = 0;    // a size hint (0 = unknown): parts start large enough for it
    std::size_t memory_budget = 0;  // bytes of part buffers at most; 0 = (parallel_parts + 1) x part_size.
                                    // When parts grow, fewer upload at once to stay inside it.
    std::uint64_t bandwidth_limit = 0;  // bytes/s for the whole upload, split across parts; 0 = the client's
    PutOptions put{};                   // create_only, object lock and content type of the object
};

// The size of part `number` (1-based): `base` for parts 1-1000, doubling every 1000 parts after (capped at
// 5 GiB), so 10,000 parts of a 16 MiB base hold about 12.7 TiB.
std::size_t part_size_for(int number, std::size_t base);
// The base part size for options (the hint raises it so the expected size fits in 9,000 parts).
std::size_t base_part_size(const MultipartOptions& options);

class MultipartWriter final : public io::Writer {
public:
    MultipartWriter(const Client& client, std::string bucket, std::string key, MultipartOptions options = {});
    ~MultipartWriter() override;
    MultipartWriter(const MultipartWriter&) = delete;
    MultipartWriter& operator=(const MultipartWriter&) = delete;

    void write(io::Bytes data) override;
    void finish() override;

    std::uint64_t bytes() const { return bytes_; }
    int parts() const { return next_part_ - 1; }                 // parts cut so far
    const std::string& upload_id() const { return upload_id_; }  // "" before the first part (or single PUT)
    const std::string& etag() const { return etag_; }            // after finish()
    std::size_t peak_buffer_bytes() const { return peak_buffers_; }  // most part-buffer memory held at once

private:
    struct Job {
        int number = 0;
        std::vector<std::byte> data;
    };
    void cut_part();
    void worker();
    void wait_for_slot(std::size_t size);
    void fail_and_abort();
    void rethrow_if_failed();
    std::vector<std::byte> take_buffer(std::size_t size);

    const Client& client_;
    std::string bucket_, key_;
    MultipartOptions options_;
    std::size_t base_size_;
    std::size_t budget_;
    std::uint64_t per_part_speed_;
    std::string upload_id_;
    std::string etag_;
    std::vector<std::byte> current_;
    std::size_t current_target_ = 0;
    int next_part_ = 1;
    std::uint64_t bytes_ = 0;
    bool finished_ = false;
    bool aborted_ = false;

    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Job> queue_;
    std::size_t held_ = 0;  // bytes in queued and uploading parts (guarded by mutex_)
    std::size_t peak_buffers_ = 0;
    int in_flight_ = 0;  // queued + uploading
    bool stop_ = false;
    std::exception_ptr error_;
    std::vector<PartInfo> done_;
    std::vector<std::vector<std::byte>> spare_;
    std::vector<std::thread> workers_;
};

}  // namespace nightjar::s3
