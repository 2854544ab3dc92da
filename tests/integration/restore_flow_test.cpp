// Restore across components: every refusal is found before anything is written.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/commands.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;

TEST_CASE("a refusal by one component stops the whole restore before anything is written",
          "[integration][restore]") {
    const std::string redis_port = test::required_env("NIGHTJAR_TEST_REDIS_PORT");
    test::TempDir dir;
    test::write_file(dir / "src/app.conf", "x = 1\n");
    json cfg{{"backup_dir", (dir / "backups").string()},
             {"files", {{"paths", {(dir / "src").string()}}}},
             {"redis", {{"host", "127.0.0.1"}, {"port", std::stoi(redis_port)}}}};
    test::write_file(dir / "nightjar.json", cfg.dump());
    auto b = test::backup({"--config", (dir / "nightjar.json").string()});
    INFO(b.err);
    REQUIRE(b.code == 0);

    // The Redis file exists and --force is not given: Redis refuses, so the files must not be restored
    // either.
    test::write_file(dir / "existing.rdb", "operator's file");
    fs::path target = dir / "restored";
    auto r = test::restore({"latest", "--backup-dir", (dir / "backups").string(), "--target-dir",
                            target.string(), "--redis-rdb-path", (dir / "existing.rdb").string()});
    INFO(r.err);
    CHECK(r.code == 7);
    CHECK_THAT(r.err, Catch::Contains("nothing was written") && Catch::Contains("--force"));
    CHECK_FALSE(fs::exists(target));
    CHECK(test::read_file(dir / "existing.rdb") == "operator's file");

    auto forced =
        test::restore({"latest", "--backup-dir", (dir / "backups").string(), "--target-dir", target.string(),
                       "--redis-rdb-path", (dir / "existing.rdb").string(), "--force"});
    INFO(forced.err);
    CHECK(forced.code == 0);
    CHECK(test::read_file(target / (dir / "src/app.conf").relative_path()) == "x = 1\n");
    CHECK(test::read_file(dir / "existing.rdb").rfind("REDIS", 0) == 0);
}
