#include "nightjar/components/redis/redis_component.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <utility>

#include "nightjar/components/redis/capture.hpp"
#include "nightjar/components/redis/client.hpp"
#include "nightjar/components/redis/expectations.hpp"
#include "nightjar/components/redis/live_load.hpp"
#include "nightjar/components/redis/rdb_check.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/io/fd.hpp"
#include "nightjar/repo/repository.hpp"

namespace nightjar::redis {
namespace fs = std::filesystem;
using nlohmann::json;
using redis::Keyspace;

namespace {

constexpr const char* kArtifactFile = "redis.rdb.zst";

json keyspace_json(const Keyspace& ks) {
    json j = json::object();
    for (const auto& [db, e] : ks) j["db" + std::to_string(db)] = {{"keys", e.keys}, {"expires", e.expires}};
    return j;
}

Keyspace keyspace_from(const Artifact& a) {
    JsonFields source(a.source, "manifest artifact " + a.name, Kind::Verification, "/source");
    Keyspace ks;
    if (!source.has("keyspace")) return ks;
    for (const auto& [name, v] : source.raw().at("keyspace").items()) {
        if (name.rfind("db", 0) != 0 || !v.is_object())
            source.fail("keyspace/" + name, "expected db<N>: {keys, expires}");
        JsonFields e(v, "manifest artifact " + a.name, Kind::Verification, "/source/keyspace/" + name);
        ks[std::atoi(name.c_str() + 2)] = {e.uint64("keys"), e.uint64("expires")};
    }
    return ks;
}

std::uint64_t total_keys(const Keyspace& ks) {
    std::uint64_t n = 0;
    for (const auto& [db, e] : ks) n += e.keys;
    return n;
}

int rdb_version_of(const Artifact& a) {
    JsonFields source(a.source, "manifest artifact " + a.name, Kind::Verification, "/source");
    return static_cast<int>(source.integer_or("rdb_version", 0, 99, 0));
}

// The one rule: the endpoint recorded in the manifest, unless the options override it (--redis-host/-port;
// `target` replaces it whole). Credentials: the config's redis section, plus the recorded user and
// password file when the target is the recorded server.
redis::Endpoint target_of(const Artifact& a, const RedisRestoreOptions& o) {
    if (o.target) return *o.target;
    redis::Endpoint ep = o.credentials.value_or(redis::Endpoint{});
    JsonFields source(a.source, "manifest artifact " + a.name, Kind::Verification, "/source");
    if (source.has("port") || source.has("socket")) {
        ep.socket = source.string_or("socket", "");
        ep.host = source.string_or("host", ep.host);
        ep.port = static_cast<int>(source.integer_or("port", 1, 65535, ep.port));
    } else if (source.has("endpoint")) {  // older manifests: "redis HOST:PORT" or "redis /path.sock"
        std::string d = source.string("endpoint");
        if (d.rfind("redis ", 0) == 0) d.erase(0, 6);
        auto colon = d.rfind(':');
        if (!d.empty() && d[0] == '/') {
            ep.socket = d;
        } else if (colon != std::string::npos && colon + 1 < d.size() &&
                   d.find_first_not_of("0123456789", colon + 1) == std::string::npos &&
                   d.size() - colon <= 6) {
            ep.socket.clear();
            ep.host = d.substr(0, colon);
            if (ep.host.size() > 2 && ep.host.front() == '[' && ep.host.back() == ']')
                ep.host = ep.host.substr(1, ep.host.size() - 2);
            ep.port = std::clamp(std::atoi(d.c_str() + colon + 1), 1, 65535);
        }
    }
    // The recorded credentials belong to the recorded server; another target gets the config's (or
    // $REDISCLI_AUTH) only.
    const bool overridden = !o.host.empty() || o.port > 0;
    if (!overridden && source.has("user")) ep.user = source.string("user");
    if (!overridden && source.has("password_file") && ep.password_file.empty())
        ep.password_file = source.string("password_file");
    if (!o.host.empty()) {
        ep.host = o.host;
        ep.socket.clear();
    }
    if (o.port > 0) {
        ep.port = o.port;
        ep.socket.clear();
    }
    return ep;
}

std::string merge_refusal(const redis::Endpoint& ep, std::uint64_t keys) {
    return "redis: " + ep.describe() + " holds " + std::to_string(keys) +
           " key(s): restore refused, nothing was written: pass --redis-merge to keep its other keys (the "
           "backup's replace theirs), or --redis-flush to empty it first";
}

// What a live restore does with a target that holds keys: --clean flushes it, as --redis-flush does.
RedisNonEmpty non_empty_rule(const RedisRestoreOptions& o, const RestoreContext& context) {
    return context.clean ? RedisNonEmpty::Flush : o.non_empty;
}

// Keys with a TTL may expire between backup and restore: each db must hold between keys-expires and keys.
std::vector<std::string> compare_keyspace(const Keyspace& expected, const Keyspace& actual,
                                          const std::string& what) {
    std::vector<std::string> problems;
    std::set<int> dbs;
    for (const auto& [db, e] : expected) dbs.insert(db);
    for (const auto& [db, e] : actual) dbs.insert(db);
    for (int db : dbs) {
        auto want = expected.count(db) ? expected.at(db) : redis::KeyspaceEntry{};
        std::uint64_t got = actual.count(db) ? actual.at(db).keys : 0;
        if (got > want.keys || got + want.expires < want.keys)
            problems.push_back("db" + std::to_string(db) + " holds " + std::to_string(got) + " keys, " +
                               what + " recorded " + std::to_string(want.keys) + " (" +
                               std::to_string(want.expires) + " with a TTL)");
    }
    return problems;
}

// Copies `content` to a new file `path` (0640), checking it as an RDB on the way; fsynced.
redis::RdbSummary write_rdb(io::Reader& content, const fs::path& path) {
    io::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
    if (!fd) throw_errno(Kind::RestoreFailed, "redis: cannot create", path.string());
    io::FdWriter out(fd.get(), path.string());
    redis::RdbCheck check;
    std::vector<std::byte> buf(io::kChunkSize);
    while (std::size_t n = content.read(buf)) {
        io::Bytes piece(buf.data(), n);
        check.update(piece);
        out.write(piece);
    }
    if (::fsync(fd.get()) != 0) throw_errno(Kind::RestoreFailed, "redis: cannot fsync", path.string());
    return check.summary();
}

// What the real capture would be allowed to do: SYNC (REPLCONF + SYNC), else the BGSAVE fallback (BGSAVE,
// CONFIG GET dir/dbfilename and the dump file read here). Adds a problem when neither would work.
void check_capture_permissions(redis::Connection& conn, const redis::RedisConfig& config,
                               CheckReport& report) {
    const redis::CommandNames& cmds = config.endpoint.commands;
    const std::string what = config.endpoint.describe();
    const std::string user =
        config.endpoint.user.empty() ? "the default user" : "user " + config.endpoint.user;
    constexpr const char* kGrantSync =
        "grant the backup user +replconf +sync +psync +ping +info (see README, Redis)";
    std::string sync_refused;
    for (const auto& argv :
         std::vector<std::vector<std::string>>{{cmds.replconf, "capa", "eof"}, {cmds.sync}}) {
        auto p = conn.probe_permission(argv, /*harmless=*/argv[0] == cmds.replconf);
        if (!p.known) {
            report.warnings.push_back("cannot tell whether " + user + " may run " + argv[0] + " (" +
                                      p.detail + "): the real run will find out");
            return;
        }
        if (!p.allowed) {
            sync_refused = argv[0] + " refused: " + p.detail;
            break;
        }
    }
    if (sync_refused.empty()) return;
    if (config.fallback == "none") {
        report.problems.push_back(what + ": " + sync_refused + ": " + kGrantSync +
                                  ", or set /redis/fallback to \"bgsave\"");
        return;
    }
    std::vector<std::string> denied;
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {cmds.bgsave}, {cmds.config, "GET", "dir"}, {cmds.config, "GET", "dbfilename"}}) {
        auto p = conn.probe_permission(argv, /*harmless=*/argv[0] == cmds.config);
        if (!p.known)
            report.warnings.push_back("cannot tell whether " + user + " may run " + argv[0] + " (" +
                                      p.detail + "): the BGSAVE fallback may fail");
        else if (!p.allowed)
            denied.push_back(argv[0] + (argv.size() > 1 ? " " + argv[1] : "") + " (" + p.detail + ")");
    }
    if (!denied.empty()) {
        std::string list;
        for (const auto& d : denied) list += (list.empty() ? "" : ", ") + d;
        report.problems.push_back(what + ": SYNC is not permitted (" + sync_refused +
                                  ") and the BGSAVE fallback would be refused too: " + list + ": " +
                                  kGrantSync + ", or +bgsave +config|get for the BGSAVE fallback");
        return;
    }
    redis::Reply dir = conn.command({cmds.config, "GET", "dir"});
    if (!dir.is_error() && dir.size() >= 2) {
        std::string d = dir.element(1).str();
        if (::access(d.c_str(), R_OK | X_OK) != 0) {
            report.problems.push_back(what + ": " + sync_refused + "; the BGSAVE fallback would write into " +
                                      d + ", which is not readable here: " + kGrantSync +
                                      ", or run nightjar where that directory can be read");
            return;
        }
    }
    report.warnings.push_back(sync_refused +
                              ": the backup will fall back to BGSAVE and a copy of the dump file");
}

}  // namespace

CheckReport RedisComponent::check() const {
    CheckReport report;
    if (!config_) return report;
    const auto& ep = config_->endpoint;
    try {
        redis::Connection conn(ep, redis::resolve_password(ep));
        auto server = conn.info("server");
        auto memory = conn.info("memory");
        Keyspace ks = conn.keyspace();
        std::uint64_t used = std::strtoull(memory["used_memory"].c_str(), nullptr, 10);
        report.estimated_bytes = used;
        report.plan.push_back("redis: " + ep.describe() + " (Redis " + server["redis_version"] + "), " +
                              std::to_string(total_keys(ks)) + " keys in " + std::to_string(ks.size()) +
                              " db(s), " + log::human_bytes(used) + " used; snapshot over SYNC" +
                              (config_->fallback == "bgsave" ? " (BGSAVE fallback)" : ""));
        check_capture_permissions(conn, *config_, report);
    } catch (const Error& e) {
        report.problems.push_back(e.what());
    }
    return report;
}

DumpResult RedisComponent::dump(DumpContext& context, Staging& staging) {
    if (!config_) throw Error(Kind::Internal, "redis component has no configuration");
    const auto& ep = config_->endpoint;
    auto password = redis::resolve_password(ep);
    json source;
    Keyspace before;
    {
        redis::Connection meta(ep, password);
        auto server = meta.info("server");
        auto repl = meta.info("replication");
        auto memory = meta.info("memory");
        before = meta.keyspace();
        source = {{"endpoint", ep.describe()},
                  {"host", ep.host},
                  {"port", ep.port},
                  {"redis_version", server["redis_version"]},
                  {"role", repl["role"]},
                  {"master_replid", repl["master_replid"]},
                  {"master_repl_offset", std::strtoll(repl["master_repl_offset"].c_str(), nullptr, 10)},
                  {"used_memory", std::strtoull(memory["used_memory"].c_str(), nullptr, 10)},
                  {"keyspace", keyspace_json(before)}};
    }
    log::info("redis: capturing a snapshot from ", ep.describe(),
              " (a diskless server waits repl-diskless-sync-delay, 5 s by default, before it sends)");
    // The first RDB byte means the server has forked its snapshot: the capture point (for cdc.hold).
    auto out = staging.artifact(kArtifactFile, [&context, fixed = false](std::uint64_t n) mutable {
        if (n > 0 && !std::exchange(fixed, true)) context.took_snapshot("redis", true);
        if (context.progress) context.progress("redis", n);
    });
    auto tick = [&context](std::uint64_t) {
        if (context.check_interrupted) context.check_interrupted();
    };
    // A copy of the RDB beside the artifact, for the drill's expectations, read from this very snapshot.
    redis::ScratchDir copy("nightjar-redis-capture");
    redis::TeeToFile tee(*out, copy.path() / "dump.rdb");
    redis::CaptureResult cap = redis::capture_snapshot(*config_, password, tee, tick);
    tee.finish();
    out->finish();
    json expected;
    try {
        expected = redis::snapshot_expectations(copy.path() / "dump.rdb");
    } catch (const Error& e) {
        log::warn("redis: no drill expectations recorded: ", e.what());
    }
    Keyspace after;
    {
        redis::Connection meta(ep, password);
        after = meta.keyspace();
    }
    bool stable = true;
    for (const auto& [db, e] : before) stable = stable && after.count(db) && after.at(db).keys == e.keys;
    stable = stable && before.size() == after.size();

    if (!ep.socket.empty()) source["socket"] = ep.socket;
    if (ep.tls && ep.socket.empty()) source["tls"] = true;
    if (!ep.user.empty()) source["user"] = ep.user;
    if (!ep.password_file.empty()) source["password_file"] = ep.password_file;
    source["rdb_version"] = cap.rdb.version;
    source["crc64"] = cap.rdb.crc_text();
    source["method"] = cap.method;
    source["transfer"] = cap.transfer;
    source["keyspace_stable"] = stable;
    if (!cap.sync_refused.empty()) source["sync_refused"] = cap.sync_refused;
    if (!expected.is_null()) source["expectations"] = std::move(expected);

    DumpResult result;
    if (!stable)
        result.warnings.push_back(
            "the key counts changed while the snapshot was taken; a restore compares with the "
            "snapshot's own counts instead");
    if (!cap.rdb.checksum_enabled)
        result.warnings.push_back(
            "the server writes RDB files without a checksum (rdbchecksum no): only the "
            "structure and SHA-256 can be verified");
    Artifact artifact = out->artifact("redis", "redis", "rdb");
    artifact.source = source;
    result.details = {{"keys", total_keys(before)},
                      {"method", cap.method},
                      {"transfer", cap.transfer},
                      {"rdb_version", cap.rdb.version},
                      {"crc64", cap.rdb.crc_text()}};
    result.artifacts.push_back(std::move(artifact));
    return result;
}

VerifyOutcome RedisComponent::verify(const Artifact& artifact, io::Reader& content) const {
    redis::RdbCheck check;
    std::vector<std::byte> buf(io::kChunkSize);
    while (std::size_t n = content.read(buf)) check.update(io::Bytes(buf.data(), n));
    redis::RdbSummary s = check.summary();
    if (!s.ok()) return {VerifyStatus::FormatInvalid, "RDB check failed: " + s.problem};
    int recorded = rdb_version_of(artifact);
    if (recorded != 0 && recorded != s.version)
        return {VerifyStatus::FormatInvalid, "RDB version " + std::to_string(s.version) +
                                                 " but the manifest recorded " + std::to_string(recorded)};
    if (artifact.source.contains("crc64") && artifact.source["crc64"] != s.crc_text())
        return {VerifyStatus::FormatInvalid,
                "CRC64 " + s.crc_text() + " but the manifest recorded " + artifact.source["crc64"].dump()};
    return {};
}

RestorePlan RedisComponent::plan_restore(const Artifact& artifact, const RestoreContext& context) const {
    const RedisRestoreOptions& options = restore_options_;
    const RedisNonEmpty non_empty = non_empty_rule(options, context);
    RestorePlan plan;
    Keyspace ks = keyspace_from(artifact);
    std::string what = std::to_string(total_keys(ks)) + " keys in " + std::to_string(ks.size()) +
                       " db(s), RDB " + std::to_string(rdb_version_of(artifact)) + ", " +
                       log::human_bytes(artifact.content_size);
    if (options.mode == RedisRestoreMode::File) {
        if (!options.rdb_path) {
            plan.refusals.push_back("redis: --redis-mode file needs --redis-rdb-path PATH");
            return plan;
        }
        const fs::path& p = *options.rdb_path;
        if (fs::exists(p) && !options.force)
            plan.refusals.push_back("redis: " + p.string() + " exists: pass --force to overwrite it");
        plan.lines.push_back("redis: write the snapshot (" + what + ") to " + p.string());
        plan.summary = {{"mode", "file"}, {"path", p.string()}, {"keys", total_keys(ks)}};
        return plan;
    }
    redis::Endpoint ep = target_of(artifact, options);
    // A target that cannot be reached is an error (Kind::SourceUnavailable), not a line of the plan.
    std::uint64_t held = 0;
    {
        redis::Connection target(ep, redis::resolve_password(ep));
        held = total_keys(target.keyspace());
    }
    std::string how;
    if (held == 0)
        how = "it is empty";
    else if (non_empty == RedisNonEmpty::Flush)
        how = "flush: its " + std::to_string(held) + " key(s) are removed first (FLUSHALL, --redis-flush)";
    else if (non_empty == RedisNonEmpty::Merge)
        how = "merge: it holds " + std::to_string(held) +
              " key(s); those not in the backup stay, the backup's replace theirs (--redis-merge)";
    else
        plan.refusals.push_back(merge_refusal(ep, held));
    plan.lines.push_back("redis: load the snapshot (" + what + ") into " + ep.describe() +
                         " through a temporary redis-server" + (how.empty() ? "" : ": " + how));
    plan.summary = {{"mode", "live"},
                    {"target", ep.describe()},
                    {"keys", total_keys(ks)},
                    {"target_keys", held},
                    {"flush", non_empty == RedisNonEmpty::Flush && held > 0},
                    {"merge", non_empty == RedisNonEmpty::Merge && held > 0}};
    return plan;
}

std::string RedisComponent::describe_target(const Artifact& artifact, const RestoreContext& context) const {
    (void)context;
    const RedisRestoreOptions& options = restore_options_;
    if (options.mode == RedisRestoreMode::File)
        return options.rdb_path ? "an RDB file at " + options.rdb_path->string() + " (--redis-rdb-path)"
                                : "an RDB file (--redis-rdb-path is missing)";
    redis::Endpoint ep = target_of(artifact, options);
    return ep.describe() +
           (options.overrides_endpoint() ? " (--redis-host/--redis-port)" : " (recorded in the manifest)");
}

RestoreReport RedisComponent::restore(const Artifact& artifact, io::Reader& content,
                                      const RestoreContext& context) {
    const RedisRestoreOptions& options = restore_options_;
    const RedisNonEmpty non_empty = non_empty_rule(options, context);
    RestoreReport report;
    if (options.mode == RedisRestoreMode::File) {
        RestorePlan plan = plan_restore(artifact, context);
        if (!plan.refusals.empty()) throw Error(Kind::RestoreFailed, plan.refusals.front());
        const fs::path path = fs::absolute(*options.rdb_path);
        const fs::path tmp = path.parent_path() / ("." + path.filename().string() + ".nightjar-tmp");
        fs::remove(tmp);
        redis::RdbSummary s;
        try {
            s = write_rdb(content, tmp);
            if (!s.ok())
                throw Error(Kind::RestoreFailed, "redis: the restored RDB fails its check: " + s.problem);
            if (::rename(tmp.c_str(), path.c_str()) != 0)
                throw_errno(Kind::RestoreFailed, "redis: cannot rename to", path.string());
        } catch (...) {
            std::error_code ec;
            fs::remove(tmp, ec);
            throw;
        }
        io::fsync_dir(path.parent_path());
        report.lines.push_back("redis: wrote " + path.string() + " (" + log::human_bytes(s.size) + ", RDB " +
                               std::to_string(s.version) + ", CRC64 " + s.crc_text() + ")");
        report.lines.push_back(
            "redis: to use it: stop the server with SHUTDOWN NOSAVE (a plain SHUTDOWN may save over it), "
            "copy it "
            "to the server's `dir` as its `dbfilename`, owned by the redis user, and start the server");
        report.lines.push_back(
            "redis: WARNING: a server with appendonly yes ignores dump.rdb at start and comes up EMPTY: "
            "start it "
            "with appendonly no, check the keys, then run CONFIG SET appendonly yes (and CONFIG REWRITE)");
        report.summary = {
            {"mode", "file"}, {"path", path.string()}, {"bytes", s.size}, {"crc64", s.crc_text()}};
        return report;
    }

    const redis::Endpoint ep = target_of(artifact, options);
    redis::Connection target(ep, redis::resolve_password(ep));
    Keyspace existing = target.keyspace();
    if (total_keys(existing) > 0 && non_empty == RedisNonEmpty::Refuse)
        throw Error(Kind::RestoreFailed, merge_refusal(ep, total_keys(existing)));
    ScratchDir scratch("nightjar-redis");
    const fs::path rdb = scratch.path() / "dump.rdb";
    redis::RdbSummary s = write_rdb(content, rdb);
    if (!s.ok()) throw Error(Kind::RestoreFailed, "redis: the snapshot fails its check: " + s.problem);
    const bool flush = non_empty == RedisNonEmpty::Flush;
    redis::LiveLoadResult r = redis::load_live(rdb, s.version, target, {.flush = flush});
    if (flush) existing.clear();
    if (r.flushed_keys > 0)
        report.lines.push_back("redis: emptied " + ep.describe() + " (--redis-flush): it held " +
                               std::to_string(r.flushed_keys) + " keys" +
                               (r.method == "replication"
                                    ? ", replaced whole by the full sync (no FLUSHALL needed)"
                                    : " (FLUSHALL)"));
    if (r.method == "replication")
        report.lines.push_back(
            "redis: loaded by replication from a temporary server on loopback (REPLICAOF, "
            "then REPLICAOF NO ONE; its masterauth and masteruser put back)");
    else if (!r.replication_refused.empty())
        report.lines.push_back("redis: copied key by key (DUMP/RESTORE), not by replication: " +
                               r.replication_refused);
    Keyspace after = target.keyspace();
    for (const auto& e : r.errors) report.problems.push_back(e);
    if (r.error_count > r.errors.size())
        report.problems.push_back("(and " + std::to_string(r.error_count - r.errors.size()) +
                                  " more refusals)");
    // The snapshot's own counts are the reference when the source was changing during the backup.
    bool stable = artifact.source.value("keyspace_stable", true);
    Keyspace expected = stable ? keyspace_from(artifact) : r.loaded;
    for (auto& p : compare_keyspace(expected, r.loaded, "the manifest"))
        report.problems.push_back("snapshot " + p);
    // What the target must hold now: what it held, plus the backup's keys, minus those it already had.
    Keyspace expected_after = expected;
    std::uint64_t kept_alone = 0, replaced = 0;
    for (const auto& [db, e] : existing) {
        std::uint64_t rep = r.replaced.count(db) ? r.replaced.at(db) : 0;
        expected_after[db].keys += e.keys - std::min(rep, e.keys);
        expected_after[db].expires += e.expires;
        kept_alone += e.keys - std::min(rep, e.keys);
        replaced += rep;
    }
    for (auto& p : compare_keyspace(expected_after, after,
                                    std::string(stable ? "the manifest" : "the snapshot") +
                                        (existing.empty() ? "" : " plus the keys it held before")))
        report.problems.push_back("target " + p);
    if (!existing.empty())
        report.lines.push_back("redis: the target held " + std::to_string(total_keys(existing)) +
                               " keys before: " + std::to_string(replaced) + " replaced by the backup's, " +
                               std::to_string(kept_alone) + " not in the backup left alone (--redis-merge)");
    report.lines.push_back("redis: restored " + std::to_string(r.keys_copied) + " keys into " +
                           ep.describe() + " (" + std::to_string(total_keys(after)) + " now; " +
                           std::to_string(r.keys_expired) + " expired in between; " +
                           std::to_string(r.functions) + " function libraries)");
    report.summary = {{"mode", "live"},
                      {"target", ep.describe()},
                      {"keys_copied", r.keys_copied},
                      {"keys_expired", r.keys_expired},
                      {"functions", r.functions},
                      {"keyspace", keyspace_json(after)},
                      {"flushed", r.flushed_keys > 0},
                      {"method", r.method},
                      {"replaced", replaced},
                      {"left_alone", kept_alone}};
    return report;
}

}  // namespace nightjar::redis
