#include "conformance/storage_conformance.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "nightjar/core/clock.hpp"
#include "nightjar/repo/prune.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/verified_record.hpp"
#include "support/faulty_storage.hpp"
#include "support/manifests.hpp"
#include "support/matchers.hpp"

namespace nightjar::test {
namespace fs = std::filesystem;

namespace {

std::string read_all(io::Reader& r) {
    std::string out;
    std::vector<std::byte> buf(4096);
    while (std::size_t n = r.read(buf)) out.append(reinterpret_cast<const char*>(buf.data()), n);
    return out;
}

std::string read_file(const Storage& s, const fs::path& rel, ReadRange range = {}) {
    auto r = s.open_read(rel, range);
    return read_all(*r);
}

void put(Storage& s, const fs::path& rel, const std::string& content, WriteOptions options = {}) {
    auto w = s.open_write(rel, options);
    w->write(io::as_bytes(content));
    w->finish();
}

// A create-only write of `content`: true when it was created, false when the name was taken (StorageExists,
// at open or at finish, whichever the backend can tell).
bool create(Storage& s, const fs::path& rel, const std::string& content, bool atomic = true) {
    try {
        put(s, rel, content, {.atomic = atomic, .create_only = true});
        return true;
    } catch (const StorageExists& e) {
        CHECK(e.kind() == Kind::Storage);
        CHECK_THAT(e.what(), Catch::Contains(rel.filename().string()));
        return false;
    }
}

std::vector<std::string> names(std::vector<Entry> entries) {
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back(e.name + (e.is_dir ? "/" : ""));
    std::sort(out.begin(), out.end());
    return out;
}

// 0, 1, ..., 255, 0, 1, ...
std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i & 0xff);
    return s;
}

// Every name in `dir`, what a crash or a run may leave there.
std::vector<std::string> top_level(const Storage& s) {
    return names(s.list("."));
}

}  // namespace

void storage_conformance(const StorageFactory& make) {
    std::shared_ptr<Storage> holder = make();
    Storage& s = *holder;
    const StorageCapabilities caps = s.capabilities();
    s.make_dir(".");

    SECTION("an atomic write is invisible until finished, then whole") {
        auto w = s.open_write("f");
        w->write(io::as_bytes(std::string_view("hel")));
        w->write(io::as_bytes(std::string_view("lo")));
        CHECK_FALSE(s.stat("f"));
        // Not under its name (POSIX shows a temporary name beside it until the rename).
        for (const auto& e : s.list(".")) CHECK(e.name != "f");
        for (const auto& e : s.list_prefix("f")) CHECK(e.name != "f");
        w->finish();
        auto st = s.stat("f");
        REQUIRE(st);
        CHECK(st->size == 5);
        CHECK_FALSE(st->is_dir);
        CHECK(st->name == "f");
        CHECK(read_file(s, "f") == "hello");
        CHECK(names(s.list(".")) == std::vector<std::string>{"f"});
    }
    SECTION("an abandoned write leaves nothing, and never harms the file it would have replaced") {
        {
            auto w = s.open_write("gone");
            w->write(io::as_bytes(std::string_view("half")));
        }
        CHECK_FALSE(s.stat("gone"));
        put(s, "kept", "old content");
        {
            auto w = s.open_write("kept");
            w->write(io::as_bytes(std::string_view("new, never finished")));
            CHECK(read_file(s, "kept") == "old content");
        }
        CHECK(read_file(s, "kept") == "old content");
        CHECK(names(s.list(".")) == std::vector<std::string>{"kept"});
        CHECK(s.list_prefix("").size() == 1);
    }
    SECTION("a finished write replaces the old content whole, and a reader keeps what it opened") {
        put(s, "f", "first version, long");
        auto before = s.open_read("f");
        put(s, "f", "second");
        CHECK(read_file(s, "f") == "second");
        CHECK(s.stat("f")->size == 6);
        const std::string old = read_all(*before);
        CHECK((old == "first version, long" || old == "second"));  // POSIX: the old inode; S3: either
    }
    SECTION("a non-atomic write, finished, reads back") {
        put(s, "plain", "not atomic", {.atomic = false, .sync = false});
        CHECK(read_file(s, "plain") == "not atomic");
    }
    SECTION("a write of several MiB streams and reads back intact") {
        const std::string big = pattern(3 * 1024 * 1024 + 17);
        auto w = s.open_write("big");
        for (std::size_t off = 0; off < big.size(); off += 65536)
            w->write(io::as_bytes(std::string_view(big).substr(off, 65536)));
        w->finish();
        CHECK(s.stat("big")->size == big.size());
        CHECK(read_file(s, "big") == big);
    }
    SECTION("create-only creates a free name and refuses a taken one, leaving it untouched") {
        for (bool atomic : {true, false}) {
            INFO("atomic " << atomic);
            const std::string name = atomic ? "manifest_a.json" : "manifest_b.json";
            CHECK(create(s, name, "winner", atomic));
            CHECK_FALSE(create(s, name, "loser", atomic));
            CHECK(read_file(s, name) == "winner");
        }
        CHECK(names(s.list(".")) == std::vector<std::string>{"manifest_a.json", "manifest_b.json"});
    }
    SECTION("create-only: of two writers open at once, exactly one wins") {
        auto first = s.open_write("race", {.create_only = true});
        auto second = s.open_write("race", {.create_only = true});
        first->write(io::as_bytes(std::string_view("first")));
        second->write(io::as_bytes(std::string_view("second")));
        first->finish();
        REQUIRE_THROWS_AS(second->finish(), StorageExists);
        second.reset();
        CHECK(read_file(s, "race") == "first");
        CHECK(names(s.list(".")) == std::vector<std::string>{"race"});
    }
    SECTION("create-only: of eight threads racing for one name, exactly one wins") {
        std::atomic<int> won{0}, lost{0}, failed{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < 8; ++i)
            threads.emplace_back([&, i] {
                try {
                    auto w = s.open_write("contended", {.create_only = true});
                    w->write(io::as_bytes("writer " + std::to_string(i)));
                    w->finish();
                    ++won;
                } catch (const StorageExists&) {
                    ++lost;
                } catch (...) {
                    ++failed;
                }
            });
        for (auto& t : threads) t.join();
        CHECK(won == 1);
        CHECK(lost == 7);
        CHECK(failed == 0);
        CHECK(read_file(s, "contended").rfind("writer ", 0) == 0);
        CHECK(names(s.list(".")) == std::vector<std::string>{"contended"});
    }
    SECTION("ranged reads at the edges") {
        const std::string data = pattern(100);
        put(s, "r", data);
        CHECK(read_file(s, "r", {}) == data);
        CHECK(read_file(s, "r", {.offset = 0, .length = 0}).empty());
        CHECK(read_file(s, "r", {.offset = 0, .length = 1}) == data.substr(0, 1));
        CHECK(read_file(s, "r", {.offset = 10, .length = 5}) == data.substr(10, 5));
        CHECK(read_file(s, "r", {.offset = 10, .length = std::nullopt}) == data.substr(10));
        CHECK(read_file(s, "r", {.offset = 95, .length = 10}) == data.substr(95));
        CHECK(read_file(s, "r", {.offset = 99, .length = 1}) == data.substr(99));
        CHECK(read_file(s, "r", {.offset = 99, .length = std::nullopt}) == data.substr(99));
        CHECK(read_file(s, "r", {.offset = 100, .length = std::nullopt}).empty());
        CHECK(read_file(s, "r", {.offset = 100, .length = 5}).empty());
        CHECK(read_file(s, "r", {.offset = 1000, .length = 5}).empty());
        CHECK(read_file(s, "r", {.offset = 0, .length = 1000}) == data);
        put(s, "empty", "");
        CHECK(read_file(s, "empty", {.offset = 0, .length = 10}).empty());
        CHECK(read_file(s, "empty", {.offset = 1, .length = std::nullopt}).empty());
        REQUIRE_THROWS_MATCHES(s.open_read("nope", {.offset = 1, .length = 1}), Error,
                               IsError(Kind::Verification, "nope"));
    }
    SECTION("stat tells files from directories, with size, time and a stamp that follows the content") {
        CHECK_FALSE(s.stat("missing"));
        s.make_dir("d");
        put(s, "d/f", "12345");
        auto f = s.stat("d/f");
        REQUIRE(f);
        CHECK_FALSE(f->is_dir);
        CHECK(f->size == 5);
        CHECK(f->name == "f");
        const std::int64_t now = unix_now();
        CHECK(f->mtime > now - 3600);
        CHECK(f->mtime < now + 3600);
        auto d = s.stat("d");
        REQUIRE(d);
        CHECK(d->is_dir);
        CHECK(d->mtime > now - 3600);
        if (!f->stamp.empty()) {
            CHECK(s.stat("d/f")->stamp == f->stamp);
            put(s, "d/f", "54321");
            CHECK(s.stat("d/f")->stamp != f->stamp);
        }
        CHECK_FALSE(s.stat("d/missing"));
        CHECK_FALSE(s.stat("missing/f"));
    }
    SECTION("open_regular: a file with its size, a directory is not regular, absence is a value") {
        s.make_dir("d");
        put(s, "d/f", "abc");
        RegularFile f = s.open_regular("d/f");
        REQUIRE(f.reader);
        CHECK(f.size == 3);
        CHECK(read_all(*f.reader) == "abc");
        RegularFile dir = s.open_regular("d");
        CHECK_FALSE(dir.reader);
        CHECK_FALSE(dir.missing);
        CHECK(dir.not_regular == "a directory");
        RegularFile none = s.open_regular("d/none");
        CHECK_FALSE(none.reader);
        CHECK(none.missing);
        REQUIRE_THROWS_MATCHES(s.open_read("d"), Error, IsError(Kind::Verification, "not a regular file"));
        REQUIRE_THROWS_MATCHES(s.open_read("d/none"), Error, IsError(Kind::Verification, "d/none"));
    }
    SECTION("list shows the entries directly below a directory, subdirectories once") {
        s.make_dir("d/e");
        put(s, "a", "1");
        put(s, "b", "22");
        put(s, "d/x", "333");
        put(s, "d/y", "");
        put(s, "d/e/z", "4444");
        put(s, "d.txt", "5");
        CHECK(names(s.list(".")) == std::vector<std::string>{"a", "b", "d.txt", "d/"});
        CHECK(names(s.list("")) == names(s.list(".")));
        CHECK(names(s.list("d")) == std::vector<std::string>{"e/", "x", "y"});
        CHECK(names(s.list("d/e")) == std::vector<std::string>{"z"});
        CHECK(s.list("missing").empty());
        for (const auto& e : s.list("."))
            if (e.name == "b") CHECK(e.size == 2);
    }
    SECTION("list by prefix: every file at any depth whose key starts with it, sorted, with sizes") {
        s.make_dir("20240101_000000/sub");
        s.make_dir("20240102_000000");
        put(s, "manifest_20240101_000000.json", "m1");
        put(s, "manifest_20240102_000000.json", "m22");
        put(s, "manifestX", "x");
        put(s, "20240101_000000/a", "aaa");
        put(s, "20240101_000000/sub/b", "b");
        put(s, "20240102_000000/a", "a");
        put(s, "20240101_000000.txt", "t");
        auto m = s.list_prefix("manifest_");
        REQUIRE(m.size() == 2);
        CHECK(m[0].name == "manifest_20240101_000000.json");
        CHECK(m[0].size == 2);
        CHECK(m[1].name == "manifest_20240102_000000.json");
        CHECK(m[1].size == 3);
        CHECK_FALSE(m[0].is_dir);
        auto keys = [&](const std::string& prefix) {
            std::vector<std::string> out;
            for (const auto& e : s.list_prefix(prefix)) out.push_back(e.name);
            return out;
        };
        CHECK(keys("20240101_000000/") ==
              std::vector<std::string>{"20240101_000000/a", "20240101_000000/sub/b"});
        CHECK(keys("20240101_000000") ==
              std::vector<std::string>{"20240101_000000.txt", "20240101_000000/a", "20240101_000000/sub/b"});
        CHECK(keys("20240101_000000/s") == std::vector<std::string>{"20240101_000000/sub/b"});
        CHECK(keys("2024010") == std::vector<std::string>{"20240101_000000.txt", "20240101_000000/a",
                                                          "20240101_000000/sub/b", "20240102_000000/a"});
        CHECK(keys("").size() == 7);
        CHECK(keys("nothing").empty());
        CHECK(keys("nothing/").empty());
        CHECK(keys("manifest_20240101_000000.json") ==
              std::vector<std::string>{"manifest_20240101_000000.json"});
    }
    SECTION("remove and remove_tree remove exactly what they name, and absence is fine") {
        s.make_dir("d/e");
        s.make_dir("d2");
        put(s, "d/x", "1");
        put(s, "d/e/y", "2");
        put(s, "d2/x", "3");
        put(s, "dd", "4");
        put(s, "f", "5");
        s.remove("f");
        CHECK_FALSE(s.stat("f"));
        s.remove("f");
        s.remove("never-was");
        s.remove_tree("d");
        CHECK_FALSE(s.stat("d"));
        CHECK_FALSE(s.stat("d/e/y"));
        CHECK(s.list_prefix("d/").empty());
        CHECK(read_file(s, "d2/x") == "3");  // a sibling sharing the name's first letter
        CHECK(read_file(s, "dd") == "4");
        s.remove_tree("d");
        s.remove_tree("never-was");
        s.remove_tree("dd");  // a file
        CHECK_FALSE(s.stat("dd"));
        CHECK(names(s.list(".")) == std::vector<std::string>{"d2/"});
    }
    SECTION("sync_dir works on what exists, or is a no-op") {
        s.make_dir("d");
        put(s, "d/f", "x", {.atomic = true, .sync = false});
        s.sync_dir("d");
        s.sync_dir(".");
        CHECK(read_file(s, "d/f") == "x");
    }
    SECTION("rename is there when declared, and refused with Kind::Internal when not") {
        s.make_dir("from");
        put(s, "from/a", "1");
        put(s, "from/b", "2");
        put(s, "file", "3");
        if (caps.rename) {
            s.rename("file", "moved");
            CHECK_FALSE(s.stat("file"));
            CHECK(read_file(s, "moved") == "3");
            s.rename("from", "to");
            CHECK_FALSE(s.stat("from"));
            CHECK(s.list_prefix("from").empty());
            CHECK(read_file(s, "to/a") == "1");
            CHECK(read_file(s, "to/b") == "2");
        } else {
            REQUIRE_THROWS_MATCHES(s.rename("file", "moved"), Error, IsError(Kind::Internal, "rename"));
            CHECK(read_file(s, "file") == "3");
            CHECK_FALSE(s.stat("moved"));
        }
    }
    SECTION("advisory locks keep holders apart when declared, and are refused when not") {
        const LockOptions repo_lock{.exclusive = true, .record_holder = true};
        const LockOptions shared{.exclusive = false};
        const LockOptions exclusive{.exclusive = true};
        if (!caps.advisory_lock) {
            REQUIRE_THROWS_MATCHES(s.try_lock(".lock", repo_lock), Error, IsError(Kind::Internal, "lock"));
        } else {
            {
                LockAttempt first = s.try_lock(".lock", repo_lock);
                REQUIRE(first.held);
                LockAttempt second = s.try_lock(".lock", repo_lock);
                CHECK_FALSE(second.held);
                CHECK(second.holder == std::to_string(::getpid()));
            }
            CHECK(s.try_lock(".lock", repo_lock).held);  // released with its holder
            LockAttempt r1 = s.try_lock(".readers", shared);
            LockAttempt r2 = s.try_lock(".readers", shared);
            REQUIRE(r1.held);
            REQUIRE(r2.held);
            CHECK_FALSE(s.try_lock(".readers", exclusive).held);
            r1.held.reset();
            CHECK_FALSE(s.try_lock(".readers", exclusive).held);
            r2.held.reset();
            LockAttempt w = s.try_lock(".readers", exclusive);
            REQUIRE(w.held);
            CHECK_FALSE(s.try_lock(".readers", shared).held);
            // A lock hold outlives the storage that granted it.
            std::unique_ptr<StorageLock> kept = std::move(w.held);
            holder.reset();
            kept.reset();
        }
    }
    SECTION("free space is answered when declared") {
        if (caps.free_space) {
            auto free = s.free_space();
            REQUIRE(free);
            CHECK(*free > 0);
        } else {
            CHECK_FALSE(s.free_space());
        }
    }
    SECTION("paths that leave the storage are refused before anything is touched") {
        for (const char* bad : {"../escape", "a/../../escape", "/etc/passwd"}) {
            INFO(bad);
            REQUIRE_THROWS_MATCHES(s.open_read(bad), Error, IsError(Kind::Internal, "unsafe path"));
            REQUIRE_THROWS_MATCHES(s.open_write(bad), Error, IsError(Kind::Internal, "unsafe path"));
            REQUIRE_THROWS_MATCHES(s.remove_tree(bad), Error, IsError(Kind::Internal, "unsafe path"));
            REQUIRE_THROWS_MATCHES(s.stat(bad), Error, IsError(Kind::Internal, "unsafe path"));
        }
    }
    SECTION("describe names the location of a path") {
        CHECK_THAT(s.describe("d/f"), Catch::Contains("d/f"));
    }
}

void read_only_conformance(const StorageFactory& make) {
    std::shared_ptr<Storage> holder = make();
    Storage& inner = *holder;
    inner.make_dir("d");
    put(inner, "d/f", pattern(50));
    put(inner, "manifest_x.json", "{}");
    ReadOnlyStorage ro(inner);
    const auto before = inner.list_prefix("");

    SECTION("every read answers as the backend does") {
        CHECK(read_file(ro, "d/f") == pattern(50));
        CHECK(read_file(ro, "d/f", {.offset = 45, .length = 10}) == pattern(50).substr(45));
        CHECK(ro.stat("d/f")->size == 50);
        CHECK(ro.stat("d")->is_dir);
        CHECK_FALSE(ro.stat("nope"));
        CHECK(names(ro.list(".")) == names(inner.list(".")));
        CHECK(names(ro.list("d")) == std::vector<std::string>{"f"});
        CHECK(ro.list_prefix("manifest_").size() == 1);
        RegularFile f = ro.open_regular("d/f");
        REQUIRE(f.reader);
        CHECK(f.size == 50);
        CHECK(ro.open_regular("nope").missing);
        CHECK(ro.describe("d/f") == inner.describe("d/f"));
        CHECK(ro.capabilities().rename == inner.capabilities().rename);
        REQUIRE_THROWS_MATCHES(ro.open_read("nope"), Error, IsError(Kind::Verification, "nope"));
    }
    SECTION("every mutation is refused with Kind::Internal and nothing changes") {
        auto refused = IsError(Kind::Internal, "dry run attempted to");
        REQUIRE_THROWS_MATCHES(ro.open_write("new"), Error, refused);
        REQUIRE_THROWS_MATCHES(ro.open_write("d/f", {.create_only = true}), Error, refused);
        REQUIRE_THROWS_MATCHES(ro.make_dir("z"), Error, refused);
        REQUIRE_THROWS_MATCHES(ro.rename("d/f", "d/g"), Error, refused);
        REQUIRE_THROWS_MATCHES(ro.remove("d/f"), Error, refused);
        REQUIRE_THROWS_MATCHES(ro.remove_tree("d"), Error, refused);
        REQUIRE_THROWS_MATCHES(ro.sync_dir("d"), Error, refused);
        const auto after = inner.list_prefix("");
        REQUIRE(after.size() == before.size());
        for (std::size_t i = 0; i < after.size(); ++i) {
            CHECK(after[i].name == before[i].name);
            CHECK(after[i].size == before[i].size);
        }
        CHECK(read_file(inner, "d/f") == pattern(50));
    }
    SECTION("a reader may take the readers' lock through it when the backend has locks") {
        if (inner.capabilities().advisory_lock) {
            Lock held = lock_for_reading(ro);
            CHECK(held.held());
        } else {
            CHECK_FALSE(lock_for_reading(ro).held());
        }
    }
}

namespace {

// One backup run into `repo`: begin, two artifacts, publish. Returns the id.
std::string run_backup(RepositoryWriter& repo, std::int64_t when, const std::string& payload) {
    const std::string id = repo.next_id(when);
    Staging staging = repo.begin(id, {});
    std::vector<Artifact> artifacts;
    for (const char* name : {"one.bin", "two.bin"}) {
        auto w = staging.artifact(name);
        w->write(io::as_bytes(payload + name));
        w->finish();
        artifacts.push_back(w->artifact("files", name, "raw"));
    }
    repo.publish(std::move(staging), complete_manifest(id, artifacts));
    return id;
}

std::vector<std::string> listed_ids(const Storage& s) {
    std::vector<std::string> out;
    for (const auto& ref : RepositoryReader(s).list()) out.push_back(ref.id);
    return out;
}

// Every listed backup loads and verifies in full: none is half there.
void check_every_listed_backup_whole(const Storage& s) {
    RepositoryReader reader(s);
    for (const auto& ref : reader.list()) {
        INFO("backup " << ref.id);
        Manifest m = reader.load(ref);
        CHECK(m.artifacts.size() == 2);
        StoredVerification v = verify_backup_stored(reader, m);
        CHECK(v.ok);
        CHECK(v.problem == "");
    }
}

// Nothing of a run in progress or crashed is left: no staging, no unfinished manifest, no artifacts
// without a manifest.
void check_no_leftovers(const Storage& s) {
    const auto listed = listed_ids(s);
    for (const auto& name : top_level(s)) {
        INFO(name);
        CHECK(name.find(".staging-") == std::string::npos);
        CHECK(name.find(".tmp") == std::string::npos);
        if (name.size() > 1 && name.back() == '/' && is_backup_id(name.substr(0, name.size() - 1)))
            CHECK(std::find(listed.begin(), listed.end(), name.substr(0, name.size() - 1)) != listed.end());
    }
}

}  // namespace

void publish_conformance(const StorageFactory& make) {
    const std::int64_t t0 = 1704067200;  // 2024-01-01 00:00:00

    SECTION("a backup run crashed at any storage call shows the whole backup or nothing of it") {
        int calls_of_a_whole_run = 0;
        for (int crash_at = 1;; ++crash_at) {
            std::shared_ptr<Storage> holder = make();
            FaultyStorage faulty(*holder);
            std::string first;
            {
                RepositoryWriter repo(faulty);
                Lock lock = repo.lock();
                first = run_backup(repo, t0, "earlier");
            }
            std::string crashed_id;
            bool crashed = false;
            faulty.set_plan({.crash_at = crash_at});
            try {
                RepositoryWriter repo(faulty);
                Lock lock = repo.lock();
                crashed_id = repo.next_id(t0 + 60);
                run_backup(repo, t0 + 60, "crashing");
            } catch (const SimulatedCrash&) {
                crashed = true;
            }
            INFO("crash at storage call " << crash_at << ": " << faulty.crashed_during());
            if (!crashed) {
                calls_of_a_whole_run = faulty.mutations();
                CHECK(listed_ids(faulty) == std::vector<std::string>{crashed_id, first});
                check_every_listed_backup_whole(faulty);
                break;
            }
            REQUIRE(crash_at < 1000);
            faulty.revive();
            // What any reader sees after the crash: the earlier backup, and the new one whole or not at all.
            auto listed = listed_ids(faulty);
            CHECK(std::find(listed.begin(), listed.end(), first) != listed.end());
            CHECK(listed.size() <= 2);
            check_every_listed_backup_whole(faulty);
            // The next run cleans up what the crashed one left and publishes; a prune clears the rest.
            {
                RepositoryWriter repo(faulty);
                Lock lock = repo.lock();
                const std::string next = run_backup(repo, t0 + 120, "next");
                CHECK(listed_ids(faulty).front() == next);
                prune(repo, {}, unix_now() + 10, false, 0);  // no policy: only leftovers go
            }
            check_every_listed_backup_whole(faulty);
            check_no_leftovers(faulty);
            CHECK(listed_ids(faulty).size() == listed.size() + 1);
        }
        CHECK(calls_of_a_whole_run > 5);  // the loop did reach every step of a whole run
    }
    SECTION("a failed write or sync fails the run with Kind::Storage and publishes nothing") {
        for (FaultPlan plan : {FaultPlan{.fail_write = 1, .error = ENOSPC},
                               FaultPlan{.fail_write = 3, .error = EIO}, FaultPlan{.fail_sync = 1},
                               FaultPlan{.fail_sync = 2, .error = ENOSPC}, FaultPlan{.fail_sync = 3}}) {
            INFO("fail write " << plan.fail_write << ", fail sync " << plan.fail_sync << ", errno "
                               << plan.error);
            std::shared_ptr<Storage> holder = make();
            FaultyStorage faulty(*holder);
            RepositoryWriter repo(faulty);
            Lock lock = repo.lock();
            faulty.set_plan(plan);
            bool failed = false;
            try {
                run_backup(repo, t0, "payload");
            } catch (const Error& e) {
                failed = true;
                CHECK(e.kind() == Kind::Storage);
                if (plan.error == ENOSPC) CHECK_THAT(e.what(), Catch::Contains("No space left on device"));
            }
            const bool published = !listed_ids(faulty).empty();
            CHECK(failed != published);
            if (published) check_every_listed_backup_whole(faulty);
            if (failed) {
                // The next run and a prune clear what the failed one left.
                faulty.set_plan({});
                run_backup(repo, t0 + 60, "again");
                prune(repo, {}, unix_now() + 10, false, 0);
                CHECK(listed_ids(faulty).size() == 1);
                check_every_listed_backup_whole(faulty);
                check_no_leftovers(faulty);
            }
        }
    }
    SECTION("a run for a taken id fails with Kind::Storage and the published backup stays whole") {
        std::shared_ptr<Storage> holder = make();
        RepositoryWriter repo(*holder);
        Lock lock = repo.lock();
        const std::string id = run_backup(repo, t0, "first");
        REQUIRE_THROWS_MATCHES(repo.begin(id, {}), Error, IsError(Kind::Storage, "already taken"));
        CHECK(listed_ids(*holder) == std::vector<std::string>{id});
        check_every_listed_backup_whole(*holder);
    }
    SECTION("publish never replaces a manifest that appeared meanwhile (create-only)") {
        std::shared_ptr<Storage> holder = make();
        RepositoryWriter repo(*holder);
        Lock lock = repo.lock();
        const std::string id = repo.next_id(t0);
        Staging staging = repo.begin(id, {});
        auto w = staging.artifact("one.bin");
        w->write(io::as_bytes(std::string_view("ours")));
        w->finish();
        put(*holder, manifest_file_name(id), "a racer's manifest");
        REQUIRE_THROWS_AS(
            repo.publish(std::move(staging), complete_manifest(id, {w->artifact("files", "one", "raw")})),
            StorageExists);
        CHECK(read_file(*holder, manifest_file_name(id)) == "a racer's manifest");
    }
    SECTION(
        "a listing never shows staging or artifacts without a manifest, and remove takes the manifest "
        "first") {
        std::shared_ptr<Storage> holder = make();
        RepositoryWriter repo(*holder);
        Lock lock = repo.lock();
        const std::string id = run_backup(repo, t0, "kept");
        Staging staging = repo.begin(repo.next_id(t0 + 60), {});
        auto w = staging.artifact("one.bin");
        w->write(io::as_bytes(std::string_view("staged")));
        w->finish();
        CHECK(listed_ids(*holder) == std::vector<std::string>{id});
        FaultyStorage faulty(*holder, {.crash_at = 2});  // remove(): the manifest goes, then the crash
        RepositoryWriter doomed(faulty);
        CHECK_THROWS_AS(doomed.remove({id, manifest_file_name(id)}), SimulatedCrash);
        CHECK(listed_ids(*holder).empty());
    }
}

}  // namespace nightjar::test
