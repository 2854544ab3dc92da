#pragma once
// Runs the real binaries and names the servers the test script started.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/io/process.hpp"

namespace nightjar::test {

struct Outcome {
    int code = -1;
    std::string out;  // stdout
    std::string err;  // stderr (log lines)
};

// Runs nightjar-backup / nightjar-restore with these arguments and optional extra environment.
Outcome backup(const std::vector<std::string>& args, const std::vector<std::string>& env = {});
Outcome restore(const std::vector<std::string>& args, const std::vector<std::string>& env = {});
Outcome run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});

// The value of an environment variable the test script exports; fails the test (never skips) when unset.
std::string required_env(const char* name);
// The published manifests (manifest_*.json, no temporary files) of a backup dir, oldest first.
std::vector<std::filesystem::path> published_manifests(const std::filesystem::path& backup_dir);
std::filesystem::path source_dir();
std::filesystem::path shared_dir();  // ../shared beside the project

}  // namespace nightjar::test
