// Hostile files backups through the real binaries. Every case is a sealed backup (all digests correct) that
// the restore must refuse; the dry run must refuse it the same way, and the real restore must write nothing
// at all: the target and an "outside" sibling are hashed before and after, moved-aside folders included.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <catch2/catch.hpp>
#include <functional>

#include "support/commands.hpp"
#include "support/hostile_files.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using nlohmann::json;
using test::TarEntry;
namespace fs = std::filesystem;

namespace {

struct World {
    test::TempDir dir;
    fs::path backups = dir / "backups";
    fs::path world = dir / "world";
    fs::path target = world / "target";
    fs::path outside = world / "outside";
    World() {
        test::write_file(target / "etc/keep", "live\n");
        test::write_file(outside / "secret", "outside\n");
    }
    std::vector<std::string> args(bool dry, bool allow_special = false) const {
        std::vector<std::string> a{"latest", "--backup-dir", backups.string(), "--target-dir",
                                   target.string()};
        if (dry) a.push_back("--dry-run");
        if (allow_special) a.push_back("--allow-special");
        return a;
    }
};

TarEntry file(std::string name, std::string data) {
    return {.name = std::move(name), .type = 'f', .mode = 0644, .data = std::move(data)};
}
TarEntry dir(std::string name) {
    return {.name = std::move(name), .type = 'd', .mode = 0755};
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

// The text from `fragment` to the end of its line, in the first line that has it ("" when none does).
std::string from_fragment(const std::string& text, const std::string& fragment) {
    std::size_t at = text.find(fragment);
    if (at == std::string::npos) return "";
    return text.substr(at, text.find('\n', at) - at);
}

struct Refusal {
    std::string what;
    std::function<void(World&)> prepare;
    std::vector<TarEntry> tar;
    std::function<json(World&)> manifest;  // empty: the truthful description of `tar`
    int code;                              // 4 verification, 7 refused by the plan
    std::string fragment;                  // the message both runs must give
};

}  // namespace

TEST_CASE(
    "files: every hostile backup is refused by the dry run and the restore alike, and nothing is written",
    "[integration][files][hostile]") {
    auto nothing = [](World&) {};
    const TarEntry escape = slink("etc", "/nonexistent-outside");
    const std::vector<Refusal> cases = {
        {"manifest says dir, tar has a symlink out of the target, with an entry beneath",
         nothing,
         {slink("etc", "../outside"), file("etc/secret", "pwned\n")},
         [](World&) {
             return json{test::describe(slink("etc", "../outside"), 'd'),
                         test::describe(file("etc/secret", "pwned\n"))};
         },
         4,
         "type differs from the manifest: /etc (manifest: dir, archive: symlink)"},
        {"manifest says file, tar has a symlink",
         nothing,
         {escape},
         [&](World&) { return json{test::describe(escape, 'f')}; },
         4,
         "type differs from the manifest: /etc (manifest: file, archive: symlink)"},
        {"a link chain d/l -> .. with an entry beneath it",
         nothing,
         {dir("d"), slink("d/l", ".."), file("d/l/escaped", "x\n")},
         {},
         7,
         "entry beneath a symlink /d/l of the backup (never followed): /d/l/escaped"},
        {"a link chain d/l2 -> l/../.. with an entry beneath it",
         nothing,
         {dir("d"), slink("d/l", ".."), slink("d/l2", "l/../.."), file("d/l2/outside/secret", "x\n")},
         {},
         7,
         "entry beneath a symlink /d/l2 of the backup (never followed): /d/l2/outside/secret"},
        {"a target whose sub -> ../outside, the backup writing sub/secret",
         [](World& w) { fs::create_directory_symlink("../outside", w.target / "sub"); },
         {file("sub/secret", "pwned\n")},
         {},
         7,
         "a parent is a symlink in the target (never followed): "},
        {"a target whose sub -> ../outside, the backup declaring sub a directory",
         [](World& w) { fs::create_directory_symlink("../outside", w.target / "sub"); },
         {dir("sub"), file("sub/secret", "pwned\n")},
         {},
         7,
         "the backup has a directory where the target has a symlink (never followed): "},
        {"a live file whose parent is a symlink in the target (Debian's /lib -> usr/lib)",
         [](World& w) {
             test::write_file(w.target / "usr/lib/x.conf", "live\n");
             fs::create_directory_symlink("usr/lib", w.target / "lib");
         },
         {dir("usr"), file("lib/x.conf", "from the backup\n")},
         {},
         7,
         "a parent is a symlink in the target (never followed): "},
        {"a character device declared as an empty file",
         nothing,
         {file("etc/a", "a\n"), node("etc/null", 'c', makedev(1, 3))},
         [](World&) {
             return json{test::describe(file("etc/a", "a\n")), test::describe(node("etc/null", 'c'), 'f')};
         },
         4,
         "type differs from the manifest: /etc/null (manifest: file, archive: char)"},
        {"a FIFO declared as an empty file",
         nothing,
         {file("etc/a", "a\n"), node("etc/fifo", 'p')},
         [](World&) {
             return json{test::describe(file("etc/a", "a\n")), test::describe(node("etc/fifo", 'p'), 'f')};
         },
         4,
         "type differs from the manifest: /etc/fifo (manifest: file, archive: fifo)"},
        {"a declared FIFO without --allow-special",
         nothing,
         {file("etc/a", "a\n"), node("etc/fifo", 'p')},
         {},
         4,
         "special file (fifo) in the backup: /etc/fifo: pass --allow-special to restore it"},
        {"a hardlink declared as a file, after a file that would be written",
         nothing,
         {file("etc/a", "a\n"), hardlink("etc/b", "etc/a")},
         [](World&) {
             return json{test::describe(file("etc/a", "a\n")),
                         test::describe(hardlink("etc/b", "etc/a"), 'f')};
         },
         4,
         "type differs from the manifest: /etc/b (manifest: file, archive: hardlink)"},
        {"a declared hardlink to a file that is not in the archive",
         nothing,
         {file("etc/a", "a\n"), hardlink("etc/b", "etc/shadow")},
         {},
         4,
         "hardlink target is not an earlier file of the archive: /etc/b -> /etc/shadow"},
        {"an entry with .. in its path",
         nothing,
         {file("../outside/secret", "pwned\n")},
         {},
         7,
         "unsafe path in backup (absolute or with ..): /../outside/secret"},
        {"the folder for replaced files is a symlink out of the target",
         [](World& w) {
             fs::create_directory_symlink("../outside", w.target / ".nightjar-replaced-20240101_000000");
         },
         {dir("etc"), file("etc/keep", "from the backup\n")},
         {},
         7,
         "cannot keep the replaced file aside: "},
        {"an entry the manifest does not list",
         nothing,
         {file("etc/a", "a\n"), file("etc/extra", "x\n")},
         [](World&) { return json{test::describe(file("etc/a", "a\n"))}; },
         4,
         "entry not in the manifest: etc/extra"},
        {"a name twice in the archive, first a directory then a symlink out",
         nothing,
         {dir("d"), slink("d", "../outside"), file("d/secret", "x\n")},
         [](World&) {
             return json{test::describe(dir("d")), test::describe(file("d/secret", "x\n"))};
         },
         4,
         "appears twice in the archive: /d"},
    };
    int tried = 0;
    for (const auto& c : cases) {
        INFO(c.what);
        World w;
        c.prepare(w);
        json entries = c.manifest ? c.manifest(w) : test::describe_all(c.tar);
        test::seal_files_backup(w.backups, test::craft_tar(c.tar), entries);
        const std::string before = test::tree_hash(w.world);
        auto dry = test::restore(w.args(true));
        auto real = test::restore(w.args(false));
        INFO("dry run:\n" << dry.err << "restore:\n" << real.err);
        CHECK(dry.code == c.code);
        CHECK(real.code == c.code);
        std::string said = from_fragment(dry.err, c.fragment);
        CHECK_FALSE(said.empty());
        CHECK(said == from_fragment(real.err, c.fragment));
        CHECK(test::tree_hash(w.world) == before);
        CHECK(test::read_file(w.outside / "secret") == "outside\n");
        ++tried;
    }
    CHECK(tried == static_cast<int>(cases.size()));
}

TEST_CASE("files: declared FIFOs and devices restore with --allow-special", "[integration][files][hostile]") {
    World w;
    std::vector<TarEntry> tar = {dir("dev"), node("dev/fifo", 'p'), node("dev/null", 'c', makedev(1, 3))};
    test::seal_files_backup(w.backups, test::craft_tar(tar), test::describe_all(tar));
    auto plain = test::restore(w.args(true));
    CHECK(plain.code == 4);
    auto dry = test::restore(w.args(true, true));
    INFO(dry.err);
    CHECK(dry.code == 0);
    auto real = test::restore(w.args(false, true));
    INFO(real.err);
    REQUIRE(real.code == 0);
    struct stat st {};
    REQUIRE(::lstat((w.target / "dev/fifo").c_str(), &st) == 0);
    CHECK(S_ISFIFO(st.st_mode));
    REQUIRE(::lstat((w.target / "dev/null").c_str(), &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
    CHECK(st.st_rdev == makedev(1, 3));
}

TEST_CASE("files: a copy of this machine's /etc restores under --target-dir, absolute links included",
          "[integration][files]") {
    test::TempDir d;
    fs::path copy = d / "etc";
    test::run({"cp", "-a", "/etc", copy.string()});  // what is readable; errors leave those files out
    std::size_t absolute_links = 0, entries = 0;
    for (auto it = fs::recursive_directory_iterator(copy); it != fs::recursive_directory_iterator(); ++it) {
        ++entries;
        if (it->is_symlink() && fs::read_symlink(it->path()).is_absolute()) ++absolute_links;
    }
    INFO(entries << " entries, " << absolute_links << " absolute symlinks");
    REQUIRE(entries > 50);
    REQUIRE(absolute_links > 0);
    fs::path backups = d / "backups";
    test::write_file(d / "nightjar.json",
                     json{{"backup_dir", backups.string()},
                          {"files", {{"paths", {copy.string()}}, {"on_unreadable", "warn"}}}}
                         .dump());
    auto b = test::backup({"--config", (d / "nightjar.json").string()});
    INFO(b.err);
    REQUIRE(b.code == 0);
    fs::path out = d / "restored";
    auto dry = test::restore(
        {"latest", "--backup-dir", backups.string(), "--target-dir", out.string(), "--dry-run"});
    INFO(dry.err);
    CHECK(dry.code == 0);
    auto r = test::restore({"latest", "--backup-dir", backups.string(), "--target-dir", out.string()});
    INFO(r.err);
    REQUIRE(r.code == 0);
    fs::path restored = out / copy.relative_path();
    std::size_t compared = 0;
    for (auto it = fs::recursive_directory_iterator(copy); it != fs::recursive_directory_iterator(); ++it) {
        fs::path rel = it->path().lexically_relative(copy);
        struct stat sa {
        }, sb{};
        REQUIRE(::lstat(it->path().c_str(), &sa) == 0);
        if (!S_ISREG(sa.st_mode) && !S_ISDIR(sa.st_mode) && !S_ISLNK(sa.st_mode))
            continue;  // not configuration
        INFO("restored: " << (restored / rel));
        REQUIRE(::lstat((restored / rel).c_str(), &sb) == 0);
        CHECK(sa.st_mode == sb.st_mode);
        CHECK(sa.st_uid == sb.st_uid);
        CHECK(sa.st_gid == sb.st_gid);
        if (!S_ISLNK(sa.st_mode)) CHECK(sa.st_mtim.tv_sec == sb.st_mtim.tv_sec);
        if (S_ISREG(sa.st_mode)) CHECK(test::read_file(it->path()) == test::read_file(restored / rel));
        if (S_ISLNK(sa.st_mode)) CHECK(fs::read_symlink(it->path()) == fs::read_symlink(restored / rel));
        ++compared;
    }
    CHECK(compared > 50);
    auto again =
        test::restore({"latest", "--backup-dir", backups.string(), "--target-dir", out.string(), "-n"});
    CHECK(again.code == 0);
    CHECK_THAT(again.err, Catch::Contains(" 0 new, 0 changed"));
}
