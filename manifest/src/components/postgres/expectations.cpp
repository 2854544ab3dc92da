#include "nightjar/components/postgres/expectations.hpp"

#include <algorithm>
#include <atomic>
#include <functional>
#include <optional>
#include <random>
#include <thread>

#include "nightjar/components/postgres/connection.hpp"
#include "nightjar/core/error.hpp"

namespace nightjar::postgres {
using nlohmann::json;

namespace {

std::string qualified(PgConnection& conn, const TableName& t) {
    return conn.quote_ident(t.schema) + "." + conn.quote_ident(t.name);
}

std::uint64_t random_seed() {
    std::random_device rd;
    std::uint64_t s = (std::uint64_t{rd()} << 32) ^ rd();
    return s == 0 ? 1 : s;
}

const char* method_name(SampleMethod m) {
    return m == SampleMethod::Md5 ? "md5" : "hashtextextended";
}

// A fixed input's hash: equal on two servers only if they hash text alike (same byte order).
std::string hash_probe(PgConnection& conn) {
    return conn.scalar("SELECT hashtextextended('nightjar sample probe', 0)::text");
}

}  // namespace

std::vector<std::string> canonical_settings(bool local) {
    const std::string set = local ? "SET LOCAL " : "SET ";
    return {set + "TimeZone = 'UTC'", set + "DateStyle = 'ISO, YMD'", set + "IntervalStyle = 'postgres'",
            set + "extra_float_digits = 3", set + "bytea_output = 'hex'"};
}

std::vector<std::string> primary_key(PgConnection& conn, const TableName& table) {
    PgResult r = conn.exec(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY (i.indkey::int2[]) "
        "WHERE i.indrelid = $1::regclass AND i.indisprimary "
        "ORDER BY array_position(i.indkey::int2[], a.attnum)",
        {qualified(conn, table)});
    std::vector<std::string> key;
    for (int i = 0; i < r.rows(); ++i) key.push_back(r.value(i, 0));
    return key;
}

std::string table_fingerprint(PgConnection& conn, const TableName& table, const std::vector<std::string>& key,
                              const std::string& seed, std::size_t rows, std::int64_t& sampled,
                              SampleMethod method) {
    std::string cols;
    for (const auto& c : key)
        cols += (cols.empty() ? "" : ", ") + std::string("nightjar_row.") + conn.quote_ident(c);
    // ROW(...) even for one column, so the key text is "(v)" for any key; the whole row as its text form. The
    // K rows are picked by their key's hash alone (one scan hashing only the key), and only those K are
    // read again by ctid and rendered whole: rendering every row of a big table as text took a third of
    // the query (random_data of bench/drill_bench.sh: 12.9 s -> 8.2 s). The same rows, hashes and order, so
    // the same fingerprint, as picking and rendering in one pass.
    const std::string from = "FROM ONLY " + qualified(conn, table) + " AS nightjar_row";
    // hashtextextended's seed is a bigint: the recorded unsigned seed, reinterpreted.
    const std::string hash = method == SampleMethod::Md5
                                 ? "md5($1 || ROW(" + cols + ")::text)"
                                 : "hashtextextended(ROW(" + cols + ")::text, $1::bigint)";
    const std::string param =
        method == SampleMethod::Md5
            ? seed
            : std::to_string(static_cast<std::int64_t>(std::stoull(seed.empty() ? "0" : seed)));
    const std::string sql =
        "SELECT count(*), coalesce(encode(sha256(convert_to(string_agg(h::text || ':' || r, E'\\n' ORDER BY "
        "h), "
        "'UTF8')), 'hex'), '') FROM (SELECT " +
        hash + " AS h, nightjar_row::text AS r " + from + " WHERE nightjar_row.ctid = ANY (ARRAY(SELECT " +
        "nightjar_row.ctid " + from + " ORDER BY " + hash + " LIMIT " + std::to_string(rows) + "))) AS s";
    PgResult r = conn.exec(sql, {param});
    sampled = std::stoll(r.value(0, 0));
    return r.value(0, 1);
}

json capture_expectations(PgConnection& conn, const std::vector<TableName>& tables,
                          const SampleOptions& options) {
    const std::uint64_t seed = options.seed != 0 ? options.seed : random_seed();
    const std::string seed_text = std::to_string(seed);
    const SampleMethod method = options.method.value_or(
        conn.server_version() >= 110000 ? SampleMethod::HashTextExtended : SampleMethod::Md5);
    json list = json::array();
    json out{{"seed", seed_text}, {"sample_rows", options.rows}, {"method", method_name(method)}};
    conn.exec("SAVEPOINT nightjar_expectations");
    try {
        for (const auto& s : canonical_settings(true)) conn.exec(s);
        if (method == SampleMethod::HashTextExtended) out["probe"] = hash_probe(conn);
        for (const auto& t : tables) {
            auto key = primary_key(conn, t);
            if (key.empty()) continue;  // no primary key: the exact row count only
            std::int64_t sampled = 0;
            std::string fp = table_fingerprint(conn, t, key, seed_text, options.rows, sampled, method);
            list.push_back({{"schema", t.schema},
                            {"name", t.name},
                            {"key", key},
                            {"sampled", sampled},
                            {"fingerprint", fp}});
        }
        conn.exec("RELEASE SAVEPOINT nightjar_expectations");
    } catch (const Error&) {
        conn.exec("ROLLBACK TO SAVEPOINT nightjar_expectations");
        throw;
    }
    out["tables"] = std::move(list);
    return out;
}

std::vector<Check> compare_expectations(const PgTarget& restored, const json& source,
                                        const std::string& label, const CompareOptions& options) {
    // Each job fills its own slot, so the checks keep the source's order whatever finishes first.
    std::vector<Check> checks;
    std::vector<std::function<void(PgConnection&, Check&)>> jobs;
    auto add = [&](std::string what, std::function<void(PgConnection&, Check&)> body) {
        checks.push_back({label + ": " + std::move(what), false, ""});
        jobs.push_back(std::move(body));
    };
    if (source.contains("tables") && source["tables"].is_array()) {
        for (const auto& t : source["tables"]) {
            TableName name{t.value("schema", ""), t.value("name", "")};
            const std::int64_t want = t.value("rows", std::int64_t{-1});
            const std::string key = name.schema + "." + name.name;
            const json* counted = options.restored_rows && options.restored_rows->contains(key) &&
                                          (*options.restored_rows)[key].is_number_integer()
                                      ? &(*options.restored_rows)[key]
                                      : nullptr;
            if (counted) {
                // Counted by the restore right after loading: the same exact number, not scanned again.
                const std::int64_t got = counted->get<std::int64_t>();
                checks.push_back({label + ": " + key + " rows", got == want,
                                  "expected " + std::to_string(want) + ", got " + std::to_string(got) +
                                      " (counted by the restore)"});
                jobs.emplace_back();
                continue;
            }
            add(key + " rows", [name, want](PgConnection& conn, Check& c) {
                std::int64_t got =
                    std::stoll(conn.scalar("SELECT count(*) FROM ONLY " + qualified(conn, name)));
                c.ok = got == want;
                c.detail = "expected " + std::to_string(want) + ", got " + std::to_string(got);
            });
        }
    }
    if (!source.contains("expectations") || !source["expectations"].is_object()) {
        checks.push_back(
            {label + ": row samples", false,
             "the manifest records no expectations for this database (a backup older than drills): "
             "only row counts were compared"});
        jobs.emplace_back();
    } else {
        const json& e = source["expectations"];
        const std::string seed = e.value("seed", "");
        const std::size_t k = e.value("sample_rows", std::size_t{0});
        const std::string method_text = e.value("method", "md5");  // not recorded before the method was
        const SampleMethod method =
            method_text == "hashtextextended" ? SampleMethod::HashTextExtended : SampleMethod::Md5;
        const std::string probe = e.value("probe", "");
        const bool known = method_text == "md5" || method_text == "hashtextextended";
        for (const auto& t : e.value("tables", json::array())) {
            TableName name{t.value("schema", ""), t.value("name", "")};
            std::vector<std::string> key = t.value("key", std::vector<std::string>{});
            const std::string want = t.value("fingerprint", "");
            const std::int64_t want_n = t.value("sampled", std::int64_t{-1});
            add(name.schema + "." + name.name + " sample of " + std::to_string(want_n) + " rows",
                [=](PgConnection& conn, Check& c) {
                    if (!known)
                        throw Error(Kind::Verification, "the sample was picked by \"" + method_text +
                                                            "\", which this version does not know");
                    if (method == SampleMethod::HashTextExtended) {
                        const std::string here = hash_probe(conn);
                        if (here != probe)
                            throw Error(Kind::Verification,
                                        "this server hashes text differently from the one that captured the "
                                        "backup (probe " +
                                            probe + ", here " + here +
                                            ": another byte order?): the samples cannot be compared");
                    }
                    std::int64_t got_n = 0;
                    std::string got = table_fingerprint(conn, name, key, seed, k, got_n, method);
                    c.ok = got == want && got_n == want_n;
                    c.detail = c.ok ? "fingerprint " + got.substr(0, 16)
                                    : "expected fingerprint " + want.substr(0, 16) + " of " +
                                          std::to_string(want_n) + " rows, got " + got.substr(0, 16) +
                                          " of " + std::to_string(got_n);
                });
        }
    }
    // Workers take the next job; a connection that cannot be opened fails the checks it would have run.
    std::atomic<std::size_t> next{0};
    auto work = [&] {
        std::optional<PgConnection> conn;
        std::string no_connection;
        for (std::size_t i; (i = next.fetch_add(1)) < jobs.size();) {
            if (!jobs[i]) continue;
            Check& c = checks[i];
            try {
                if (!conn && no_connection.empty()) {
                    conn.emplace(restored, Kind::RestoreFailed);
                    for (const auto& s : canonical_settings(false)) conn->exec(s);
                }
                if (!conn) throw Error(Kind::RestoreFailed, no_connection);
                jobs[i](*conn, c);
            } catch (const std::exception& e) {  // a thread must not let one escape
                if (!conn) no_connection = e.what();
                c.ok = false;
                c.detail = e.what();
            }
        }
    };
    const std::size_t runnable = static_cast<std::size_t>(
        std::count_if(jobs.begin(), jobs.end(), [](const auto& j) { return static_cast<bool>(j); }));
    const std::size_t n =
        std::clamp<std::size_t>(runnable, 1, static_cast<std::size_t>(std::max(options.connections, 1)));
    std::vector<std::thread> extra;
    for (std::size_t i = 1; i < n; ++i) extra.emplace_back(work);
    work();
    for (auto& t : extra) t.join();
    return checks;
}

}  // namespace nightjar::postgres
