#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "nightjar/core/log.hpp"
#include "nightjar/run/monitoring.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;

TEST_CASE("metrics render every series, and a failed run keeps the previous success time", "[monitoring]") {
    test::TempDir dir;
    RunMetrics ok{.finished_at = 1000,
                  .duration_s = 12.5,
                  .exit_code = 0,
                  .component_bytes = {{"files", 42}, {"postgres", 7}},
                  .backups_kept = 3};
    write_metrics(dir / "m.prom", ok);
    std::string text = test::read_file(dir / "m.prom");
    CHECK_THAT(text, Catch::Contains("nightjar_last_success_timestamp_seconds 1000\n"));
    CHECK_THAT(text, Catch::Contains("nightjar_last_run_duration_seconds 12.5\n"));
    CHECK_THAT(text, Catch::Contains("nightjar_backup_bytes{component=\"postgres\"} 7\n"));
    CHECK_THAT(text, Catch::Contains("# TYPE nightjar_backups_kept gauge\nnightjar_backups_kept 3\n"));
    CHECK(read_last_success(dir / "m.prom") == 1000);

    RunMetrics failed{
        .finished_at = 2000, .duration_s = 1, .exit_code = 3, .component_bytes = {}, .backups_kept = 3};
    write_metrics(dir / "m.prom", failed);
    text = test::read_file(dir / "m.prom");
    CHECK_THAT(text, Catch::Contains("nightjar_last_success_timestamp_seconds 1000\n"));
    CHECK_THAT(text, Catch::Contains("nightjar_last_run_status 3\n"));
    CHECK_THAT(text, Catch::Contains("nightjar_last_run_timestamp_seconds 2000\n"));
    CHECK(read_last_success(dir / "missing.prom") == 0);
}

TEST_CASE("durations print with at most 3 decimals", "[monitoring][log]") {
    CHECK(log::seconds(0.0123456) == "0.012");
    CHECK(log::seconds(12.5) == "12.5");
    CHECK(log::seconds(3) == "3");
    CHECK(log::seconds(1.9999) == "2");
    CHECK(log::seconds(0.0001) == "0");
    CHECK(log::round_seconds(0.0123456) == Approx(0.012));
    CHECK(log::round_seconds(7.25049) == Approx(7.25));
}

TEST_CASE("the metrics file is 0644 whatever the umask (node_exporter reads it)", "[monitoring]") {
    test::TempDir dir;
    mode_t old = ::umask(077);
    write_metrics(dir / "m.prom", RunMetrics{.finished_at = 1, .duration_s = 1, .exit_code = 0});
    ::umask(old);
    struct stat st {};
    REQUIRE(::stat((dir / "m.prom").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0644);
}
