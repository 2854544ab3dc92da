#include "nightjar/io/threaded_writer.hpp"

#include "nightjar/core/error.hpp"

namespace nightjar::io {

ThreadedWriter::ThreadedWriter(Writer& next, ThreadedWriterOptions options)
    : next_(next), depth_(options.depth < 1 ? 1 : options.depth) {
    thread_ = std::thread([this] { run(); });
}

ThreadedWriter::~ThreadedWriter() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void ThreadedWriter::write(Bytes data) {
    if (finished_) throw Error(Kind::Internal, "threaded writer: write after finish");
    if (data.empty()) return;
    std::vector<std::byte> buf;
    {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return failure_ || in_flight_ < depth_; });
        if (failure_) std::rethrow_exception(failure_);
        ++in_flight_;
        if (!free_.empty()) {
            buf = std::move(free_.back());
            free_.pop_back();
        }
    }
    // The copy happens outside the lock, so the thread keeps writing meanwhile.
    buf.assign(data.begin(), data.end());
    {
        std::lock_guard lock(mutex_);
        queued_.push_back(std::move(buf));
    }
    changed_.notify_all();
}

void ThreadedWriter::finish() {
    if (finished_) return;
    finished_ = true;
    {
        std::lock_guard lock(mutex_);
        closing_ = true;
    }
    changed_.notify_all();
    thread_.join();
    if (failure_) std::rethrow_exception(failure_);
}

void ThreadedWriter::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [this] { return stopping_ || closing_ || !queued_.empty(); });
        if (stopping_) return;
        if (queued_.empty()) {  // closing, and everything written
            lock.unlock();
            try {
                next_.finish();
            } catch (...) {
                lock.lock();
                failure_ = std::current_exception();
            }
            return;
        }
        std::vector<std::byte> buf = std::move(queued_.front());
        queued_.pop_front();
        lock.unlock();
        std::exception_ptr error;
        try {
            next_.write(buf);
        } catch (...) {
            error = std::current_exception();
        }
        lock.lock();
        free_.push_back(std::move(buf));
        --in_flight_;
        if (error) {
            failure_ = error;
            queued_.clear();
            changed_.notify_all();
            return;
        }
        changed_.notify_all();
    }
}

}  // namespace nightjar::io
