#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nightjar/core/log.hpp"

using namespace nightjar;
using log::Format;
using log::Level;
using log::Sink;

TEST_CASE("log: a journal line carries the syslog priority and no timestamp", "[log]") {
    CHECK(log::format_line(Level::Error, "boom", {}, Format::Text, Sink::Journal, "T") == "<3>boom\n");
    CHECK(log::format_line(Level::Warn, "w", {}, Format::Text, Sink::Journal, "T") == "<4>w\n");
    CHECK(log::format_line(Level::Info, "i", {}, Format::Text, Sink::Journal, "T") == "<6>i\n");
    CHECK(log::format_line(Level::Debug, "d", {}, Format::Text, Sink::Journal, "T") == "<7>d\n");
    CHECK(log::format_line(Level::Info, "i", {}, Format::Text, Sink::Stderr, "2026-12-02T00:00:00Z") ==
          "2026-12-02T00:00:00Z INFO i\n");
    CHECK(log::format_line(Level::Info, "i", {}, Format::Text, Sink::File, "T") == "T INFO i\n");
}

TEST_CASE("log: JSON lines carry the structured fields, the journal's without a time", "[log]") {
    std::vector<log::Field> fields{{"component", "postgres"}, {"database", "app"}, {"component", "redis"}};
    std::string line = log::format_line(Level::Warn, "slow", fields, Format::Json, Sink::Stderr, "T");
    REQUIRE(line.back() == '\n');
    auto j = nlohmann::json::parse(line);
    CHECK(j == nlohmann::json{{"time", "T"},
                              {"level", "WARN"},
                              {"message", "slow"},
                              {"component", "redis"},
                              {"database", "app"}});
    std::string journal = log::format_line(Level::Error, "x", fields, Format::Json, Sink::Journal, "T");
    REQUIRE(journal.rfind("<3>{", 0) == 0);
    auto jj = nlohmann::json::parse(journal.substr(3));
    CHECK_FALSE(jj.contains("time"));
    CHECK(jj["level"] == "ERROR");
}

TEST_CASE("log: a Scope's fields reach the lines its thread writes, and leave with it", "[log]") {
    // format_line is pure; the scopes are observed through what write() would pass it, so check via a
    // file sink: configure JSON, write with and without a scope, read the lines back.
    char path[] = "/tmp/nightjar-log-test-XXXXXX";
    int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    log::configure({.min_level = Level::Info, .format = Format::Json, .quiet = true});
    log::set_file(path);
    {
        log::Scope outer{{"backup_id", "20261202_000000"}};
        {
            log::Scope inner{{"component", "files"}};
            log::write(Level::Warn, "inner");
        }
        log::write(Level::Warn, "outer", {{"error_kind", "storage"}});
    }
    log::write(Level::Warn, "none");
    log::configure({});
    std::ifstream in(path);
    std::string a, b, c;
    REQUIRE(std::getline(in, a));
    REQUIRE(std::getline(in, b));
    REQUIRE(std::getline(in, c));
    ::unlink(path);
    auto ja = nlohmann::json::parse(a), jb = nlohmann::json::parse(b), jc = nlohmann::json::parse(c);
    CHECK(ja["backup_id"] == "20261202_000000");
    CHECK(ja["component"] == "files");
    CHECK(jb["backup_id"] == "20261202_000000");
    CHECK_FALSE(jb.contains("component"));
    CHECK(jb["error_kind"] == "storage");
    CHECK_FALSE(jc.contains("backup_id"));
    CHECK_FALSE(jc.contains("error_kind"));
}
