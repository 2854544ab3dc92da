// The backup run's promises, through its phases with components that fail on purpose: nothing is published
// when a fail_fast component fails, a failing component alone gives a partial backup, and CDC is resumed
// whatever phase failed.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "nightjar/core/error.hpp"
#include "nightjar/repo/artifact_writer.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/run/backup_run.hpp"
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
