// The config-files flow through the real binaries: backup, dry-run verify, restore, and every way to break
// it.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "nightjar/io/sha256.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "support/commands.hpp"
#include "support/corrupt.hpp"
#include "support/manifests.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Flow {
    test::TempDir dir;
    fs::path src = dir / "etc-app";
    fs::path backups = dir / "backups";
    fs::path config = dir / "nightjar.json";

    Flow() {
        test::write_file(src / "app.conf", "listen = 8080\n");
        test::write_file(src / "conf.d/with space.conf", "a = 1\n");
        test::write_file(src / "conf.d/new\nline.conf", "b = 2\n");
        test::write_file(src / "conf.d/latin1-\xe9t\xe9.conf", "c = 3\n");
        test::write_file(src / "big.bin", std::string(3 << 20, 'x') + "tail");
        fs::create_symlink("app.conf", src / "current");
        fs::permissions(src / "app.conf", fs::perms(0600));
        write_config(json{{"backup_dir", backups.string()}, {"files", {{"paths", {src.string()}}}}});
    }
    void write_config(const json& j) const { test::write_file(config, j.dump(2)); }
    test::Outcome backup(std::vector<std::string> extra = {}, std::vector<std::string> env = {}) const {
        std::vector<std::string> args{"--config", config.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::backup(args, env);
    }
    std::vector<fs::path> manifests() const { return test::published_manifests(backups); }
    json manifest() const { return json::parse(test::read_file(manifests().at(0))); }
    fs::path artifact() const { return backups / manifest()["artifacts"][0]["path"].get<std::string>(); }
};

void require_same_tree(const fs::path& a, const fs::path& b) {
    std::size_t count = 0;
    for (auto it = fs::recursive_directory_iterator(a); it != fs::recursive_directory_iterator(); ++it) {
        fs::path rel = it->path().lexically_relative(a);
        struct stat sa {
        }, sb{};
        REQUIRE(::lstat(it->path().c_str(), &sa) == 0);
        INFO("restored: " << (b / rel));
        REQUIRE(::lstat((b / rel).c_str(), &sb) == 0);
        CHECK(sa.st_mode == sb.st_mode);
        CHECK(sa.st_mtim.tv_sec == sb.st_mtim.tv_sec);
        if (S_ISREG(sa.st_mode)) CHECK(test::read_file(it->path()) == test::read_file(b / rel));
        if (S_ISLNK(sa.st_mode)) CHECK(fs::read_symlink(it->path()) == fs::read_symlink(b / rel));
        ++count;
    }
    CHECK(count >= 7);
}

}  // namespace

TEST_CASE("backup, dry-run verify and restore give byte-identical files", "[integration][files]") {
    Flow f;
    auto b = f.backup({"--json"});
    INFO(b.err);
    REQUIRE(b.code == 0);
    json summary = json::parse(b.out);
    CHECK(summary["status"] == "complete");
    REQUIRE(f.manifests().size() == 1);

    auto list = test::restore({"--list", "--backup-dir", f.backups.string()});
    CHECK(list.code == 0);
    CHECK_THAT(list.out,
               Catch::Contains(f.manifest()["id"].get<std::string>()) && Catch::Contains("complete"));

    fs::path out = f.dir / "scratch";
    auto dry = test::restore({f.manifests()[0].string(), "--dry-run", "--target-dir", out.string()});
    INFO(dry.err);
    CHECK(dry.code == 0);
    CHECK_THAT(dry.err, Catch::Contains("OK") && Catch::Contains("8 new"));
    CHECK_FALSE(fs::exists(out));  // a dry run writes nothing

    auto r = test::restore({"latest", "--backup-dir", f.backups.string(), "--target-dir", out.string()});
    INFO(r.err);
    REQUIRE(r.code == 0);
    require_same_tree(f.src, out / f.src.relative_path());

    SECTION("a changed file is moved aside before it is replaced") {
        test::write_file(out / f.src.relative_path() / "app.conf", "edited by hand\n");
        auto plan =
            test::restore({"latest", "--backup-dir", f.backups.string(), "--target-dir", out.string(), "-n"});
        CHECK(plan.code == 0);
        CHECK_THAT(plan.err, Catch::Contains("changed") && Catch::Contains("app.conf"));
        auto again =
            test::restore({"latest", "--backup-dir", f.backups.string(), "--target-dir", out.string()});
        REQUIRE(again.code == 0);
        std::string id = f.manifest()["id"];
        CHECK(test::read_file(out / (".nightjar-replaced-" + id) / f.src.relative_path() / "app.conf") ==
              "edited by hand\n");
        CHECK(test::read_file(out / f.src.relative_path() / "app.conf") == "listen = 8080\n");
    }
}

TEST_CASE("a corrupted artifact fails the dry run naming it", "[integration][files]") {
    Flow f;
    REQUIRE(f.backup().code == 0);
    std::string rel = f.manifest()["artifacts"][0]["path"];
    SECTION("one flipped byte") {
        test::flip_byte(f.artifact(), static_cast<std::int64_t>(fs::file_size(f.artifact()) / 2));
    }
    SECTION("truncated") {
        test::truncate_to(f.artifact(), fs::file_size(f.artifact()) - 100);
    }
    auto dry = test::restore({"latest", "--backup-dir", f.backups.string(), "--dry-run"});
    CHECK(dry.code == 4);
    CHECK_THAT(dry.err, Catch::Contains(rel));
    auto real =
        test::restore({"latest", "--backup-dir", f.backups.string(), "--target-dir", (f.dir / "o").string()});
    CHECK(real.code == 4);
    CHECK_FALSE(fs::exists(f.dir / "o"));
}

TEST_CASE("an edited manifest is refused and a deleted one is no backup", "[integration][files]") {
    Flow f;
    REQUIRE(f.backup().code == 0);
    fs::path m = f.manifests()[0];
    SECTION("edited") {
        test::edit_manifest(m, [](json& j) { j["artifacts"][0]["size"] = 1; });
        auto dry = test::restore({m.string(), "--dry-run"});
        CHECK(dry.code == 4);
        CHECK_THAT(dry.err, Catch::Contains("self-digest"));
    }
    SECTION("deleted") {
        fs::remove(m);
        auto list = test::restore({"--list", "--backup-dir", f.backups.string(), "--json"});
        CHECK(list.code == 0);
        CHECK(json::parse(list.out).empty());
        auto latest = test::restore({"latest", "--backup-dir", f.backups.string(), "--dry-run"});
        CHECK(latest.code == 4);
        CHECK_THAT(latest.err, Catch::Contains("no published backup"));
    }
}

TEST_CASE("a backup killed at any point leaves no published manifest, and the next run cleans up",
          "[integration][files]") {
    for (const char* point : {"artifact:before-finish", "publish:before-rename", "publish:before-manifest",
                              "publish:before-manifest-rename"}) {
        Flow f;
        INFO(point);
        auto killed = f.backup({}, {std::string("NIGHTJAR_FAILPOINT=") + point});
        CHECK(killed.code == 128 + 9);
        CHECK(f.manifests().empty());
        auto list = test::restore({"--list", "--backup-dir", f.backups.string(), "--json"});
        CHECK(json::parse(list.out).empty());
        auto next = f.backup();
        REQUIRE(next.code == 0);
        CHECK(f.manifests().size() == 1);
        for (auto& e : fs::directory_iterator(f.backups)) {
            std::string name = e.path().filename().string();
            CHECK(name.find(".staging-") == std::string::npos);
            CHECK(name.find(".tmp-") == std::string::npos);
        }
        CHECK(test::restore({"latest", "--backup-dir", f.backups.string(), "--dry-run"}).code == 0);
    }
}

TEST_CASE("archive entries that escape the target are refused", "[integration][files]") {
    // A hostile backup: a valid manifest whose files artifact names ../../etc/x and /etc/y.
    for (std::string evil : {"../../etc/nightjar-evil", "/etc/nightjar-evil"}) {
        INFO(evil);
        test::TempDir dir;
        PosixStorage storage(dir / "backups");
        RepositoryWriter repo(storage);
        auto lock = repo.lock();
        Staging staging = repo.begin("20240101_000000", {});
        auto w = staging.artifact("files.tar.zst");
        archive* a = archive_write_new();
        archive_write_set_format_pax(a);
        archive_write_open(
            a, w.get(), nullptr,
            [](archive*, void* self, const void* data, size_t n) -> la_ssize_t {
                static_cast<io::Writer*>(self)->write(io::Bytes(static_cast<const std::byte*>(data), n));
                return static_cast<la_ssize_t>(n);
            },
            nullptr);
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, evil.c_str());
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, 5);
        archive_write_header(a, e);
        archive_write_data(a, "evil\n", 5);
        archive_entry_free(e);
        archive_write_close(a);
        archive_write_free(a);
        w->finish();
        Artifact art = w->artifact("files", "config", "tar");
        art.source = {{"entries",
                       {{{"path", evil},
                         {"type", "file"},
                         {"mode", 0644},
                         {"uid", 0},
                         {"gid", 0},
                         {"mtime", 0},
                         {"size", 5},
                         {"sha256", io::sha256_hex(std::string_view("evil\n"))}}}}};
        Manifest m = test::complete_manifest(staging.id(), {art});
        repo.publish(std::move(staging), m);

        fs::path target = dir / "deep/target";
        auto r = test::restore(
            {"latest", "--backup-dir", (dir / "backups").string(), "--target-dir", target.string()});
        // A relative escape is described by the manifest and refused by the restore plan (7); an absolute
        // name cannot match any manifest entry (they are stored relative), so verification refuses it (4).
        const bool absolute = evil[0] == '/';
        CHECK(r.code == (absolute ? 4 : 7));
        CHECK_THAT(r.err, Catch::Contains(absolute ? "entry not in the manifest" : "unsafe path") &&
                              Catch::Contains("nightjar-evil"));
        CHECK_FALSE(fs::exists(dir / "etc/nightjar-evil"));
        CHECK_FALSE(fs::exists(dir / "deep/etc/nightjar-evil"));
        CHECK_FALSE(fs::exists("/etc/nightjar-evil"));
        auto dry = test::restore({"latest", "--backup-dir", (dir / "backups").string(), "--dry-run"});
        CHECK(dry.code == (absolute ? 4 : 7));
    }
}

TEST_CASE("bad input gets one clear error and a distinct exit code", "[integration][files]") {
    Flow f;
    SECTION("malformed config names the field") {
        f.write_config(json{{"backup_dir", f.backups.string()},
                            {"files", {{"paths", {f.src.string()}}, {"on_unreadable", 3}}}});
        auto r = f.backup();
        CHECK(r.code == 2);
        CHECK_THAT(r.err, Catch::Contains("/files/on_unreadable"));
        CHECK_FALSE(fs::exists(f.backups));
    }
    SECTION("config that is not JSON") {
        test::write_file(f.config, "{ \"backup_dir\": ");
        auto r = f.backup();
        CHECK(r.code == 2);
        CHECK_THAT(r.err, Catch::Contains("not valid JSON"));
    }
    SECTION("missing config file") {
        auto r = test::backup({"--config", (f.dir / "nope.json").string()});
        CHECK(r.code == 2);
        CHECK_THAT(r.err, Catch::Contains("nope.json"));
    }
    SECTION("unknown flag") {
        CHECK(f.backup({"--frobnicate"}).code == 2);
        CHECK(test::restore({"--frobnicate"}).code == 2);
    }
    SECTION("a missing source path fails with source-unavailable, nothing published") {
        f.write_config(
            json{{"backup_dir", f.backups.string()}, {"files", {{"paths", {(f.dir / "gone").string()}}}}});
        auto r = f.backup();
        CHECK(r.code == 3);
        CHECK_THAT(r.err, Catch::Contains("gone"));
        CHECK(f.manifests().empty());
        CHECK(f.backup({"--dry-run"}).code == 3);
    }
    SECTION("the lock held by another run") {
        fs::create_directories(f.backups);
        PosixStorage storage(f.backups);
        RepositoryWriter repo(storage);
        Lock held = repo.lock();
        auto r = f.backup();
        CHECK(r.code == 5);
        CHECK_THAT(r.err, Catch::Contains("pid " + std::to_string(::getpid())));
    }
    SECTION("a dry run validates and writes nothing") {
        auto r = f.backup({"--dry-run", "--json"});
        INFO(r.err);
        CHECK(r.code == 0);
        CHECK(json::parse(r.out)["ok"] == true);
        CHECK_FALSE(fs::exists(f.backups));
    }
    SECTION("--help exits 0 and documents exit codes") {
        auto r = test::backup({"--help"});
        CHECK(r.code == 0);
        CHECK_THAT(r.out, Catch::Contains("--skip-db") && Catch::Contains("Exit codes"));
    }
}
