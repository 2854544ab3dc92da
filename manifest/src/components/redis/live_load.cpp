#include "nightjar/components/redis/live_load.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>

#include "nightjar/components/redis/rdb_check.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/core/signals.hpp"
#include "nightjar/io/process.hpp"
#include "nightjar/io/secret_file.hpp"

namespace nightjar::redis {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxErrors = 5;

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

int major_of(const std::string& v) {
    return std::atoi(v.c_str());
}

// Connects to the temporary server once it has loaded the file.
Connection wait_until_loaded(Subprocess& server, const Endpoint& ep, const fs::path& log, int timeout_s) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    for (;;) {
        check_interrupted();
        if (auto status = server.wait_for(std::chrono::milliseconds(0)))
            throw Error(Kind::RestoreFailed,
                        "redis: the temporary redis-server could not load the snapshot (exit " +
                            std::to_string(*status) + "): " + log_tail(log));
        try {
            return Connection(ep, std::nullopt);  // PING answers -LOADING until the file is in memory
        } catch (const Error&) {
            if (std::chrono::steady_clock::now() > deadline)
                throw Error(Kind::RestoreFailed,
                            "redis: the temporary redis-server did not load the snapshot within " +
                                std::to_string(timeout_s) + " s: " + log_tail(log));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

void note_error(LiveLoadResult& r, const std::string& e) {
    if (r.errors.size() < kMaxErrors) r.errors.push_back(e);
    ++r.error_count;
}

// Each pending key has one reply (RESTORE), or two when the target held keys before (EXISTS, then RESTORE:
// did the backup replace one of its keys?).
void drain(Connection& target, std::size_t& pending, bool count_replaced, int db, LiveLoadResult& r) {
    for (; pending > 0; --pending) {
        bool existed = false;
        if (count_replaced) {
            Reply e = target.get_reply();
            existed = !e.is_error() && e.integer() == 1;
        }
        Reply rep = target.get_reply();
        if (rep.is_error()) {
            note_error(r, "RESTORE refused: " + rep.str());
            continue;
        }
        ++r.keys_copied;
        if (existed) ++r.replaced[db];
    }
}

// One SCAN batch is read from the temporary server (SCAN, then DUMP + TTL for every key, pipelined) while
// the target works through the previous batch's RESTOREs; that batch's replies are read only then. Memory:
// one batch of payloads, flushed to the target's socket past `batch_bytes`.
void copy_db(Connection& src, Connection& target, int db, bool absolute_ttl, bool count_replaced,
             const LiveLoadOptions& o, LiveLoadResult& r) {
    std::string dbs = std::to_string(db);
    src.checked({"SELECT", dbs}, "SELECT " + dbs);
    target.checked({"SELECT", dbs}, "SELECT " + dbs);
    std::string cursor = "0";
    std::string count = std::to_string(o.batch_keys);
    std::size_t pending = 0;  // RESTOREs written to the target whose replies are not read yet
    do {
        check_interrupted();
        Reply scan = src.checked({"SCAN", cursor, "COUNT", count}, "SCAN");
        cursor = scan.element(0).str();
        Reply keys = scan.element(1);
        for (std::size_t i = 0; i < keys.size(); ++i) {
            src.append({"DUMP", keys.element(i).view()});
            src.append({absolute_ttl ? "PEXPIRETIME" : "PTTL", keys.element(i).view()});
        }
        src.flush();
        drain(target, pending, count_replaced, db, r);  // the previous batch, while the source works
        std::size_t pending_bytes = 0;
        for (std::size_t i = 0; i < keys.size(); ++i) {
            Reply dump = src.get_reply();
            Reply ttl = src.get_reply();
            if (dump.is_error()) {
                note_error(r, "DUMP failed: " + dump.str());
                continue;
            }
            if (dump.is_nil() || ttl.integer() == -2) {  // expired since the scan
                ++r.keys_expired;
                continue;
            }
            std::string t = ttl.integer() > 0 ? std::to_string(ttl.integer()) : "0";
            if (count_replaced) target.append({"EXISTS", keys.element(i).view()});
            if (absolute_ttl)
                target.append({"RESTORE", keys.element(i).view(), t, dump.view(), "REPLACE", "ABSTTL"});
            else
                target.append({"RESTORE", keys.element(i).view(), t, dump.view(), "REPLACE"});
            ++pending;
            pending_bytes += dump.view().size();
            if (pending_bytes > o.batch_bytes) {
                target.flush();
                pending_bytes = 0;
            }
        }
        target.flush();
    } while (cursor != "0");
    drain(target, pending, count_replaced, db, r);
}

bool is_loopback(const std::string& host) {
    return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

std::string config_get(Connection& c, const std::string& name) {
    Reply r = c.command({c.endpoint().commands.config, "GET", name});
    if (r.is_error()) c.fail("CONFIG GET " + name + " refused: " + r.str());
    return r.size() >= 2 ? r.element(1).str() : "";
}

std::string random_password() {
    unsigned char bytes[24];
    std::ifstream in("/dev/urandom", std::ios::binary);
    if (!in.read(reinterpret_cast<char*>(bytes), sizeof bytes))
        throw Error(Kind::Internal, "redis: cannot read /dev/urandom for the temporary server's password");
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char b : bytes) {
        out.push_back(hex[b >> 4]);
        out.push_back(hex[b & 15]);
    }
    return out;
}

int free_loopback_port() {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (s >= 0 && ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0) ::close(s);
    return port;
}

std::uint64_t total(const Keyspace& ks) {
    std::uint64_t n = 0;
    for (const auto& [db, e] : ks) n += e.keys;
    return n;
}

// The target's replication settings, put back however the load ends.
class ReplicaGuard {
public:
    explicit ReplicaGuard(Connection& target) : t_(target) {
        masterauth_ = config_get(t_, "masterauth");
        masteruser_ = config_get(t_, "masteruser");
    }
    void attach(const std::string& password, int port) {
        const std::string& cfg = t_.endpoint().commands.config;
        if (!masteruser_.empty()) t_.checked({cfg, "SET", "masteruser", ""}, "CONFIG SET masteruser");
        changed_ = true;
        t_.checked({cfg, "SET", "masterauth", password}, "CONFIG SET masterauth");
        attached_ = true;
        t_.checked({"REPLICAOF", "127.0.0.1", std::to_string(port)}, "REPLICAOF 127.0.0.1");
    }
    // REPLICAOF NO ONE, then the saved masterauth and masteruser. Throws when that fails.
    void detach() {
        if (!changed_) return;
        const std::string& cfg = t_.endpoint().commands.config;
        if (attached_) t_.checked({"REPLICAOF", "NO", "ONE"}, "REPLICAOF NO ONE");
        attached_ = false;
        t_.checked({cfg, "SET", "masterauth", masterauth_}, "CONFIG SET masterauth (putting it back)");
        t_.checked({cfg, "SET", "masteruser", masteruser_}, "CONFIG SET masteruser (putting it back)");
        changed_ = false;
    }
    ~ReplicaGuard() {
        try {
            detach();
        } catch (const Error& e) {
            log::error("redis: could not put the target's replication settings back: ", e.what(),
                       ": run REPLICAOF NO ONE on it and check masterauth/masteruser");
        }
        io::wipe_string(masterauth_);
    }
    ReplicaGuard(const ReplicaGuard&) = delete;
    ReplicaGuard& operator=(const ReplicaGuard&) = delete;

private:
    Connection& t_;
    std::string masterauth_, masteruser_;
    bool changed_ = false, attached_ = false;
};

// The target replicates from the temporary server once (a full sync), then is detached. Empty when it is
// done; else why replication could not start (nothing changed on the target then).
std::string load_by_replication(Connection& src, Subprocess& server, Connection& target,
                                const LiveLoadOptions& o, LiveLoadResult& r) {
    std::string password = random_password();
    src.checked({"CONFIG", "SET", "requirepass", password}, "CONFIG SET requirepass");
    src.checked({"CONFIG", "SET", "repl-diskless-sync", "yes"}, "CONFIG SET repl-diskless-sync");
    src.checked({"CONFIG", "SET", "repl-diskless-sync-delay", "0"}, "CONFIG SET repl-diskless-sync-delay");
    int port = 0;
    std::string why;
    for (int attempt = 0; attempt < 5 && port == 0; ++attempt) {
        int p = free_loopback_port();
        if (p == 0) continue;
        Reply set = src.command({"CONFIG", "SET", "port", std::to_string(p)});
        if (!set.is_error())
            port = p;
        else
            why = set.str();
    }
    if (port == 0) {
        io::wipe_string(password);
        return "the temporary redis-server could not open a loopback port (" + why + ")";
    }
    const Keyspace before = target.keyspace();
    ReplicaGuard guard(target);
    log::info("redis: loading ", target.endpoint().describe(),
              " by replication from the temporary server on 127.0.0.1:", port);
    guard.attach(password, port);
    io::wipe_string(password);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.sync_timeout_s);
    std::string link = "?";
    for (;;) {
        check_interrupted();
        if (auto status = server.wait_for(std::chrono::milliseconds(0)))
            throw Error(Kind::RestoreFailed, "redis: the temporary redis-server exited (" +
                                                 std::to_string(*status) + ") during the full sync");
        auto repl = target.info("replication");
        link = repl["master_link_status"];
        if (link == "up" && repl["master_sync_in_progress"] == "0") {
            Keyspace want = src.keyspace(), got = target.keyspace();
            if (total(want) == total(got)) break;
        }
        if (std::chrono::steady_clock::now() > deadline)
            throw Error(
                Kind::RestoreFailed,
                "redis: " + target.endpoint().describe() +
                    " did not finish the full sync from the temporary server within " +
                    std::to_string(o.sync_timeout_s) + " s (master_link_status:" + link +
                    "): check its log (is its dir writable?); it was detached again (REPLICAOF NO ONE)");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    guard.detach();
    r.method = "replication";
    r.keys_copied = total(target.keyspace());
    r.flushed_keys = total(before);
    return "";
}

}  // namespace

std::pair<std::string, int> local_server_version(const std::string& binary) {
    RunResult v;
    try {
        v = run_capture({binary, "--version"});
    } catch (const Error& e) {
        throw Error(Kind::RestoreFailed, "redis: cannot run " + binary + " for the live restore: " +
                                             e.what() + ": install redis-server, or use --redis-mode file");
    }
    auto at = v.out.find("v=");
    std::string version = at == std::string::npos ? "" : v.out.substr(at + 2, v.out.find(' ', at) - at - 2);
    if (v.status != 0 || version.empty())
        throw Error(Kind::RestoreFailed, "redis: " + binary +
                                             " --version failed: install redis-server, or use "
                                             "--redis-mode file");
    return {version, rdb_version_for_redis(version)};
}

std::string replication_refusal(Connection& target) {
    auto repl = target.info("replication");
    if (repl["role"] != "master")
        return "the target is itself a replica (of " + repl["master_host"] + ":" + repl["master_port"] + ")";
    Reply cluster = target.command({target.endpoint().commands.info, "cluster"});
    if (!cluster.is_error() && parse_info(cluster.view())["cluster_enabled"] == "1")
        return "the target is in cluster mode";
    const Endpoint& ep = target.endpoint();
    if (ep.socket.empty() && !is_loopback(ep.host))
        return "the target is not on this host, and the temporary server listens on loopback only";
    const std::string& cfg = ep.commands.config;
    for (const char* name : {"masterauth", "masteruser", "tls-replication"}) {
        Reply r = target.command({cfg, "GET", name});
        if (r.is_error()) return "CONFIG GET " + std::string(name) + " refused: " + r.str();
        if (std::string(name) == "tls-replication" && r.size() >= 2 && r.element(1).str() == "yes")
            return "the target replicates over TLS (tls-replication yes), which the temporary server does "
                   "not "
                   "serve";
    }
    for (const auto& argv :
         std::vector<std::vector<std::string>>{{"REPLICAOF", "NO", "ONE"}, {cfg, "SET", "masterauth", "x"}}) {
        auto p = target.probe_permission(argv);
        if (p.known && !p.allowed) return argv[0] + " " + argv[1] + " refused: " + p.detail;
    }
    return "";
}

LiveLoadResult load_live(const fs::path& rdb_file, int rdb_version, Connection& target,
                         const LiveLoadOptions& o) {
    LiveLoadResult r;
    auto [local_version, local_rdb] = local_server_version(o.server_binary);
    r.temp_server_version = local_version;
    std::string target_version = target.info("server")["redis_version"];
    int target_rdb = rdb_version_for_redis(target_version);
    if (rdb_version > local_rdb)
        throw Error(Kind::RestoreFailed, "redis: the snapshot is RDB version " + std::to_string(rdb_version) +
                                             " but the local redis-server " + local_version +
                                             " reads up to " + std::to_string(local_rdb) +
                                             ": install a newer redis-server here, or use --redis-mode file");
    if (local_rdb > target_rdb)
        throw Error(Kind::RestoreFailed, "redis: the target runs Redis " + target_version + " (RDB " +
                                             std::to_string(target_rdb) +
                                             "), which refuses DUMP payloads from the local redis-server " +
                                             local_version + " (RDB " + std::to_string(local_rdb) +
                                             "): run the restore where redis-server is no newer than the "
                                             "target, or use --redis-mode file");

    const fs::path dir = rdb_file.parent_path();
    Endpoint ep;
    ep.socket = (dir / "redis.sock").string();
    ep.io_timeout_s = 600;
    const fs::path log = dir / "redis.log";
    SpawnOptions spawn;
    spawn.new_process_group = true;  // a Ctrl-C reaches us, and we stop it in order
    Subprocess server = Subprocess::spawn({o.server_binary,
                                           "--port",
                                           "0",
                                           "--bind",
                                           "127.0.0.1",
                                           "--unixsocket",
                                           ep.socket,
                                           "--unixsocketperm",
                                           "700",
                                           "--dir",
                                           dir.string(),
                                           "--dbfilename",
                                           rdb_file.filename().string(),
                                           "--appendonly",
                                           "no",
                                           "--save",
                                           "",
                                           "--logfile",
                                           log.string(),
                                           "--daemonize",
                                           "no"},
                                          spawn);
    Connection src = wait_until_loaded(server, ep, log, o.load_timeout_s);
    r.loaded = src.keyspace();
    if (o.flush && o.replicate) {
        r.replication_refused = replication_refusal(target);
        if (r.replication_refused.empty())
            r.replication_refused = load_by_replication(src, server, target, o, r);
        if (!r.replication_refused.empty())
            log::info("redis: not loading by replication (", r.replication_refused, "): copying key by key");
    }
    if (r.method == "replication") {
        if (major_of(local_version) >= 7) {
            Reply libs = src.command({"FUNCTION", "LIST"});
            if (!libs.is_error()) r.functions = libs.size();
        }
        target.checked({"SELECT", "0"}, "SELECT 0");
        server.kill(SIGTERM);
        (void)server.wait_for(std::chrono::seconds(30));
        return r;
    }
    r.method = "dump-restore";
    Keyspace held = target.keyspace();
    if (o.flush && total(held) > 0) {
        target.checked({"FLUSHALL"}, "FLUSHALL");
        r.flushed_keys = total(held);
        held.clear();
    }
    const bool absolute_ttl = major_of(local_version) >= 7;  // PEXPIRETIME came in 7.0
    for (const auto& [db, counts] : r.loaded) copy_db(src, target, db, absolute_ttl, !held.empty(), o, r);
    if (major_of(local_version) >= 7 && major_of(target_version) >= 7) {
        Reply libs = src.command({"FUNCTION", "LIST"});
        if (!libs.is_error() && libs.size() > 0) {
            Reply payload = src.checked({"FUNCTION", "DUMP"}, "FUNCTION DUMP");
            Reply done = target.command({"FUNCTION", "RESTORE", payload.view(), "REPLACE"});
            if (done.is_error())
                note_error(r, "FUNCTION RESTORE refused: " + done.str());
            else
                r.functions = libs.size();
        }
    }
    target.checked({"SELECT", "0"}, "SELECT 0");
    server.kill(SIGTERM);
    (void)server.wait_for(std::chrono::seconds(30));
    return r;
}

}  // namespace nightjar::redis
