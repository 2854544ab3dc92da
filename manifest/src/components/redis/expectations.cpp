#include "nightjar/components/redis/expectations.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "nightjar/core/error.hpp"
#include "nightjar/core/signals.hpp"
#include "nightjar/io/fd.hpp"
#include "nightjar/io/sha256.hpp"

namespace nightjar::redis {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::size_t kChunk = 1000;

std::string log_tail(const fs::path& log) {
    std::ifstream in(log);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    std::string out;
    for (std::size_t i = lines.size() > 2 ? lines.size() - 2 : 0; i < lines.size(); ++i)
        out += (out.empty() ? "" : " | ") + lines[i];
    return out.empty() ? "(no log)" : out;
}

// Length-prefixed, so no two different values encode alike.
void put(io::Sha256& h, std::string_view s) {
    std::string len = std::to_string(s.size()) + ":";
    h.update(io::as_bytes(std::string_view(len)));
    h.update(io::as_bytes(s));
}

// An order-independent sum of element digests (sets, hashes): four 64-bit lanes added modulo 2^64.
struct Accumulator {
    std::array<std::uint64_t, 4> lanes{};
    std::uint64_t count = 0;
    void add(const std::string& hex) {
        for (std::size_t i = 0; i < 4; ++i) lanes[i] += std::stoull(hex.substr(i * 16, 16), nullptr, 16);
        ++count;
    }
    std::string text() const {
        std::string s = std::to_string(count);
        for (auto l : lanes) s += ":" + std::to_string(l);
        return s;
    }
};

std::string element_digest(std::string_view a, std::string_view b = {}) {
    io::Sha256 h;
    put(h, a);
    put(h, b);
    return h.hex();
}

bool printable(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c > 0x7e) return false;
    return !s.empty();
}

std::string hex(std::string_view s) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out += d[c >> 4];
        out += d[c & 15];
    }
    return out;
}

std::string unhex(const std::string& h) {
    std::string out;
    for (std::size_t i = 0; i + 1 < h.size(); i += 2)
        out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
    return out;
}

std::string name_of(const json& k) {
    if (k.contains("key")) return k["key"].get<std::string>();
    return unhex(k.value("key_hex", ""));
}

std::string shown(const json& k) {
    return k.contains("key") ? "\"" + k["key"].get<std::string>() + "\"" : "0x" + k.value("key_hex", "");
}

std::uint64_t random_seed() {
    std::random_device rd;
    std::uint64_t s = (std::uint64_t{rd()} << 32) ^ rd();
    return s == 0 ? 1 : s;
}

std::int64_t expire_time_ms(Connection& conn, std::string_view key) {
    Reply r = conn.command({"PEXPIRETIME", key});
    if (!r.is_error()) return r.integer();
    Reply t = conn.command({"PTTL", key});  // before Redis 7.0
    if (t.is_error() || t.integer() < 0) return t.is_error() ? -1 : t.integer();
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count() +
           t.integer();
}

}  // namespace

TempServer::TempServer(const TempServerOptions& o) {
    socket_ = o.dir / "redis.sock";
    port_ = o.port;
    const fs::path log = o.dir / "redis.log";
    std::vector<std::string> argv{o.binary,
                                  "--port",
                                  std::to_string(o.port),
                                  "--unixsocket",
                                  socket_.string(),
                                  "--unixsocketperm",
                                  "700",
                                  "--dir",
                                  o.dir.string(),
                                  "--dbfilename",
                                  "dump.rdb",
                                  "--save",
                                  "",
                                  "--appendonly",
                                  "no",
                                  "--daemonize",
                                  "no",
                                  "--pidfile",
                                  (o.dir / "redis.pid").string(),
                                  "--logfile",
                                  log.string()};
    if (o.port != 0) {
        argv.push_back("--bind");
        argv.push_back("127.0.0.1");
    }
    SpawnOptions spawn;
    spawn.new_process_group = true;  // a terminal's Ctrl-C reaches us, and we stop it
    process_.emplace(Subprocess::spawn(argv, spawn));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.load_timeout_s);
    for (;;) {
        check_interrupted();
        if (auto status = process_->wait_for(std::chrono::milliseconds(0))) {
            process_.reset();
            throw Error(Kind::RestoreFailed, "redis: the temporary redis-server refused to start (exit " +
                                                 std::to_string(*status) + "): " + log_tail(log));
        }
        try {
            Connection c(endpoint(), std::nullopt);
            version_ = c.info("server")["redis_version"];
            return;
        } catch (const Error&) {
            if (std::chrono::steady_clock::now() > deadline) {
                stop();
                throw Error(Kind::RestoreFailed, "redis: the temporary redis-server did not start within " +
                                                     std::to_string(o.load_timeout_s) +
                                                     " s: " + log_tail(log));
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

TempServer::~TempServer() {
    try {
        stop();
    } catch (...) {
    }
}

void TempServer::stop() {
    if (!process_) return;
    process_->kill(SIGTERM);
    if (!process_->wait_for(std::chrono::seconds(10))) {
        process_->kill(SIGKILL);
        process_->wait();
    }
    process_.reset();
}

Endpoint TempServer::endpoint() const {
    Endpoint ep;
    ep.socket = socket_.string();
    ep.connect_timeout_s = 2;
    return ep;
}

Connection TempServer::connect() const {
    return Connection(endpoint(), std::nullopt);
}

std::optional<std::string> key_digest(Connection& conn, std::string_view key, std::string* type_out) {
    const std::string type = conn.checked({"TYPE", key}, "TYPE").str();
    if (type_out) *type_out = type;
    if (type == "none") return std::nullopt;
    io::Sha256 h;
    put(h, type);
    if (type == "string") {
        put(h, conn.checked({"GET", key}, "GET").view());
    } else if (type == "list" || type == "zset") {
        for (std::size_t start = 0;; start += kChunk) {
            const std::string a = std::to_string(start), b = std::to_string(start + kChunk - 1);
            Reply r = type == "list" ? conn.checked({"LRANGE", key, a, b}, "LRANGE")
                                     : conn.checked({"ZRANGE", key, a, b, "WITHSCORES"}, "ZRANGE");
            for (std::size_t i = 0; i < r.size(); ++i) put(h, r.element(i).view());
            if (r.size() < (type == "list" ? kChunk : 2 * kChunk)) break;
        }
    } else if (type == "set" || type == "hash") {
        Accumulator acc;
        std::string cursor = "0";
        do {
            Reply r = type == "set" ? conn.checked({"SSCAN", key, cursor, "COUNT", "1000"}, "SSCAN")
                                    : conn.checked({"HSCAN", key, cursor, "COUNT", "1000"}, "HSCAN");
            cursor = r.element(0).str();
            Reply items = r.element(1);
            if (type == "set")
                for (std::size_t i = 0; i < items.size(); ++i)
                    acc.add(element_digest(items.element(i).view()));
            else
                for (std::size_t i = 0; i + 1 < items.size(); i += 2)
                    acc.add(element_digest(items.element(i).view(), items.element(i + 1).view()));
        } while (cursor != "0");
        put(h, acc.text());
    } else if (type == "stream") {
        std::string start = "-";
        for (;;) {
            Reply r = conn.checked({"XRANGE", key, start, "+", "COUNT", "1000"}, "XRANGE");
            for (std::size_t i = 0; i < r.size(); ++i) {
                Reply entry = r.element(i);
                put(h, entry.element(0).view());
                Reply fields = entry.element(1);
                for (std::size_t j = 0; j < fields.size(); ++j) put(h, fields.element(j).view());
                start = "(" + entry.element(0).str();
            }
            if (r.size() < 1000) break;
        }
    } else {
        put(h, "(value not read: no ordinary command reads a " + type + ")");
    }
    return h.hex();
}

json read_expectations(Connection& conn, const SampleOptions& options) {
    const std::uint64_t seed = options.seed != 0 ? options.seed : random_seed();
    const std::string seed_text = std::to_string(seed);
    json dbs = json::object();
    for (const auto& [db, entry] : conn.keyspace()) {
        const std::string dbs_text = std::to_string(db);
        conn.checked({"SELECT", dbs_text}, "SELECT " + dbs_text);
        // The K keys whose seeded hash sorts first, and the earliest expiry of any key.
        std::set<std::pair<std::string, std::string>> chosen;  // (hash, key)
        std::int64_t earliest = 0;
        std::string cursor = "0";
        do {
            check_interrupted();
            Reply scan = conn.checked({"SCAN", cursor, "COUNT", "1000"}, "SCAN");
            cursor = scan.element(0).str();
            Reply keys = scan.element(1);
            for (std::size_t i = 0; i < keys.size(); ++i) {
                std::string key = keys.element(i).str();
                std::string hsh = io::sha256_hex(seed_text + ":" + key);
                if (chosen.size() < options.keys || hsh < chosen.rbegin()->first) {
                    chosen.emplace(hsh, key);
                    if (chosen.size() > options.keys) chosen.erase(std::prev(chosen.end()));
                }
            }
            if (entry.expires > 0) {
                for (std::size_t i = 0; i < keys.size(); ++i) {
                    std::int64_t at = expire_time_ms(conn, keys.element(i).view());
                    if (at > 0 && (earliest == 0 || at < earliest)) earliest = at;
                }
            }
        } while (cursor != "0");
        json sample = json::array();
        for (const auto& [hsh, key] : chosen) {
            std::string type;
            auto digest = key_digest(conn, key, &type);
            if (!digest) continue;  // expired in between
            json k = printable(key) ? json{{"key", key}} : json{{"key_hex", hex(key)}};
            k["type"] = type;
            k["digest"] = *digest;
            std::int64_t at = entry.expires > 0 ? expire_time_ms(conn, key) : -1;
            if (at > 0) k["expires_at_ms"] = at;
            sample.push_back(std::move(k));
        }
        dbs["db" + dbs_text] = {{"keys", entry.keys},
                                {"volatile", entry.expires},
                                {"earliest_expiry_ms", earliest},
                                {"sample", sample}};
    }
    conn.checked({"SELECT", "0"}, "SELECT 0");
    return {{"seed", seed_text}, {"sample_keys", options.keys}, {"dbs", dbs}};
}

json snapshot_expectations(const fs::path& rdb_file, const SampleOptions& options) {
    ScratchDir scratch("nightjar-redis-expect");
    const fs::path rdb = scratch.path() / "dump.rdb";
    std::error_code ec;
    fs::create_hard_link(rdb_file, rdb, ec);
    if (ec) fs::copy_file(rdb_file, rdb);
    TempServer server({.dir = scratch.path()});
    Connection conn = server.connect();
    json e = read_expectations(conn, options);
    e["server_version"] = server.version();
    return e;
}

std::vector<Check> compare_expectations(Connection& restored, const json& expectations, std::int64_t now_ms) {
    std::vector<Check> checks;
    const json& dbs = expectations.contains("dbs") ? expectations["dbs"] : json::object();
    Keyspace actual = restored.keyspace();
    std::set<int> seen;
    for (const auto& [name, want] : dbs.items()) {
        const int db = std::atoi(name.c_str() + 2);
        seen.insert(db);
        const std::uint64_t keys = want.value("keys", std::uint64_t{0});
        const std::uint64_t vol = want.value("volatile", std::uint64_t{0});
        const std::int64_t earliest = want.value("earliest_expiry_ms", std::int64_t{0});
        const KeyspaceEntry got = actual.count(db) ? actual.at(db) : KeyspaceEntry{};
        // Keys without a TTL must all be there; keys with one too, unless one may have expired since.
        const bool may_expire = vol > 0 && earliest > 0 && now_ms >= earliest;
        const std::uint64_t got_persistent = got.keys - std::min(got.expires, got.keys);
        bool ok = got_persistent == keys - std::min(vol, keys) &&
                  (may_expire ? got.expires <= vol : got.expires == vol);
        checks.push_back({"redis " + name + " keys", ok,
                          "expected " + std::to_string(keys) + " (" + std::to_string(vol) +
                              " with a TTL), got " + std::to_string(got.keys) + " (" +
                              std::to_string(got.expires) + " with a TTL)" +
                              (may_expire ? "; keys with a TTL may have expired since the capture" : "")});
        restored.checked({"SELECT", std::to_string(db)}, "SELECT");
        std::size_t matched = 0, expired = 0;
        std::vector<std::string> wrong;
        const json sample = want.value("sample", json::array());
        for (const auto& k : sample) {
            std::string type;
            auto digest = key_digest(restored, name_of(k), &type);
            const std::int64_t at = k.value("expires_at_ms", std::int64_t{0});
            if (!digest && at > 0 && now_ms >= at) {
                ++expired;
                continue;
            }
            if (!digest)
                wrong.push_back(shown(k) + " is missing");
            else if (type != k.value("type", ""))
                wrong.push_back(shown(k) + " is a " + type + ", expected a " + k.value("type", ""));
            else if (*digest != k.value("digest", ""))
                wrong.push_back(shown(k) + " (" + type + ") has another value: digest " +
                                digest->substr(0, 16) + ", expected " + k.value("digest", "").substr(0, 16));
            else
                ++matched;
        }
        std::string detail =
            std::to_string(matched) + " of " + std::to_string(sample.size()) + " sampled keys match";
        if (expired) detail += ", " + std::to_string(expired) + " expired since the capture";
        for (const auto& w : wrong) detail += "; " + w;
        checks.push_back({"redis " + name + " sample of " + std::to_string(sample.size()) + " keys",
                          wrong.empty(), detail});
    }
    for (const auto& [db, e] : actual)
        if (!seen.count(db))
            checks.push_back({"redis db" + std::to_string(db) + " keys", false,
                              "expected none (no such db in the snapshot), got " + std::to_string(e.keys)});
    restored.checked({"SELECT", "0"}, "SELECT 0");
    return checks;
}

TeeToFile::TeeToFile(io::Writer& next, const fs::path& file) : next_(next), file_(file) {
    fd_ = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0) throw_errno(Kind::Storage, "redis: cannot create", file.string());
}

TeeToFile::~TeeToFile() {
    if (fd_ >= 0) ::close(fd_);
}

void TeeToFile::write(io::Bytes data) {
    next_.write(data);
    io::write_all(fd_, data, file_.string());
}

void TeeToFile::finish() {
    if (fd_ >= 0 && ::close(fd_) != 0) {
        fd_ = -1;
        throw_errno(Kind::Storage, "redis: cannot close", file_.string());
    }
    fd_ = -1;
}

ScratchDir::ScratchDir(const std::string& prefix) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
    if (!::mkdtemp(pattern.data()))
        throw_errno(Kind::Storage, "cannot create a temporary directory", pattern);
    path_ = pattern;
}

ScratchDir::~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

}  // namespace nightjar::redis
