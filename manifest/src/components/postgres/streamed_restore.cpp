#include "nightjar/components/postgres/streamed_restore.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "nightjar/components/postgres/archive_walker.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/io/fd.hpp"

namespace nightjar::postgres {
namespace {

namespace fs = std::filesystem;

constexpr int kSectionData = 3;
constexpr int kSectionPostData = 4;
// A block header (type byte, then the dump id: a sign byte and up to 8 bytes) is at most 10 bytes; holding
// back this many bytes of every piece means a block's id is always known before its first byte is handed on.
constexpr std::size_t kHeldBack = 16;

// A temporary file, removed on destruction.
class TempFile {
public:
    TempFile(const std::string& stem, io::Bytes content) {
        std::string tmpl = (fs::temp_directory_path() / (stem + "-XXXXXX")).string();
        int fd = ::mkstemp(tmpl.data());
        if (fd < 0) throw_errno(Kind::RestoreFailed, "cannot create a temporary file for pg_restore", tmpl);
        io::UniqueFd owned(fd);
        path_ = tmpl;
        io::write_all(fd, content, path_);
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() { ::unlink(path_.c_str()); }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// A pg_restore --use-list file naming these dump ids, in this order.
std::unique_ptr<TempFile> list_file(const std::vector<int>& ids) {
    std::string text;
    for (int id : ids) text += std::to_string(id) + "\n";
    return std::make_unique<TempFile>("nightjar-pgrestore-list", io::as_bytes(text));
}

// What the workers share: who took which block, the pg_restore runs so far, and the first failure.
struct Shared {
    std::mutex m;
    std::set<int> claimed;
    std::size_t data_blocks = 0;  // entries with a data block in the TOC
    std::vector<int> extras;      // data entries without a block (sequence positions): with the first batch
    bool extras_taken = false;
    bool failed = false;
    bool pre_data_done = false;  // no data run starts before; workers read ahead meanwhile
    std::condition_variable cv;
    std::exception_ptr error;
    std::vector<PgRestoreStep> steps;

    // False when the restore stops instead.
    bool wait_for_pre_data() {
        std::unique_lock lk(m);
        cv.wait(lk, [this] { return pre_data_done || failed; });
        return !failed;
    }
    void pre_data_finished() {
        {
            std::lock_guard lk(m);
            pre_data_done = true;
        }
        cv.notify_all();
    }

    bool claim(int id) {
        std::lock_guard lk(m);
        return claimed.insert(id).second;
    }
    bool all_claimed() {
        std::lock_guard lk(m);
        return claimed.size() >= data_blocks;
    }
    std::vector<int> take_extras() {
        std::lock_guard lk(m);
        if (extras_taken) return {};
        extras_taken = true;
        return extras;
    }
    bool stopped() {
        std::lock_guard lk(m);
        return failed;
    }
    void fail(std::exception_ptr e) {
        {
            std::lock_guard lk(m);
            if (!error) error = e;
            failed = true;
        }
        cv.notify_all();
    }
    void record(PgRestoreStep step) {
        std::lock_guard lk(m);
        steps.push_back(std::move(step));
    }
};

// A reader moving forward through the archive, walking its block framing. Each piece it hands out comes with
// every block start known up to its end (the last bytes of a read are held back until the next one).
class Cursor {
public:
    Cursor(io::Reader& reader, const StreamedPgRestore& how)
        : reader_(reader),
          walker_(how.what, how.head_limit),
          in_(io::kChunkSize),
          head_limit_(how.head_limit) {}

    struct Piece {
        io::Bytes bytes;
        std::uint64_t pos = 0;  // offset of bytes[0] in the archive
    };
    // Reads until the table of contents is known; what it read is handed out again by next().
    void read_head() {
        while (!walker_.archive() && !ended_) {
            Piece p = produce();
            pending_.emplace_back(p.pos, std::vector<std::byte>(p.bytes.begin(), p.bytes.end()));
        }
    }
    // The next piece; empty at the end of the stream.
    Piece next() {
        if (!pending_.empty()) {
            replay_ = std::move(pending_.front());
            pending_.pop_front();
            return {io::Bytes(replay_.second.data(), replay_.second.size()), replay_.first};
        }
        return produce();
    }
    const PgArchiveWalker& walker() const { return walker_; }
    // The archive's header and table of contents, once read.
    io::Bytes head() const { return io::Bytes(head_.data(), walker_.archive()->toc_end); }

private:
    Piece produce() {
        const std::uint64_t pos = done_;
        out_.assign(held_.begin(), held_.end());
        held_.clear();
        while (!ended_ && out_.size() <= kHeldBack) {
            std::size_t n = reader_.read(in_);
            if (n == 0) {
                ended_ = true;
                break;
            }
            io::Bytes fresh(in_.data(), n);
            walker_.feed(fresh);
            if (!walker_.archive() || head_.size() < walker_.archive()->toc_end) {
                const std::size_t want = std::min(n, head_limit_ - std::min(head_limit_, head_.size()));
                head_.insert(head_.end(), fresh.begin(), fresh.begin() + static_cast<std::ptrdiff_t>(want));
            }
            out_.insert(out_.end(), fresh.begin(), fresh.end());
        }
        if (!ended_) {
            held_.assign(out_.end() - static_cast<std::ptrdiff_t>(kHeldBack), out_.end());
            out_.resize(out_.size() - kHeldBack);
        }
        done_ += out_.size();
        return {io::Bytes(out_.data(), out_.size()), pos};
    }

    io::Reader& reader_;
    PgArchiveWalker walker_;
    std::vector<std::byte> in_, out_, held_, head_;
    std::size_t head_limit_;
    std::uint64_t done_ = 0;
    bool ended_ = false;
    std::deque<std::pair<std::uint64_t, std::vector<std::byte>>>
        pending_;  // read by read_head(), not yet handed out
    std::pair<std::uint64_t, std::vector<std::byte>> replay_;
};

PgRestoreStep run_step(const StreamedPgRestore& how, const std::string& name,
                       std::vector<std::string> extra) {
    std::vector<std::string> argv = how.argv;
    argv.insert(argv.end(), extra.begin(), extra.end());
    Subprocess child = Subprocess::spawn(argv, how.spawn);
    return {name, child.wait(), child.stderr_text()};
}

// Indexes and constraints of one table are built as soon as that table's data is in, beside the loads still
// running (pg_restore --jobs schedules them the same way): an INDEX or CONSTRAINT entry whose every
// dependency is a TABLE whose data has been loaded. Everything else in post-data waits for the final run.
class EarlyPostData {
public:
    EarlyPostData(const StreamedPgRestore& how, const PgArchive& archive, std::string head_path,
                  Shared& shared)
        : how_(how), head_path_(std::move(head_path)), shared_(shared) {
        std::map<int, const PgTocEntry*> by_id;
        for (const auto& e : archive.toc) by_id[e.dump_id] = &e;
        std::map<int, int> data_of_table;  // TABLE dump id -> its TABLE DATA dump id
        for (const auto& e : archive.toc)
            if (e.desc == "TABLE DATA")
                for (int d : e.deps)
                    if (by_id.count(d) && by_id[d]->desc == "TABLE") data_of_table[d] = e.dump_id;
        for (const auto& e : archive.toc) {
            if (e.section != kSectionPostData || (e.desc != "INDEX" && e.desc != "CONSTRAINT") ||
                e.deps.empty())
                continue;
            Waiting w{e.dump_id, {}};
            bool tables_only = true;
            for (int d : e.deps) {
                auto it = by_id.find(d);
                if (it == by_id.end() || it->second->desc != "TABLE")
                    tables_only = false;
                else if (auto data = data_of_table.find(d); data != data_of_table.end())
                    w.needs.insert(data->second);
            }
            if (tables_only) waiting_.push_back(std::move(w));
        }
    }
    ~EarlyPostData() { join(); }

    // A batch's blocks are loaded: starts what they were the last thing missing for.
    void loaded(const std::vector<int>& ids) {
        if (how_.jobs <= 1) return;  // one job: one pg_restore at a time, post-data at the end
        std::lock_guard lk(m_);
        loaded_.insert(ids.begin(), ids.end());
        std::vector<int> ready;
        for (auto it = waiting_.begin(); it != waiting_.end();) {
            if (std::includes(loaded_.begin(), loaded_.end(), it->needs.begin(), it->needs.end())) {
                ready.push_back(it->id);
                started_.insert(it->id);
                it = waiting_.erase(it);
            } else {
                ++it;
            }
        }
        if (ready.empty()) return;
        threads_.emplace_back([this, ready] {
            try {
                auto list = list_file(ready);
                shared_.record(run_step(how_, "post-data (" + std::to_string(ready.size()) + " early)",
                                        {"--section=post-data", "--use-list=" + list->path(), head_path_}));
            } catch (...) {
                shared_.fail(std::current_exception());
            }
        });
    }
    void join() {
        std::lock_guard lk(m_);
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }
    // The post-data entries run early.
    std::set<int> started() {
        std::lock_guard lk(m_);
        return started_;
    }

private:
    struct Waiting {
        int id;
        std::set<int> needs;  // TABLE DATA dump ids
    };
    const StreamedPgRestore& how_;
    std::string head_path_;
    Shared& shared_;
    std::mutex m_;
    std::vector<Waiting> waiting_;
    std::set<int> loaded_;
    std::set<int> started_;
    std::vector<std::thread> threads_;
};

// One worker of the data phase: follows its cursor, takes every block nobody has taken yet, and restores what
// it took with pg_restore --use-list fed on stdin; small blocks are gathered into one batch in memory first.
class DataWorker {
public:
    DataWorker(const StreamedPgRestore& how, Shared& shared, EarlyPostData& early, io::Bytes head,
               Cursor& cursor, bool prover)
        : how_(how), shared_(shared), early_(early), head_(head), cursor_(cursor), prover_(prover) {}

    void run() {
        try {
            work();
        } catch (...) {
            shared_.fail(std::current_exception());
        }
    }

private:
    void work() {
        const auto& offsets = cursor_.walker().block_offsets();
        const auto& order = cursor_.walker().block_order();
        std::size_t next_start = 0;  // index into `order` of the next block start to act on
        for (;;) {
            if (shared_.stopped()) return;
            Cursor::Piece piece = cursor_.next();
            if (piece.bytes.empty()) break;
            std::uint64_t at = piece.pos;
            const std::uint64_t end = piece.pos + piece.bytes.size();
            while (at < end) {
                std::uint64_t cut = end;
                if (next_start < order.size()) cut = std::min(cut, offsets.at(order[next_start]));
                if (cut < at)
                    throw Error(Kind::Internal, how_.what + ": a data block was found behind the reader");
                if (cut > at && mine_) write(piece.bytes.subspan(at - piece.pos, cut - at));
                at = std::max(at, cut);
                if (next_start < order.size() && offsets.at(order[next_start]) == at) {
                    block_ends();
                    const int id = order[next_start++];
                    mine_ = shared_.claim(id);
                    if (mine_) ids_.push_back(id);
                }
            }
            if (!mine_ && !ids_.empty() && shared_.all_claimed()) flush();
            if (!mine_ && ids_.empty() && !prover_ && shared_.all_claimed()) return;
        }
        block_ends();
        flush();
        if (prover_) {
            std::string problem = cursor_.walker().finish();
            if (!problem.empty())
                throw Error(Kind::Verification, how_.what + ": not a readable pg_dump archive: " + problem);
        }
    }

    void write(io::Bytes bytes) {
        if (live_) return send(bytes);
        if (buffered_.capacity() == 0) buffered_.reserve(how_.batch_bytes + io::kChunkSize);
        buffered_.insert(buffered_.end(), bytes.begin(), bytes.end());
        if (buffered_.size() >= how_.batch_bytes) go_live();
    }

    void send(io::Bytes bytes) {
        if (!live_ || child_gone_) return;
        try {
            live_->in().write(bytes);
        } catch (const Error& e) {
            if (e.kind() != Kind::Storage) throw;
            child_gone_ = true;  // pg_restore stopped reading; its exit status and stderr say why
        }
    }

    // Starts pg_restore for the batch so far; the block being read goes on streaming into it.
    void go_live() {
        if (!shared_.wait_for_pre_data()) throw Error(Kind::Internal, how_.what + ": restore stopped");
        std::vector<int> list = shared_.take_extras();
        list.insert(list.end(), ids_.begin(), ids_.end());
        list_file_ = list_file(list);
        std::vector<std::string> argv = how_.argv;
        argv.push_back("--use-list=" + list_file_->path());
        SpawnOptions spawn = how_.spawn;
        spawn.stdin_pipe = true;
        live_.emplace(Subprocess::spawn(argv, spawn));
        name_ = "data (" + std::to_string(list.size()) + " entries)";
        child_gone_ = false;
        send(head_);
        send(buffered_);
        buffered_.clear();
    }

    // The block being read ended: a live pg_restore has had its last block.
    void block_ends() {
        if (mine_ && live_) finish_live();
        mine_ = false;
    }

    void flush() {
        if (ids_.empty()) return;
        if (!live_) go_live();
        finish_live();
    }

    void finish_live() {
        live_->close_in();
        PgRestoreStep step{name_, live_->wait(), live_->stderr_text()};
        live_.reset();
        list_file_.reset();
        const bool clean = step.exit_code == 0;
        shared_.record(std::move(step));
        if (clean) early_.loaded(ids_);
        if (how_.after_batch) how_.after_batch(ids_);
        ids_.clear();
    }

    const StreamedPgRestore& how_;
    Shared& shared_;
    EarlyPostData& early_;
    io::Bytes head_;
    Cursor& cursor_;
    bool prover_;
    bool mine_ = false;     // the block being read is this worker's
    std::vector<int> ids_;  // the blocks of the current batch, in stream order
    std::vector<std::byte> buffered_;
    std::optional<Subprocess> live_;
    std::unique_ptr<TempFile> list_file_;
    std::string name_;
    bool child_gone_ = false;
};

// Every entry with data must be a data-section entry for the split to be faithful (true of every archive
// pg_dump 8.4 and later writes).
void check_sections(const PgArchive& archive, const std::string& what) {
    for (const auto& e : archive.toc)
        if (e.section == 0 || (e.has_data && e.section != kSectionData))
            throw Error(Kind::RestoreFailed,
                        what + ": entry " + std::to_string(e.dump_id) + " (" + e.desc +
                            ") has data outside the data section; this archive cannot be "
                            "restored by section");
}

}  // namespace

std::vector<PgRestoreStep> streamed_pg_restore(io::Reader& content, const StreamedPgRestore& how) {
    ignore_sigpipe();
    Cursor first(content, how);
    first.read_head();
    if (!first.walker().archive())
        throw Error(Kind::Verification,
                    how.what + ": not a readable pg_dump archive: " + first.walker().finish());
    const PgArchive& archive = *first.walker().archive();
    check_sections(archive, how.what);

    Shared shared;
    for (const auto& e : archive.toc) {
        if (e.has_data) ++shared.data_blocks;
        if (e.section == kSectionData && !e.has_data) shared.extras.push_back(e.dump_id);
    }
    TempFile head("nightjar-pgrestore-head", first.head());
    std::vector<std::unique_ptr<io::Reader>> readers;
    std::vector<std::unique_ptr<Cursor>> cursors;
    EarlyPostData early(how, archive, head.path(), shared);
    std::vector<std::unique_ptr<DataWorker>> workers;
    workers.push_back(std::make_unique<DataWorker>(how, shared, early, first.head(), first, true));
    for (int i = 1; i < how.jobs && how.reopen; ++i) {
        readers.push_back(how.reopen());
        cursors.push_back(std::make_unique<Cursor>(*readers.back(), how));
        workers.push_back(
            std::make_unique<DataWorker>(how, shared, early, first.head(), *cursors.back(), false));
    }
    // The workers read ahead (decompress, skip, claim, gather small tables) while the database is prepared
    // and pre-data runs; no data run starts before pre-data has ended.
    std::vector<std::thread> threads;
    for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
    try {
        if (how.on_head) how.on_head(archive);
        shared.record(run_step(how, "pre-data", {"--section=pre-data", head.path()}));
    } catch (...) {
        shared.fail(std::current_exception());
    }
    shared.pre_data_finished();
    for (auto& t : threads) t.join();
    early.join();
    if (shared.error) std::rethrow_exception(shared.error);

    if (auto extras = shared.take_extras(); !extras.empty()) {
        auto list = list_file(extras);
        shared.record(
            run_step(how, "data (sequence positions)", {"--use-list=" + list->path(), head.path()}));
    }
    std::vector<std::string> post{"--section=post-data"};
    if (how.jobs > 1) post.push_back("--jobs=" + std::to_string(how.jobs));
    std::unique_ptr<TempFile> rest;
    if (auto done = early.started(); !done.empty()) {
        std::vector<int> others;  // every entry but those run early: --section still picks the post-data ones
        for (const auto& e : archive.toc)
            if (!done.count(e.dump_id)) others.push_back(e.dump_id);
        rest = list_file(others);
        post.push_back("--use-list=" + rest->path());
    }
    post.push_back(head.path());
    shared.record(run_step(how, "post-data", post));
    return shared.steps;
}

}  // namespace nightjar::postgres
