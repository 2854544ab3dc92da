#include "nightjar/run/drill.hpp"

#include <catch2/catch.hpp>

#include "nightjar/repo/drill_record.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using nlohmann::json;

TEST_CASE("the drill config section parses with defaults and rejects unknown keys", "[drill]") {
    DrillConfig d = parse_drill_config(json::object(), "config");
    CHECK_FALSE(d.after_backup);
    CHECK(d.random_skip_days == 7);
    d = parse_drill_config(json{{"after_backup", true}, {"random_skip_days", 3}}, "config");
    CHECK(d.after_backup);
    CHECK(d.random_skip_days == 3);
    REQUIRE_THROWS_MATCHES(parse_drill_config(json{{"after_backups", true}}, "config"), Error,
                           test::IsError(Kind::Config, "/drill/after_backups"));
    REQUIRE_THROWS_MATCHES(parse_drill_config(json{{"after_backup", "yes"}}, "config"), Error,
                           test::IsError(Kind::Config, "/drill/after_backup"));
    REQUIRE_THROWS_MATCHES(parse_drill_config(json{{"random_skip_days", -1}}, "config"), Error,
                           test::IsError(Kind::Config, "/drill/random_skip_days"));
}

TEST_CASE("drill metrics keep the last success of a failed drill and the backup's own lines", "[drill]") {
    test::TempDir dir;
    const auto file = dir / "nightjar.prom";
    test::write_file(file,
                     "# HELP nightjar_last_run_status x\n# TYPE nightjar_last_run_status gauge\n"
                     "nightjar_last_run_status 0\n");
    DrillReport ok;
    ok.ok = true;
    ok.finished_unix = 1000;
    ok.seconds = 2.5;
    ok.components.push_back({.component = "postgres", .ok = true, .seconds = 2.0, .bytes = 10});
    write_drill_metrics(file, ok);
    DrillReport failed;
    failed.ok = false;
    failed.exit_code = 7;
    failed.finished_unix = 2000;
    write_drill_metrics(file, failed);
    const std::string text = test::read_file(file);
    CHECK_THAT(text, Catch::Contains("nightjar_last_run_status 0"));
    CHECK_THAT(text, Catch::Contains("nightjar_drill_last_success_timestamp_seconds 1000\n"));
    CHECK_THAT(text, Catch::Contains("nightjar_drill_last_run_timestamp_seconds 2000\n"));
    CHECK_THAT(text, Catch::Contains("nightjar_drill_status 7\n"));
    // One block of drill lines, not one per write.
    CHECK(text.find("# TYPE nightjar_drill_status") == text.rfind("# TYPE nightjar_drill_status"));
    CHECK(metric_lines_with_prefix(file, "nightjar_drill_").find("nightjar_last_run_status") ==
          std::string::npos);
    CHECK_THAT(metric_lines_with_prefix(file, "nightjar_drill_"),
               Catch::Contains("# TYPE nightjar_drill_status gauge"));
}

TEST_CASE("drill records are create-only and the newest is the last drill", "[drill]") {
    test::TempDir dir;
    PosixStorage storage(dir.path());
    const std::string id = "20261201_015000";
    CHECK_FALSE(last_drill(storage, id));
    auto a = write_drill_record(storage, id, 1764554400, json{{"ok", true}});
    auto b = write_drill_record(storage, id, 1764554400, json{{"ok", false}, {"reason", "redis db0 keys"}});
    CHECK(a == "drills/" + id + "/" + drill_record_name(1764554400) + ".json");
    CHECK(a != b);
    auto last = last_drill(storage, id);
    REQUIRE(last);
    CHECK(last->file == b);
    CHECK_FALSE(last->passed);
    CHECK(last->reason == "redis db0 keys");
    write_drill_record(storage, id, 1764554460, json{{"ok", true}});
    CHECK(last_drill(storage, id)->passed);
    // A record that is not JSON counts as a failed drill, never as a pass.
    test::write_file(dir / "drills" / id / "20261202T000000Z.json", "{not json");
    CHECK_FALSE(last_drill(storage, id)->passed);
    CHECK_FALSE(last_drill(storage, "../etc"));
}
