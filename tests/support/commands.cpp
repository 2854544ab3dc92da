#include "support/commands.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>

namespace nightjar::test {

Outcome run(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    SpawnOptions options;
    options.env = env;
    RunResult r = run_capture(argv, options);
    return {r.status, r.out, r.err};
}

Outcome backup(const std::vector<std::string>& args, const std::vector<std::string>& env) {
    std::vector<std::string> argv{NIGHTJAR_BACKUP_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, env);
}

Outcome restore(const std::vector<std::string>& args, const std::vector<std::string>& env) {
    std::vector<std::string> argv{NIGHTJAR_RESTORE_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, env);
}

std::string required_env(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v)
        FAIL(std::string(name) +
             " is not set: run the suite through scripts/test.sh, which starts the servers");
    return v;
}

std::vector<std::filesystem::path> published_manifests(const std::filesystem::path& backup_dir) {
    namespace fs = std::filesystem;
    std::vector<fs::path> out;
    if (!fs::exists(backup_dir)) return out;
    for (auto& e : fs::directory_iterator(backup_dir))
        if (e.path().filename().string().rfind("manifest_", 0) == 0 && e.path().extension() == ".json")
            out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

std::filesystem::path source_dir() {
    return NIGHTJAR_SOURCE_DIR;
}
std::filesystem::path shared_dir() {
    return source_dir().parent_path() / "shared";
}

}  // namespace nightjar::test
