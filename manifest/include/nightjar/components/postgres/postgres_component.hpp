#pragma once
// The PostgreSQL component: one pg_dump custom-format artifact per database, taken in a snapshot exported by
// a libpq connection that also records what pg_dump does not tell (server version, LSN, exact row counts,
// replication slots); optional globals (roles, tablespaces) as a plain SQL artifact.
#include <optional>

#include "nightjar/components/component.hpp"
#include "nightjar/components/postgres/config.hpp"
#include "nightjar/components/postgres/restore_options.hpp"

namespace nightjar::postgres {

class PostgresComponent final : public Component {
public:
    explicit PostgresComponent(std::optional<PostgresConfig> config = std::nullopt,
                               PostgresRestoreOptions restore_options = {});
    ~PostgresComponent() override;
    std::string_view kind() const override { return "postgres"; }
    CheckReport check() const override;
    DumpResult dump(DumpContext& context, Staging& staging) override;
    VerifyOutcome verify(const Artifact& artifact, io::Reader& content) const override;
    // A database dump is restored as it streams (see postgres/streamed_restore.hpp): it is decompressed once.
    bool restores_while_verifying(const Artifact& artifact) const override;
    RestorePlan plan_restore(const Artifact& artifact, const RestoreContext& context) const override;
    std::string describe_target(const Artifact& artifact, const RestoreContext& context) const override;
    RestoreReport restore(const Artifact& artifact, io::Reader& content,
                          const RestoreContext& context) override;
    bool fail_fast() const override { return config_ && config_->fail_fast; }

private:
    std::optional<PostgresConfig> config_;
    PostgresRestoreOptions restore_options_;
};

// The artifact formats this component writes.
inline constexpr const char* kPgDumpFormat = "pg_dump-custom";
inline constexpr const char* kPgGlobalsFormat = "pg_dumpall-globals-sql";

// A database name as a file name: [A-Za-z0-9_.-] kept, every other byte as %XX (so names stay distinct).
std::string pg_file_name_part(const std::string& database);
// Kind::Usage when --db or --db-name names a database the manifest does not hold, or --db-name renames one
// that --db did not select.
void check_pg_renames(const Manifest& manifest, const PostgresRestoreOptions& options);
// The database a pg_dump artifact holds ("" for the globals artifact).
std::string pg_artifact_database(const Artifact& artifact);

}  // namespace nightjar::postgres
