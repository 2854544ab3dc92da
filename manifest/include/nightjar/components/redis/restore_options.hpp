#pragma once
// Where and how a Redis restore goes (restore/options.cpp fills it from the flags; a drill fills it itself).
// Every field left at its default loads the snapshot live into the server recorded in the manifest.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "nightjar/components/redis/config.hpp"

namespace nightjar::redis {

enum class RedisRestoreMode {
    Live,  // into a running server, through a temporary redis-server (the default)
    File,  // an RDB file for an operator to install (--redis-mode file, or --redis-rdb-path alone)
};
NLOHMANN_JSON_SERIALIZE_ENUM(RedisRestoreMode,
                             {{RedisRestoreMode::Live, "live"}, {RedisRestoreMode::File, "file"}})

// What a live restore does with a target that already holds keys.
enum class RedisNonEmpty {
    Refuse,  // restore refused, nothing written (the default)
    Flush,   // FLUSHALL first (--redis-flush, --clean)
    Merge,   // load beside its keys; the backup's replace theirs (--redis-merge)
};
NLOHMANN_JSON_SERIALIZE_ENUM(RedisNonEmpty, {{RedisNonEmpty::Refuse, "refuse"},
                                             {RedisNonEmpty::Flush, "flush"},
                                             {RedisNonEmpty::Merge, "merge"}})

struct RedisRestoreOptions {
    RedisRestoreMode mode = RedisRestoreMode::Live;                // live into a server, or an RDB file
    std::optional<std::filesystem::path> rdb_path = std::nullopt;  // file mode: where to write the RDB
    bool force = false;                                            // file mode: overwrite an existing file
    RedisNonEmpty non_empty = RedisNonEmpty::Refuse;               // live mode: a target that holds keys
    std::optional<redis::Endpoint> target = std::nullopt;          // live mode: the server to load, whole
                                                                   // (default: the recorded endpoint)
    std::string host = "";                                         // live mode: override the recorded host
    int port = 0;                                               // live mode: override the recorded port (> 0)
    std::optional<redis::Endpoint> credentials = std::nullopt;  // the config's endpoint: its credentials and
                                                                // renamed commands (not its address)

    bool overrides_endpoint() const { return target || !host.empty() || port > 0; }
};

inline void to_json(nlohmann::json& j, const RedisRestoreOptions& o) {
    j = {{"mode", o.mode},   {"rdb_path", o.rdb_path ? o.rdb_path->string() : ""},
         {"force", o.force}, {"non_empty", o.non_empty},
         {"host", o.host},   {"port", o.port}};
}

}  // namespace nightjar::redis
