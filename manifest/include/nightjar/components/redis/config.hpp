#pragma once
// The `redis` config section and how a connection to a server is described.
#include <cstdint>
#include <optional>
#include <string>

#include "nightjar/components/redis/tls.hpp"

namespace nightjar {
class JsonFields;
}  // namespace nightjar

namespace nightjar::redis {}

namespace nightjar::redis {

// Command names as the server knows them (`rename-command` can rename or hide any of them).
struct CommandNames {
    std::string auth = "AUTH";
    std::string ping = "PING";
    std::string info = "INFO";
    std::string replconf = "REPLCONF";
    std::string sync = "SYNC";
    std::string bgsave = "BGSAVE";
    std::string config = "CONFIG";
};

// Where a server is and how to log in. The password itself never lives here: see resolve_password().
struct Endpoint {
    std::string host = "127.0.0.1";  // TCP host; ignored when `socket` is set
    int port = 6379;                 // TCP port
    std::string socket;              // unix socket path; wins over host/port
    std::string user;                // ACL user (Redis 6+); empty = the default user
    std::string password_file;       // file whose first line is the password; REDISCLI_AUTH wins over it
    int connect_timeout_s = 5;       // connecting and the first reply
    int io_timeout_s = 60;           // any later read or write; must exceed repl-diskless-sync-delay + fork
    CommandNames commands;           // renamed commands
    std::optional<TlsConfig> tls;    // TLS to host:port (`redis.tls`); unset = plain TCP

    // "redis 127.0.0.1:6379", "redis 127.0.0.1:6380 (TLS)" or "redis /run/redis.sock", for messages.
    std::string describe() const;
};

struct RedisConfig {
    Endpoint endpoint;  // the server to back up
    std::string fallback =
        "bgsave";                // when SYNC is refused: "bgsave" (BGSAVE + copy the local file) or "none"
    int bgsave_timeout_s = 600;  // how long to wait for BGSAVE to finish
    // The SYNC transfer asked for: "diskless" (the server streams from its fork, after
    // repl-diskless-sync-delay), "disk" (it writes its dump file first, then sends it, with no delay) or
    // "auto" (disk when the server saves RDB files anyway and would otherwise wait a delay).
    std::string transfer = "auto";
};

// Parses the `redis` object of the config file (the pointer names each bad field).
RedisConfig parse_redis_config(const JsonFields& f);

// The password: $REDISCLI_AUTH, else the first line of `password_file`, else none. Kind::Config when the
// file is named but unreadable (its path named, never its content).
std::optional<std::string> resolve_password(const Endpoint& endpoint);

}  // namespace nightjar::redis
