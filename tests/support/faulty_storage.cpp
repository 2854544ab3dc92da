#include "support/faulty_storage.hpp"

#include <algorithm>
#include <mutex>

#include "nightjar/core/error.hpp"

namespace nightjar::test {
namespace fs = std::filesystem;

namespace {

// "" and "." are both the root.
fs::path dir_key(const fs::path& p) {
    fs::path n = p.lexically_normal();
    return n == "." ? fs::path() : n;
}

}  // namespace

struct FaultyStorage::State {
    explicit State(Storage& s) : inner(s) {}

    struct Pending {
        enum What { Write, Rename, MakeDir } what;
        fs::path a;  // the file, the rename's source, the new directory
        fs::path b;  // the rename's target
    };

    Storage& inner;
    FaultPlan plan;
    int mutations = 0;
    int writes = 0;
    int syncs = 0;
    bool dead = false;
    std::string crashed_during;
    std::vector<Pending> pending;
    std::recursive_mutex mutex;

    void alive() {
        if (dead) throw SimulatedCrash("storage gone: the process crashed during " + crashed_during);
    }
    // Counts one mutating call, crashing instead of it when the plan says so.
    void mutation(const std::string& what) {
        std::lock_guard<std::recursive_mutex> g(mutex);
        alive();
        ++mutations;
        if (plan.crash_at == mutations) crash(what);
    }
    [[noreturn]] void crash(const std::string& what) {
        // What the machine would not have kept, newest first.
        for (auto it = pending.rbegin(); it != pending.rend(); ++it) {
            try {
                switch (it->what) {
                    case Pending::Write:
                        inner.remove(it->a);
                        break;
                    case Pending::Rename:
                        inner.rename(it->b, it->a);
                        break;
                    case Pending::MakeDir:
                        inner.remove_tree(it->a);
                        break;
                }
            } catch (const std::exception&) {
                // Undo is best effort: what cannot be undone stays, as on a disk that kept more.
            }
        }
        pending.clear();
        dead = true;
        crashed_during = what + " (storage call " + std::to_string(mutations) + ")";
        throw SimulatedCrash("simulated crash during " + crashed_during);
    }
    void fail(const char* what, const fs::path& rel) {
        errno = plan.error;
        throw_errno(Kind::Storage, what, inner.describe(rel));
    }
    bool sync_fails() {
        std::lock_guard<std::recursive_mutex> g(mutex);
        return plan.fail_sync == ++syncs;
    }
    bool write_fails() {
        std::lock_guard<std::recursive_mutex> g(mutex);
        return plan.fail_write == ++writes;
    }
    void add(Pending p) {
        std::lock_guard<std::recursive_mutex> g(mutex);
        pending.push_back(std::move(p));
    }
};

namespace {

using State = FaultyStorage::State;

class FaultyReader final : public io::Reader {
public:
    FaultyReader(std::shared_ptr<State> state, std::unique_ptr<io::Reader> inner)
        : state_(std::move(state)), inner_(std::move(inner)) {}
    std::size_t read(io::MutableBytes buf) override {
        {
            std::lock_guard<std::recursive_mutex> g(state_->mutex);
            state_->alive();
        }
        if (state_->plan.short_reads && buf.size() > state_->plan.short_reads)
            buf = buf.first(state_->plan.short_reads);
        return inner_->read(buf);
    }

private:
    std::shared_ptr<State> state_;
    std::unique_ptr<io::Reader> inner_;
};

class FaultyWriter final : public io::Writer {
public:
    FaultyWriter(std::shared_ptr<State> state, std::unique_ptr<io::Writer> inner, fs::path rel,
                 WriteOptions options)
        : state_(std::move(state)), inner_(std::move(inner)), rel_(std::move(rel)), options_(options) {}
    void write(io::Bytes data) override {
        state_->mutation("write " + rel_.string());
        if (state_->write_fails()) state_->fail("write failed", rel_);
        inner_->write(data);
    }
    void finish() override {
        state_->mutation("finish " + rel_.string());
        if (options_.sync && state_->sync_fails()) state_->fail("fsync failed", rel_);
        inner_->finish();
        if (!options_.sync) state_->add({State::Pending::Write, rel_, {}});
    }

private:
    std::shared_ptr<State> state_;
    std::unique_ptr<io::Writer> inner_;
    fs::path rel_;
    WriteOptions options_;
};

}  // namespace

FaultyStorage::FaultyStorage(Storage& inner, FaultPlan plan) : state_(std::make_shared<State>(inner)) {
    state_->plan = plan;
}

FaultyStorage::~FaultyStorage() = default;

void FaultyStorage::set_plan(FaultPlan plan) {
    std::lock_guard<std::recursive_mutex> g(state_->mutex);
    state_->plan = plan;
    state_->mutations = state_->writes = state_->syncs = 0;
}

bool FaultyStorage::crashed() const {
    std::lock_guard<std::recursive_mutex> g(state_->mutex);
    return state_->dead;
}

void FaultyStorage::revive() {
    std::lock_guard<std::recursive_mutex> g(state_->mutex);
    state_->dead = false;
    state_->plan = {};
    state_->mutations = state_->writes = state_->syncs = 0;
    state_->pending.clear();
}

int FaultyStorage::mutations() const {
    std::lock_guard<std::recursive_mutex> g(state_->mutex);
    return state_->mutations;
}

std::string FaultyStorage::crashed_during() const {
    std::lock_guard<std::recursive_mutex> g(state_->mutex);
    return state_->crashed_during;
}

StorageCapabilities FaultyStorage::capabilities() const {
    return state_->inner.capabilities();
}

std::unique_ptr<io::Reader> FaultyStorage::open_read(const fs::path& rel, ReadRange range) const {
    {
        std::lock_guard<std::recursive_mutex> g(state_->mutex);
        state_->alive();
    }
    return std::make_unique<FaultyReader>(state_, state_->inner.open_read(rel, range));
}

RegularFile FaultyStorage::open_regular(const fs::path& rel) const {
    {
        std::lock_guard<std::recursive_mutex> g(state_->mutex);
        state_->alive();
    }
    RegularFile f = state_->inner.open_regular(rel);
    if (f.reader) f.reader = std::make_unique<FaultyReader>(state_, std::move(f.reader));
    return f;
}

std::unique_ptr<io::Writer> FaultyStorage::open_write(const fs::path& rel, WriteOptions options) {
    state_->mutation("open_write " + rel.string());
    return std::make_unique<FaultyWriter>(state_, state_->inner.open_write(rel, options), rel, options);
}

std::vector<Entry> FaultyStorage::list(const fs::path& dir) const {
    {
        std::lock_guard<std::recursive_mutex> g(state_->mutex);
        state_->alive();
    }
    return state_->inner.list(dir);
}

std::vector<Entry> FaultyStorage::list_prefix(const std::string& prefix) const {
    {
        std::lock_guard<std::recursive_mutex> g(state_->mutex);
        state_->alive();
    }
    return state_->inner.list_prefix(prefix);
}

std::optional<Entry> FaultyStorage::stat(const fs::path& rel) const {
    {
        std::lock_guard<std::recursive_mutex> g(state_->mutex);
        state_->alive();
    }
    return state_->inner.stat(rel);
}

void FaultyStorage::make_dir(const fs::path& rel) {
    state_->mutation("make_dir " + rel.string());
    // The outermost directory this creates is lost with its parent's unsynced entry.
    fs::path created;
    if (state_->inner.capabilities().directory_sync) {
        fs::path p;
        for (const auto& part : dir_key(rel)) {
            p /= part;
            if (!state_->inner.stat(p)) {
                created = p;
                break;
            }
        }
    }
    state_->inner.make_dir(rel);
    if (!created.empty()) state_->add({State::Pending::MakeDir, created, {}});
}

void FaultyStorage::rename(const fs::path& from, const fs::path& to) {
    state_->mutation("rename " + from.string() + " -> " + to.string());
    state_->inner.rename(from, to);
    if (state_->inner.capabilities().directory_sync) state_->add({State::Pending::Rename, from, to});
}

void FaultyStorage::remove(const fs::path& rel) {
    state_->mutation("remove " + rel.string());
    state_->inner.remove(rel);
}

void FaultyStorage::remove_tree(const fs::path& rel) {
    state_->mutation("remove_tree " + rel.string());
    state_->inner.remove_tree(rel);
}

void FaultyStorage::sync_dir(const fs::path& rel) {
    state_->mutation("sync_dir " + rel.string());
    if (state_->sync_fails()) state_->fail("fsync failed", rel);
    state_->inner.sync_dir(rel);
    std::lock_guard<std::recursive_mutex> g(state_->mutex);
    const fs::path dir = dir_key(rel);
    auto& p = state_->pending;
    p.erase(std::remove_if(p.begin(), p.end(),
                           [&](const State::Pending& e) {
                               if (e.what == State::Pending::Rename) return dir_key(e.b.parent_path()) == dir;
                               if (e.what == State::Pending::MakeDir)
                                   return dir_key(e.a.parent_path()) == dir;
                               return false;  // unsynced data stays unsynced
                           }),
            p.end());
}

LockAttempt FaultyStorage::try_lock(const fs::path& rel, const LockOptions& options) const {
    {
        std::lock_guard<std::recursive_mutex> g(state_->mutex);
        state_->alive();
    }
    return state_->inner.try_lock(rel, options);
}

std::optional<std::uint64_t> FaultyStorage::free_space() const {
    return state_->inner.free_space();
}

std::string FaultyStorage::describe(const fs::path& rel) const {
    return state_->inner.describe(rel);
}

}  // namespace nightjar::test
