#include "nightjar/repo/s3/multipart_writer.hpp"

#include <algorithm>
#include <cstring>

#include "nightjar/core/failpoint.hpp"
#include "nightjar/core/log.hpp"

namespace nightjar::s3 {

std::size_t part_size_for(int number, std::size_t base) {
    int tier = std::max(0, (number - 1) / 1000);
    std::size_t size = base;
    for (int i = 0; i < tier && size < kMaxPartSize; ++i) size *= 2;
    return std::min(size, kMaxPartSize);
}

std::size_t base_part_size(const MultipartOptions& o) {
    std::size_t base = std::max(o.part_size, kMinPartSize);
    if (o.expected_size > 0) {
        std::uint64_t need = (o.expected_size + 8999) / 9000;
        need = (need + (1u << 20) - 1) / (1u << 20) * (1u << 20);  // whole MiB
        if (need > base) base = static_cast<std::size_t>(std::min<std::uint64_t>(need, kMaxPartSize));
    }
    return std::min(base, kMaxPartSize);
}

MultipartWriter::MultipartWriter(const Client& client, std::string bucket, std::string key,
                                 MultipartOptions options)
    : client_(client), bucket_(std::move(bucket)), key_(std::move(key)), options_(std::move(options)) {
    if (options_.parallel_parts < 1) options_.parallel_parts = 1;
    base_size_ = base_part_size(options_);
    budget_ = options_.memory_budget ? options_.memory_budget
                                     : (static_cast<std::size_t>(options_.parallel_parts) + 1) * base_size_;
    std::uint64_t total =
        options_.bandwidth_limit ? options_.bandwidth_limit : client_.options().bandwidth_limit;
    per_part_speed_ =
        total ? std::max<std::uint64_t>(1, total / static_cast<std::uint64_t>(options_.parallel_parts)) : 0;
    current_target_ = part_size_for(1, base_size_);
}

MultipartWriter::~MultipartWriter() {
    if (!finished_ && !aborted_) {
        try {
            fail_and_abort();
        } catch (...) {
        }
    }
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_)
        if (t.joinable()) t.join();
}

std::vector<std::byte> MultipartWriter::take_buffer(std::size_t size) {
    std::vector<std::byte> b;
    {
        std::lock_guard lock(mutex_);
        if (!spare_.empty()) {
            b = std::move(spare_.back());
            spare_.pop_back();
        }
    }
    b.clear();
    if (b.capacity() < size) {
        b = {};
        b.reserve(size);
    }
    return b;
}

void MultipartWriter::rethrow_if_failed() {
    std::exception_ptr e;
    {
        std::lock_guard lock(mutex_);
        e = error_;
    }
    if (e) {
        fail_and_abort();
        std::rethrow_exception(e);
    }
}

void MultipartWriter::write(io::Bytes data) {
    if (finished_ || aborted_)
        throw Error(Kind::Internal, "s3: write after finish or abort of s3://" + bucket_ + "/" + key_);
    rethrow_if_failed();
    while (!data.empty()) {
        if (current_.capacity() == 0) current_ = take_buffer(current_target_);
        std::size_t room = current_target_ - current_.size();
        std::size_t k = std::min(room, data.size());
        current_.insert(current_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(k));
        data = data.subspan(k);
        bytes_ += k;
        if (current_.size() == current_target_) cut_part();
    }
}

void MultipartWriter::wait_for_slot(std::size_t size) {
    std::unique_lock lock(mutex_);
    // At most parallel_parts queued or uploading, and the buffers inside the budget (one part always fits).
    cv_.wait(lock, [&] {
        return error_ ||
               (in_flight_ < options_.parallel_parts && (in_flight_ == 0 || held_ + size <= budget_));
    });
}

void MultipartWriter::cut_part() {
    if (next_part_ > kMaxParts)
        throw Error(Kind::Storage,
                    "s3: s3://" + bucket_ + "/" + key_ + ": more than 10000 parts: raise part_size_mib");
    if (upload_id_.empty()) upload_id_ = client_.create_multipart(bucket_, key_, options_.put);
    if (workers_.empty())
        for (int i = 0; i < options_.parallel_parts; ++i) workers_.emplace_back([this] { worker(); });
    std::size_t size = current_.size();
    wait_for_slot(size);
    rethrow_if_failed();
    {
        std::lock_guard lock(mutex_);
        queue_.push_back({next_part_, std::move(current_)});
        ++in_flight_;
        held_ += size;
        peak_buffers_ = std::max(peak_buffers_, held_ + 0);
    }
    cv_.notify_all();
    current_ = {};
    ++next_part_;
    current_target_ = part_size_for(next_part_, base_size_);
}

void MultipartWriter::worker() {
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
            if (stop_ && queue_.empty()) return;
            job = std::move(queue_.front());
            queue_.pop_front();
            if (error_) {  // a part failed: the rest are not sent
                held_ -= job.data.size();
                --in_flight_;
                cv_.notify_all();
                continue;
            }
        }
        std::exception_ptr err;
        std::string etag;
        try {
            etag = client_.upload_part(bucket_, key_, upload_id_, job.number, job.data, per_part_speed_);
            failpoint("s3:part-uploaded");  // a crash with a multipart upload open and parts stored
        } catch (...) {
            err = std::current_exception();
        }
        {
            std::lock_guard lock(mutex_);
            if (err && !error_) error_ = err;
            if (!err) done_.push_back({job.number, etag, job.data.size()});
            held_ -= job.data.size();
            --in_flight_;
            if (spare_.size() < 2) spare_.push_back(std::move(job.data));
        }
        cv_.notify_all();
    }
}

void MultipartWriter::fail_and_abort() {
    if (aborted_) return;
    aborted_ = true;
    {
        std::unique_lock lock(mutex_);
        if (!error_) error_ = std::make_exception_ptr(Error(Kind::Storage, "s3: upload abandoned"));
        // Queued parts are dropped by the workers; wait for the ones uploading.
        cv_.wait(lock, [&] { return in_flight_ == 0; });
    }
    if (upload_id_.empty()) return;
    try {
        client_.abort_multipart(bucket_, key_, upload_id_);
    } catch (const std::exception& e) {
        log::warn("s3: could not abort the upload of s3://", bucket_, "/", key_, " (upload id ", upload_id_,
                  "): ", e.what(), ": a lifecycle rule AbortIncompleteMultipartUpload removes such parts");
    }
}

void MultipartWriter::finish() {
    if (finished_) return;
    if (aborted_) throw Error(Kind::Internal, "s3: finish after abort of s3://" + bucket_ + "/" + key_);
    rethrow_if_failed();
    try {
        if (upload_id_.empty()) {
            // Shorter than one part: one PutObject. radosgw ignores If-None-Match on a versioned bucket
            // (every object-lock bucket is), so a create-only write looks first; the header still guards the
            // rest.
            if (options_.put.create_only && client_.head_object(bucket_, key_))
                throw ObjectExistsError(
                    "s3: PutObject s3://" + bucket_ + "/" + key_ +
                        ": the object exists already: a create-only write never replaces it",
                    412, "PreconditionFailed");
            MemoryBody body({current_.data(), current_.size()});
            etag_ = client_.put_object(bucket_, key_, body, options_.put);
            finished_ = true;
            current_ = {};
            return;
        }
        if (!current_.empty()) cut_part();
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return in_flight_ == 0; });
        }
        rethrow_if_failed();
        std::vector<PartInfo> parts;
        {
            std::lock_guard lock(mutex_);
            parts = done_;
        }
        std::sort(parts.begin(), parts.end(),
                  [](const PartInfo& a, const PartInfo& b) { return a.number < b.number; });
        if (static_cast<int>(parts.size()) != next_part_ - 1)
            throw Error(Kind::Internal, "s3: s3://" + bucket_ + "/" + key_ + ": " +
                                            std::to_string(parts.size()) + " parts acknowledged of " +
                                            std::to_string(next_part_ - 1));
        etag_ = client_.complete_multipart(bucket_, key_, upload_id_, parts, options_.put.create_only);
        finished_ = true;
    } catch (...) {
        if (!finished_) fail_and_abort();
        throw;
    }
}

}  // namespace nightjar::s3
