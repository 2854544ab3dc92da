#pragma once
// Loading an RDB into a running server without restarting it: a temporary redis-server (unix socket,
// appendonly no, no saves) loads the file in a private directory, then the target gets its data one of two
// ways:
// - by replication, when the target is to be emptied (`flush`) and allows it: the temporary server opens a
//   loopback port behind a random password, the target is pointed at it (masterauth, REPLICAOF), does one
//   full sync at the speed of loading a file, and is detached (REPLICAOF NO ONE) with its own masterauth and
//   masteruser put back. Refused, with the reason, when the target is a replica, is in cluster mode,
//   replicates over TLS, is not on this host, or may not run CONFIG/REPLICAOF: then
// - key by key: DUMP + PEXPIRETIME -> RESTORE ... REPLACE ABSTTL, pipelined in batches on both sides with the
//   target's replies read one batch late (no per-key round trip), so expiry times stay absolute.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "nightjar/components/redis/client.hpp"

namespace nightjar::redis {

struct LiveLoadOptions {
    std::string server_binary = "redis-server";  // the temporary server (found on PATH)
    int load_timeout_s = 600;                    // how long the temporary server may take to load the file
    std::size_t batch_keys = 2000;               // SCAN COUNT, and keys per pipelined batch
    std::size_t batch_bytes = 8 << 20;           // flush RESTOREs to the target past this many payload bytes
    bool flush = false;        // empty the target first (--redis-flush): a full sync, else FLUSHALL
    bool replicate = true;     // with `flush`: load by replication when the target allows it
    int sync_timeout_s = 600;  // replication: how long the target may take to finish the full sync
};

struct LiveLoadResult {
    Keyspace loaded;                        // what the temporary server held after loading the file
    std::uint64_t keys_copied = 0;          // RESTOREs the target accepted
    std::map<int, std::uint64_t> replaced;  // per db: keys the target already held that the backup replaced
    std::uint64_t keys_expired = 0;         // keys that expired before they could be copied
    std::uint64_t functions = 0;            // function libraries restored (Redis 7+)
    std::string temp_server_version;        // of the temporary redis-server
    std::string method;                     // "replication" or "dump-restore"
    std::string replication_refused;        // with flush: why the target was not loaded by replication
    std::uint64_t flushed_keys = 0;         // with flush: keys the target held before (FLUSHALL or sync)
    std::vector<std::string> errors;        // refused RESTOREs (the first few) and other copy failures
    std::uint64_t error_count = 0;
};

// The RDB version the local redis-server writes and reads, and its version string; Kind::RestoreFailed when
// it cannot be run.
std::pair<std::string, int> local_server_version(const std::string& binary);

// Why `target` (at `where`) cannot be loaded by replication from a temporary server on this host, or empty.
// Asks the target (INFO, CONFIG GET, ACL) and changes nothing.
std::string replication_refusal(Connection& target);

// `rdb_file` must be a complete RDB on local disk; its directory becomes the temporary server's working dir.
// Version problems (file newer than the local server, local server newer than the target) are refused
// with Kind::RestoreFailed before anything is written to the target.
LiveLoadResult load_live(const std::filesystem::path& rdb_file, int rdb_version, Connection& target,
                         const LiveLoadOptions& options = {});

}  // namespace nightjar::redis
