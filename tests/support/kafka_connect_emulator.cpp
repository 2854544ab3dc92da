#include "support/kafka_connect_emulator.hpp"

#include <signal.h>

#include <catch2/catch.hpp>
#include <sstream>
#include <thread>

#include "nightjar/core/http.hpp"
#include "support/commands.hpp"

namespace nightjar::test {

using nlohmann::json;

KafkaConnectEmulator::KafkaConnectEmulator(EmulatorOptions options) {
    std::string names;
    for (const auto& n : options.connectors) names += (names.empty() ? "" : ",") + n;
    std::ostringstream delay;
    delay << options.transition_delay_s;
    auto port_file = dir_ / "port";
    SpawnOptions spawn;
    spawn.capture_stderr = true;
    process_.emplace(
        Subprocess::spawn({"python3", (source_dir() / "tests/support/kafka_connect_emulator.py").string(),
                           "--port", "0", "--port-file", port_file.string(), "--connectors", names, "--tasks",
                           std::to_string(options.tasks), "--transition-delay", delay.str()},
                          spawn));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!std::filesystem::exists(port_file)) {
        if (auto status = process_->wait_for(std::chrono::milliseconds(20)))
            FAIL("the Kafka Connect emulator exited with " << *status << ": " << process_->stderr_text());
        if (std::chrono::steady_clock::now() > deadline)
            FAIL("the Kafka Connect emulator did not start in 15 s");
    }
    port_ = std::stoi(read_file(port_file));
}

KafkaConnectEmulator::~KafkaConnectEmulator() {
    if (!process_) return;
    process_->kill(SIGTERM);
    if (!process_->wait_for(std::chrono::seconds(5))) process_->kill(SIGKILL);
}

json KafkaConnectEmulator::control(const std::string& method, const std::string& path,
                                   const json& body) const {
    HttpClient http(HttpOptions{.timeout = std::chrono::seconds(10), .user = "", .password = ""});
    HttpResponse r = http.request(method, url() + "/_emulator/" + path, body.is_null() ? "" : body.dump());
    INFO("emulator control " << method << " " << path << " -> " << r.status << " " << r.body);
    REQUIRE(r.status >= 200);
    REQUIRE(r.status < 300);
    return json::parse(r.body);
}

json KafkaConnectEmulator::requests() const {
    return control("GET", "requests");
}

std::vector<std::string> KafkaConnectEmulator::request_lines() const {
    std::vector<std::string> out;
    for (const auto& r : requests())
        out.push_back(r["method"].get<std::string>() + " " + r["path"].get<std::string>() + " " +
                      std::to_string(r["status"].get<int>()));
    return out;
}

int KafkaConnectEmulator::count(const std::string& method, const std::string& path) const {
    int n = 0;
    for (const auto& r : requests()) n += r["method"] == method && r["path"] == path;
    return n;
}

std::string KafkaConnectEmulator::connector_state(const std::string& name) const {
    return control("GET", "state")["connectors"][name]["connector"]["state"].get<std::string>();
}

std::vector<std::string> KafkaConnectEmulator::task_states(const std::string& name) const {
    std::vector<std::string> out;
    // The state is kept in a local: a range-for over a member of the temporary would dangle.
    const nlohmann::json state = control("GET", "state");
    for (const auto& t : state["connectors"][name]["tasks"]) out.push_back(t["state"].get<std::string>());
    return out;
}

bool KafkaConnectEmulator::wait_settled(const std::string& name, const std::string& state,
                                        std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        bool ok = connector_state(name) == state;
        for (const auto& t : task_states(name)) ok = ok && t == state;
        if (ok) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

}  // namespace nightjar::test
