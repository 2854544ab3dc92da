// The nightly job around the backup itself: pruning, metrics, pings, the lock, and the unit files.
#include <signal.h>
#include <sys/time.h>
#include <utime.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <regex>
#include <thread>

#include "nightjar/manifest.hpp"
#include "nightjar/process.hpp"
#include "support/commands.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Setup {
    test::TempDir dir;
    fs::path backups = dir / "backups";
    fs::path config = dir / "nightjar.json";
    explicit Setup(json extra = json::object()) {
        test::write_file(dir / "src/app.conf", "x = 1\n");
        json c{{"backup_dir", backups.string()}, {"files", {{"paths", {(dir / "src").string()}}}}};
        c.update(extra);
        test::write_file(config, c.dump(2));
    }
    test::Outcome backup(std::vector<std::string> extra = {}, std::vector<std::string> env = {}) const {
        std::vector<std::string> args{"--config", config.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::backup(args, env);
    }
    std::vector<std::string> listed() const {
        auto r = test::restore({"--list", "--json", "--backup-dir", backups.string()});
        REQUIRE(r.code == 0);
        std::vector<std::string> ids;
        for (const auto& row : json::parse(r.out)) ids.push_back(row["id"]);
        return ids;
    }
};

// Makes `n` published backups and renames them to one a day, the newest `days_ago_newest` and a half days
// ago.
std::vector<std::string> make_history(const Setup& s, int n, int days_ago_newest) {
    std::vector<std::string> ids;
    auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    for (int i = 0; i < n; ++i) {
        auto r = s.backup();
        REQUIRE(r.code == 0);
        std::string id =
            json::parse(test::read_file(s.backups / ("manifest_" + s.listed().front() + ".json")))["id"];
        // Re-date: rename dir and manifest, rewriting the manifest through the library keeps its digest
        // valid. Half a day off the day boundary, so a run a few seconds later sees the same ages.
        std::string new_id =
            backup_id_for(now - static_cast<std::int64_t>(days_ago_newest + n - 1 - i) * 86400 - 43200);
        Manifest m = parse_manifest(test::read_file(s.backups / manifest_file_name(id)), "m");
        m.id = new_id;
        for (auto& a : m.artifacts) a.path = new_id + a.path.substr(id.size());
        fs::rename(s.backups / id, s.backups / new_id);
        fs::remove(s.backups / manifest_file_name(id));
        test::write_file(s.backups / manifest_file_name(new_id), serialize(m));
        ids.push_back(new_id);
    }
    return ids;
}

// A child python HTTP listener that records requests.
struct Recorder {
    test::TempDir dir;
    Subprocess proc;
    int port = 0;
    Recorder()
        : proc(Subprocess::spawn({"python3", (test::source_dir() / "tests/support/http_recorder.py").string(),
                                  "--port-file", (dir / "port").string(), "--log", (dir / "log").string()})) {
        for (int i = 0; i < 200 && !fs::exists(dir / "port"); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        REQUIRE(fs::exists(dir / "port"));
        port = std::stoi(test::read_file(dir / "port"));
    }
    ~Recorder() { proc.kill(SIGTERM); }
    std::vector<json> requests() const {
        std::vector<json> out;
        if (!fs::exists(dir / "log")) return out;
        std::string text = test::read_file(dir / "log");
        std::size_t pos = 0;
        while (pos < text.size()) {
            std::size_t nl = text.find('\n', pos);
            out.push_back(json::parse(text.substr(pos, nl - pos)));
            pos = nl + 1;
        }
        return out;
    }
};

}  // namespace

TEST_CASE("prune-only applies retention-days and keeps the newest", "[integration][operations]") {
    Setup s;
    auto ids = make_history(s, 6, 1);  // 6.5 .. 1.5 days old
    SECTION("dry run reports and deletes nothing") {
        auto r = s.backup({"--prune-only", "--dry-run", "--retention-days", "3", "--json"});
        INFO(r.err);
        REQUIRE(r.code == 0);
        json j = json::parse(r.out);
        int would_delete = 0;
        for (const auto& b : j["backups"]) would_delete += b["keep"] ? 0 : 1;
        CHECK(would_delete == 4);
        CHECK_THAT(r.err, Catch::Contains("would delete " + ids[0]) && Catch::Contains("within 3 days"));
        CHECK(s.listed().size() == 6);
    }
    SECTION("real prune") {
        auto r = s.backup({"--prune-only", "--retention-days", "3"});
        REQUIRE(r.code == 0);
        CHECK(s.listed() == std::vector<std::string>{ids[5], ids[4]});
        CHECK_FALSE(fs::exists(s.backups / ids[0]));
    }
    SECTION("everything old: the newest is still kept") {
        auto r = s.backup({"--prune-only", "--keep-last", "0", "--retention-days", "1"});
        REQUIRE(r.code == 0);
        CHECK(s.listed() == std::vector<std::string>{ids[5]});
    }
}

TEST_CASE("a normal run prunes after publishing; a failed run does not prune", "[integration][operations]") {
    Setup s(json{{"retention", {{"keep_last", 2}}}});
    make_history(s, 3, 2);
    REQUIRE(s.backup().code == 0);
    CHECK(s.listed().size() == 2);
    fs::remove_all(s.dir / "src");  // the only component now fails
    auto failed = s.backup();
    CHECK(failed.code == 3);
    CHECK(s.listed().size() == 2);
}

TEST_CASE("a prune interrupted after deleting a manifest leaves no half backup listed",
          "[integration][operations]") {
    Setup s;
    auto ids = make_history(s, 3, 5);
    auto killed =
        s.backup({"--prune-only", "--keep-last", "1"}, {"NIGHTJAR_FAILPOINT=remove:after-manifest"});
    CHECK(killed.code == 128 + 9);
    auto listed = s.listed();
    CHECK(listed.size() == 2);  // the one whose manifest went is gone as a whole
    CHECK(std::find(listed.begin(), listed.end(), ids[0]) == listed.end());
    CHECK(fs::exists(s.backups / ids[0]));  // its artifacts are an orphan now
    for (const auto& id : listed)
        CHECK(test::restore({id, "--backup-dir", s.backups.string(), "-n"}).code == 0);
    // The next prune reports the young orphan; once it is a day old it is removed.
    auto next = s.backup({"--prune-only", "--keep-last", "5"});
    CHECK(next.code == 0);
    CHECK_THAT(next.err, Catch::Contains("artifacts with no manifest"));
    CHECK(fs::exists(s.backups / ids[0]));
    struct utimbuf old {};
    old.actime = old.modtime = time(nullptr) - 2 * 86400;
    REQUIRE(::utime((s.backups / ids[0]).c_str(), &old) == 0);
    CHECK(s.backup({"--prune-only", "--keep-last", "5"}).code == 0);
    CHECK_FALSE(fs::exists(s.backups / ids[0]));
}

TEST_CASE("metrics file is valid Prometheus text and keeps the last success across a failure",
          "[integration][operations]") {
    test::TempDir metrics_dir;
    fs::path metrics = metrics_dir / "nightjar.prom";
    Setup s(json{{"monitoring", {{"metrics_file", metrics.string()}}}});
    REQUIRE(s.backup().code == 0);
    std::string text = test::read_file(metrics);
    std::regex sample(
        R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? -?[0-9.e+-]+$)");
    std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
    std::size_t pos = 0, samples = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        REQUIRE(nl != std::string::npos);  // every line ends with a newline
        std::string line = text.substr(pos, nl - pos);
        INFO(line);
        CHECK((std::regex_match(line, sample) || std::regex_match(line, comment)));
        samples += line[0] != '#';
        pos = nl + 1;
    }
    CHECK(samples == 6);
    CHECK_THAT(text, Catch::Contains("nightjar_last_run_status 0\n") &&
                         Catch::Contains("nightjar_backups_kept 1\n") &&
                         Catch::Contains("nightjar_backup_bytes{component=\"files\"} "));
    std::smatch m;
    REQUIRE(std::regex_search(text, m, std::regex("nightjar_last_success_timestamp_seconds ([0-9]+)")));
    std::string success = m[1];
    CHECK(std::stoll(success) > 1700000000);

    fs::remove_all(s.dir / "src");
    CHECK(s.backup().code == 3);
    text = test::read_file(metrics);
    CHECK_THAT(text, Catch::Contains("nightjar_last_run_status 3\n") &&
                         Catch::Contains("nightjar_last_success_timestamp_seconds " + success + "\n"));
}

TEST_CASE("the ping URL hears start, success and failure; a dead one never fails the backup",
          "[integration][operations]") {
    Recorder rec;
    std::string url = "http://127.0.0.1:" + std::to_string(rec.port) + "/ping/abc";
    Setup s(json{{"monitoring", {{"ping_url", url}}}});
    REQUIRE(s.backup().code == 0);
    fs::remove_all(s.dir / "src");
    CHECK(s.backup().code == 3);
    auto reqs = rec.requests();
    REQUIRE(reqs.size() == 4);
    CHECK(reqs[0]["path"] == "/ping/abc/start");
    CHECK(reqs[1]["path"] == "/ping/abc");
    CHECK_THAT(reqs[1]["body"].get<std::string>(), Catch::Contains("\"status\":\"complete\""));
    CHECK(reqs[2]["path"] == "/ping/abc/start");
    CHECK(reqs[3]["path"] == "/ping/abc/fail");
    CHECK_THAT(reqs[3]["body"].get<std::string>(), Catch::Contains("src"));

    SECTION("unreachable ping URL") {
        test::write_file(s.dir / "src/app.conf", "x = 2\n");
        Setup dead(json{{"monitoring", {{"ping_url", "http://127.0.0.1:1/nothing"}, {"timeout_s", 2}}}});
        auto r = dead.backup();
        CHECK(r.code == 0);
        CHECK_THAT(r.err, Catch::Contains("ping http://127.0.0.1:1/nothing/start failed"));
    }
}

TEST_CASE("two concurrent runs: the second exits with the lock-held code", "[integration][operations]") {
    Setup s;
    // The first run freezes right after taking the lock.
    SpawnOptions o;
    o.env = {"NIGHTJAR_FAILPOINT=backup:locked", "NIGHTJAR_FAILPOINT_ACTION=stop"};
    Subprocess first = Subprocess::spawn({NIGHTJAR_BACKUP_BIN, "--config", s.config.string()}, o);
    bool stopped = false;
    for (int i = 0; i < 400 && !stopped; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
        std::string stat = fs::exists("/proc/" + std::to_string(first.pid()) + "/stat")
                               ? test::read_file("/proc/" + std::to_string(first.pid()) + "/stat")
                               : "";
        stopped = stat.find(") T ") != std::string::npos;
    }
    REQUIRE(stopped);
    auto second = s.backup();
    CHECK(second.code == 5);
    CHECK_THAT(second.err, Catch::Contains("pid " + std::to_string(first.pid())));
    first.kill(SIGCONT);
    CHECK(first.wait() == 0);
    CHECK(s.listed().size() == 1);
}

TEST_CASE("the systemd units verify and the timer runs at 01:50", "[integration][operations]") {
    test::TempDir units;
    for (const char* u : {"nightjar-backup.service", "nightjar-backup.timer",
                          "nightjar-backup-failed@.service", "nightjar-cdc-watch.service"}) {
        std::string text = test::read_file(test::source_dir() / "scripts/systemd" / u);
        text = std::regex_replace(text, std::regex("/usr/local/bin/nightjar-backup"), NIGHTJAR_BACKUP_BIN);
        test::write_file(units / u, text);
    }
    std::string timer = test::read_file(units / "nightjar-backup.timer");
    CHECK_THAT(timer, Catch::Contains("OnCalendar=*-*-* 01:50:00") && Catch::Contains("Persistent=true"));
    std::string service = test::read_file(units / "nightjar-backup.service");
    CHECK_THAT(service, Catch::Contains("Type=oneshot") && Catch::Contains("OnFailure=") &&
                            Catch::Contains("ProtectSystem=") && Catch::Contains("IOSchedulingClass=idle"));
    std::string watch = test::read_file(units / "nightjar-cdc-watch.service");
    CHECK_THAT(watch, Catch::Contains("Restart=always") && Catch::Contains(" cdc watch --config ") &&
                          Catch::Contains("ProtectSystem=") && Catch::Contains("NoNewPrivileges=true"));
    if (fs::exists("/usr/bin/systemd-analyze")) {
        SpawnOptions o;
        o.cwd = units.path();
        RunResult r =
            run_capture({"systemd-analyze", "verify", "nightjar-backup.service", "nightjar-backup.timer",
                         "nightjar-backup-failed@.service", "nightjar-cdc-watch.service"},
                        o);
        INFO(r.err);
        CHECK(r.status == 0);
        CHECK(r.err.empty());
    } else {
        // No systemd here: check the sections and keys are well formed at least.
        for (const auto& text : {timer, service, watch}) {
            std::regex line(R"(^(\[[A-Za-z]+\]|[A-Za-z]+=.*|#.*|)$)");
            std::size_t pos = 0;
            while (pos < text.size()) {
                std::size_t nl = text.find('\n', pos);
                CHECK(std::regex_match(text.substr(pos, nl - pos), line));
                pos = nl + 1;
            }
        }
    }
}

TEST_CASE("log-file appends the same lines; log-format json writes one object per line", "[integration][operations]") {
    Setup s;
    fs::path log = s.dir / "logs/backup.log";
    fs::create_directories(log.parent_path());
    auto r = s.backup({"--log-file", log.string(), "--log-format", "json"});
    REQUIRE(r.code == 0);
    std::string text = test::read_file(log);
    std::size_t pos = 0, lines = 0;
    bool saw_summary = false;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        json j = json::parse(text.substr(pos, nl - pos));
        CHECK(j.contains("time"));
        CHECK(j.contains("level"));
        saw_summary = saw_summary || j["message"].get<std::string>().rfind("summary: files ok", 0) == 0;
        ++lines;
        pos = nl + 1;
    }
    CHECK(lines >= 3);
    CHECK(saw_summary);
    CHECK(r.err + "\n" == text);  // stderr carries the same lines (the capture trims the last newline)
    CHECK(s.backup({"--log-format", "xml"}).code == 2);
}
