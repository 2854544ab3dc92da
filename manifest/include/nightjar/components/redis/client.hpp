#pragma once
// A thin RAII layer over hiredis 0.14 (synchronous API only): connect (plain, or TLS through TlsTunnel) +
// AUTH, commands with binary-safe arguments, pipelining, INFO parsing, and raw reads of the socket for the
// SYNC transfer.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nightjar/components/redis/config.hpp"
#include "nightjar/io/stream.hpp"

struct redisContext;
struct redisReply;

namespace nightjar::redis {

class Reply {
public:
    explicit Reply(redisReply* r);
    bool is_error() const;
    bool is_nil() const;
    bool is_array() const;
    bool is_integer() const;
    std::string str() const;        // string, status or error text
    std::string_view view() const;  // the same without a copy (valid while the Reply lives)
    long long integer() const;
    std::size_t size() const;            // array length
    Reply element(std::size_t i) const;  // a non-owning view of an array element
private:
    Reply(redisReply* r, bool owned);
    std::shared_ptr<redisReply> r_;
};

struct KeyspaceEntry {
    std::uint64_t keys = 0;
    std::uint64_t expires = 0;
};
using Keyspace = std::map<int, KeyspaceEntry>;  // db index -> counts (only non-empty dbs appear)

class Connection {
public:
    // Connects, sets the I/O timeout and logs in. Kind::SourceUnavailable (`unavailable_kind`) names the
    // endpoint and says what to check; never the password.
    Connection(const Endpoint& endpoint, const std::optional<std::string>& password);
    Connection(Connection&&) noexcept;
    ~Connection();

    // One command; an I/O failure throws, an error reply is returned (check is_error()).
    Reply command(const std::vector<std::string_view>& argv);
    // One command whose error reply throws Kind::SourceUnavailable with "<endpoint>: <what>: <error>".
    Reply checked(const std::vector<std::string_view>& argv, const std::string& what);
    // Pipelining: queue commands, then read their replies in order.
    void append(const std::vector<std::string_view>& argv);
    Reply get_reply();
    // Writes every queued command to the socket without reading replies (they stay for get_reply()).
    void flush();

    std::map<std::string, std::string> info(const std::string& section);
    Keyspace keyspace();
    const Endpoint& endpoint() const { return endpoint_; }
    const std::string& what() const { return what_; }

    // True when hiredis holds no unread bytes, so the socket can be read directly.
    bool reader_empty() const;
    // Writes bytes as they are, then reads them back raw (the SYNC transfer). Timeouts are the I/O timeout.
    void write_raw(std::string_view bytes);
    io::Reader& raw_reader();
    void set_io_timeout(int seconds);

    [[noreturn]] void fail(const std::string& message) const;

    // Whether the logged-in user may run `argv`, without running it: ACL DRYRUN (Redis 7.0+), else the
    // command queued in a MULTI that is then discarded (the ACL check comes before the queueing), else,
    // for a command that changes nothing (`harmless`), the command itself.
    struct Permission {
        bool known = false;    // false: nothing could tell (detail says why)
        bool allowed = false;  // meaningful when known
        std::string detail;    // the refusal, or why it is unknown
    };
    Permission probe_permission(const std::vector<std::string>& argv, bool harmless = false);

private:
    void log_in(const std::optional<std::string>& password);  // AUTH, PING, the I/O timeout
    class RawReader;
    Endpoint endpoint_;
    std::string what_;
    std::unique_ptr<TlsTunnel> tunnel_;  // TLS: hiredis talks to the tunnel's plain end
    redisContext* c_ = nullptr;
    std::unique_ptr<RawReader> raw_;
};

// INFO's "key:value" lines ("# Section" lines skipped).
std::map<std::string, std::string> parse_info(std::string_view text);
// INFO keyspace's "db0:keys=3,expires=1,avg_ttl=0" lines.
Keyspace parse_keyspace(const std::map<std::string, std::string>& info);

}  // namespace nightjar::redis
