// Restore across components: every refusal is found before anything is written.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/commands.hpp"
#include "support/ports.hpp"
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

TEST_CASE(
    "latest is the newest complete backup, a partial one (Redis failed) needs latest-any and --skip-redis",
    "[integration][restore]") {
    const int redis_port = std::stoi(test::required_env("NIGHTJAR_TEST_REDIS_PORT"));
    test::TempDir dir;
    const fs::path backups = dir / "backups";
    const fs::path config = dir / "nightjar.json";
    test::write_file(dir / "src/app.conf", "x = 1\n");
    json cfg{{"backup_dir", backups.string()},
             {"files", {{"paths", {(dir / "src").string()}}}},
             {"redis", {{"host", "127.0.0.1"}, {"port", redis_port}}}};
    test::write_file(config, cfg.dump());
    auto complete = test::backup({"--config", config.string()});
    INFO(complete.err);
    REQUIRE(complete.code == 0);
    // The next night Redis is down: the backup is published as partial.
    test::write_file(dir / "src/app.conf", "x = 2\n");
    cfg["redis"]["port"] = test::free_port();
    test::write_file(config, cfg.dump());
    auto partial = test::backup({"--config", config.string()});
    INFO(partial.err);
    REQUIRE(partial.code == 6);
    auto manifests = test::published_manifests(backups);
    REQUIRE(manifests.size() == 2);
    const std::string complete_id = json::parse(test::read_file(manifests[0]))["id"];
    const std::string partial_id = json::parse(test::read_file(manifests[1]))["id"];
    REQUIRE(json::parse(test::read_file(manifests[1]))["status"] == "partial");
    const fs::path conf = (dir / "src/app.conf").relative_path();

    auto latest = test::restore({"latest", "--backup-dir", backups.string(), "--target-dir",
                                 (dir / "t1").string(), "--redis-rdb-path", (dir / "r1.rdb").string()});
    INFO(latest.err);
    CHECK(latest.code == 0);
    CHECK_THAT(latest.err, Catch::Contains("backup " + complete_id + " (complete"));
    CHECK(test::read_file(dir / "t1" / conf) == "x = 1\n");
    CHECK(test::read_file(dir / "r1.rdb").rfind("REDIS", 0) == 0);

    for (const std::string& which : {std::string("latest-any"), partial_id}) {
        INFO(which);
        auto refused = test::restore({which, "--backup-dir", backups.string(), "--target-dir",
                                      (dir / "t2").string(), "--redis-rdb-path", (dir / "r2.rdb").string()});
        CHECK(refused.code == 2);
        CHECK_THAT(refused.err, Catch::Contains("backup " + partial_id +
                                                " is partial: component redis failed "
                                                "at capture") &&
                                    Catch::Contains("--skip-redis"));
        CHECK(refused.err.find("restore of") == std::string::npos);
        CHECK_FALSE(fs::exists(dir / "t2"));
        CHECK_FALSE(fs::exists(dir / "r2.rdb"));
        CHECK(test::restore({which, "--backup-dir", backups.string(), "--dry-run"}).code == 2);
    }
    auto skipped = test::restore({"latest-any", "--backup-dir", backups.string(), "--target-dir",
                                  (dir / "t2").string(), "--skip-redis"});
    INFO(skipped.err);
    CHECK(skipped.code == 0);
    CHECK(test::read_file(dir / "t2" / conf) == "x = 2\n");

    auto not_found = test::restore({"20000101_000000", "--backup-dir", backups.string(), "--dry-run"});
    CHECK(not_found.code == 2);
    CHECK_THAT(not_found.err, Catch::Contains("backup not found: 20000101_000000"));
    auto no_file = test::restore({(dir / "elsewhere/manifest_20000101_000000.json").string(), "--dry-run"});
    CHECK(no_file.code == 2);
    CHECK_THAT(no_file.err, Catch::Contains("backup not found"));
}

TEST_CASE(
    "nightjar-restore logs like nightjar-backup (--log-file, --log-format) and both read $NIGHTJAR_CONFIG",
    "[integration][restore]") {
    test::TempDir dir;
    test::write_file(dir / "src/app.conf", "x = 1\n");
    json cfg{{"backup_dir", (dir / "backups").string()}, {"files", {{"paths", {(dir / "src").string()}}}}};
    test::write_file(dir / "nightjar.json", cfg.dump());
    const std::string env = "NIGHTJAR_CONFIG=" + (dir / "nightjar.json").string();
    auto b = test::backup({}, {env});
    INFO(b.err);
    REQUIRE(b.code == 0);
    REQUIRE(test::published_manifests(dir / "backups").size() == 1);

    const fs::path log = dir / "restore.log";
    auto r = test::restore({"latest", "--dry-run", "--target-dir", (dir / "t").string(), "--log-file",
                            log.string(), "--log-format", "json"},
                           {env});
    INFO(r.err);
    CHECK(r.code == 0);
    std::istringstream lines(test::read_file(log));
    int n = 0;
    for (std::string line; std::getline(lines, line);) {
        if (line.empty()) continue;
        json j = json::parse(line);
        CHECK(j.contains("time"));
        CHECK(j.contains("level"));
        ++n;
    }
    CHECK(n >= 3);
    CHECK_THAT(test::read_file(log), Catch::Contains("dry run: every artifact verified"));
    CHECK(test::restore({"latest", "--dry-run", "--log-format", "xml"}, {env}).code == 2);
    // No config, no --backup-dir: the restore says what it needs.
    CHECK(test::restore({"latest", "--dry-run"}, {"NIGHTJAR_CONFIG="}).code == 2);
}
