#include "nightjar/components/redis/capture.hpp"

#include <fcntl.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "nightjar/components/redis/sync_stream.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/io/fd.hpp"

namespace nightjar::redis {

namespace {

constexpr const char* kGrantSync =
    "grant the backup user +replconf +sync +psync +ping +info (see README, Redis)";

long long number(const std::map<std::string, std::string>& info, const std::string& key) {
    auto it = info.find(key);
    if (it == info.end()) return -1;
    try {
        return std::stoll(it->second);
    } catch (const std::exception&) {
        return -1;
    }
}

std::string field(const std::map<std::string, std::string>& info, const std::string& key) {
    auto it = info.find(key);
    return it == info.end() ? "" : it->second;
}

// A server answers a replica that offers the EOF capability with a diskless transfer, which it starts only
// after repl-diskless-sync-delay (5 s by default) in case more replicas come; without it, it forks at once
// and sends its dump file. "auto" takes the disk path when the server writes that file on its own
// schedule anyway (`save` is set) and the delay is not 0; a CONFIG it refuses means diskless.
bool offer_eof(Connection& conn, const std::string& transfer) {
    if (transfer != "auto") return transfer == "diskless";
    const CommandNames& cmds = conn.endpoint().commands;
    auto get = [&](const std::string& name) -> std::optional<std::string> {
        Reply r = conn.command({cmds.config, "GET", name});
        if (r.is_error() || r.size() < 2) return std::nullopt;
        return r.element(1).str();
    };
    auto save = get("save");
    auto delay = get("repl-diskless-sync-delay");
    return !save || save->empty() || !delay || *delay == "0";
}

// SYNC as `redis-cli --rdb` does it. Returns the refusal when the server says no before any RDB byte.
std::string try_sync(Connection& conn, const std::string& transfer, io::Writer& out,
                     const std::function<void(std::uint64_t)>& tick, CaptureResult& result) {
    const CommandNames& cmds = conn.endpoint().commands;
    if (offer_eof(conn, transfer)) {
        Reply capa = conn.command({cmds.replconf, "capa", "eof"});
        if (capa.is_error()) return cmds.replconf + " refused: " + capa.str();
    }
    // Servers older than 6.2 answer "Unrecognized REPLCONF option": harmless, the transfer just ends later.
    Reply rdb_only = conn.command({cmds.replconf, "rdb-only", "1"});
    if (rdb_only.is_error() && rdb_only.str().rfind("NOPERM", 0) == 0)
        return cmds.replconf + " refused: " + rdb_only.str();
    if (!conn.reader_empty())
        conn.fail("unexpected bytes after REPLCONF; cannot start the raw SYNC transfer");
    conn.write_raw(cmds.sync + "\r\n");
    RdbCheck check;
    SyncStreamResult s;
    try {
        s = stream_sync_payload(conn.raw_reader(), out, check, tick);
    } catch (const SyncRefused& e) {
        return e.what();
    } catch (const Error& e) {
        if (e.kind() != Kind::SourceUnavailable) throw;
        conn.fail(e.what());
    }
    result.method = "sync";
    result.transfer = s.header.eof_mark ? "diskless" : "disk";
    result.rdb = check.summary();
    return "";
}

void wait_for_bgsave(Connection& conn, long long saves_before, long long time_before, int timeout_s,
                     const std::function<void(std::uint64_t)>& tick) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    for (;;) {
        if (tick) tick(0);
        auto p = conn.info("persistence");
        bool done = field(p, "rdb_bgsave_in_progress") == "0" &&
                    (saves_before >= 0 ? number(p, "rdb_saves") > saves_before
                                       : number(p, "rdb_last_save_time") > time_before);
        if (done) {
            if (field(p, "rdb_last_bgsave_status") != "ok")
                conn.fail("BGSAVE failed on the server (rdb_last_bgsave_status:" +
                          field(p, "rdb_last_bgsave_status") + "): check the server's log");
            return;
        }
        if (std::chrono::steady_clock::now() > deadline)
            conn.fail("BGSAVE did not finish within " + std::to_string(timeout_s) +
                      " s: raise /redis/bgsave_timeout");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

std::string config_get(Connection& conn, const std::string& name, const std::string& refused) {
    const CommandNames& cmds = conn.endpoint().commands;
    Reply r = conn.command({cmds.config, "GET", name});
    if (r.is_error())
        conn.fail("SYNC was refused (" + refused + ") and " + cmds.config + " GET " + name + " too (" +
                  r.str() + "): " + kGrantSync + ", or +config|get for the BGSAVE fallback");
    if (r.size() < 2) conn.fail(cmds.config + " GET " + name + ": unexpected empty reply");
    return r.element(1).str();
}

void bgsave_fallback(Connection& conn, const RedisConfig& config, const std::string& refused, io::Writer& out,
                     const std::function<void(std::uint64_t)>& tick, CaptureResult& result) {
    const CommandNames& cmds = conn.endpoint().commands;
    auto before = conn.info("persistence");
    Reply r = conn.command({cmds.bgsave});
    if (r.is_error() && r.str().find("already in progress") != std::string::npos) {
        // Someone else's save: let it finish, then take our own so the snapshot is from now.
        wait_for_bgsave(conn, -1, -1, config.bgsave_timeout_s, tick);
        before = conn.info("persistence");
        r = conn.command({cmds.bgsave});
    }
    if (r.is_error())
        conn.fail("SYNC was refused (" + refused + ") and " + cmds.bgsave + " too (" + r.str() +
                  "): " + kGrantSync);
    wait_for_bgsave(conn, number(before, "rdb_saves"), number(before, "rdb_last_save_time"),
                    config.bgsave_timeout_s, tick);
    std::string dir = config_get(conn, "dir", refused);
    std::string file = config_get(conn, "dbfilename", refused);
    std::string path = (file.size() && file[0] == '/') ? file : dir + "/" + file;
    io::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        conn.fail("SYNC was refused (" + refused + "); BGSAVE wrote " + path +
                  " but it is not readable here (" + std::strerror(errno) + "): " + kGrantSync +
                  ", or run nightjar where that file can be read");
    io::FdReader reader(std::move(fd), path);
    RdbCheck check;
    std::vector<std::byte> buf(io::kChunkSize);
    std::uint64_t total = 0;
    while (std::size_t n = reader.read(buf)) {
        io::Bytes piece(buf.data(), n);
        check.update(piece);
        out.write(piece);
        total += n;
        if (tick) tick(total);
    }
    result.method = "bgsave";
    result.transfer = "local file " + path;
    result.rdb = check.summary();
}

}  // namespace

CaptureResult capture_snapshot(const RedisConfig& config, const std::optional<std::string>& password,
                               io::Writer& out, const std::function<void(std::uint64_t)>& tick) {
    CaptureResult result;
    std::string refused;
    {
        Connection conn(config.endpoint, password);
        refused = try_sync(conn, config.transfer, out, tick, result);
    }
    if (!refused.empty()) {
        result.sync_refused = refused;
        if (config.fallback == "none")
            throw Error(Kind::SourceUnavailable, config.endpoint.describe() + ": " + refused + ": " +
                                                     kGrantSync + ", or set /redis/fallback to \"bgsave\"");
        log::warn(config.endpoint.describe(), ": ", refused,
                  "; falling back to BGSAVE and a copy of the dump file");
        Connection conn(config.endpoint, password);
        bgsave_fallback(conn, config, refused, out, tick, result);
    }
    if (!result.rdb.ok())
        throw Error(Kind::SourceUnavailable, config.endpoint.describe() + ": the snapshot is damaged: " +
                                                 result.rdb.problem + ": retry, and check the server's log");
    return result;
}

}  // namespace nightjar::redis
