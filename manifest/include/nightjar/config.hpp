#pragma once
// The config file model. Loaded strictly: unknown keys and wrong types fail with the JSON pointer named.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/io/zstd.hpp"
#include "nightjar/postgres/config.hpp"

namespace nightjar {

struct FilesConfig {
    std::vector<std::string> paths;    // files, directories (recursive) and globs; absolute
    std::vector<std::string> exclude;  // glob patterns matched against the full path and the base name
    std::string on_unreadable = "fail";  // "fail": an unreadable or vanished file fails the component; "warn"
};

struct Config {
    std::filesystem::path source;       // the file it was loaded from ("" for defaults)
    std::filesystem::path backup_dir;   // where backups are published
    io::ZstdOptions compression;        // zstd level and threads for every artifact
    std::optional<FilesConfig> files;   // the config-files component, when configured
    std::optional<PostgresConfig> postgres;  // the PostgreSQL component, when configured
};

// Kind::Config for a missing file, invalid JSON, an unknown key or a bad value.
Config load_config(const std::filesystem::path& path);
Config parse_config(const std::string& text, const std::filesystem::path& source);

}  // namespace nightjar
