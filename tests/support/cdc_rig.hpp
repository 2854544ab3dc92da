#pragma once
// The fixture the CDC integration tests share: a temp dir with a small files tree, a Kafka Connect
// emulator with two connectors, and a nightjar config that backs the tree up with CDC coordination (short
// timeouts, the journal in the temp dir), run through the real nightjar-backup.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nightjar/cdc/state_file.hpp"
#include "support/commands.hpp"
#include "support/kafka_connect_emulator.hpp"
#include "support/temp_dir.hpp"

namespace nightjar::test {

inline const std::string kConnectorA = "inventory-connector";
inline const std::string kConnectorB = "orders-connector";

struct CdcRig {
    TempDir dir;
    std::filesystem::path src = dir / "etc-app";
    std::filesystem::path backups = dir / "backups";
    std::filesystem::path state_dir = dir / "cdc-state";  // the host-wide journal's dir: never /var/lib
    std::filesystem::path config = dir / "nightjar.json";
    KafkaConnectEmulator emu;
    nlohmann::json cfg;

    // Both connectors with `tasks` tasks each, settling after 0.1 s.
    static EmulatorOptions two_connectors(int tasks) {
        return {.connectors = {kConnectorA, kConnectorB}, .tasks = tasks, .transition_delay_s = 0.1};
    }
    explicit CdcRig(EmulatorOptions options) : emu(std::move(options)) {
        write_file(src / "app.conf", "listen = 8080\n");
        cfg = nlohmann::json{
            {"backup_dir", backups.string()},
            {"files", {{"paths", {src.string()}}}},
            {"cdc",
             {{"kafka_connect",
               {{"url", emu.url()}, {"connectors", {kConnectorA, kConnectorB}}, {"request_timeout_s", 2}}},
              {"pause_timeout_s", 5},
              {"resume_timeout_s", 5},
              {"retry", {{"initial_backoff_s", 0.05}, {"max_backoff_s", 0.2}}},
              {"state_dir", state_dir.string()}}}};
    }
    void write_config() const { write_file(config, cfg.dump(2)); }
    // nightjar-backup --config <config> <extra...>
    Outcome backup(std::vector<std::string> extra = {}, std::vector<std::string> env = {}) const {
        write_config();
        std::vector<std::string> args{"--config", config.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::backup(args, env);
    }
    // nightjar-backup cdc <args...> --config <config>
    Outcome cdc(std::vector<std::string> args, std::vector<std::string> env = {}) const {
        write_config();
        args.insert(args.begin(), "cdc");
        args.insert(args.end(), {"--config", config.string()});
        return test::backup(args, env);
    }
    std::vector<std::filesystem::path> manifests() const { return published_manifests(backups); }
    nlohmann::json manifest() const { return nlohmann::json::parse(read_file(manifests().back())); }
    std::filesystem::path journal() const { return cdc::cdc_journal_path(state_dir, {{emu.url()}}); }
};

}  // namespace nightjar::test
