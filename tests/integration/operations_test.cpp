// The nightly job around the backup itself: pruning, metrics, pings, the lock, and the unit files.
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <utime.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <regex>
#include <thread>

#include "nightjar/io/process.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/repo/manifest.hpp"
#include "support/commands.hpp"
#include "support/corrupt.hpp"
#include "support/listener.hpp"
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

TEST_CASE("a normal run prunes after publishing and a failed run does not prune",
          "[integration][operations]") {
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

TEST_CASE("the ping URL hears start, success and failure, and a dead one never fails the backup",
          "[integration][operations]") {
    test::HttpRecorder rec;
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

TEST_CASE("log-file appends the same lines and log-format json writes one object per line",
          "[integration][operations]") {
    Setup s;
    fs::path log = s.dir / "logs/backup.log";
    fs::create_directories(log.parent_path());
    auto r = s.backup({"--log-file", log.string(), "--log-format", "json"});
    REQUIRE(r.code == 0);
    std::string text = test::read_file(log);
    std::size_t pos = 0, lines = 0;
    bool saw_summary = false, saw_fields = false;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        json j = json::parse(text.substr(pos, nl - pos));
        CHECK(j.contains("time"));
        CHECK(j.contains("level"));
        saw_summary = saw_summary || j["message"].get<std::string>().rfind("summary: files ok", 0) == 0;
        // Lines written while the files component runs carry the structured fields.
        saw_fields = saw_fields || (j.value("component", "") == "files" && j.contains("backup_id"));
        ++lines;
        pos = nl + 1;
    }
    CHECK(lines >= 3);
    CHECK(saw_summary);
    CHECK(saw_fields);
    CHECK(r.err + "\n" == text);  // stderr carries the same lines (the capture trims the last newline)
    CHECK(s.backup({"--log-format", "xml"}).code == 2);
}

namespace {

// Waits until `p` is stopped (SIGSTOP from a failpoint); false when it never was.
bool wait_stopped(const Subprocess& p) {
    for (int i = 0; i < 800; ++i) {
        std::string path = "/proc/" + std::to_string(p.pid()) + "/stat";
        if (fs::exists(path) && test::read_file(path).find(") T ") != std::string::npos) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
}

// A backup command run with a hang guard: killed (and the test failed) if it does not finish in time.
test::Outcome run_guarded(const std::vector<std::string>& argv, std::vector<std::string> env = {}) {
    SpawnOptions o;
    o.env = std::move(env);
    Subprocess p = Subprocess::spawn(argv, o);
    auto code = p.wait_for(std::chrono::seconds(120));
    if (!code) {
        p.kill(SIGKILL);
        p.wait();
        FAIL_CHECK("hung: " << argv.front());
        return {-1, "", p.stderr_text()};
    }
    return {*code, "", p.stderr_text()};
}

// The self-digest recomputed over whatever `j` now holds: what an attacker who knows the format writes.
std::string sealed(json j) {
    j.erase("manifest_sha256");
    j["manifest_sha256"] = io::sha256_hex(j.dump());
    return j.dump();
}

}  // namespace

TEST_CASE("hostile manifests beside a good backup: listed as damaged, everything else carries on",
          "[integration][operations][hostile]") {
    Setup s(json{{"retention", {{"keep_last", 2}}}});
    auto ids = make_history(s, 1, 1);
    std::string good = test::read_file(s.backups / manifest_file_name(ids[0]));
    // Older than the good one, so they never count as "latest".
    const std::string deep_id = "20200101_000000", big_id = "20200102_000000", nul_id = "20200103_000000";
    test::write_file(s.backups / manifest_file_name(deep_id),
                     std::string(100000, '[') + std::string(100000, ']'));
    json j = json::parse(good);
    j["id"] = big_id;
    std::string big = sealed(j);
    big.replace(big.find("\"schema\":1"), 10, "\"schema\":1e400");
    test::write_file(s.backups / manifest_file_name(big_id), big);
    j["id"] = nul_id;
    test::write_file(s.backups / manifest_file_name(nul_id), sealed(j) + std::string("\0garbage", 8));

    auto list = test::restore({"--list", "--json", "--backup-dir", s.backups.string()});
    INFO(list.err);
    REQUIRE(list.code == 0);
    json rows = json::parse(list.out);
    REQUIRE(rows.size() == 4);
    std::map<std::string, json> by_id;
    for (const auto& r : rows) by_id[r["id"]] = r;
    CHECK(by_id[ids[0]]["status"] == "complete");
    CHECK(by_id[deep_id]["status"] == "damaged");
    CHECK_THAT(by_id[deep_id]["error"].get<std::string>(), Catch::Contains("nested deeper than"));
    CHECK(by_id[big_id]["status"] == "damaged");
    CHECK_THAT(by_id[big_id]["error"].get<std::string>(),
               Catch::Contains(manifest_file_name(big_id) + ": /schema: number out of range"));
    CHECK(by_id[nul_id]["status"] == "damaged");
    CHECK_THAT(by_id[nul_id]["error"].get<std::string>(), Catch::Contains("a NUL byte at byte"));
    auto text = test::restore({"--list", "--backup-dir", s.backups.string()});
    CHECK(text.code == 0);
    CHECK_THAT(text.out, Catch::Contains(deep_id) && Catch::Contains("damaged") &&
                             Catch::Contains("number out of range"));

    // Restores and dry runs of the good one are untouched by the others.
    CHECK(test::restore({"latest", "--backup-dir", s.backups.string(), "-n"}).code == 0);
    auto bad = test::restore({deep_id, "--backup-dir", s.backups.string(), "-n"});
    CHECK(bad.code == 4);
    CHECK_THAT(bad.err, Catch::Contains("nested deeper than"));
    // The nightly run publishes and prunes the rest (keep_last 2: the new one and the good one).
    auto nightly = s.backup();
    INFO(nightly.err);
    CHECK(nightly.code == 0);
    CHECK_THAT(nightly.err, Catch::Contains("damaged manifest"));
    auto left = s.listed();
    REQUIRE(left.size() == 2);
    CHECK(left[1] == ids[0]);
}

TEST_CASE("an artifact that is a FIFO or a symlink to /dev/zero fails verification, no hang",
          "[integration][operations][hostile]") {
    Setup s;
    auto ids = make_history(s, 1, 1);
    json m = json::parse(test::read_file(s.backups / manifest_file_name(ids[0])));
    fs::path artifact = s.backups / m["artifacts"][0]["path"].get<std::string>();
    SECTION("a FIFO") {
        fs::remove(artifact);
        REQUIRE(::mkfifo(artifact.c_str(), 0600) == 0);
    }
    SECTION("a symlink to /dev/zero with the recorded size") {
        // A size of 9 is what lstat reports for a link to "/dev/zero": seal a manifest that says so.
        m["artifacts"][0]["size"] = 9;
        test::write_file(s.backups / manifest_file_name(ids[0]), sealed(m));
        fs::remove(artifact);
        fs::create_symlink("/dev/zero", artifact);
    }
    for (const char* mode : {"--dry-run", ""}) {
        std::vector<std::string> argv{NIGHTJAR_RESTORE_BIN, ids[0],         "--backup-dir",
                                      s.backups.string(),   "--target-dir", (s.dir / "out").string()};
        if (*mode) argv.push_back(mode);
        auto r = run_guarded(argv);
        INFO(r.err);
        CHECK(r.code == 4);
        CHECK_THAT(r.err, Catch::Contains(m["artifacts"][0]["path"].get<std::string>()) &&
                              Catch::Contains("not a regular file"));
    }
    CHECK_FALSE(fs::exists(s.dir / "out"));
    // Prune does not hang on it either.
    CHECK(
        run_guarded({NIGHTJAR_BACKUP_BIN, "--config", s.config.string(), "--prune-only", "--keep-last", "1"})
            .code == 0);
}

TEST_CASE("retention keeps the newest backup that passes a full verification",
          "[integration][operations][hostile]") {
    Setup s;
    auto ids = make_history(s, 2, 1);
    // The newest silently rots: one flipped byte, same size.
    json m = json::parse(test::read_file(s.backups / manifest_file_name(ids[1])));
    test::flip_byte(s.backups / m["artifacts"][0]["path"].get<std::string>(), 20);
    auto r = s.backup({"--prune-only", "--keep-last", "1"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.err, Catch::Contains(ids[1] + " failed verification") && Catch::Contains("digest-mismatch"));
    auto left = s.listed();
    CHECK(std::find(left.begin(), left.end(), ids[0]) != left.end());  // the restorable one stays
    CHECK(test::restore({ids[0], "--backup-dir", s.backups.string(), "-n"}).code == 0);
    // Its verification is recorded: the next prune does not hash it again.
    CHECK(fs::exists(s.backups / ("verified_" + ids[0] + ".json")));
    auto again = s.backup({"--prune-only", "--keep-last", "1"});
    CHECK(again.code == 0);
    CHECK_THAT(again.err, Catch::Contains(ids[0] + " verified (recorded, unchanged since)"));
}

TEST_CASE("a prune waits for a restore reading the backup dir, and says so",
          "[integration][operations][hostile]") {
    Setup s;
    auto ids = make_history(s, 2, 3);
    // The restore of the older backup freezes right after taking the readers' lock.
    SpawnOptions o;
    o.env = {"NIGHTJAR_FAILPOINT=restore:locked", "NIGHTJAR_FAILPOINT_ACTION=stop"};
    fs::path out = s.dir / "out";
    Subprocess restore = Subprocess::spawn(
        {NIGHTJAR_RESTORE_BIN, ids[0], "--backup-dir", s.backups.string(), "--target-dir", out.string()}, o);
    REQUIRE(wait_stopped(restore));

    // With a short wait: LockHeld, and nothing deleted.
    auto refused = s.backup({"--prune-only", "--keep-last", "1"}, {"NIGHTJAR_PRUNE_READER_WAIT_S=1"});
    CHECK(refused.code == 5);
    CHECK_THAT(refused.err, Catch::Contains("waiting (up to 1 s) for a restore or dry run") &&
                                Catch::Contains("nothing was deleted"));
    CHECK(s.listed().size() == 2);

    // With the default wait: it waits, says so in its log, and deletes once the restore is done.
    fs::path log = s.dir / "prune.log";
    Subprocess prune = Subprocess::spawn({NIGHTJAR_BACKUP_BIN, "--config", s.config.string(), "--prune-only",
                                          "--keep-last", "1", "--log-file", log.string()});
    bool waiting = false;
    for (int i = 0; i < 800 && !waiting; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
        waiting = fs::exists(log) && test::read_file(log).find("waiting (up to") != std::string::npos;
    }
    CHECK(waiting);
    CHECK(s.listed().size() == 2);  // still nothing deleted while the restore holds its lock
    restore.kill(SIGCONT);
    CHECK(restore.wait() == 0);
    CHECK(prune.wait() == 0);
    CHECK(s.listed() == std::vector<std::string>{ids[1]});
    CHECK(fs::exists(out / (s.dir / "src/app.conf").relative_path()));
}

TEST_CASE("a run never deletes the backup it has just published", "[integration][operations][hostile]") {
    // Redis is configured on a port nobody listens on: the run publishes a partial backup (files only).
    Setup s(json{{"retention", {{"keep_last", 1}}}, {"redis", {{"port", 1}}}});
    auto first = s.backup({"--skip-redis"});
    REQUIRE(first.code == 0);
    auto r = s.backup({"--prune-on-failure"});
    INFO(r.err);
    CHECK(r.code == 6);
    auto left = s.listed();
    REQUIRE(left.size() == 2);  // the partial one it published, and the complete one before it
    json newest = json::parse(test::read_file(s.backups / manifest_file_name(left[0])));
    CHECK(newest["status"] == "partial");
    CHECK_THAT(r.err, Catch::Contains("keep   " + left[0] + " (published by this run"));
}

TEST_CASE("a config of /dev/zero fails fast with the limit named", "[integration][operations][hostile]") {
    auto b = run_guarded({NIGHTJAR_BACKUP_BIN, "--config", "/dev/zero"});
    CHECK(b.code == 2);
    CHECK_THAT(b.err, Catch::Contains("config /dev/zero: larger than the 1 MiB a config file may have"));
    auto r = run_guarded({NIGHTJAR_RESTORE_BIN, "latest", "--config", "/dev/zero"});
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains("larger than the 1 MiB"));
}
