#pragma once
// The components nightjar knows, made for a backup run (from the config) or for a restore (from the kind an
// artifact names, with that component's restore options).
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nightjar/components/component.hpp"
#include "nightjar/components/files/config.hpp"
#include "nightjar/components/files/restore_options.hpp"
#include "nightjar/components/postgres/config.hpp"
#include "nightjar/components/postgres/restore_options.hpp"
#include "nightjar/components/redis/config.hpp"
#include "nightjar/components/redis/restore_options.hpp"

namespace nightjar {

// The configured components of a backup run (from the config file's sections).
struct ComponentConfigs {
    std::optional<files::FilesConfig> files = std::nullopt;           // components/files/config.hpp
    std::optional<postgres::PostgresConfig> postgres = std::nullopt;  // components/postgres/config.hpp
    std::optional<redis::RedisConfig> redis = std::nullopt;           // components/redis/config.hpp
};

// Each component's restore options, one block per component (restore/options.cpp fills them from the flags).
struct ComponentRestoreOptions {
    files::FilesRestoreOptions files = {};           // components/files/restore_options.hpp
    postgres::PostgresRestoreOptions postgres = {};  // components/postgres/restore_options.hpp
    redis::RedisRestoreOptions redis = {};           // components/redis/restore_options.hpp
};

inline void to_json(nlohmann::json& j, const ComponentRestoreOptions& o) {
    j = {{"files", o.files}, {"postgres", o.postgres}, {"redis", o.redis}};
}

// The component kinds named by the --skip-config, --skip-db and --skip-redis flags that are set.
std::vector<std::string> skipped_kinds(bool skip_config, bool skip_db, bool skip_redis);

// The components of a backup run, in order, minus the skipped kinds. Kinds not configured are left out.
std::vector<std::unique_ptr<Component>> make_components(const ComponentConfigs& config,
                                                        const std::vector<std::string>& skip);
// The component that restores artifacts of `kind` (no config needed), with its block of `options`.
// Kind::Verification for an unknown kind.
std::unique_ptr<Component> make_restore_component(std::string_view kind,
                                                  const ComponentRestoreOptions& options = {});

}  // namespace nightjar
