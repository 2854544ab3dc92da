#include <catch2/catch.hpp>

#include "nightjar/io/sha256.hpp"
#include "nightjar/repo/memory_storage.hpp"
#include "nightjar/repo/repository.hpp"
#include "support/manifests.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using test::IsError;

namespace {

// Writes one artifact into staging and returns the manifest describing it.
Manifest stage_one(Staging& staging, const std::string& payload) {
    auto w = staging.artifact("data.bin");
    w->write(io::as_bytes(payload));
    w->finish();
    return test::complete_manifest(staging.id(), {w->artifact("files", "data", "raw")});
}

}  // namespace

// Every Storage implementation must pass this.
static void storage_conformance(Storage& s) {
    s.make_dir("d");
    auto w = s.open_write("d/f");
    w->write(io::as_bytes(std::string_view("hello")));
    CHECK_FALSE(s.stat("d/f"));  // atomic: invisible until finished
    w->finish();
    REQUIRE(s.stat("d/f"));
    CHECK(s.stat("d/f")->size == 5);
    auto r = s.open_read("d/f");
    std::vector<std::byte> buf(16);
    CHECK(r->read(buf) == 5);
    s.rename("d/f", "d/g");
    CHECK_FALSE(s.stat("d/f"));
    auto names = s.list("d");
    REQUIRE(names.size() == 1);
    CHECK(names[0].name == "g");
    {
        auto abandoned = s.open_write("d/h");
        abandoned->write(io::as_bytes(std::string_view("half")));
    }
    CHECK(s.list("d").size() == 1);  // an unfinished write leaves nothing behind
    REQUIRE_THROWS_MATCHES(s.open_read("d/missing"), Error, IsError(Kind::Verification, "d/missing"));
    s.remove_tree("d");
    CHECK(s.list("d").empty());
}

TEST_CASE("PosixStorage conforms", "[storage]") {
    test::TempDir dir;
    PosixStorage s(dir.path());
    storage_conformance(s);
    REQUIRE_THROWS_MATCHES(s.open_read("../escape"), Error, IsError(Kind::Internal, "unsafe path"));
}

TEST_CASE("ReadOnlyStorage refuses every mutation", "[storage]") {
    test::TempDir dir;
    PosixStorage inner(dir.path());
    inner.make_dir("x");
    ReadOnlyStorage ro(inner);
    CHECK(ro.list(".").size() == 1);
    REQUIRE_THROWS_MATCHES(ro.open_write("y"), Error, IsError(Kind::Internal, "dry run attempted to write"));
    REQUIRE_THROWS_MATCHES(ro.make_dir("z"), Error, IsError(Kind::Internal, "dry run"));
    REQUIRE_THROWS_MATCHES(ro.remove_tree("x"), Error, IsError(Kind::Internal, "dry run"));
    REQUIRE_THROWS_MATCHES(ro.rename("x", "w"), Error, IsError(Kind::Internal, "dry run"));
    CHECK(std::filesystem::exists(dir / "x"));
}

TEST_CASE("publish makes a backup exist and staging never shows", "[repository]") {
    test::TempDir dir;
    PosixStorage storage(dir.path());
    RepositoryWriter repo(storage);
    Lock lock = repo.lock();
    std::string id = repo.next_id(1704067200);
    CHECK(id == "20240101_000000");
    {
        Staging staging = repo.begin(id, {});
        Manifest m = stage_one(staging, "payload");
        CHECK(repo.list().empty());  // staged, not published
        repo.publish(std::move(staging), m);
    }
    auto refs = repo.list();
    REQUIRE(refs.size() == 1);
    CHECK(refs[0].id == id);
    Manifest loaded = repo.load(refs[0]);
    CHECK(loaded.artifacts[0].path == id + "/data.bin");
    CHECK(std::filesystem::exists(dir / (id + "/data.bin")));
    CHECK_FALSE(std::filesystem::exists(dir / (".staging-" + id)));

    SECTION("a second id in the same second gets a suffix, and lists newest first") {
        std::string id2 = repo.next_id(1704067200);
        CHECK(id2 == id + "_2");
        Staging staging = repo.begin(id2, {});
        repo.publish(std::move(staging), stage_one(staging, "two"));
        auto refs2 = repo.list();
        REQUIRE(refs2.size() == 2);
        CHECK(refs2[0].id == id2);
        CHECK(repo.find("latest").id == id2);
        CHECK(repo.find(id).id == id);
        CHECK(repo.find(dir.path().string() + "/manifest_" + id + ".json").id == id);
    }
    SECTION("remove deletes the manifest and the artifacts") {
        repo.remove(refs[0]);
        CHECK(repo.list().empty());
        CHECK_FALSE(std::filesystem::exists(dir / id));
    }
    SECTION("an unknown backup is named") {
        REQUIRE_THROWS_MATCHES(repo.find("20990101_000000"), Error,
                               IsError(Kind::Verification, "20990101_000000"));
    }
}

TEST_CASE("a dropped staging leaves nothing and stale staging is cleaned by the next begin", "[repository]") {
    test::TempDir dir;
    PosixStorage storage(dir.path());
    RepositoryWriter repo(storage);
    Lock lock = repo.lock();
    {
        Staging s = repo.begin("20240101_000000", {});
        stage_one(s, "abandoned");
    }
    CHECK_FALSE(std::filesystem::exists(dir / ".staging-20240101_000000"));
    std::filesystem::create_directories(dir / ".staging-20230101_000000");
    test::write_file(dir / ".staging-20230101_000000/x", "left by a crash");
    CHECK(repo.list().empty());
    Staging s = repo.begin("20240102_000000", {});
    CHECK_FALSE(std::filesystem::exists(dir / ".staging-20230101_000000"));
}

TEST_CASE("the lock keeps a second holder out and names the first", "[repository]") {
    test::TempDir dir;
    PosixStorage storage(dir.path());
    RepositoryWriter repo(storage);
    {
        Lock first = repo.lock();
        REQUIRE_THROWS_MATCHES(repo.lock(), Error,
                               IsError(Kind::LockHeld, "(pid " + std::to_string(::getpid()) + ")"));
    }
    Lock again = repo.lock();  // released with its holder
}

TEST_CASE("without rename, artifacts go straight to <id>/ and the manifest is written last", "[repository]") {
    MemoryStorage storage;  // an object store: no rename, no directory sync
    RepositoryWriter repo(storage);
    Lock lock = repo.lock();
    CHECK(lock.held());
    const std::string id = repo.next_id(1704067200);
    Staging staging = repo.begin(id, {});
    CHECK(staging.dir() == id);
    Manifest m = stage_one(staging, "payload");
    CHECK(storage.stat(id + "/data.bin"));
    CHECK(repo.list().empty());  // artifacts without a manifest are no backup
    repo.publish(std::move(staging), m);
    REQUIRE(repo.list().size() == 1);
    CHECK(repo.load(repo.list()[0]).artifacts[0].path == id + "/data.bin");
    std::vector<std::string> keys;
    for (const auto& e : storage.list_prefix("")) keys.push_back(e.name);
    CHECK(keys == std::vector<std::string>{id + "/data.bin", "manifest_" + id + ".json"});
}

TEST_CASE("without rename, a crashed run's artifacts are removed by the next begin and never listed",
          "[repository]") {
    MemoryStorage storage;
    RepositoryWriter repo(storage);
    Lock lock = repo.lock();
    {
        Staging crashed = repo.begin("20240101_000000", {});
        stage_one(crashed, "left by a crash");
        crashed.release();  // as if the process died: nothing dropped it
    }
    CHECK(storage.stat("20240101_000000/data.bin"));
    CHECK(repo.list().empty());
    CHECK(repo.stale_staging() == std::vector<std::string>{"20240101_000000"});
    Staging next = repo.begin(repo.next_id(1704067200), {});
    CHECK(next.id() == "20240101_000000_2");
    CHECK_FALSE(storage.stat("20240101_000000"));
}

TEST_CASE("the readers' lock and the repository lock through a storage", "[repository]") {
    MemoryStorage storage;
    RepositoryWriter repo(storage);
    Lock held = repo.lock();
    REQUIRE_THROWS_MATCHES(repo.lock(), Error,
                           IsError(Kind::LockHeld, "(pid " + std::to_string(::getpid()) + ")"));
    {
        Lock reading = lock_for_reading(storage);
        CHECK(reading.held());
        REQUIRE_THROWS_MATCHES(lock_for_deleting(storage, {.limit_s = 0, .on_wait = {}}), Error,
                               IsError(Kind::LockHeld, "still reading"));
    }
    Lock deleting = lock_for_deleting(storage, {.limit_s = 0, .on_wait = {}});
    CHECK(deleting.held());
    REQUIRE_THROWS_MATCHES(lock_for_reading(storage, {.limit_s = 0, .on_wait = {}}), Error,
                           IsError(Kind::LockHeld, "being pruned"));

    MemoryStorage lockless({.advisory_lock = false});
    CHECK_FALSE(RepositoryWriter(lockless).lock().held());  // says so in a warning, and carries on
    CHECK_FALSE(lock_for_reading(lockless).held());
}
