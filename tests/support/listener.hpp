#pragma once
// Child listeners the integration tests start: a python helper of tests/support that writes the port it
// listens on to the file named by --port-file, and is stopped with SIGTERM when the test ends.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nightjar/io/process.hpp"
#include "support/temp_dir.hpp"

namespace nightjar::test {

// Every line of a JSON-lines file (none when it does not exist yet).
inline std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& file) {
    std::vector<nlohmann::json> out;
    if (!std::filesystem::exists(file)) return out;
    std::istringstream in(read_file(file));
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    return out;
}

struct Listener {
    TempDir dir;
    std::optional<Subprocess> proc;
    int port = 0;
    // Starts `argv` with --port-file appended and waits (up to 10 s) for the port. A leading "{dir}" in an
    // argument is this listener's own temp dir; `quiet` captures the child's stderr instead of passing it on.
    explicit Listener(std::vector<std::string> argv, bool quiet = false) {
        for (auto& a : argv)
            if (a.rfind("{dir}", 0) == 0) a = dir.path().string() + a.substr(5);
        argv.insert(argv.end(), {"--port-file", (dir / "port").string()});
        SpawnOptions o;
        o.capture_stderr = quiet;
        proc.emplace(Subprocess::spawn(argv, o));
        for (int i = 0; i < 400 && !std::filesystem::exists(dir / "port"); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        REQUIRE(std::filesystem::exists(dir / "port"));
        port = std::stoi(read_file(dir / "port"));
    }
    ~Listener() {
        proc->kill(SIGTERM);
        proc->wait();
    }
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
};

// tests/support/http_recorder.py: answers every request and records it as one JSON line.
struct HttpRecorder : Listener {
    HttpRecorder()
        : Listener({"python3", (source_dir() / "tests/support/http_recorder.py").string(), "--log",
                    "{dir}/log"}) {}
    std::string log() const { return std::filesystem::exists(dir / "log") ? read_file(dir / "log") : ""; }
    std::vector<nlohmann::json> requests() const { return read_jsonl(dir / "log"); }
};

}  // namespace nightjar::test
