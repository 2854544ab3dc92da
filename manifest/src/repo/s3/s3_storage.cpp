#include "nightjar/repo/s3/s3_storage.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>

#include "nightjar/repo/manifest.hpp"

namespace nightjar::s3 {

namespace fs = std::filesystem;

namespace {

// A bounded hand-over between the thread running a GET and the Reader the caller pulls from.
struct Pipe {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<std::vector<std::byte>> chunks;
    std::size_t head_pos = 0;  // bytes of chunks.front() already read
    std::size_t held = 0;
    std::size_t limit = 0;
    bool started = false;  // the first byte came, or the GET ended
    bool done = false;
    bool cancelled = false;
    std::exception_ptr error;
};

class PipeWriter final : public io::Writer {
public:
    explicit PipeWriter(Pipe& p) : p_(p) {}
    void write(io::Bytes b) override {
        std::unique_lock lock(p_.mutex);
        p_.cv.wait(lock, [&] { return p_.cancelled || p_.held == 0 || p_.held + b.size() <= p_.limit; });
        if (p_.cancelled) throw Error(Kind::Interrupted, "s3: read abandoned");
        if (p_.chunks.empty() || p_.chunks.back().size() >= (256u << 10))
            p_.chunks.emplace_back().reserve(std::max<std::size_t>(b.size(), 256u << 10));
        p_.chunks.back().insert(p_.chunks.back().end(), b.begin(), b.end());
        p_.held += b.size();
        p_.started = true;
        p_.cv.notify_all();
    }
    void finish() override {}

private:
    Pipe& p_;
};

class StreamingRead final : public io::Reader {
public:
    StreamingRead(std::shared_ptr<const Client> client, std::string bucket, std::string key,
                  std::optional<Range> range, std::size_t limit)
        : client_(std::move(client)) {
        pipe_.limit = std::max<std::size_t>(limit, 1u << 20);
        thread_ = std::thread([this, bucket = std::move(bucket), key = std::move(key), range] {
            std::exception_ptr err;
            try {
                PipeWriter w(pipe_);
                client_->get_object(bucket, key, w, range);
            } catch (...) {
                err = std::current_exception();
            }
            std::lock_guard lock(pipe_.mutex);
            pipe_.error = err;
            pipe_.done = pipe_.started = true;
            pipe_.cv.notify_all();
        });
    }
    ~StreamingRead() override {
        {
            std::lock_guard lock(pipe_.mutex);
            pipe_.cancelled = true;
        }
        pipe_.cv.notify_all();
        thread_.join();
    }
    StreamingRead(const StreamingRead&) = delete;
    StreamingRead& operator=(const StreamingRead&) = delete;

    // Waits for the first byte or the end; rethrows a failure that came before any data (a missing key).
    void wait_started() {
        std::unique_lock lock(pipe_.mutex);
        pipe_.cv.wait(lock, [&] { return pipe_.started; });
        if (pipe_.chunks.empty() && pipe_.error) std::rethrow_exception(pipe_.error);
    }

    std::size_t read(io::MutableBytes buf) override {
        if (buf.empty()) return 0;
        std::unique_lock lock(pipe_.mutex);
        pipe_.cv.wait(lock, [&] { return !pipe_.chunks.empty() || pipe_.done; });
        if (pipe_.chunks.empty()) {
            if (pipe_.error) std::rethrow_exception(pipe_.error);
            return 0;
        }
        std::size_t n = 0;
        while (n < buf.size() && !pipe_.chunks.empty()) {
            auto& front = pipe_.chunks.front();
            std::size_t k = std::min(buf.size() - n, front.size() - pipe_.head_pos);
            std::memcpy(buf.data() + n, front.data() + pipe_.head_pos, k);
            n += k;
            pipe_.head_pos += k;
            if (pipe_.head_pos == front.size()) {
                pipe_.chunks.pop_front();
                pipe_.head_pos = 0;
            }
        }
        pipe_.held -= n;
        pipe_.cv.notify_all();
        return n;
    }

private:
    std::shared_ptr<const Client> client_;
    Pipe pipe_;
    std::thread thread_;
};

class S3Write final : public io::Writer {
public:
    S3Write(const Client& client, std::string bucket, std::string key, MultipartOptions options,
            std::string where)
        : inner_(client, std::move(bucket), std::move(key), std::move(options)), where_(std::move(where)) {}
    void write(io::Bytes b) override { inner_.write(b); }
    void finish() override {
        try {
            inner_.finish();
        } catch (const ObjectExistsError&) {
            throw StorageExists(Kind::Storage, "storage: " + where_ +
                                                   ": exists already: a create-only write never "
                                                   "replaces a file: pick another name");
        }
    }

private:
    MultipartWriter inner_;
    std::string where_;
};

bool ends_with_slash(const std::string& s) {
    return !s.empty() && s.back() == '/';
}

}  // namespace

std::int64_t parse_s3_time(const std::string& text) {
    std::tm tm{};
    const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end) end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
    if (!end) return 0;
    return static_cast<std::int64_t>(timegm(&tm));
}

S3Storage::S3Storage(std::shared_ptr<const Client> client, S3StorageOptions options)
    : client_(std::move(client)), options_(std::move(options)) {
    if (options_.bucket.size() < 3)
        throw Error(Kind::Config,
                    "s3: bucket \"" + options_.bucket + "\": a bucket name has at least 3 characters");
    while (!options_.prefix.empty() && options_.prefix.front() == '/') options_.prefix.erase(0, 1);
    if (!options_.prefix.empty() && !ends_with_slash(options_.prefix)) options_.prefix += '/';
}

std::string S3Storage::key(const fs::path& rel) const {
    if (rel.is_absolute()) throw Error(Kind::Internal, "s3 storage: unsafe path (absolute): " + rel.string());
    std::string out;
    for (const auto& part : rel) {
        std::string s = part.string();
        if (s.empty() || s == ".") continue;
        if (s == "..") throw Error(Kind::Internal, "s3 storage: unsafe path (\"..\"): " + rel.string());
        if (!out.empty()) out += '/';
        out += s;
    }
    return options_.prefix + out;
}

std::string S3Storage::describe(const fs::path& rel) const {
    return "s3://" + options_.bucket + "/" + key(rel);
}

std::unique_ptr<io::Reader> S3Storage::open_read(const fs::path& rel, ReadRange range) const {
    std::optional<Range> r;
    if (range.offset > 0 || range.length) r = Range{.offset = range.offset, .length = range.length};
    if (range.length && *range.length == 0) {
        if (!client_->head_object(options_.bucket, key(rel)))
            throw Error(Kind::Verification,
                        "storage: " + describe(rel) + ": missing: the backup is incomplete");
        return std::make_unique<io::EmptyReader>();
    }
    auto reader =
        std::make_unique<StreamingRead>(client_, options_.bucket, key(rel), r, options_.read_buffer);
    try {
        reader->wait_started();
    } catch (const S3Error& e) {
        if (!e.not_found()) throw;
        if (!client_->list_objects(options_.bucket, key(rel) + "/", {.max_keys = 1, .one_page = true})
                 .objects.empty())
            throw Error(Kind::Verification,
                        "storage: " + describe(rel) + ": not a regular file: a directory");
        throw Error(Kind::Verification, "storage: " + describe(rel) + ": missing: the backup is incomplete");
    }
    return reader;
}

std::string backup_of(const fs::path& rel) {
    auto first = rel.begin();
    if (first == rel.end()) return "";
    const std::string top = first->string();
    if (std::next(first) != rel.end()) return is_backup_id(top) ? top : "";
    for (const char* prefix : {"manifest_", "index_"}) {
        if (!top.starts_with(prefix)) continue;
        for (const char* suffix : {".json.age", ".json"}) {
            if (!top.ends_with(suffix)) continue;
            const std::size_t p = std::strlen(prefix), n = top.size() - p - std::strlen(suffix);
            if (top.size() > p + std::strlen(suffix) && is_backup_id(top.substr(p, n)))
                return top.substr(p, n);
        }
    }
    return "";
}

void S3Storage::set_backup_lock(const std::string& id, std::chrono::system_clock::time_point until) {
    std::lock_guard lock(mutex_);
    backup_locks_[id] = until;
}

std::optional<ObjectLock> S3Storage::lock_for(const fs::path& rel) const {
    if (!options_.lock.enabled()) return std::nullopt;
    const std::string id = backup_of(rel);
    if (id.empty()) return std::nullopt;
    auto until = std::chrono::system_clock::now() + std::chrono::hours(24) * options_.lock.days;
    {
        std::lock_guard lock(mutex_);
        if (auto it = backup_locks_.find(id); it != backup_locks_.end()) until = std::max(until, it->second);
    }
    return ObjectLock{.mode = options_.lock.mode, .retain_until = until};
}

std::unique_ptr<io::Writer> S3Storage::open_write(const fs::path& rel, WriteOptions options) {
    MultipartOptions mo = options_.multipart;
    mo.put.create_only = options.create_only;
    mo.put.lock = lock_for(rel);
    return std::make_unique<S3Write>(*client_, options_.bucket, key(rel), std::move(mo), describe(rel));
}

std::vector<Entry> S3Storage::list(const fs::path& dir) const {
    std::string p = key(dir);
    if (!p.empty() && !ends_with_slash(p)) p += '/';
    auto res = client_->list_objects(options_.bucket, p, {.delimiter = "/"});
    std::vector<Entry> out;
    for (const auto& o : res.objects) {
        if (o.key.size() <= p.size()) continue;  // the "directory" key itself
        out.push_back({.name = o.key.substr(p.size()),
                       .size = o.size,
                       .stamp = o.etag,
                       .mtime = parse_s3_time(o.last_modified)});
    }
    for (const auto& cp : res.common_prefixes) {
        std::string name = cp.substr(p.size());
        if (ends_with_slash(name)) name.pop_back();
        if (!name.empty()) out.push_back({.name = name, .is_dir = true});
    }
    return out;
}

std::vector<Entry> S3Storage::list_prefix(const std::string& prefix) const {
    std::string p = options_.prefix + prefix;
    auto res = client_->list_objects(options_.bucket, p);
    std::vector<Entry> out;
    for (const auto& o : res.objects) {
        if (ends_with_slash(o.key)) continue;  // a "directory marker" another tool made
        out.push_back({.name = o.key.substr(options_.prefix.size()),
                       .size = o.size,
                       .stamp = o.etag,
                       .mtime = parse_s3_time(o.last_modified)});
    }
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
    return out;
}

std::optional<Entry> S3Storage::stat(const fs::path& rel) const {
    std::string k = key(rel);
    std::string name = rel.filename().string();
    if (name.empty() || name == ".") name = fs::path(k).filename().string();
    if (!k.empty() && k != options_.prefix) {
        if (auto info = client_->head_object(options_.bucket, k))
            return Entry{.name = name,
                         .size = info->size,
                         .stamp = info->etag,
                         .mtime = parse_s3_time(info->last_modified)};
    }
    std::string p = k;
    if (!p.empty() && !ends_with_slash(p)) p += '/';
    auto res = client_->list_objects(options_.bucket, p, {.delimiter = "", .max_keys = 1000});
    if (res.objects.empty()) return std::nullopt;
    std::int64_t newest = 0;
    for (const auto& o : res.objects) newest = std::max(newest, parse_s3_time(o.last_modified));
    return Entry{.name = name, .is_dir = true, .mtime = newest};
}

void S3Storage::rename(const fs::path& from, const fs::path&) {
    throw Error(Kind::Internal, "s3 storage: rename of " + describe(from) +
                                    ": an object store cannot rename (capability rename is false)");
}

void S3Storage::remove(const fs::path& rel) {
    client_->delete_object(options_.bucket, key(rel));
}

void S3Storage::remove_tree(const fs::path& rel) {
    std::string k = key(rel);
    if (!k.empty() && k != options_.prefix) client_->delete_object(options_.bucket, k);
    std::string p = k;
    if (!p.empty() && !ends_with_slash(p)) p += '/';
    for (const auto& o : client_->list_objects(options_.bucket, p).objects)
        client_->delete_object(options_.bucket, o.key);
}

}  // namespace nightjar::s3
