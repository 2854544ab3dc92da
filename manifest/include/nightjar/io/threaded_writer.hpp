#pragma once
// A pipeline stage on its own thread: the producer (reading, hashing, decompressing) goes on while the stages
// behind it (compressing, writing) work on earlier pieces.
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "nightjar/io/stream.hpp"

namespace nightjar::io {

struct ThreadedWriterOptions {
    std::size_t depth = 4;  // pieces waiting for the thread at most: memory stays depth x piece size
};

// Runs `next` on a thread of its own. write() copies the piece into a free buffer and returns; it blocks only
// while `depth` pieces are waiting. The first error of `next` (write or finish) is rethrown by the next
// write() or by finish(), on the caller's thread. finish() waits for every piece, finishes `next` and joins.
// Destroyed without finish() (the producer failed), it stops the thread and drops what was still queued;
// `next` is then not finished.
class ThreadedWriter final : public Writer {
public:
    explicit ThreadedWriter(Writer& next, ThreadedWriterOptions options = {});
    ~ThreadedWriter() override;
    ThreadedWriter(const ThreadedWriter&) = delete;
    ThreadedWriter& operator=(const ThreadedWriter&) = delete;
    void write(Bytes data) override;
    void finish() override;

private:
    void run();

    Writer& next_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::vector<std::byte>> queued_;  // filled, in order
    std::vector<std::vector<std::byte>> free_;   // emptied buffers for reuse
    std::size_t depth_;
    std::size_t in_flight_ = 0;  // buffers queued or being written
    bool closing_ = false;       // finish(): write what is queued, then finish `next`
    bool stopping_ = false;      // destructor: drop what is queued
    std::exception_ptr failure_;
    bool finished_ = false;
    std::thread thread_;
};

}  // namespace nightjar::io
