// Hostile files artifacts, made as an attacker who can write to the backup dir would: crafted tars whose
// manifest digests are all correct (sealed), so only the files component's own checks stand in the way.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <random>

#include "nightjar/components/files/files_component.hpp"
#include "nightjar/components/files/safe_fs.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/verify.hpp"
#include "support/hostile_files.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using nlohmann::json;
using test::IsError;
using test::TarEntry;
namespace fs = std::filesystem;

namespace {

struct Hostile {
    test::TempDir dir;
    fs::path backups = dir / "backups";
    fs::path target = dir / "world/target";
    fs::path outside = dir / "world/outside";

    Hostile() {
        fs::create_directories(target);
        test::write_file(outside / "secret", "outside\n");
    }
    Artifact seal(const std::vector<TarEntry>& tar, const json& entries) {
        return test::seal_files_backup(backups, test::craft_tar(tar), entries);
    }
    Artifact seal(const std::vector<TarEntry>& tar) { return seal(tar, test::describe_all(tar)); }
    VerifyOutcome verify(const Artifact& a, bool allow_special = false) const {
        PosixStorage storage(backups);
        RepositoryReader repo(storage);
        files::FilesComponent c(std::nullopt, {.allow_special = allow_special});
        return verify_artifact(repo, a, c);
    }
    RestoreContext options() const { return RestoreContext{.backup_id = "b1", .target_root = target}; }
    RestoreReport restore(const Artifact& a, const RestoreContext& o, bool allow_special = false) const {
        PosixStorage storage(backups);
        RepositoryReader repo(storage);
        files::FilesComponent c(std::nullopt, {.allow_special = allow_special});
        auto content = open_verified_content(repo, a);
        return c.restore(a, *content, o);
    }
};

TarEntry file(std::string name, std::string data, unsigned mode = 0644) {
    return {.name = std::move(name), .type = 'f', .mode = mode, .data = std::move(data)};
}
TarEntry dir(std::string name, unsigned mode = 0755) {
    return {.name = std::move(name), .type = 'd', .mode = mode};
}
TarEntry slink(std::string name, std::string to) {
    return {.name = std::move(name), .type = 'l', .mode = 0777, .link = std::move(to)};
}
TarEntry hardlink(std::string name, std::string to) {
    return {.name = std::move(name), .type = 'h', .mode = 0644, .link = std::move(to)};
}
TarEntry node(std::string name, char type, std::uint64_t rdev = 0) {
    return {.name = std::move(name), .type = type, .mode = 0666, .rdev = rdev};
}

struct VerifyCase {
    std::string what;
    std::vector<TarEntry> tar;
    json manifest;
    std::string fragment;  // what the outcome's detail must say
};

}  // namespace

TEST_CASE("files verify: each tar entry must have the type, mode, size and link target the manifest declares",
          "[files][hostile]") {
    const TarEntry a = file("etc/a", "alpha\n");
    const TarEntry out = slink("etc/app", "/outside");
    auto with = [](json j, const std::string& key, json value) {
        j[key] = std::move(value);
        return j;
    };
    const std::vector<VerifyCase> cases = {
        {"manifest says dir, tar has a symlink",
         {out},
         {test::describe(out, 'd')},
         "type differs from the manifest: /etc/app (manifest: dir, archive: symlink)"},
        {"manifest says file, tar has a symlink",
         {out},
         {test::describe(out, 'f')},
         "type differs from the manifest: /etc/app (manifest: file, archive: symlink)"},
        {"a character device declared as an empty file",
         {node("etc/null", 'c', makedev(1, 3))},
         {test::describe(node("etc/null", 'c'), 'f')},
         "(manifest: file, archive: char)"},
        {"a block device declared as an empty file",
         {node("etc/sda", 'b', makedev(8, 0))},
         {test::describe(node("etc/sda", 'b'), 'f')},
         "(manifest: file, archive: block)"},
        {"a FIFO declared as an empty file",
         {node("etc/fifo", 'p')},
         {test::describe(node("etc/fifo", 'p'), 'f')},
         "(manifest: file, archive: fifo)"},
        {"a hardlink declared as a file",
         {a, hardlink("etc/b", "etc/a")},
         {test::describe(a), test::describe(hardlink("etc/b", "etc/a"), 'f')},
         "type differs from the manifest: /etc/b (manifest: file, archive: hardlink)"},
        {"a hardlink to a later entry",
         {hardlink("etc/b", "etc/a"), a},
         {test::describe(hardlink("etc/b", "etc/a")), test::describe(a)},
         "hardlink target is not an earlier file of the archive: /etc/b -> /etc/a"},
        {"a hardlink to nothing in the archive",
         {hardlink("etc/b", "etc/passwd")},
         {test::describe(hardlink("etc/b", "etc/passwd"))},
         "hardlink target is not an earlier file of the archive: /etc/b -> /etc/passwd"},
        {"a hardlink to a directory",
         {dir("etc"), hardlink("etc/b", "etc")},
         {test::describe(dir("etc")), test::describe(hardlink("etc/b", "etc"))},
         "hardlink target is not an earlier file of the archive: /etc/b -> /etc"},
        {"a mode the manifest does not declare",
         {file("etc/x", "x", 04755)},
         {with(test::describe(file("etc/x", "x", 04755)), "mode", 0644)},
         "mode differs from the manifest: /etc/x (manifest: 0644, archive: 4755)"},
        {"a size the manifest does not declare",
         {a},
         {with(test::describe(a), "size", 7)},
         "size differs from the manifest: /etc/a (manifest: 7, archive: 6)"},
        {"a symlink target the manifest does not declare",
         {out},
         {with(test::describe(out), "target", "/etc/x")},
         "link target differs from the manifest: /etc/app"},
        {"a device number the manifest does not declare",
         {node("dev/null", 'c', makedev(1, 3))},
         {with(test::describe(node("dev/null", 'c', makedev(1, 3))), "rdev", makedev(8, 0))},
         "device number differs from the manifest: /dev/null"},
        {"an entry the manifest does not list",
         {a, file("etc/extra", "")},
         {test::describe(a)},
         "entry not in the manifest: etc/extra"},
        {"an entry twice in the archive",
         {a, a},
         {test::describe(a)},
         "appears twice in the archive: /etc/a"},
        {"entries out of the manifest's order",
         {dir("etc"), a},
         {test::describe(a), test::describe(dir("etc"))},
         "archive entry out of the manifest's order: /etc"},
        {"a path listed twice in the manifest",
         {a},
         {test::describe(a), test::describe(a)},
         "listed twice in the manifest: /etc/a"},
        {"a declared FIFO without --allow-special",
         {node("run/x.fifo", 'p')},
         {test::describe(node("run/x.fifo", 'p'))},
         "special file (fifo) in the backup: /run/x.fifo: pass --allow-special to restore it"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        Hostile h;
        Artifact art = h.seal(c.tar, c.manifest);
        VerifyOutcome v = h.verify(art);
        CHECK(v.status == VerifyStatus::FormatInvalid);
        CHECK_THAT(v.detail, Catch::Contains(c.fragment));
    }
}

TEST_CASE("files verify: a sealed, truthful archive of every declared type verifies", "[files][hostile]") {
    Hostile h;
    std::vector<TarEntry> tar = {dir("etc"), file("etc/a", "alpha\n"), hardlink("etc/b", "etc/a"),
                                 slink("etc/abs", "/lib/systemd/system/x.service"), node("etc/fifo", 'p')};
    Artifact art = h.seal(tar);
    CHECK(h.verify(art).status == VerifyStatus::FormatInvalid);  // the FIFO needs --allow-special
    VerifyOutcome v = h.verify(art, true);
    INFO(v.detail);
    CHECK(v.ok());
    RestoreReport r = h.restore(art, h.options(), /*allow_special=*/true);
    CHECK(r.problems.empty());
    struct stat sa {
    }, sb{}, sf{};
    REQUIRE(::lstat((h.target / "etc/a").c_str(), &sa) == 0);
    REQUIRE(::lstat((h.target / "etc/b").c_str(), &sb) == 0);
    CHECK(sa.st_ino == sb.st_ino);
    REQUIRE(::lstat((h.target / "etc/fifo").c_str(), &sf) == 0);
    CHECK(S_ISFIFO(sf.st_mode));
    CHECK((sf.st_mode & 07777) == 0666);
    CHECK(fs::read_symlink(h.target / "etc/abs") == "/lib/systemd/system/x.service");
    SECTION("without --allow-special the plan refuses the FIFO as well") {
        RestorePlan plan = files::FilesComponent().plan_restore(art, h.options());
        REQUIRE(plan.refusals.size() == 1);
        CHECK_THAT(plan.refusals[0], Catch::Contains("special file (fifo) in the backup: /etc/fifo"));
    }
}

TEST_CASE("files restore: symlinks are restored verbatim and never followed", "[files][hostile]") {
    Hostile h;
    std::vector<TarEntry> tar = {dir("d"), slink("d/l", ".."), slink("d/l2", "l/../.."),
                                 slink("d/abs", (h.outside / "secret").string()), file("d/f", "in\n")};
    Artifact art = h.seal(tar);
    REQUIRE(h.verify(art).ok());
    std::string outside_before = test::tree_hash(h.outside);
    RestorePlan plan = files::FilesComponent().plan_restore(art, h.options());
    CHECK(plan.refusals.empty());
    RestoreReport r = h.restore(art, h.options());
    CHECK(r.problems.empty());
    CHECK(fs::read_symlink(h.target / "d/l") == "..");
    CHECK(fs::read_symlink(h.target / "d/l2") == "l/../..");
    CHECK(fs::read_symlink(h.target / "d/abs") == h.outside / "secret");
    CHECK(test::read_file(h.target / "d/f") == "in\n");
    CHECK(test::tree_hash(h.outside) == outside_before);
    SECTION("a second restore over changed links moves the links aside, never what they point at") {
        fs::remove(h.target / "d/abs");
        fs::create_symlink(h.outside, h.target / "d/abs");
        RestoreReport again = h.restore(art, h.options());
        CHECK(again.problems.empty());
        CHECK(fs::read_symlink(h.target / "d/abs") == h.outside / "secret");
        CHECK(fs::read_symlink(h.target / ".nightjar-replaced-b1/d/abs") == h.outside);
        CHECK(test::tree_hash(h.outside) == outside_before);
    }
}

TEST_CASE(
    "files plan: entries beneath a link of the backup or of the target are refused before anything is "
    "written",
    "[files][hostile]") {
    for (bool openat2 : {true, false}) {
        INFO("openat2 " << openat2);
        files::set_openat2_allowed(openat2);
        Hostile h;
        fs::create_directories(h.target / "etc");
        test::write_file(h.target / "etc/keep", "live\n");
        SECTION("d/l -> .. with an entry beneath it") {
            Artifact art = h.seal({dir("d"), slink("d/l", ".."), file("d/l/evil", "x")});
            RestorePlan plan = files::FilesComponent().plan_restore(art, h.options());
            REQUIRE(plan.refusals.size() == 1);
            CHECK(plan.refusals[0] ==
                  "entry beneath a symlink /d/l of the backup (never followed): /d/l/evil");
        }
        SECTION("d/l2 -> l/../.. with an entry beneath it") {
            Artifact art =
                h.seal({dir("d"), slink("d/l", ".."), slink("d/l2", "l/../.."), file("d/l2/evil", "x")});
            RestorePlan plan = files::FilesComponent().plan_restore(art, h.options());
            REQUIRE(plan.refusals.size() == 1);
            CHECK_THAT(plan.refusals[0], Catch::Contains("beneath a symlink /d/l2"));
        }
        SECTION("a target whose directory is a symlink out of it") {
            fs::create_directory_symlink("../outside", h.target / "sub");
            Artifact art = h.seal({file("sub/secret", "replaced?\n")});
            RestorePlan plan = files::FilesComponent().plan_restore(art, h.options());
            REQUIRE(plan.refusals.size() == 1);
            CHECK(plan.refusals[0] == "a parent is a symlink in the target (never followed): " +
                                          (h.target / "sub").string() + " (for /sub/secret)");
            REQUIRE_THROWS_MATCHES(h.restore(art, h.options()), Error,
                                   IsError(Kind::RestoreFailed, "restore refused, nothing was written"));
            CHECK(test::read_file(h.outside / "secret") == "outside\n");
            CHECK_FALSE(fs::exists(h.target / ".nightjar-replaced-b1"));
        }
        SECTION("a directory of the backup that is a symlink in the target") {
            fs::create_directory_symlink("../outside", h.target / "sub");
            Artifact art = h.seal({dir("sub")});
            RestorePlan plan = files::FilesComponent().plan_restore(art, h.options());
            REQUIRE(plan.refusals.size() == 1);
            CHECK_THAT(plan.refusals[0],
                       Catch::Contains("the backup has a directory where the target has a symlink"));
        }
        SECTION("a parent that is a file in the target") {
            test::write_file(h.target / "plain", "file\n");
            Artifact art = h.seal({file("plain/x", "x")});
            RestorePlan plan = files::FilesComponent().plan_restore(art, h.options());
            REQUIRE(plan.refusals.size() == 1);
            CHECK_THAT(plan.refusals[0], Catch::Contains("a parent is not a directory in the target"));
        }
        SECTION("a symlinked folder for the replaced files") {
            fs::create_directory_symlink("../outside", h.target / ".nightjar-replaced-b1");
            Artifact art = h.seal({dir("etc"), file("etc/keep", "from the backup\n")});
            RestorePlan plan = files::FilesComponent().plan_restore(art, h.options());
            REQUIRE(plan.refusals.size() == 1);
            CHECK_THAT(plan.refusals[0], Catch::Contains("cannot keep the replaced file aside") &&
                                             Catch::Contains("is a symlink in the target"));
        }
        SECTION("a directory that replaces a file: what is below it is new") {
            test::write_file(h.target / "plain", "file\n");
            Artifact art = h.seal({dir("plain"), file("plain/x", "x")});
            RestorePlan plan = files::FilesComponent().plan_restore(art, h.options());
            CHECK(plan.refusals.empty());
            RestoreReport r = h.restore(art, h.options());
            CHECK(r.problems.empty());
            CHECK(test::read_file(h.target / "plain/x") == "x");
            CHECK(test::read_file(h.target / ".nightjar-replaced-b1/plain") == "file\n");
        }
        CHECK(test::read_file(h.target / "etc/keep") == "live\n");
    }
    files::set_openat2_allowed(true);
}

TEST_CASE("safe_fs: lookups go component by component and never through a link", "[files][hostile]") {
    for (bool openat2 : {true, false}) {
        INFO("openat2 " << openat2);
        files::set_openat2_allowed(openat2);
        test::TempDir t;
        fs::create_directories(t / "a/b");
        fs::create_directory_symlink("a", t / "l");
        test::write_file(t / "f", "x");
        auto root = files::SafeRoot::open(t.path());
        REQUIRE(root);
        auto look = [&](const std::string& rel, bool create = false) {
            auto parts = *files::split_relative(rel);
            return root->lookup_dir(parts, parts.size(), create);
        };
        CHECK(look("a/b").blocked == files::Blocked::None);
        auto l = look("l/b");
        CHECK(l.blocked == files::Blocked::Symlink);
        CHECK(l.at == "l");
        auto f = look("f/x");
        CHECK(f.blocked == files::Blocked::NotDirectory);
        CHECK(f.at == "f");
        auto m = look("a/missing/x");
        CHECK(m.blocked == files::Blocked::Missing);
        CHECK(m.at == "a/missing");
        CHECK(look("a/new/deeper", true).blocked == files::Blocked::None);
        CHECK(fs::is_directory(t / "a/new/deeper"));
        CHECK(look("l/made", true).blocked == files::Blocked::Symlink);
        CHECK_FALSE(fs::exists(t / "a/made"));
    }
    files::set_openat2_allowed(true);
    CHECK_FALSE(files::split_relative(""));
    CHECK_FALSE(files::split_relative("/etc"));
    CHECK_FALSE(files::split_relative("etc//x"));
    CHECK_FALSE(files::split_relative("./etc"));
    CHECK_FALSE(files::split_relative("a/../b"));
    CHECK_FALSE(files::split_relative("a/"));
    CHECK_FALSE(files::split_relative(std::string_view("etc\0/x", 6)));
    CHECK(*files::split_relative("etc/x") == std::vector<std::string>{"etc", "x"});
}

TEST_CASE("files manifest: modes are written as octal strings too and older manifests load",
          "[files][hostile]") {
    Hostile h;
    std::vector<TarEntry> tar = {dir("etc", 0750), file("etc/a", "alpha\n", 0640)};
    json entries = test::describe_all(tar);
    SECTION("mode only (an older manifest)") {
        CHECK(h.verify(h.seal(tar, entries)).ok());
    }
    SECTION("mode_octal only") {
        for (auto& e : entries) {
            e["mode_octal"] = e["mode"] == 0750 ? "0750" : "0640";
            e.erase("mode");
        }
        CHECK(h.verify(h.seal(tar, entries)).ok());
    }
    SECTION("both, disagreeing") {
        entries[1]["mode_octal"] = "0644";
        Artifact art = h.seal(tar, entries);
        REQUIRE_THROWS_MATCHES(files::FilesComponent().plan_restore(art, h.options()), Error,
                               IsError(Kind::Verification, "/source/entries/1/mode_octal"));
        CHECK_THAT(h.verify(art).detail, Catch::Contains("/source/entries/1/mode_octal"));
    }
    SECTION("malformed") {
        entries[1]["mode_octal"] = "0x1ff";
        Artifact art = h.seal(tar, entries);
        REQUIRE_THROWS_MATCHES(files::FilesComponent().plan_restore(art, h.options()), Error,
                               IsError(Kind::Verification, "expected an octal mode"));
    }
}

TEST_CASE("files dump: the manifest records each mode as an octal string beside the number", "[files]") {
    test::TempDir d;
    test::write_file(d / "src/a.conf", "a\n");
    fs::permissions(d / "src/a.conf", fs::perms(0640));
    fs::permissions(d / "src", fs::perms(0750));
    PosixStorage storage(d / "repo");
    RepositoryWriter repo(storage);
    auto lock = repo.lock();
    Staging staging = repo.begin("20240101_000000", {});
    files::FilesComponent c(
        files::FilesConfig{.paths = {(d / "src").string()}, .exclude = {}, .on_unreadable = "fail"});
    DumpContext ctx;
    DumpResult r = c.dump(ctx, staging);
    REQUIRE(r.artifacts.size() == 1);
    const json& entries = r.artifacts[0].source["entries"];
    REQUIRE(entries.size() == 2);
    CHECK(entries[0]["mode"] == 0750);
    CHECK(entries[0]["mode_octal"] == "0750");
    CHECK(entries[1]["mode"] == 0640);
    CHECK(entries[1]["mode_octal"] == "0640");
}

TEST_CASE("files verify: a bounded mutation loop over a sealed archive never crashes or hangs",
          "[files][hostile][fuzz]") {
    // A valid archive of every kind of entry the backup makes; each mutation is verified directly (the
    // artifact digests would reject it before the tar walk, which is what this loop exercises).
    std::vector<TarEntry> tar = {dir("etc"),
                                 file("etc/a.conf", "key = value\n"),
                                 file("etc/big", std::string(5000, 'b')),
                                 slink("etc/link", "a.conf"),
                                 dir("etc/sub", 0700),
                                 file("etc/sub/c", "c\n", 0600)};
    const std::string valid = test::craft_tar(tar);
    Artifact art;
    art.path = "fuzz/files.tar.zst";
    art.source = {{"entries", test::describe_all(tar)}};
    files::FilesComponent component;
    {
        test::StringReader r(valid);
        REQUIRE(component.verify(art, r).ok());
    }
    std::mt19937 rng(20261201);
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % std::max<std::size_t>(n, 1)); };
    const int kCases = 3000;
    int ok = 0, invalid = 0, thrown = 0, crashed = 0;
    for (int i = 0; i < kCases; ++i) {
        std::string m = valid;
        switch (i % 7) {
            case 0:  // flip bytes
                for (int k = 0; k < 1 + static_cast<int>(pick(4)); ++k)
                    m[pick(m.size())] ^= static_cast<char>(1 + pick(255));
                break;
            case 1:  // truncate
                m.resize(pick(m.size()));
                break;
            case 2: {  // a header field (mode, uid, size, mtime, checksum, typeflag, linkname) gets random
                       // digits
                static const std::size_t fields[] = {100, 108, 124, 136, 148, 156, 157};
                std::size_t block = 512 * pick(m.size() / 512);
                std::size_t at = block + fields[pick(7)];
                for (std::size_t k = 0; k < 1 + pick(12) && at + k < m.size(); ++k)
                    m[at + k] = "0123456789 7\0xLl5"[pick(17)];
                break;
            }
            case 3: {  // insert random bytes
                std::string junk(1 + pick(700), '\0');
                for (auto& c : junk) c = static_cast<char>(rng());
                m.insert(pick(m.size()), junk);
                break;
            }
            case 4: {  // duplicate or drop a 512-byte block
                std::size_t block = 512 * pick(m.size() / 512);
                if (rng() % 2)
                    m.insert(block, m.substr(block, 512));
                else
                    m.erase(block, 512);
                break;
            }
            case 5: {  // a pax record with a huge or negative size / path
                std::size_t at = m.find("path=");
                if (at == std::string::npos) at = pick(m.size());
                std::string rec = rng() % 2 ? "99999999999999999999" : "-1";
                m.replace(std::min(at, m.size()),
                          std::min<std::size_t>(rec.size(), m.size() - std::min(at, m.size())), rec);
                break;
            }
            default:  // random garbage of the same size
                for (auto& c : m) c = static_cast<char>(rng());
                break;
        }
        try {
            test::StringReader r(m);
            VerifyOutcome v = component.verify(art, r);
            (v.ok() ? ok : invalid)++;
        } catch (const Error&) {
            ++thrown;
        } catch (...) {
            ++crashed;
        }
    }
    // Reaching this line at all means no case crashed the process or hung.
    WARN("files verify mutation loop: " << kCases << " cases, " << ok << " still valid, " << invalid
                                        << " invalid outcomes, " << thrown << " nightjar::Error, " << crashed
                                        << " other exceptions");
    CHECK(crashed == 0);
    CHECK(ok + invalid + thrown == kCases);
}

TEST_CASE("files verify and plan: a bounded mutation loop over the manifest's entries never crashes",
          "[files][hostile][fuzz]") {
    Hostile h;
    std::vector<TarEntry> tar = {dir("etc"), file("etc/a.conf", "key = value\n"), slink("etc/link", "a.conf"),
                                 hardlink("etc/hard", "etc/a.conf")};
    const std::string archive = test::craft_tar(tar);
    const json valid = test::describe_all(tar);
    const std::vector<std::string> keys = {"path",   "type", "mode",  "mode_octal", "size",     "target",
                                           "sha256", "rdev", "mtime", "uid",        "path_hex", "target_hex"};
    const std::vector<json> values = {"",
                                      "..",
                                      "/",
                                      "/../etc/x",
                                      "etc//a.conf",
                                      "/etc/a.conf",
                                      "/etc",
                                      "zz",
                                      "0999",
                                      "07777",
                                      "file",
                                      "dir",
                                      "symlink",
                                      "hardlink",
                                      "fifo",
                                      "char",
                                      1e300,
                                      -1,
                                      0,
                                      4294967296LL,
                                      json::number_unsigned_t(18446744073709551615ULL),
                                      nullptr,
                                      json::array(),
                                      json::object(),
                                      true,
                                      std::string(1, '\0'),
                                      "\xff\xfe"};
    std::mt19937 rng(4242);
    files::FilesComponent component(std::nullopt, {.allow_special = true});
    const int kCases = 1500;
    int ok = 0, refused = 0, thrown = 0, crashed = 0;
    for (int i = 0; i < kCases; ++i) {
        json entries = valid;
        for (int k = 0; k < 1 + static_cast<int>(rng() % 3); ++k) {
            json& e = entries[rng() % entries.size()];
            const std::string& key = keys[rng() % keys.size()];
            if (rng() % 5 == 0)
                e.erase(key);
            else
                e[key] = values[rng() % values.size()];
        }
        if (rng() % 10 == 0) entries.push_back(entries[rng() % entries.size()]);
        Artifact art;
        art.path = "fuzz/files.tar.zst";
        art.source = {{"entries", entries}};
        try {
            test::StringReader r(archive);
            VerifyOutcome v = component.verify(art, r);
            RestorePlan plan = component.plan_restore(art, h.options());
            (v.ok() && plan.refusals.empty() ? ok : refused)++;
        } catch (const Error&) {
            ++thrown;
        } catch (...) {
            ++crashed;
        }
    }
    WARN("files manifest mutation loop: " << kCases << " cases, " << ok << " accepted, " << refused
                                          << " refused, " << thrown << " nightjar::Error, " << crashed
                                          << " other exceptions");
    CHECK(crashed == 0);
    CHECK(fs::is_empty(h.target));  // a plan writes nothing
}

TEST_CASE("files restore: a live link or hardlink in the target is replaced, never written through",
          "[files][hostile]") {
    Hostile h;
    Artifact art = h.seal({dir("etc"), file("etc/keep", "from the backup\n")});
    REQUIRE(h.verify(art).ok());
    SECTION("a symlink to a file outside") {
        fs::create_directories(h.target / "etc");
        fs::create_symlink(h.outside / "secret", h.target / "etc/keep");
    }
    SECTION("a hardlink to a file outside") {
        fs::create_directories(h.target / "etc");
        fs::create_hard_link(h.outside / "secret", h.target / "etc/keep");
    }
    const std::string outside_before = test::tree_hash(h.outside);
    RestoreReport r = h.restore(art, h.options());
    CHECK(r.problems.empty());
    CHECK(test::read_file(h.target / "etc/keep") == "from the backup\n");
    CHECK(test::read_file(h.outside / "secret") == "outside\n");
    CHECK(test::read_file(h.target / ".nightjar-replaced-b1/etc/keep") == "outside\n");
    CHECK(test::tree_hash(h.outside) == outside_before);
}
