#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "nightjar/components/files/files_component.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/verify.hpp"
#include "support/corrupt.hpp"
#include "support/manifests.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using test::IsError;
namespace fs = std::filesystem;

namespace {

struct Fixture {
    test::TempDir dir;
    fs::path src = dir / "src";
    PosixStorage storage{dir / "repo"};
    RepositoryWriter repo{storage};
    Manifest manifest;

    Fixture() {
        test::write_file(src / "a.conf", "key = value\n");
        test::write_file(src / "sub/b.conf", std::string(100000, 'b'));
        fs::create_symlink("../a.conf", src / "sub/link");
        test::write_file(src / "skip.swp", "swap");
    }

    Artifact dump(files::FilesConfig cfg) {
        files::FilesComponent c(cfg);
        DumpContext ctx;
        auto lock = repo.lock();
        Staging staging = repo.begin("20240101_000000", {});
        DumpResult r = c.dump(ctx, staging);
        REQUIRE(r.artifacts.size() == 1);
        manifest = test::complete_manifest("20240101_000000", r.artifacts);
        repo.publish(std::move(staging), manifest);
        return r.artifacts[0];
    }
};

std::vector<std::string> paths_of(const Artifact& a) {
    std::vector<std::string> out;
    for (const auto& e : a.source["entries"]) out.push_back(e["path"]);
    return out;
}

}  // namespace

TEST_CASE("files component: dump, verify, corrupt, restore", "[files]") {
    Fixture f;
    Artifact a = f.dump({.paths = {f.src.string()}, .exclude = {"*.swp"}, .on_unreadable = "fail"});
    files::FilesComponent c;
    auto paths = paths_of(a);
    CHECK(std::find(paths.begin(), paths.end(), (f.src / "skip.swp").string()) == paths.end());
    CHECK(std::find(paths.begin(), paths.end(), (f.src / "sub/link").string()) != paths.end());
    CHECK(verify_artifact(f.repo, a, c).ok());

    SECTION("a flipped byte is a digest mismatch") {
        test::flip_byte(f.dir / ("repo/" + a.path), -20);
        VerifyOutcome v = verify_artifact(f.repo, a, c);
        CHECK(v.status == VerifyStatus::DigestMismatch);
    }
    SECTION("a truncation is a size mismatch") {
        test::truncate_to(f.dir / ("repo/" + a.path), a.size / 2);
        CHECK(verify_artifact(f.repo, a, c).status == VerifyStatus::SizeMismatch);
    }
    SECTION("a deleted artifact is missing") {
        fs::remove(f.dir / ("repo/" + a.path));
        CHECK(verify_artifact(f.repo, a, c).status == VerifyStatus::Missing);
    }
    SECTION("a manifest that lists a file the archive lacks is a format error") {
        Artifact edited = a;
        auto extra = edited.source["entries"][0];
        extra["path"] = "/nowhere/ghost";
        edited.source["entries"].push_back(extra);
        VerifyOutcome v = verify_artifact(f.repo, edited, c);
        CHECK(v.status == VerifyStatus::FormatInvalid);
        CHECK_THAT(v.detail, Catch::Contains("/nowhere/ghost"));
    }
    SECTION("restore to a scratch dir gives identical files, modes and mtimes") {
        RestoreContext o{.backup_id = "x", .target_root = f.dir / "out"};
        auto content = open_verified_content(f.repo, a);
        RestoreReport r = c.restore(a, *content, o);
        CHECK(r.problems.empty());
        fs::path out = f.dir / "out" / f.src.relative_path();
        CHECK(test::read_file(out / "a.conf") == "key = value\n");
        CHECK(fs::read_symlink(out / "sub/link") == "../a.conf");
        struct stat s1 {
        }, s2{};
        ::stat((f.src / "sub/b.conf").c_str(), &s1);
        ::stat((out / "sub/b.conf").c_str(), &s2);
        CHECK(s1.st_mode == s2.st_mode);
        CHECK(s1.st_mtim.tv_sec == s2.st_mtim.tv_sec);
        CHECK(s1.st_mtim.tv_nsec == s2.st_mtim.tv_nsec);
        RestorePlan again = c.plan_restore(a, o);
        CHECK(again.summary["unchanged"] == paths.size());
    }
}

TEST_CASE("files component: unreadable and missing paths follow on_unreadable", "[files]") {
    Fixture f;
    files::FilesConfig cfg{
        .paths = {f.src.string(), (f.dir / "missing.conf").string()}, .exclude = {}, .on_unreadable = "fail"};
    files::FilesComponent strict(cfg);
    CheckReport report = strict.check();
    REQUIRE(report.problems.size() == 1);
    CHECK_THAT(report.problems[0], Catch::Contains("missing.conf"));
    DumpContext ctx;
    auto lock = f.repo.lock();
    Staging staging = f.repo.begin("20240101_000000", {});
    REQUIRE_THROWS_MATCHES(strict.dump(ctx, staging), Error,
                           IsError(Kind::SourceUnavailable, "missing.conf"));
    cfg.on_unreadable = "warn";
    files::FilesComponent lenient(cfg);
    DumpResult r = lenient.dump(ctx, staging);
    REQUIRE(r.warnings.size() == 1);
    CHECK_THAT(r.warnings[0], Catch::Contains("missing.conf"));
}

TEST_CASE("utf-8 validation", "[files]") {
    CHECK(files::is_valid_utf8("plain"));
    CHECK(files::is_valid_utf8("caf\xc3\xa9"));
    CHECK_FALSE(files::is_valid_utf8("bad\xff"));
    CHECK_FALSE(files::is_valid_utf8("\xc3"));
    CHECK_FALSE(files::is_valid_utf8("\xc0\x80"));
}
