#pragma once
// Capturing a snapshot from a running server: SYNC over the replication protocol (what `redis-cli --rdb`
// does), or, when the server refuses it, BGSAVE and a copy of the server's own dump file when that file is
// readable here.
#include <functional>
#include <optional>
#include <string>

#include "nightjar/components/redis/client.hpp"
#include "nightjar/components/redis/config.hpp"
#include "nightjar/components/redis/rdb_check.hpp"
#include "nightjar/io/stream.hpp"

namespace nightjar::redis {

struct CaptureResult {
    std::string method;        // "sync" or "bgsave"
    std::string transfer;      // "diskless" (EOF mark), "disk" (sized bulk) or the local file copied
    std::string sync_refused;  // why SYNC was refused, when the fallback ran
    RdbSummary rdb;            // the verdict of the streaming check (ok() on success)
};

// Streams the RDB, and only the RDB, into `out`. A damaged snapshot, a refusal without a usable fallback, or
// a transfer cut short throws Kind::SourceUnavailable naming the server and what to do. `tick` runs between
// reads with the bytes captured so far.
CaptureResult capture_snapshot(const RedisConfig& config, const std::optional<std::string>& password,
                               io::Writer& out, const std::function<void(std::uint64_t)>& tick);

}  // namespace nightjar::redis
