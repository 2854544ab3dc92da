// The storage conformance suite (storage_conformance.hpp) against every backend in the tree. A new backend
// joins with one factory and a TEST_CASE per suite.
#include <catch2/catch.hpp>

#include "conformance/storage_conformance.hpp"
#include "nightjar/repo/memory_storage.hpp"
#include "support/faulty_storage.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using test::FaultPlan;
using test::FaultyStorage;
using test::IsError;
using test::SimulatedCrash;

namespace {

// A storage together with what must outlive it.
template <typename Owner>
std::shared_ptr<Storage> keep(std::shared_ptr<Owner> owner, Storage& storage) {
    return std::shared_ptr<Storage>(std::move(owner), &storage);
}

struct PosixFixture {
    test::TempDir dir;
    PosixStorage storage{dir / "repo"};  // not there yet: make_dir(".") creates it, as the backup run does
};

std::shared_ptr<Storage> make_posix() {
    auto f = std::make_shared<PosixFixture>();
    return keep(f, f->storage);
}

std::shared_ptr<Storage> make_memory() {
    return std::make_shared<MemoryStorage>();
}

// A memory store that can rename: the staging-rename publish path without a disk.
std::shared_ptr<Storage> make_memory_with_rename() {
    return std::make_shared<MemoryStorage>(MemoryStorageOptions{.rename = true});
}

// A memory store with no locks either, as an object store without leases.
std::shared_ptr<Storage> make_memory_without_locks() {
    return std::make_shared<MemoryStorage>(MemoryStorageOptions{.advisory_lock = false});
}

// FaultyStorage with no fault planned but short reads: it must be as conformant as what it wraps.
template <typename Inner>
test::StorageFactory faulty_over(Inner make_inner) {
    return [make_inner] {
        struct Fixture {
            std::shared_ptr<Storage> inner;
            std::unique_ptr<FaultyStorage> faulty;
        };
        auto f = std::make_shared<Fixture>();
        f->inner = make_inner();
        f->faulty = std::make_unique<FaultyStorage>(*f->inner, FaultPlan{.short_reads = 7});
        return keep(f, *f->faulty);
    };
}

std::string read_all(io::Reader& r) {
    std::string out;
    std::vector<std::byte> buf(4096);
    while (std::size_t n = r.read(buf)) out.append(reinterpret_cast<const char*>(buf.data()), n);
    return out;
}

void put(Storage& s, const std::filesystem::path& rel, const std::string& content,
         WriteOptions options = {}) {
    auto w = s.open_write(rel, options);
    w->write(io::as_bytes(content));
    w->finish();
}

}  // namespace

TEST_CASE("storage conformance: posix", "[conformance][storage][posix]") {
    test::storage_conformance(make_posix);
}
TEST_CASE("storage conformance: memory", "[conformance][storage][memory]") {
    test::storage_conformance(make_memory);
}
TEST_CASE("storage conformance: memory with rename", "[conformance][storage][memory]") {
    test::storage_conformance(make_memory_with_rename);
}
TEST_CASE("storage conformance: memory without locks", "[conformance][storage][memory]") {
    test::storage_conformance(make_memory_without_locks);
}
TEST_CASE("storage conformance: faulty over posix", "[conformance][storage][faulty]") {
    test::storage_conformance(faulty_over(make_posix));
}
TEST_CASE("storage conformance: faulty over memory", "[conformance][storage][faulty]") {
    test::storage_conformance(faulty_over(make_memory));
}

TEST_CASE("storage conformance: read-only over posix", "[conformance][storage][read-only]") {
    test::read_only_conformance(make_posix);
}
TEST_CASE("storage conformance: read-only over memory", "[conformance][storage][read-only]") {
    test::read_only_conformance(make_memory);
}

TEST_CASE("publish conformance: posix", "[conformance][publish][posix]") {
    test::publish_conformance(make_posix);
}
TEST_CASE("publish conformance: memory", "[conformance][publish][memory]") {
    test::publish_conformance(make_memory);
}
TEST_CASE("publish conformance: memory with rename", "[conformance][publish][memory]") {
    test::publish_conformance(make_memory_with_rename);
}
TEST_CASE("publish conformance: memory without locks", "[conformance][publish][memory]") {
    test::publish_conformance(make_memory_without_locks);
}

// What FaultyStorage itself promises, so the publish suite's crashes mean what they say.
TEST_CASE("faulty storage fails the Nth write and sync as planned and leaves nothing half written",
          "[conformance][faulty]") {
    MemoryStorage inner;
    FaultyStorage s(inner, {.fail_write = 2, .error = ENOSPC});
    {
        auto w = s.open_write("f");
        w->write(io::as_bytes(std::string_view("one")));
        REQUIRE_THROWS_MATCHES(w->write(io::as_bytes(std::string_view("two"))), Error,
                               IsError(Kind::Storage, "No space left on device"));
    }
    CHECK_FALSE(s.stat("f"));
    put(s, "g", "third write works");
    CHECK(s.stat("g"));

    s.set_plan({.fail_sync = 1});
    {
        auto w = s.open_write("h");
        w->write(io::as_bytes(std::string_view("x")));
        REQUIRE_THROWS_MATCHES(w->finish(), Error, IsError(Kind::Storage, "fsync failed: memory:h"));
    }
    CHECK_FALSE(s.stat("h"));
    put(s, "h", "the next sync works", {.sync = true});
    CHECK(s.stat("h"));
    s.set_plan({.fail_sync = 1, .error = EIO});
    REQUIRE_THROWS_MATCHES(s.sync_dir("."), Error, IsError(Kind::Storage, "Input/output error"));
}

TEST_CASE("faulty storage returns short reads that still add up to the whole file", "[conformance][faulty]") {
    MemoryStorage inner;
    put(inner, "f", std::string(1000, 'x'));
    FaultyStorage s(inner, {.short_reads = 3});
    auto r = s.open_read("f");
    std::vector<std::byte> buf(100);
    CHECK(r->read(buf) == 3);
    CHECK(read_all(*r).size() == 997);
    RegularFile f = s.open_regular("f");
    REQUIRE(f.reader);
    CHECK(f.reader->read(buf) == 3);
}

TEST_CASE("faulty storage: a crash drops what was not durable and every later call fails until revived",
          "[conformance][faulty]") {
    test::TempDir dir;
    PosixStorage inner(dir.path());
    FaultyStorage s(inner);
    put(s, "synced", "kept", {.sync = true});
    put(s, "unsynced", "lost", {.sync = false});
    s.make_dir("d");
    put(s, "d/f", "in a directory whose entry was never synced", {.sync = true});
    s.make_dir("e");
    s.sync_dir(".");  // e's entry (and d's) are durable now
    put(s, "e/f", "kept too", {.sync = true});
    s.rename("e", "renamed");  // not synced: undone
    auto open = s.open_write("open");
    open->write(io::as_bytes(std::string_view("never finished")));
    s.set_plan({.crash_at = 2});
    open->write(io::as_bytes(std::string_view(", more")));  // call 1
    CHECK_FALSE(s.crashed());
    REQUIRE_THROWS_AS(s.remove("synced"), SimulatedCrash);  // call 2: the crash, instead of the remove
    CHECK(s.crashed());
    CHECK_THAT(s.crashed_during(), Catch::Contains("remove synced"));
    REQUIRE_THROWS_AS(s.stat("synced"), SimulatedCrash);
    REQUIRE_THROWS_AS(s.open_read("synced"), SimulatedCrash);
    REQUIRE_THROWS_AS(open->finish(), SimulatedCrash);
    open.reset();
    s.revive();
    CHECK(s.stat("synced"));
    CHECK_FALSE(s.stat("unsynced"));
    CHECK(s.stat("d/f"));
    CHECK(s.stat("e/f"));
    CHECK_FALSE(s.stat("renamed"));
    CHECK_FALSE(s.stat("open"));
    put(s, "after", "works again");
    CHECK(s.stat("after"));
}
