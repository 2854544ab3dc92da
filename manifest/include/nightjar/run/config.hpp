#pragma once
// The config file model. Loaded strictly: unknown keys and wrong types fail with the JSON pointer named.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/cdc/cdc_config.hpp"
#include "nightjar/components/files/config.hpp"
#include "nightjar/components/postgres/config.hpp"
#include "nightjar/components/redis/config.hpp"
#include "nightjar/components/registry.hpp"
#include "nightjar/io/zstd.hpp"
#include "nightjar/repo/retention.hpp"
#include "nightjar/run/drill_config.hpp"
#include "nightjar/run/encryption_config.hpp"
#include "nightjar/run/hooks.hpp"
#include "nightjar/run/repository_config.hpp"

namespace nightjar {

struct MonitoringConfig {
    std::string ping_url;                // healthchecks-style: <url>/start, <url>, <url>/fail; "" = off
    std::filesystem::path metrics_file;  // Prometheus textfile-collector file, written atomically; "" = off
    int timeout_s = 10;                  // per ping; a failing ping never fails the backup
};

struct Config {
    std::filesystem::path source;             // the file it was loaded from ("" for defaults)
    std::filesystem::path backup_dir;         // where backups are published (s3://bucket/prefix: type s3)
    io::ZstdOptions compression;              // zstd level and threads for every artifact
    std::optional<files::FilesConfig> files;  // the config-files component, when configured
    RetentionPolicy retention;                // pruning after a successful backup; empty = keep everything
    MonitoringConfig monitoring;              // pings and metrics
    std::optional<cdc::CdcConfig> cdc;        // Kafka Connect connectors to pause, when configured
    HooksConfig hooks;                        // operator commands before/after the backup and on error
    std::optional<redis::RedisConfig> redis;  // the Redis component, when configured
    std::optional<postgres::PostgresConfig> postgres;  // the PostgreSQL component, when configured
    RepositoryConfig repository;       // local modes, or the S3 store (type s3), and the copies after publish
    std::optional<DrillConfig> drill;  // restore drills (after_backup, random_skip_days)
    // Age recipients, identities, pinned signers, signing key: when present, every artifact and the
    // manifest are encrypted (parsed fail closed: a section that cannot encrypt is a Kind::Config error).
    std::optional<EncryptionConfig> encryption;
    // Components backed up at once ("parallel"): 0 = as many as the cores and the memory budget allow
    // (backup_parallelism), 1 = one after another in config order
    int parallel = 0;
};

// The component sections, for make_components (components/registry.hpp).
inline ComponentConfigs component_configs(const Config& c) {
    return {.files = c.files, .postgres = c.postgres, .redis = c.redis};
}

// Kind::Config for a missing file, invalid JSON, an unknown key or a bad value.
Config load_config(const std::filesystem::path& path);
Config parse_config(const std::string& text, const std::filesystem::path& source);

}  // namespace nightjar
