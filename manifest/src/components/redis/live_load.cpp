#include "nightjar/components/redis/live_load.hpp"

#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>

#include "nightjar/components/redis/rdb_check.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/signals.hpp"
#include "nightjar/io/process.hpp"

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

// Each pending key has two replies: EXISTS (did the target hold it already?) and RESTORE.
void drain(Connection& target, std::size_t& pending, int db, LiveLoadResult& r) {
    for (; pending > 0; --pending) {
        Reply existed = target.get_reply();
        Reply rep = target.get_reply();
        if (rep.is_error()) {
            note_error(r, "RESTORE refused: " + rep.str());
            continue;
        }
        ++r.keys_copied;
        if (!existed.is_error() && existed.integer() == 1) ++r.replaced[db];
    }
}

void copy_db(Connection& src, Connection& target, int db, bool absolute_ttl, const LiveLoadOptions& o,
             LiveLoadResult& r) {
    std::string dbs = std::to_string(db);
    src.checked({"SELECT", dbs}, "SELECT " + dbs);
    target.checked({"SELECT", dbs}, "SELECT " + dbs);
    std::string cursor = "0";
    std::string count = std::to_string(o.batch_keys);
    do {
        check_interrupted();
        Reply scan = src.checked({"SCAN", cursor, "COUNT", count}, "SCAN");
        cursor = scan.element(0).str();
        Reply keys = scan.element(1);
        for (std::size_t i = 0; i < keys.size(); ++i) {
            src.append({"DUMP", keys.element(i).view()});
            src.append({absolute_ttl ? "PEXPIRETIME" : "PTTL", keys.element(i).view()});
        }
        std::size_t pending = 0, pending_bytes = 0;
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
            target.append({"EXISTS", keys.element(i).view()});
            if (absolute_ttl)
                target.append({"RESTORE", keys.element(i).view(), t, dump.view(), "REPLACE", "ABSTTL"});
            else
                target.append({"RESTORE", keys.element(i).view(), t, dump.view(), "REPLACE"});
            ++pending;
            pending_bytes += dump.view().size();
            if (pending_bytes > o.batch_bytes) {
                drain(target, pending, db, r);
                pending_bytes = 0;
            }
        }
        drain(target, pending, db, r);
    } while (cursor != "0");
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
    Subprocess server = Subprocess::spawn(
        {o.server_binary, "--port", "0", "--unixsocket", ep.socket, "--unixsocketperm", "700", "--dir",
         dir.string(), "--dbfilename", rdb_file.filename().string(), "--appendonly", "no", "--save", "",
         "--logfile", log.string(), "--daemonize", "no"},
        spawn);
    Connection src = wait_until_loaded(server, ep, log, o.load_timeout_s);
    r.loaded = src.keyspace();
    const bool absolute_ttl = major_of(local_version) >= 7;  // PEXPIRETIME came in 7.0
    for (const auto& [db, counts] : r.loaded) copy_db(src, target, db, absolute_ttl, o, r);
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
