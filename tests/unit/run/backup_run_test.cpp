// The backup run's promises, through its phases with components that fail on purpose: nothing is published
// when a fail_fast component fails, a failing component alone gives a partial backup, and CDC is resumed
// whatever phase failed.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nightjar/cdc/coordinator.hpp"

#include "nightjar/core/error.hpp"
#include "nightjar/repo/artifact_writer.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/run/backup_run.hpp"
#include "nightjar/run/monitoring.hpp"
#include "nightjar/run/run_report.hpp"
#include "support/kafka_connect_emulator.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;

namespace {

// A component that writes one small artifact, or fails as told.
class FakeComponent final : public Component {
public:
    enum class Does { Dump, Fail };
    FakeComponent(std::string kind, Does does, bool fail_fast, int* dumps)
        : kind_(std::move(kind)), does_(does), fail_fast_(fail_fast), dumps_(dumps) {}
    std::string_view kind() const override { return kind_; }
    CheckReport check() const override { return {}; }
    DumpResult dump(DumpContext&, Staging& staging) override {
        ++*dumps_;
        if (does_ == Does::Fail) throw Error(Kind::SourceUnavailable, kind_ + ": the source is down");
        auto w = staging.artifact(kind_ + ".bin");
        const std::string text = "content of " + kind_;
        w->write(io::Bytes(reinterpret_cast<const std::byte*>(text.data()), text.size()));
        w->finish();
        DumpResult r;
        r.artifacts.push_back(w->artifact(kind_, kind_, "raw"));
        return r;
    }
    VerifyOutcome verify(const Artifact&, io::Reader&) const override { return {}; }
    RestorePlan plan_restore(const Artifact&, const RestoreContext&) const override { return {}; }
    RestoreReport restore(const Artifact&, io::Reader&, const RestoreContext&) override { return {}; }
    bool fail_fast() const override { return fail_fast_; }

private:
    std::string kind_;
    Does does_;
    bool fail_fast_;
    int* dumps_;
};

struct Fixture {
    test::TempDir dir;
    BackupRequest request;
    int dumps = 0;
    Fixture() {
        request.backup_dir = dir / "backups";
        request.config.source = dir / "nightjar.json";
    }
    std::unique_ptr<Component> component(const std::string& kind, FakeComponent::Does does,
                                         bool fail_fast = false) {
        return std::make_unique<FakeComponent>(kind, does, fail_fast, &dumps);
    }
    std::vector<BackupRef> published() const {
        PosixStorage storage(request.backup_dir);
        return RepositoryReader(storage).list();
    }
    bool staging_left() const {
        for (const auto& e : fs::directory_iterator(request.backup_dir))
            if (e.path().filename().string().rfind(".staging-", 0) == 0) return true;
        return false;
    }
};

using Does = FakeComponent::Does;

}  // namespace

TEST_CASE("backup run: a fail_fast component that fails publishes nothing and stops the run",
          "[unit][run][backup_run]") {
    Fixture f;
    f.request.config.parallel = 1;  // one after another: the component after the failure never starts
    std::vector<std::unique_ptr<Component>> components;
    components.push_back(f.component("files", Does::Dump));
    components.push_back(f.component("postgres", Does::Fail, /*fail_fast=*/true));
    components.push_back(f.component("redis", Does::Dump));
    {
        BackupRun run(f.request, std::move(components));
        REQUIRE_THROWS_MATCHES(run.run(), Error,
                               test::IsError(Kind::SourceUnavailable, "the source is down"));
        CHECK(run.report().status.empty());
        CHECK(run.report().manifest.empty());
    }
    CHECK(f.dumps == 2);  // redis, after the failure, is never dumped
    CHECK(f.published().empty());
    CHECK_FALSE(f.staging_left());
}

TEST_CASE("backup run: a failing component without fail_fast gives a partial backup and exit 6",
          "[unit][run][backup_run]") {
    Fixture f;
    std::vector<std::unique_ptr<Component>> components;
    components.push_back(f.component("postgres", Does::Fail));
    components.push_back(f.component("files", Does::Dump));
    BackupRun run(f.request, std::move(components));
    CHECK(run.run() == exit_code(Kind::Partial));
    const RunReport& r = run.report();
    CHECK(r.status == "partial");
    REQUIRE(r.components.size() == 2);
    CHECK(r.components[0].status == "failed");
    CHECK(r.components[1].status == "ok");
    CHECK_THAT(r.error, Catch::Contains("published as partial: postgres: postgres: the source is down"));
    CHECK(f.published().size() == 1);
}

TEST_CASE("backup run: when every component fails nothing is published", "[unit][run][backup_run]") {
    Fixture f;
    std::vector<std::unique_ptr<Component>> components;
    components.push_back(f.component("postgres", Does::Fail));
    components.push_back(f.component("redis", Does::Fail));
    {
        BackupRun run(f.request, std::move(components));
        REQUIRE_THROWS_MATCHES(run.run(), Error, test::IsError(Kind::SourceUnavailable, "postgres:"));
        CHECK(run.report().components.size() == 2);
    }
    CHECK(f.published().empty());
    CHECK_FALSE(f.staging_left());
}

TEST_CASE("backup run: CDC is resumed after a failing phase, and nothing is published",
          "[unit][run][backup_run][cdc]") {
    Fixture f;
    test::KafkaConnectEmulator emu;
    cdc::CdcConfig cdc;
    cdc.clusters.push_back({.urls = {emu.url()}, .connectors = {"inventory-connector"}});
    cdc.pause_timeout_s = 10;
    cdc.resume_timeout_s = 10;
    cdc.state_dir = (f.dir / "cdc-state").string();
    f.request.config.cdc = cdc;
    SECTION("a fail_fast component") {
        std::vector<std::unique_ptr<Component>> components;
        components.push_back(f.component("postgres", Does::Fail, /*fail_fast=*/true));
        BackupRun run(f.request, std::move(components));
        REQUIRE_THROWS_MATCHES(run.run(), Error,
                               test::IsError(Kind::SourceUnavailable, "the source is down"));
        REQUIRE(run.report().cdc);
    }
    SECTION("a before_backup hook") {
        f.request.config.hooks.before_backup.push_back({.argv = {"false"}});
        std::vector<std::unique_ptr<Component>> components;
        components.push_back(f.component("files", Does::Dump));
        BackupRun run(f.request, std::move(components));
        REQUIRE_THROWS_MATCHES(run.run(), Error,
                               test::IsError(Kind::SourceUnavailable, "hook before_backup"));
        CHECK(f.dumps == 0);
    }
    CHECK(emu.count("PUT", "/connectors/inventory-connector/pause") == 1);
    CHECK(emu.count("PUT", "/connectors/inventory-connector/resume") == 1);
    CHECK(emu.wait_settled("inventory-connector", "RUNNING"));
    CHECK(f.published().empty());
}

namespace {

// A component whose dump is a test's function (it may wait for others, report a snapshot, or fail).
class ScriptedComponent final : public Component {
public:
    using Body = std::function<void(DumpContext&)>;
    ScriptedComponent(std::string kind, Body body, bool fail_fast = false, bool takes_snapshot = true)
        : kind_(std::move(kind)), body_(std::move(body)), fail_fast_(fail_fast), snapshot_(takes_snapshot) {}
    std::string_view kind() const override { return kind_; }
    CheckReport check() const override { return {}; }
    DumpResult dump(DumpContext& context, Staging& staging) override {
        body_(context);
        auto w = staging.artifact(kind_ + ".bin");
        const std::string text = "content of " + kind_;
        w->write(io::Bytes(reinterpret_cast<const std::byte*>(text.data()), text.size()));
        w->finish();
        DumpResult r;
        r.artifacts.push_back(w->artifact(kind_, kind_, "raw"));
        return r;
    }
    VerifyOutcome verify(const Artifact&, io::Reader&) const override { return {}; }
    RestorePlan plan_restore(const Artifact&, const RestoreContext&) const override { return {}; }
    RestoreReport restore(const Artifact&, io::Reader&, const RestoreContext&) override { return {}; }
    bool fail_fast() const override { return fail_fast_; }
    bool takes_snapshot() const override { return snapshot_; }

private:
    std::string kind_;
    Body body_;
    bool fail_fast_;
    bool snapshot_;
};

// Waits (polling, at most `limit`) until `done` is true; returns whether it got there.
bool eventually(const std::function<bool()>& done,
                std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
}

std::vector<std::string> kinds_of(const RunReport& r) {
    std::vector<std::string> out;
    for (const auto& c : r.components) out.push_back(c.kind);
    return out;
}

}  // namespace

TEST_CASE("backup run: parallel components run at once, reported in config order",
          "[unit][run][backup_run]") {
    Fixture f;
    f.request.config.parallel = 3;
    std::atomic<int> started{0};
    std::atomic<bool> all_at_once{true};
    std::vector<std::string> finished;
    std::mutex m;
    auto body = [&](std::string kind, int wait_ms) {
        return [&, kind, wait_ms](DumpContext&) {
            ++started;
            // Each waits until all three are running: only a concurrent run gets past this.
            if (!eventually([&] { return started.load() == 3; })) all_at_once = false;
            std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
            std::lock_guard lock(m);
            finished.push_back(kind);
        };
    };
    std::vector<std::unique_ptr<Component>> components;
    components.push_back(std::make_unique<ScriptedComponent>("files", body("files", 300)));
    components.push_back(std::make_unique<ScriptedComponent>("postgres", body("postgres", 150)));
    components.push_back(std::make_unique<ScriptedComponent>("redis", body("redis", 0)));
    BackupRun run(f.request, std::move(components));
    CHECK(run.run() == 0);
    CHECK(all_at_once);
    CHECK(finished == std::vector<std::string>{"redis", "postgres", "files"});
    CHECK(kinds_of(run.report()) == std::vector<std::string>{"files", "postgres", "redis"});
    REQUIRE(f.published().size() == 1);
    PosixStorage storage(f.request.backup_dir);
    Manifest manifest = RepositoryReader(storage).load(f.published().at(0));
    REQUIRE(manifest.artifacts.size() == 3);
    CHECK(manifest.artifacts[0].component == "files");
    CHECK(manifest.artifacts[1].component == "postgres");
    CHECK(manifest.artifacts[2].component == "redis");
    CHECK(manifest.options["parallel"] == 3);
}

TEST_CASE("backup run: with parallel 1 the components run one after another", "[unit][run][backup_run]") {
    Fixture f;
    f.request.config.parallel = 1;
    std::atomic<int> running{0};
    std::atomic<int> most{0};
    auto body = [&](DumpContext&) {
        most = std::max(most.load(), ++running);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        --running;
    };
    std::vector<std::unique_ptr<Component>> components;
    components.push_back(std::make_unique<ScriptedComponent>("files", body));
    components.push_back(std::make_unique<ScriptedComponent>("redis", body));
    BackupRun run(f.request, std::move(components));
    CHECK(run.run() == 0);
    CHECK(most == 1);
    CHECK(kinds_of(run.report()) == std::vector<std::string>{"files", "redis"});
}

TEST_CASE("backup run: a fail_fast failure stops the components still running, nothing is published",
          "[unit][run][backup_run]") {
    Fixture f;
    f.request.config.parallel = 2;
    std::atomic<bool> long_started{false};
    std::atomic<bool> long_stopped{false};
    std::vector<std::unique_ptr<Component>> components;
    components.push_back(std::make_unique<ScriptedComponent>("files", [&](DumpContext& c) {
        long_started = true;
        try {
            for (int i = 0; i < 1000; ++i) {  // 10 s unless stopped
                c.check_interrupted();
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        } catch (const Error& e) {
            long_stopped = e.kind() == Kind::Interrupted;
            throw;
        }
    }));
    components.push_back(std::make_unique<ScriptedComponent>(
        "postgres",
        [&](DumpContext&) {
            eventually([&] { return long_started.load(); });
            throw Error(Kind::SourceUnavailable, "postgres: the source is down");
        },
        /*fail_fast=*/true));
    {
        BackupRun run(f.request, std::move(components));
        REQUIRE_THROWS_MATCHES(run.run(), Error,
                               test::IsError(Kind::SourceUnavailable, "postgres: the source is down"));
        CHECK(run.report().manifest.empty());
    }
    CHECK(long_stopped);
    CHECK(f.published().empty());
    CHECK_FALSE(f.staging_left());
}

TEST_CASE("backup run: a failing component does not stop the others running beside it",
          "[unit][run][backup_run]") {
    Fixture f;
    f.request.config.parallel = 2;
    std::atomic<bool> failed{false};
    std::atomic<bool> saw_failure{false};  // Catch2 assertions stay on the test's thread
    std::vector<std::unique_ptr<Component>> components;
    components.push_back(std::make_unique<ScriptedComponent>("files", [&](DumpContext& c) {
        saw_failure = eventually([&] { return failed.load(); });
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        c.check_interrupted();  // not stopped: the failure was not fail_fast
    }));
    components.push_back(std::make_unique<ScriptedComponent>("postgres", [&](DumpContext&) {
        failed = true;
        throw Error(Kind::SourceUnavailable, "postgres: the source is down");
    }));
    BackupRun run(f.request, std::move(components));
    CHECK(run.run() == exit_code(Kind::Partial));
    CHECK(saw_failure);
    REQUIRE(run.report().components.size() == 2);
    CHECK(run.report().components[0].status == "ok");
    CHECK(run.report().components[1].status == "failed");
    CHECK(f.published().size() == 1);
}

TEST_CASE("backup run: parallelism defaults from cores and the memory budget", "[unit][run][backup_run]") {
    CHECK(backup_parallelism(1, 3) == 1);
    CHECK(backup_parallelism(8, 3) == 3);
    CHECK(backup_parallelism(2, 3) == 2);
    CHECK(backup_parallelism(0, 1) == 1);
    CHECK(backup_parallelism(0, 3) >= 2);
    CHECK(backup_parallelism(0, 3) <= 3);
    CHECK(backup_parallelism(0, 10) <= 3);
}

namespace {

struct CdcFixture : Fixture {
    test::KafkaConnectEmulator emu{
        {.connectors = {"source-connector"}, .tasks = 1, .transition_delay_s = 0.05}};
    CdcFixture() {
        emu.control("POST", "connectors",
                    {{"name", "sink-connector"}, {"type", "sink"}, {"config", {{"topics", "rows"}}}});
        cdc::CdcConfig cdc;
        cdc.clusters.push_back({.urls = {emu.url()}, .connectors = {"sink-connector", "source-connector"}});
        cdc.pause_timeout_s = 10;
        cdc.resume_timeout_s = 10;
        cdc.retry = {.initial_backoff_s = 0.02, .max_backoff_s = 0.1};
        cdc.state_dir = (dir / "cdc-state").string();
        request.config.cdc = cdc;
    }
    nlohmann::json connector(const RunReport& r, const std::string& name) const {
        for (const auto& c : (*r.cdc)["connectors"])
            if (c["name"] == name) return c;
        return nullptr;
    }
};

}  // namespace

TEST_CASE("backup run: a sink is resumed once the snapshots are taken, a source after the whole run",
          "[unit][run][backup_run][cdc]") {
    CdcFixture f;
    f.request.config.parallel = GENERATE(1, 2);
    bool sink_back_during_dump = false, source_back_during_dump = true;
    int resumes_before_snapshot = -1;
    std::vector<std::unique_ptr<Component>> components;
    components.push_back(std::make_unique<ScriptedComponent>(
        "files", [](DumpContext&) {}, false, /*takes_snapshot=*/false));
    components.push_back(std::make_unique<ScriptedComponent>("postgres", [&](DumpContext& c) {
        resumes_before_snapshot = f.emu.count("PUT", "/connectors/sink-connector/resume");
        c.took_snapshot("database app", /*last=*/true);
        // The dump goes on reading its snapshot while the sink is resumed beside it.
        sink_back_during_dump = f.emu.wait_settled("sink-connector", "RUNNING", std::chrono::seconds(10));
        source_back_during_dump = f.emu.count("PUT", "/connectors/source-connector/resume") > 0;
    }));
    BackupRun run(f.request, std::move(components));
    CHECK(run.run() == 0);
    CHECK(resumes_before_snapshot == 0);
    CHECK(sink_back_during_dump);
    CHECK_FALSE(source_back_during_dump);
    CHECK(f.emu.count("PUT", "/connectors/sink-connector/resume") == 1);
    CHECK(f.emu.count("PUT", "/connectors/source-connector/resume") == 1);
    CHECK(f.emu.wait_settled("source-connector", "RUNNING"));
    REQUIRE(run.report().cdc);
    const auto sink = f.connector(run.report(), "sink-connector");
    const auto source = f.connector(run.report(), "source-connector");
    CHECK(sink["hold"] == "snapshot");
    CHECK(source["hold"] == "backup");
    REQUIRE(sink["held_seconds"].is_number());
    REQUIRE(source["held_seconds"].is_number());
    CHECK(sink["held_seconds"].get<double>() <= source["held_seconds"].get<double>());
    CHECK(sink["offsets"] != nullptr);  // read while still held, just before the early resume
    CHECK((*run.report().cdc)["resume_failures"].empty());
    // Nothing is left in the crash journal.
    auto left = cdc::read_cdc_journal(*f.request.config.cdc, f.request.backup_dir);
    CHECK((!left || left->connectors.empty()));
    RunMetrics m = run_metrics(run.report(), 0, 1);
    CHECK(m.cdc_held_seconds.count("sink-connector") == 1);
    CHECK_THAT(render_metrics(m, 0),
               Catch::Contains("nightjar_cdc_held_seconds{connector=\"sink-connector\"} "));
}

TEST_CASE("backup run: cdc.hold backup holds every connector for the whole run",
          "[unit][run][backup_run][cdc]") {
    CdcFixture f;
    f.request.config.cdc->hold = "backup";
    f.request.config.parallel = 2;
    int resumes_during_dump = -1;
    std::vector<std::unique_ptr<Component>> components;
    components.push_back(std::make_unique<ScriptedComponent>("postgres", [&](DumpContext& c) {
        c.took_snapshot("database app", true);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        resumes_during_dump = f.emu.count("PUT", "/connectors/sink-connector/resume");
    }));
    BackupRun run(f.request, std::move(components));
    CHECK(run.run() == 0);
    CHECK(resumes_during_dump == 0);
    CHECK(f.emu.count("PUT", "/connectors/sink-connector/resume") == 1);
    CHECK(f.connector(run.report(), "sink-connector")["hold"] == "backup");
}

TEST_CASE("backup run: connectors held for the snapshot wait for every component cdc.hold_for names",
          "[unit][run][backup_run][cdc]") {
    CdcFixture f;
    f.request.config.cdc->hold = "snapshot";
    f.request.config.cdc->hold_for = {"postgres", "redis"};  // a connector writes into Redis
    f.request.config.parallel = 2;
    std::atomic<bool> redis_may_go{false};
    int resumes_after_first = -1;
    bool resumed_after_both = false;
    std::vector<std::unique_ptr<Component>> components;
    components.push_back(std::make_unique<ScriptedComponent>("postgres", [&](DumpContext& c) {
        c.took_snapshot("database a", /*last=*/false);
        c.took_snapshot("database b", /*last=*/true);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        resumes_after_first = f.emu.count("PUT", "/connectors/source-connector/resume");
        redis_may_go = true;
        resumed_after_both =
            eventually([&] { return f.emu.count("PUT", "/connectors/source-connector/resume") == 1; });
    }));
    components.push_back(std::make_unique<ScriptedComponent>("redis", [&](DumpContext& c) {
        eventually([&] { return redis_may_go.load(); });
        c.took_snapshot("redis", true);
    }));
    BackupRun run(f.request, std::move(components));
    CHECK(run.run() == 0);
    CHECK(resumes_after_first == 0);  // redis had not taken its snapshot yet
    CHECK(resumed_after_both);        // resumed while the postgres dump still ran
    CHECK(f.emu.count("PUT", "/connectors/source-connector/resume") == 1);
    CHECK(f.emu.count("PUT", "/connectors/sink-connector/resume") == 1);
    CHECK(f.connector(run.report(), "source-connector")["hold"] == "snapshot");
}

TEST_CASE("backup run: by default the snapshot hold waits for the databases only and not for Redis",
          "[unit][run][backup_run][cdc]") {
    CdcFixture f;
    f.request.config.cdc->hold = "snapshot";
    f.request.config.parallel = 2;
    std::atomic<bool> resumed{false};
    bool resumed_before_redis_snapshot = false;
    std::vector<std::unique_ptr<Component>> components;
    components.push_back(std::make_unique<ScriptedComponent>("postgres", [&](DumpContext& c) {
        c.took_snapshot("database a", /*last=*/true);
        resumed = eventually([&] { return f.emu.count("PUT", "/connectors/source-connector/resume") == 1; });
    }));
    components.push_back(std::make_unique<ScriptedComponent>("redis", [&](DumpContext& c) {
        // Redis waits (its diskless delay) until the connectors are already back.
        eventually([&] { return resumed.load(); });
        resumed_before_redis_snapshot = resumed.load();
        c.took_snapshot("redis", true);
    }));
    BackupRun run(f.request, std::move(components));
    CHECK(run.run() == 0);
    CHECK(resumed_before_redis_snapshot);
    CHECK(f.emu.count("PUT", "/connectors/source-connector/resume") == 1);
    CHECK(f.emu.count("PUT", "/connectors/sink-connector/resume") == 1);
}

TEST_CASE("backup run: a failure after the early resume resumes nothing twice",
          "[unit][run][backup_run][cdc]") {
    CdcFixture f;
    f.request.config.parallel = 2;
    bool sink_back = false;
    std::vector<std::unique_ptr<Component>> components;
    components.push_back(std::make_unique<ScriptedComponent>(
        "postgres",
        [&](DumpContext& c) {
            c.took_snapshot("database app", true);
            sink_back = f.emu.wait_settled("sink-connector", "RUNNING", std::chrono::seconds(10));
            throw Error(Kind::SourceUnavailable, "postgres: the dump broke");
        },
        /*fail_fast=*/true));
    {
        BackupRun run(f.request, std::move(components));
        REQUIRE_THROWS_MATCHES(run.run(), Error, test::IsError(Kind::SourceUnavailable, "the dump broke"));
    }
    CHECK(sink_back);  // resumed early, before the failure
    CHECK(f.emu.count("PUT", "/connectors/sink-connector/resume") == 1);
    CHECK(f.emu.count("PUT", "/connectors/source-connector/resume") == 1);
    CHECK(f.emu.wait_settled("source-connector", "RUNNING"));
    auto left = cdc::read_cdc_journal(*f.request.config.cdc, f.request.backup_dir);
    CHECK((!left || left->connectors.empty()));
    CHECK(f.published().empty());
}
