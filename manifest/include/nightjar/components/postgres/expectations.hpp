#pragma once
// Expectations recorded at capture time, in the dump's own snapshot, and compared after a drill's restore:
// per table with a primary key, a fingerprint of a sample of rows chosen by a seeded hash of the key (as
// text), so a restore is proven row for row on a sample and by exact count on every table.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace nightjar::postgres {
class PgConnection;
struct PgTarget;
}  // namespace nightjar::postgres

namespace nightjar::postgres {

struct TableName {
    std::string schema, name;
};

// How the sampled rows are picked: by md5(seed || key-as-text) (every version; what backups before the
// method was recorded used), or by hashtextextended(key-as-text, seed) (PostgreSQL 11+, the seeded 64-bit
// hash hash partitioning uses: about 3x cheaper per row, so the capture and the drill scan faster).
// hashtextextended depends on the server's byte order, so its expectations carry a probe value that the
// drill's server must reproduce before samples are compared.
enum class SampleMethod { Md5, HashTextExtended };

struct SampleOptions {
    std::uint64_t seed = 0;                             // 0: a random seed, recorded with the expectations
    std::size_t rows = 32;                              // K rows sampled per table with a primary key
    std::optional<SampleMethod> method = std::nullopt;  // unset: HashTextExtended from PostgreSQL 11 on
};

// Session settings that make a row's text form the same on every server (time zone, date and interval
// styles, float digits, bytea output). The capture runs them as SET LOCAL inside its transaction.
std::vector<std::string> canonical_settings(bool local);

// Runs on the exporting connection, inside its REPEATABLE READ transaction (so in the dump's snapshot), under
// a savepoint, so a failure leaves the transaction usable. Returns {"seed", "sample_rows", "method"
// ("md5" | "hashtextextended"), "probe" (hashtextextended only), "tables": [{schema, name, key: [columns],
// sampled, fingerprint}]} for the tables with a primary key.
nlohmann::json capture_expectations(PgConnection& conn, const std::vector<TableName>& tables,
                                    const SampleOptions& options = {});

// The fingerprint of one table: the K rows whose hash of the key as text (SampleMethod) sorts first, each as
// "hash:row-as-text", joined in hash order and hashed with SHA-256. `sampled` gets the number of rows.
std::string table_fingerprint(PgConnection& conn, const TableName& table, const std::vector<std::string>& key,
                              const std::string& seed, std::size_t rows, std::int64_t& sampled,
                              SampleMethod method = SampleMethod::Md5);

// The primary key columns of a table, in key order; empty when it has none.
std::vector<std::string> primary_key(PgConnection& conn, const TableName& table);

struct Check {
    std::string what;  // "postgres db-app: public.t rows"
    bool ok = false;
    std::string detail;  // "expected 10, got 9"
};

struct CompareOptions {
    // {"schema.name": rows} as the restore counted them right after loading (its summary's "table_rows"):
    // those tables are not counted a second time. nullptr: every table is counted here.
    const nlohmann::json* restored_rows = nullptr;
    int connections = 2;  // tables sampled at once, each on its own connection (the scans are CPU-bound)
};

// Compares a restored database with an artifact's `source` (tables[].rows and expectations): exact row
// counts for every table, fingerprints for every sampled table. One Check per comparison, in the order of
// the source (counts first, then samples), whatever order the connections finish in.
std::vector<Check> compare_expectations(const PgTarget& restored, const nlohmann::json& source,
                                        const std::string& label, const CompareOptions& options = {});

}  // namespace nightjar::postgres
