#include "nightjar/components/registry.hpp"

#include <algorithm>

#include "nightjar/components/files/files_component.hpp"
#include "nightjar/components/postgres/postgres_component.hpp"
#include "nightjar/components/redis/redis_component.hpp"
#include "nightjar/core/error.hpp"

namespace nightjar {

namespace {
bool skipped(const std::vector<std::string>& skip, std::string_view kind) {
    return std::find(skip.begin(), skip.end(), kind) != skip.end();
}
}  // namespace

std::vector<std::string> skipped_kinds(bool skip_config, bool skip_db, bool skip_redis) {
    std::vector<std::string> out;
    if (skip_config) out.push_back("files");
    if (skip_db) out.push_back("postgres");
    if (skip_redis) out.push_back("redis");
    return out;
}

std::vector<std::unique_ptr<Component>> make_components(const ComponentConfigs& config,
                                                        const std::vector<std::string>& skip) {
    std::vector<std::unique_ptr<Component>> out;
    if (config.files && !skipped(skip, "files"))
        out.push_back(std::make_unique<files::FilesComponent>(config.files));
    if (config.postgres && !skipped(skip, "postgres"))
        out.push_back(std::make_unique<postgres::PostgresComponent>(config.postgres));
    if (config.redis && !skipped(skip, "redis"))
        out.push_back(std::make_unique<redis::RedisComponent>(config.redis));
    return out;
}

std::unique_ptr<Component> make_restore_component(std::string_view kind,
                                                  const ComponentRestoreOptions& options) {
    if (kind == "files") return std::make_unique<files::FilesComponent>(std::nullopt, options.files);
    if (kind == "redis") return std::make_unique<redis::RedisComponent>(std::nullopt, options.redis);
    if (kind == "postgres")
        return std::make_unique<postgres::PostgresComponent>(std::nullopt, options.postgres);
    throw Error(Kind::Verification, "unknown component kind in manifest: " + std::string(kind));
}

}  // namespace nightjar
