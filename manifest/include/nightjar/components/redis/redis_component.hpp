#pragma once
// The Redis component: a snapshot captured over the replication protocol (SYNC, as `redis-cli --rdb` does),
// with a BGSAVE + local copy fallback; checked (magic, version, EOF opcode, CRC64) while it streams; restored
// as a file for a stopped server or live into a running one through a temporary redis-server.
#include <optional>

#include "nightjar/components/component.hpp"
#include "nightjar/components/redis/config.hpp"
#include "nightjar/components/redis/restore_options.hpp"

namespace nightjar::redis {

class RedisComponent final : public Component {
public:
    explicit RedisComponent(std::optional<redis::RedisConfig> config = std::nullopt,
                            RedisRestoreOptions restore_options = {})
        : config_(std::move(config)), restore_options_(std::move(restore_options)) {}
    std::string_view kind() const override { return "redis"; }
    CheckReport check() const override;
    DumpResult dump(DumpContext& context, Staging& staging) override;
    VerifyOutcome verify(const Artifact& artifact, io::Reader& content) const override;
    RestorePlan plan_restore(const Artifact& artifact, const RestoreContext& context) const override;
    std::string describe_target(const Artifact& artifact, const RestoreContext& context) const override;
    RestoreReport restore(const Artifact& artifact, io::Reader& content,
                          const RestoreContext& context) override;

private:
    std::optional<redis::RedisConfig> config_;
    RedisRestoreOptions restore_options_;
};

}  // namespace nightjar::redis
