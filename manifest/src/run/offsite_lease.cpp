#include "nightjar/run/offsite_lease.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

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

bool create(Storage& storage, const std::string& name, const std::string& body) {
    try {
        auto out = storage.open_write(name, {.atomic = true, .sync = true, .create_only = true});
        out->write(io::as_bytes(body));
        out->finish();
        return true;
    } catch (const StorageExists&) {
        return false;
    }
}

}  // namespace

void BackupLease::take(Storage& storage, const std::string& backup_id, std::int64_t stale_after_s) {
    if (!dynamic_cast<s3::S3Storage*>(&storage)) return;
    const std::string host = local_host_name();
    const std::string name = std::string(kLeaseDir) + "/" + host + ".json";
    const std::int64_t now = unix_now();
    json body{{"host", host},
              {"pid", static_cast<std::int64_t>(::getpid())},
              {"backup_id", backup_id},
              {"taken_at", rfc3339_utc(now)},
              {"expires_at", rfc3339_utc(now + stale_after_s)},
              {"expires_at_unix", now + stale_after_s}};
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (create(storage, name, body.dump())) {
            storage_ = &storage;
            name_ = name;
            return;
        }
        auto holder = read_holder(storage, name);
        if (!holder) continue;  // released meanwhile: try again
        if (holder->expires > now && !gone_here(*holder))
            throw Error(Kind::LockHeld,
                        "backup lease " + storage.describe(name) + " is held by host " + holder->host +
                            " pid " + std::to_string(holder->pid) + " (since " + holder->taken_at +
                            "): another run of this host is backing up, so this one stops; it is stale "
                            "after repository.lease_stale_minutes");
        log::warn("backup lease ", storage.describe(name), " of host ", holder->host, " pid ", holder->pid,
                  " (since ", holder->taken_at, ") is stale: taken over");
        storage.remove(name);
    }
    throw Error(Kind::LockHeld, "backup lease " + storage.describe(name) +
                                    ": another run took it at the same moment, so this one stops");
}

BackupLease::~BackupLease() {
    if (!storage_) return;
    try {
        storage_->remove(name_);
    } catch (const std::exception& e) {
        log::warn("cannot release the backup lease ", storage_->describe(name_), ": ", e.what(),
                  ": the next run takes it over once it is stale");
    }
}

}  // namespace nightjar
