#include "nightjar/repo/memory_storage.hpp"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "nightjar/core/clock.hpp"
#include "nightjar/core/error.hpp"

namespace nightjar {
namespace fs = std::filesystem;

namespace {

struct Object {
    std::shared_ptr<const std::string> data;
    std::int64_t mtime = 0;
    std::uint64_t version = 0;  // unique per write: the stamp
};

struct LockState {
    int shared = 0;
    bool exclusive = false;
    std::string holder;
};

}  // namespace

struct MemoryStorage::State {
    std::mutex mutex;
    std::map<std::string, Object> objects;
    std::map<std::string, LockState> locks;
    std::uint64_t next_version = 1;
};

namespace {

using State = MemoryStorage::State;

// The key of a relative path: '/' separated, no "." parts; "" is the root. Unsafe paths are refused as
// PosixStorage refuses them.
std::string key_of(const fs::path& rel) {
    if (rel.empty() || rel == ".") return "";
    if (!is_safe_relative(rel)) throw Error(Kind::Internal, "storage: refusing unsafe path: " + rel.string());
    std::string key;
    for (const auto& part : rel) {
        const std::string p = part.string();
        if (p.empty() || p == ".") continue;
        if (!key.empty()) key += '/';
        key += p;
    }
    return key;
}

// The key prefix of everything below `key` ("" for the root).
std::string below(const std::string& key) {
    return key.empty() ? "" : key + "/";
}

bool has_below(const State& s, const std::string& key) {
    const std::string prefix = below(key);
    auto it = s.objects.lower_bound(prefix);
    return it != s.objects.end() && it->first.rfind(prefix, 0) == 0;
}

class StringReader final : public io::Reader {
public:
    StringReader(std::shared_ptr<const std::string> data, std::size_t offset, std::size_t end)
        : data_(std::move(data)), pos_(offset), end_(end) {}
    std::size_t read(io::MutableBytes buf) override {
        const std::size_t n = std::min(buf.size(), end_ - pos_);
        std::copy_n(reinterpret_cast<const std::byte*>(data_->data()) + pos_, n, buf.data());
        pos_ += n;
        return n;
    }

private:
    std::shared_ptr<const std::string> data_;  // a snapshot: a later write does not change what is read
    std::size_t pos_;
    std::size_t end_;
};

class MemoryWriter final : public io::Writer {
public:
    MemoryWriter(std::shared_ptr<State> state, std::string key, std::string shown, WriteOptions options)
        : state_(std::move(state)), key_(std::move(key)), shown_(std::move(shown)), options_(options) {}
    void write(io::Bytes data) override {
        if (done_) throw Error(Kind::Internal, "storage: write after finish: " + shown_);
        buf_.append(reinterpret_cast<const char*>(data.data()), data.size());
    }
    void finish() override {
        if (done_) return;
        std::lock_guard<std::mutex> g(state_->mutex);
        if (options_.create_only && state_->objects.count(key_))
            throw StorageExists(
                Kind::Storage,
                "cannot create: " + shown_ + ": it exists already (create-only write); nothing was changed");
        Object& o = state_->objects[key_];
        o.data = std::make_shared<const std::string>(std::move(buf_));
        o.mtime = unix_now();
        o.version = state_->next_version++;
        done_ = true;
    }

private:
    std::shared_ptr<State> state_;
    std::string key_;
    std::string shown_;
    WriteOptions options_;
    std::string buf_;
    bool done_ = false;
};

class MemoryLock final : public StorageLock {
public:
    MemoryLock(std::shared_ptr<State> state, std::string key, bool exclusive)
        : state_(std::move(state)), key_(std::move(key)), exclusive_(exclusive) {}
    ~MemoryLock() override {
        std::lock_guard<std::mutex> g(state_->mutex);
        LockState& l = state_->locks[key_];
        if (exclusive_) {
            l.exclusive = false;
            l.holder.clear();
        } else {
            --l.shared;
        }
    }

private:
    std::shared_ptr<State> state_;
    std::string key_;
    bool exclusive_;
};

}  // namespace

MemoryStorage::MemoryStorage(MemoryStorageOptions options)
    : options_(std::move(options)), state_(std::make_shared<State>()) {}

MemoryStorage::~MemoryStorage() = default;

StorageCapabilities MemoryStorage::capabilities() const {
    return {.rename = options_.rename,
            .directory_sync = false,
            .advisory_lock = options_.advisory_lock,
            .free_space = false};
}

std::string MemoryStorage::describe(const fs::path& rel) const {
    return options_.label + key_of(rel);
}

RegularFile MemoryStorage::open_regular(const fs::path& rel) const {
    const std::string key = key_of(rel);
    std::lock_guard<std::mutex> g(state_->mutex);
    RegularFile out;
    auto it = state_->objects.find(key);
    if (it == state_->objects.end()) {
        if (key.empty() || has_below(*state_, key))
            out.not_regular = "a directory";
        else
            out.missing = true;
        return out;
    }
    out.size = it->second.data->size();
    out.reader = std::make_unique<StringReader>(it->second.data, 0, it->second.data->size());
    return out;
}

std::unique_ptr<io::Reader> MemoryStorage::open_read(const fs::path& rel, ReadRange range) const {
    const std::string key = key_of(rel);
    std::lock_guard<std::mutex> g(state_->mutex);
    auto it = state_->objects.find(key);
    if (it == state_->objects.end()) {
        if (key.empty() || has_below(*state_, key))
            throw Error(Kind::Verification,
                        describe(rel) + ": is a directory, not a regular file: refusing to read it");
        throw Error(Kind::Verification, "cannot open: " + describe(rel) + ": no such file");
    }
    const std::size_t size = it->second.data->size();
    const std::size_t offset = static_cast<std::size_t>(std::min<std::uint64_t>(range.offset, size));
    std::size_t end = size;
    if (range.length && *range.length < size - offset) end = offset + static_cast<std::size_t>(*range.length);
    return std::make_unique<StringReader>(it->second.data, offset, end);
}

std::unique_ptr<io::Writer> MemoryStorage::open_write(const fs::path& rel, WriteOptions options) {
    const std::string key = key_of(rel);
    if (key.empty()) throw Error(Kind::Internal, "storage: cannot write the root: " + describe(rel));
    {
        std::lock_guard<std::mutex> g(state_->mutex);
        if (options.create_only && state_->objects.count(key))
            throw StorageExists(Kind::Storage,
                                "cannot create: " + describe(rel) +
                                    ": it exists already (create-only write); nothing was changed");
    }
    return std::make_unique<MemoryWriter>(state_, key, describe(rel), options);
}

std::vector<Entry> MemoryStorage::list(const fs::path& dir) const {
    const std::string prefix = below(key_of(dir));
    std::lock_guard<std::mutex> g(state_->mutex);
    std::vector<Entry> out;
    for (auto it = state_->objects.lower_bound(prefix);
         it != state_->objects.end() && it->first.rfind(prefix, 0) == 0; ++it) {
        const std::string rest = it->first.substr(prefix.size());
        const auto slash = rest.find('/');
        if (slash == std::string::npos) {
            out.push_back({rest, false, it->second.data->size(), "", 0});
            continue;
        }
        const std::string sub = rest.substr(0, slash);
        if (out.empty() || out.back().name != sub || !out.back().is_dir) out.push_back({sub, true, 0, "", 0});
    }
    return out;
}

std::vector<Entry> MemoryStorage::list_prefix(const std::string& prefix) const {
    std::lock_guard<std::mutex> g(state_->mutex);
    std::vector<Entry> out;
    for (auto it = state_->objects.lower_bound(prefix);
         it != state_->objects.end() && it->first.rfind(prefix, 0) == 0; ++it)
        out.push_back({it->first, false, it->second.data->size(), "v" + std::to_string(it->second.version),
                       it->second.mtime});
    return out;
}

std::optional<Entry> MemoryStorage::stat(const fs::path& rel) const {
    const std::string key = key_of(rel);
    const std::string name = key.substr(key.rfind('/') == std::string::npos ? 0 : key.rfind('/') + 1);
    std::lock_guard<std::mutex> g(state_->mutex);
    if (auto it = state_->objects.find(key); it != state_->objects.end())
        return Entry{name, false, it->second.data->size(), "v" + std::to_string(it->second.version),
                     it->second.mtime};
    if (key.empty()) return Entry{name, true, 0, "", 0};
    const std::string prefix = below(key);
    std::optional<Entry> dir;
    for (auto it = state_->objects.lower_bound(prefix);
         it != state_->objects.end() && it->first.rfind(prefix, 0) == 0; ++it) {
        if (!dir) dir = Entry{name, true, 0, "", 0};
        dir->mtime = std::max(dir->mtime, it->second.mtime);
    }
    return dir;
}

void MemoryStorage::make_dir(const fs::path& rel) {
    (void)key_of(rel);  // no directories: only the path is checked
}

void MemoryStorage::rename(const fs::path& from, const fs::path& to) {
    if (!options_.rename)
        throw Error(Kind::Internal, "storage has no rename: " + describe(from) + " -> " + describe(to));
    const std::string a = key_of(from), b = key_of(to);
    std::lock_guard<std::mutex> g(state_->mutex);
    if (state_->objects.count(b) || has_below(*state_, b))
        throw Error(Kind::Storage,
                    "rename failed: " + describe(from) + " -> " + describe(to) + ": target exists");
    if (auto it = state_->objects.find(a); it != state_->objects.end()) {
        state_->objects[b] = it->second;
        state_->objects.erase(it);
        return;
    }
    const std::string pa = below(a), pb = below(b);
    std::vector<std::string> moving;
    for (auto it = state_->objects.lower_bound(pa);
         it != state_->objects.end() && it->first.rfind(pa, 0) == 0; ++it)
        moving.push_back(it->first);
    if (moving.empty())
        throw Error(Kind::Storage,
                    "rename failed: " + describe(from) + " -> " + describe(to) + ": no such file");
    for (const auto& k : moving) {
        state_->objects[pb + k.substr(pa.size())] = state_->objects[k];
        state_->objects.erase(k);
    }
}

void MemoryStorage::remove(const fs::path& rel) {
    const std::string key = key_of(rel);
    std::lock_guard<std::mutex> g(state_->mutex);
    state_->objects.erase(key);
}

void MemoryStorage::remove_tree(const fs::path& rel) {
    const std::string key = key_of(rel);
    std::lock_guard<std::mutex> g(state_->mutex);
    if (key.empty()) {
        state_->objects.clear();
        return;
    }
    state_->objects.erase(key);
    const std::string prefix = below(key);
    auto it = state_->objects.lower_bound(prefix);
    while (it != state_->objects.end() && it->first.rfind(prefix, 0) == 0) it = state_->objects.erase(it);
}

void MemoryStorage::sync_dir(const fs::path& rel) {
    (void)key_of(rel);  // every finished write is durable already
}

LockAttempt MemoryStorage::try_lock(const fs::path& rel, const LockOptions& options) const {
    if (!options_.advisory_lock) return Storage::try_lock(rel, options);
    const std::string key = key_of(rel);
    std::lock_guard<std::mutex> g(state_->mutex);
    LockState& l = state_->locks[key];
    if (l.exclusive || (options.exclusive && l.shared > 0)) return {nullptr, l.exclusive ? l.holder : ""};
    if (options.exclusive) {
        l.exclusive = true;
        if (options.record_holder) l.holder = std::to_string(::getpid());
    } else {
        ++l.shared;
    }
    return {std::make_unique<MemoryLock>(state_, key, options.exclusive), ""};
}

}  // namespace nightjar
