#pragma once
// Expectations for a Redis snapshot, computed from the captured RDB itself: a temporary redis-server (unix
// socket only, no saves) loads the file the capture wrote, and ordinary commands read back per database the
// key count, how many keys carry a TTL (and the earliest expiry), and the digests of a sample of keys chosen
// by a seeded hash of their names (type + canonical value; TTLs excluded). A drill reads the same digests
// back from the server it restored into and compares them exactly.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/components/redis/client.hpp"
#include "nightjar/io/process.hpp"
#include "nightjar/io/stream.hpp"

namespace nightjar::redis {

struct TempServerOptions {
    std::string binary = "redis-server";  // found on PATH
    std::filesystem::path dir;            // working dir: holds dump.rdb (loaded at start), socket, pid, log
    int port = 0;                         // 0: unix socket only; else also 127.0.0.1:port
    int load_timeout_s = 600;             // how long loading the file may take
};

// A redis-server we started, stopped (SIGTERM, then SIGKILL) when this goes away. Its pid is in
// <dir>/redis.pid while it runs, so whoever cleans a killed run's leftovers can stop it.
class TempServer {
public:
    // Starts the server and waits until it answers (it has loaded <dir>/dump.rdb, if there is one).
    // Kind::RestoreFailed with the server's last log lines when it refuses the file or does not start.
    explicit TempServer(const TempServerOptions& options);
    TempServer(TempServer&&) noexcept = default;
    ~TempServer();
    Endpoint endpoint() const;  // the unix socket
    Connection connect() const;
    const std::filesystem::path& socket() const { return socket_; }
    int port() const { return port_; }
    std::string version() const { return version_; }
    void stop();

private:
    std::optional<Subprocess> process_;
    std::filesystem::path socket_;
    int port_ = 0;
    std::string version_;
};

struct SampleOptions {
    std::uint64_t seed = 0;  // 0: random, recorded
    std::size_t keys = 32;   // sampled keys per database
};

// What a server holds, as expectations: {"seed", "sample_keys", "dbs": {"db0": {keys, volatile,
// earliest_expiry_ms, sample: [{key | key_hex, type, digest, expires_at_ms?}]}}, "server_version"}.
nlohmann::json read_expectations(Connection& conn, const SampleOptions& options = {});

// Loads `rdb_file` (a complete RDB on local disk) into a TempServer under a private scratch dir and reads
// its expectations. The file is hard-linked or copied there, never changed.
nlohmann::json snapshot_expectations(const std::filesystem::path& rdb_file,
                                     const SampleOptions& options = {});

// "type\n" + the value in canonical form, hashed: strings as they are, lists and sorted sets in order (with
// scores), sets and hashes order-independently, streams entry by entry; TTLs excluded. nullopt: no such key.
std::optional<std::string> key_digest(Connection& conn, std::string_view key, std::string* type = nullptr);

struct Check {
    std::string what;
    bool ok = false;
    std::string detail;
};

// Compares a server holding a restored snapshot with recorded expectations. `now_ms` decides whether a
// volatile key may have expired since the capture (only then may fewer volatile keys be there).
std::vector<Check> compare_expectations(Connection& restored, const nlohmann::json& expectations,
                                        std::int64_t now_ms);

// A Writer that copies everything to `next` and to a new file (0600); finish() finishes only the file.
class TeeToFile final : public io::Writer {
public:
    TeeToFile(io::Writer& next, const std::filesystem::path& file);
    ~TeeToFile() override;
    void write(io::Bytes data) override;
    void finish() override;

private:
    io::Writer& next_;
    int fd_ = -1;
    std::filesystem::path file_;
};

// A private temporary directory (mkdtemp under $TMPDIR), removed with its content.
class ScratchDir {
public:
    explicit ScratchDir(const std::string& prefix);
    ~ScratchDir();
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

}  // namespace nightjar::redis
