#include "nightjar/postgres/streamed_restore.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "nightjar/error.hpp"
#include "nightjar/io/fd.hpp"
#include "nightjar/postgres/archive_walker.hpp"

namespace nightjar {
namespace {

namespace fs = std::filesystem;

constexpr int kSectionData = 3;
constexpr std::uint64_t kUnknown = std::numeric_limits<std::uint64_t>::max();
constexpr std::size_t kMaxBatchEntries = 1000;
constexpr std::size_t kSendChunk = 4 << 20;

// A temporary file, removed on destruction.
class TempFile {
public:
    explicit TempFile(const std::string& stem) {
        std::string tmpl = (fs::temp_directory_path() / (stem + "-XXXXXX")).string();
        int fd = ::mkstemp(tmpl.data());
        if (fd < 0) throw_errno(Kind::RestoreFailed, "cannot create a temporary file for pg_restore", tmpl);
        fd_ = io::UniqueFd(fd);
        path_ = tmpl;
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() { ::unlink(path_.c_str()); }
    int fd() const { return fd_.get(); }
    const std::string& path() const { return path_; }
    void write(io::Bytes data) { io::write_all(fd_.get(), data, path_); }
    // Reads exactly [offset, offset + buf.size()) of what was written.
    void read_at(std::uint64_t offset, io::MutableBytes buf) const {
        std::size_t done = 0;
        while (done < buf.size()) {
            ssize_t n =
                ::pread(fd_.get(), buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                if (n == 0) errno = EIO;
                throw_errno(Kind::RestoreFailed, "cannot read back the spool file", path_);
            }
            done += static_cast<std::size_t>(n);
        }
    }

private:
    io::UniqueFd fd_;
    std::string path_;
};

// What the reading thread has spooled so far, shared with the threads that run pg_restore.
struct Spooled {
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::pair<int, std::uint64_t>> blocks;  // (dump id, offset) of each data block, stream order
    std::uint64_t bytes = 0;                            // written to the spool file
    bool ended = false;                                 // the whole stream is spooled, digests proven
    bool failed = false;                                // stop everything

    // Where block i ends; kUnknown while it may still grow. The caller holds m.
    std::uint64_t end_of(std::size_t i) const {
        if (i + 1 < blocks.size()) return blocks[i + 1].second;
        return ended ? bytes : kUnknown;
    }
};

// Runs the pg_restore steps on threads of its own while the reading thread fills the spool.
class Restorer {
public:
    Restorer(const StreamedPgRestore& how, PgArchive archive, const TempFile& spool, Spooled& s)
        : how_(how), archive_(std::move(archive)), spool_(spool), s_(s) {
        head_.resize(archive_.toc_end);
        spool_.read_at(0, head_);
        for (const auto& e : archive_.toc)
            if (e.section == kSectionData && !e.has_data) extras_.push_back(e.dump_id);
    }

    void run() {
        try {
            if (!sectioned()) return run_whole();
            TempFile head("nightjar-pgrestore-head");
            head.write(head_);
            step("pre-data", args({"--section=pre-data", head.path()}), nullptr);
            std::vector<std::thread> workers;
            for (int i = 0; i < std::max(1, how_.jobs); ++i) workers.emplace_back([this] { load_data(); });
            for (auto& w : workers) w.join();
            if (!extras_taken_ && !extras_.empty()) run_batch(extras_, {});
            if (!wait_for_end()) return;
            std::vector<std::string> post{"--section=post-data"};
            if (how_.jobs > 1) post.push_back("--jobs=" + std::to_string(how_.jobs));
            post.push_back(head.path());
            step("post-data", args(post), nullptr);
        } catch (...) {
            fail(std::current_exception());
        }
    }

    std::exception_ptr error() const { return error_; }
    std::vector<PgRestoreStep> steps() const { return steps_; }

private:
    // Every entry with data must be a data-section entry for the split to be faithful (true of every archive
    // pg_dump 8.4 and later writes); anything else is restored whole once the spool is complete.
    bool sectioned() const {
        for (const auto& e : archive_.toc)
            if (e.section == 0 || (e.has_data && e.section != kSectionData)) return false;
        return true;
    }

    void run_whole() {
        if (!wait_for_end()) return;
        std::map<int, std::uint64_t> offsets;
        {
            std::lock_guard lk(s_.m);
            for (const auto& [id, offset] : s_.blocks) offsets[id] = offset;
        }
        write_pg_block_offsets(spool_.fd(), archive_, offsets, "spool file for " + how_.what,
                               Kind::RestoreFailed);
        std::vector<std::string> whole;
        if (how_.jobs > 1) whole.push_back("--jobs=" + std::to_string(how_.jobs));
        whole.push_back(spool_.path());
        step("whole archive", args(whole), nullptr);
    }

    bool wait_for_end() {
        std::unique_lock lk(s_.m);
        s_.cv.wait(lk, [this] { return s_.failed || s_.ended; });
        return !s_.failed;
    }

    std::vector<std::string> args(const std::vector<std::string>& extra) const {
        std::vector<std::string> argv = how_.argv;
        argv.insert(argv.end(), extra.begin(), extra.end());
        return argv;
    }

    // One pg_restore run; `feed` (if any) writes its stdin and returns false when the run must be stopped.
    void step(const std::string& name, const std::vector<std::string>& argv,
              const std::function<bool(Subprocess&)>& feed) {
        SpawnOptions spawn = how_.spawn;
        spawn.stdin_pipe = static_cast<bool>(feed);
        Subprocess child = Subprocess::spawn(argv, spawn);
        if (feed) {
            if (!feed(child)) child.kill(SIGTERM);
            child.close_in();
        }
        PgRestoreStep done{name, child.wait(), child.stderr_text()};
        std::lock_guard lk(steps_m_);
        steps_.push_back(std::move(done));
    }

    // A worker: takes the next blocks in stream order as a batch and restores them, until none are left.
    void load_data() {
        try {
            for (;;) {
                std::vector<int> list;
                std::vector<std::size_t> blocks;
                {
                    std::unique_lock lk(s_.m);
                    s_.cv.wait(lk, [this] { return s_.failed || s_.ended || next_ < s_.blocks.size(); });
                    if (s_.failed || next_ >= s_.blocks.size()) return;
                    if (!extras_taken_) {
                        list = extras_;
                        extras_taken_ = true;
                    }
                    std::uint64_t bytes = 0;
                    while (next_ < s_.blocks.size() && blocks.size() < kMaxBatchEntries) {
                        const std::uint64_t end = s_.end_of(next_);
                        // A block still arriving only ever starts a batch: a big table at the end of one
                        // would keep the other workers idle.
                        if (end == kUnknown && !blocks.empty()) break;
                        blocks.push_back(next_);
                        list.push_back(s_.blocks[next_].first);
                        const std::uint64_t start = s_.blocks[next_].second;
                        ++next_;
                        if (end == kUnknown) break;  // still arriving: it ends the batch
                        bytes += end - start;
                        if (bytes >= how_.batch_bytes) break;
                    }
                }
                run_batch(list, blocks);
            }
        } catch (...) {
            fail(std::current_exception());
        }
    }

    void run_batch(const std::vector<int>& list, const std::vector<std::size_t>& blocks) {
        TempFile list_file("nightjar-pgrestore-list");
        std::string text;
        for (int id : list) text += std::to_string(id) + "\n";
        list_file.write(io::as_bytes(text));
        const std::string name = "data (" + std::to_string(list.size()) + " entries)";
        step(name, args({"--use-list=" + list_file.path()}), [&](Subprocess& child) {
            try {
                child.in().write(head_);
                for (std::size_t i : blocks)
                    if (!feed_block(child, i)) return false;
            } catch (const Error& e) {
                if (e.kind() != Kind::Storage) throw;
                // pg_restore stopped reading: it exits with its reason, which the step records
            }
            return true;
        });
    }

    // Copies block i from the spool to the child's stdin, waiting for bytes still to be spooled.
    bool feed_block(Subprocess& child, std::size_t i) {
        std::uint64_t pos = 0;
        {
            std::lock_guard lk(s_.m);
            pos = s_.blocks[i].second;
        }
        for (;;) {
            std::uint64_t end = 0, limit = 0;
            {
                std::unique_lock lk(s_.m);
                s_.cv.wait(lk, [&] { return s_.failed || s_.bytes > pos || s_.end_of(i) != kUnknown; });
                if (s_.failed) return false;
                end = s_.end_of(i);
                limit = std::min(end, s_.bytes);
            }
            if (end != kUnknown && pos >= end) return true;
            // Straight from the spool's pages into the pipe: no copy through our memory.
            while (pos < limit) {
                auto offset = static_cast<off_t>(pos);
                ssize_t n =
                    ::sendfile(child.in_fd(), spool_.fd(), &offset,
                               static_cast<std::size_t>(std::min<std::uint64_t>(kSendChunk, limit - pos)));
                if (n < 0 && errno == EINTR) continue;
                if (n < 0 && errno == EPIPE) return true;  // pg_restore stopped reading; its exit says why
                if (n <= 0) {
                    if (n == 0) errno = EIO;
                    throw_errno(Kind::RestoreFailed, "cannot feed pg_restore from the spool file",
                                spool_.path());
                }
                pos += static_cast<std::uint64_t>(n);
            }
        }
    }

    void fail(std::exception_ptr e) {
        {
            std::lock_guard lk(s_.m);
            if (!error_) error_ = e;
            s_.failed = true;
        }
        s_.cv.notify_all();
    }

    const StreamedPgRestore& how_;
    PgArchive archive_;
    const TempFile& spool_;
    Spooled& s_;
    std::vector<std::byte> head_;
    std::vector<int>
        extras_;  // data entries without a block (sequence positions): they go with the first batch
    bool extras_taken_ = false;  // guarded by s_.m
    std::size_t next_ = 0;       // the next block to hand out; guarded by s_.m
    std::exception_ptr error_;   // guarded by s_.m
    std::mutex steps_m_;
    std::vector<PgRestoreStep> steps_;  // guarded by steps_m_
};

}  // namespace

std::vector<PgRestoreStep> streamed_pg_restore(io::Reader& content, const StreamedPgRestore& how) {
    ignore_sigpipe();
    TempFile spool("nightjar-pgrestore");
    if (how.content_size > 0) {
        // Disk space for the whole spool is claimed now, so a full disk stops the restore before it starts.
        int rc = ::posix_fallocate(spool.fd(), 0, static_cast<off_t>(how.content_size));
        if (rc == ENOSPC)
            throw Error(Kind::RestoreFailed, "no space for the " + std::to_string(how.content_size >> 20) +
                                                 " MiB spool file of " + how.what + " in " +
                                                 fs::temp_directory_path().string() +
                                                 " (set TMPDIR to a roomier place); nothing was restored");
    }
    Spooled s;
    PgArchiveWalker walker(how.what, how.head_limit);
    std::unique_ptr<Restorer> restorer;
    std::thread thread;
    auto stop = [&] {
        {
            std::lock_guard lk(s.m);
            s.failed = true;
        }
        s.cv.notify_all();
        if (thread.joinable()) thread.join();
    };
    try {
        std::vector<std::byte> buf(io::kChunkSize);
        std::size_t known = 0;
        bool stopped = false;
        while (std::size_t n = content.read(buf)) {
            io::Bytes piece(buf.data(), n);
            walker.feed(piece);
            spool.write(piece);
            if (!restorer && walker.archive()) {
                if (how.on_head) how.on_head(*walker.archive());
                restorer = std::make_unique<Restorer>(how, *walker.archive(), spool, s);
                thread = std::thread([&restorer] { restorer->run(); });
            }
            {
                std::lock_guard lk(s.m);
                if (s.failed) {
                    stopped = true;  // a pg_restore step could not run: its error is rethrown below
                    break;
                }
                const auto& order = walker.block_order();
                for (; known < order.size(); ++known)
                    s.blocks.emplace_back(order[known], walker.block_offsets().at(order[known]));
                s.bytes += n;
            }
            s.cv.notify_all();
        }
        if (!stopped) {
            std::string problem = walker.finish();
            if (!problem.empty())
                throw Error(Kind::Verification, how.what + ": not a readable pg_dump archive: " + problem);
            {
                std::lock_guard lk(s.m);
                s.ended = true;
            }
            s.cv.notify_all();
        }
    } catch (...) {
        stop();
        throw;
    }
    if (thread.joinable()) thread.join();
    if (restorer->error()) std::rethrow_exception(restorer->error());
    return restorer->steps();
}

}  // namespace nightjar
