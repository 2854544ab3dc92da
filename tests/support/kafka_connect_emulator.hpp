#pragma once
// The Kafka Connect emulator (kafka_connect_emulator.py) as a test fixture: started on a free port for one
// test, stopped at scope exit, driven through its /_emulator control API.
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/io/process.hpp"
#include "support/temp_dir.hpp"

namespace nightjar::test {

struct EmulatorOptions {
    std::vector<std::string> connectors{"inventory-connector"};  // started RUNNING
    int tasks = 1;                                               // tasks per connector
    double transition_delay_s = 0.1;                             // time to converge after pause/resume
};

class KafkaConnectEmulator {
public:
    explicit KafkaConnectEmulator(EmulatorOptions options = {});
    ~KafkaConnectEmulator();
    KafkaConnectEmulator(const KafkaConnectEmulator&) = delete;
    KafkaConnectEmulator& operator=(const KafkaConnectEmulator&) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    // A control call: POST/GET/DELETE /_emulator/<path>. Fails the test on a non-2xx answer.
    nlohmann::json control(const std::string& method, const std::string& path,
                           const nlohmann::json& body = nullptr) const;
    // The journal of Kafka Connect API requests, oldest first ({"method","path","query","status",...}).
    nlohmann::json requests() const;
    // "METHOD path status" lines of the journal, e.g. "PUT /connectors/a/pause 202".
    std::vector<std::string> request_lines() const;
    // How many journalled requests have this method and path.
    int count(const std::string& method, const std::string& path) const;
    // The observed state of a connector and of each task, e.g. "PAUSED" and {"PAUSED","PAUSED"}.
    std::string connector_state(const std::string& name) const;
    std::vector<std::string> task_states(const std::string& name) const;
    // Waits (up to `timeout`) until every instance of `name` is in `state`; returns whether it got there.
    bool wait_settled(const std::string& name, const std::string& state,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

private:
    TempDir dir_;
    std::optional<Subprocess> process_;
    int port_ = 0;
};

}  // namespace nightjar::test
