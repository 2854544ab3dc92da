#include "nightjar/run/offsite_lease.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "nightjar/core/clock.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/repo/s3/s3_storage.hpp"
#include "nightjar/run/repository_config.hpp"

namespace nightjar {
using nlohmann::json;

namespace {

struct Holder {
    std::string host, backup_id, taken_at;
    std::int64_t pid = 0, expires = 0;
    std::string describe() const {
        return "host " + host + " pid " + std::to_string(pid) + " (since " + taken_at + ")";
    }
};

std::optional<Holder> read_holder(const Storage& storage, const std::string& name) {
    std::string text;
    try {
        auto in = storage.open_read(name, {.offset = 0, .length = 64u << 10});
        std::vector<std::byte> buf(8192);
        while (std::size_t n = in->read(buf)) text.append(io::as_chars({buf.data(), n}));
    } catch (const Error&) {
        return std::nullopt;  // gone meanwhile
    }
    Holder h;
    try {
        json j = parse_json_document(text, "lease " + storage.describe(name), Kind::Storage);
        h.host = j.value("host", "");
        h.pid = j.value("pid", std::int64_t{0});
        h.backup_id = j.value("backup_id", "");
        h.taken_at = j.value("taken_at", "");
        h.expires = j.value("expires_at_unix", std::int64_t{0});
    } catch (const Error&) {
        h.expires = 0;  // unreadable: stale
    }
    return h;
}

bool gone_here(const Holder& h) {
    return h.host == local_host_name() && h.pid > 0 && ::kill(static_cast<pid_t>(h.pid), 0) != 0 &&
           errno == ESRCH;
}

}  // namespace

struct BackupLease::Held {
    s3::S3Storage* storage = nullptr;
    std::string name, key;
    json body;
    std::int64_t stale_after_s = 0;
    mutable std::mutex mutex;  // etag, lost, renewals, stop; a renewal and check() never interleave
    std::condition_variable cv;
    std::string etag;  // of our last write
    std::string lost;  // non-empty: who took it over (the LockHeld message)
    int renewals = 0;
    bool stop = false;
    std::thread renewer;

    std::string lost_message(const std::string& why) const {
        auto holder = read_holder(*storage, name);
        return "backup lease " + storage->describe(name) + " " + why +
               (holder ? ": it is now held by " + holder->describe() : ": it is gone") +
               ": this run stops without publishing (a run longer than repository.lease_stale_minutes, "
               "or a store this run could not reach to renew it, lets another run take over)";
    }

    std::string put(const std::string& text, const s3::PutOptions& o) const {
        return storage->client().put_object(storage->bucket(), key, s3::MemoryBody(io::as_bytes(text)), o);
    }
    bool if_match_works = true;  // until the store refuses a matching If-Match once

    // The object as it is now: its ETag and text; nullopt when it is gone or cannot be read.
    std::optional<std::pair<std::string, std::string>> current() const {
        try {
            auto info = storage->client().head_object(storage->bucket(), key);
            if (!info) return std::nullopt;
            auto in = storage->open_read(name, {.offset = 0, .length = 64u << 10});
            std::string text;
            std::vector<std::byte> buf(8192);
            while (std::size_t n = in->read(buf)) text.append(io::as_chars({buf.data(), n}));
            return std::pair{info->etag, text};
        } catch (const Error&) {
            return std::nullopt;
        }
    }

    // One renewal: If-Match on our last ETag, or, where the store refuses If-Match (radosgw 16.2 answers
    // 412 to every If-Match PUT on a versioned bucket, which every object-lock bucket is), a read-compare
    // then an unconditional write. Sets `lost` when the lease is another run's now.
    void renew_once(const std::string& text) {
        const s3::PutOptions plain{.content_type = "application/json"};
        if (if_match_works) {
            try {
                etag = put(text, {.if_match = etag, .content_type = "application/json"});
                ++renewals;
                return;
            } catch (const s3::PreconditionFailedError&) {
            }
        }
        auto now = current();
        if (now && now->first == etag) {
            if (if_match_works)
                log::info(
                    "backup lease ", storage->describe(name),
                    ": the store refuses If-Match on it although the ETag is ours (radosgw on a versioned "
                    "bucket): renewing by read-compare");
            if_match_works = false;
            etag = put(text, plain);
            ++renewals;
            return;
        }
        if (now && now->second == text) {  // a retried write that had landed, its reply lost
            etag = now->first;
            ++renewals;
            return;
        }
        lost = lost_message("was taken over by another run");
        log::error(lost);
    }

    void renew_loop() {
        const auto every = std::chrono::milliseconds(std::max<std::int64_t>(stale_after_s * 1000 / 4, 250));
        std::unique_lock lock(mutex);
        while (!cv.wait_for(lock, every, [&] { return stop; })) {
            const std::int64_t now = unix_now();
            body["renewed_at"] = rfc3339_utc(now);
            body["expires_at"] = rfc3339_utc(now + stale_after_s);
            body["expires_at_unix"] = now + stale_after_s;
            try {
                renew_once(body.dump());
                if (!lost.empty()) return;
                log::debug("backup lease ", storage->describe(name), " renewed until ",
                           rfc3339_utc(now + stale_after_s));
            } catch (const std::exception& e) {
                log::warn("backup lease ", storage->describe(name), ": cannot renew it: ", e.what(),
                          ": trying again in ", every.count(), " ms");
            }
        }
    }
};

BackupLease::BackupLease() = default;

void BackupLease::take(Storage& storage, const std::string& backup_id, std::int64_t stale_after_s) {
    auto* s3 = dynamic_cast<s3::S3Storage*>(&storage);
    if (!s3) return;
    const std::string host = local_host_name();
    const std::string name = std::string(kLeaseDir) + "/" + host + ".json";
    const std::int64_t now = unix_now();
    auto held = std::make_unique<Held>();
    held->storage = s3;
    held->name = name;
    held->key = s3->key(name);
    held->stale_after_s = stale_after_s;
    held->body = json{{"host", host},
                      {"pid", static_cast<std::int64_t>(::getpid())},
                      {"backup_id", backup_id},
                      {"taken_at", rfc3339_utc(now)},
                      {"renewed_at", rfc3339_utc(now)},
                      {"expires_at", rfc3339_utc(now + stale_after_s)},
                      {"expires_at_unix", now + stale_after_s}};
    for (int attempt = 0; attempt < 2; ++attempt) {
        try {
            // radosgw 16.2 ignores If-None-Match: * on a versioned bucket (every object-lock bucket is) and
            // replaces the object: look first, so a live holder is found there too (a run racing in the
            // moment between is caught by check() before publish: only the last writer publishes).
            if (s3->client().head_object(s3->bucket(), held->key))
                throw s3::ObjectExistsError("backup lease exists", 412, "PreconditionFailed");
            held->etag =
                held->put(held->body.dump(), {.create_only = true, .content_type = "application/json"});
            Held* h = held.get();
            h->renewer = std::thread([h] { h->renew_loop(); });
            held_ = std::move(held);
            return;
        } catch (const s3::ObjectExistsError&) {
        }
        auto holder = read_holder(storage, name);
        if (!holder) continue;  // released meanwhile: try again
        if (holder->expires > now && !gone_here(*holder))
            throw Error(Kind::LockHeld,
                        "backup lease " + storage.describe(name) + " is held by " + holder->describe() +
                            ": another run of this host is backing up, so this one stops; it is stale "
                            "after repository.lease_stale_minutes");
        log::warn("backup lease ", storage.describe(name), " of ", holder->describe(),
                  " is stale: taken over");
        storage.remove(name);
    }
    throw Error(Kind::LockHeld, "backup lease " + storage.describe(name) +
                                    ": another run took it at the same moment, so this one stops");
}

bool BackupLease::held() const {
    return held_ != nullptr;
}

int BackupLease::renewals() const {
    if (!held_) return 0;
    std::lock_guard lock(held_->mutex);
    return held_->renewals;
}

void BackupLease::check() const {
    if (!held_) return;
    Held& h = *held_;
    std::lock_guard lock(h.mutex);
    if (h.lost.empty()) {
        // Read-compare as well: a takeover since the last renewal shows as another ETag.
        auto info = h.storage->client().head_object(h.storage->bucket(), h.key);
        if (!info)
            h.lost = h.lost_message("was removed by another run");
        else if (info->etag != h.etag)
            h.lost = h.lost_message("was rewritten by another run");
    }
    if (!h.lost.empty()) throw Error(Kind::LockHeld, h.lost);
}

BackupLease::~BackupLease() {
    if (!held_) return;
    Held& h = *held_;
    {
        std::lock_guard lock(h.mutex);
        h.stop = true;
    }
    h.cv.notify_all();
    if (h.renewer.joinable()) h.renewer.join();
    if (!h.lost.empty()) return;  // another run's lease now: not ours to remove
    try {
        auto info = h.storage->client().head_object(h.storage->bucket(), h.key);
        if (info && info->etag == h.etag) h.storage->remove(h.name);
    } catch (const std::exception& e) {
        log::warn("cannot release the backup lease ", h.storage->describe(h.name), ": ", e.what(),
                  ": the next run takes it over once it is stale");
    }
}

}  // namespace nightjar
