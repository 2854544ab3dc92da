#pragma once
// A Storage that wraps any other and misbehaves on request: the Nth write or sync fails (EIO, ENOSPC...),
// reads come back short, and a crash point where everything not yet durable is dropped and every later call
// fails, as if the process had been killed and the machine had lost power. `revive()` is the next process.
//
// What counts as durable: a write finished with `sync`; a rename or a new directory once sync_dir() of its
// parent ran (on a backend with `directory_sync`; elsewhere at once). A write finished without `sync` is
// never durable. Removals are durable at once (a removed file is not brought back).
#include <cerrno>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "nightjar/repo/storage.hpp"

namespace nightjar::test {

struct FaultPlan {
    int fail_write = 0;           // the Nth Writer::write() (counted from 1) throws Kind::Storage; 0: never
    int fail_sync = 0;            // the Nth sync (a finish() with sync, or sync_dir) throws Kind::Storage
    int error = EIO;              // errno of an injected failure (ENOSPC: disk full)
    std::size_t short_reads = 0;  // every read returns at most this many bytes; 0: as the inner storage does
    int crash_at = 0;             // the Nth mutating call does not happen: the crash (see above); 0: never
};

// Thrown by the call that crashed and by every call after it, until revive(). Not a nightjar::Error, so no
// code treats it as a storage failure to report and carry on from.
class SimulatedCrash : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class FaultyStorage final : public Storage {
public:
    explicit FaultyStorage(Storage& inner, FaultPlan plan = {});
    ~FaultyStorage() override;
    // Replaces the plan and restarts its counters.
    void set_plan(FaultPlan plan);
    bool crashed() const;
    // The next process: calls work again, the plan is cleared, nothing pending is remembered.
    void revive();
    // Mutating calls (open_write, write, finish, make_dir, rename, remove, remove_tree, sync_dir) so far.
    int mutations() const;
    // What the crash interrupted ("rename .staging-x -> x"), "" before any crash.
    std::string crashed_during() const;

    StorageCapabilities capabilities() const override;
    std::unique_ptr<io::Reader> open_read(const std::filesystem::path& rel,
                                          ReadRange range = {}) const override;
    RegularFile open_regular(const std::filesystem::path& rel) const override;
    std::unique_ptr<io::Writer> open_write(const std::filesystem::path& rel,
                                           WriteOptions options = {}) override;
    std::vector<Entry> list(const std::filesystem::path& dir) const override;
    std::vector<Entry> list_prefix(const std::string& prefix) const override;
    std::optional<Entry> stat(const std::filesystem::path& rel) const override;
    void make_dir(const std::filesystem::path& rel) override;
    void rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
    void remove(const std::filesystem::path& rel) override;
    void remove_tree(const std::filesystem::path& rel) override;
    void sync_dir(const std::filesystem::path& rel) override;
    LockAttempt try_lock(const std::filesystem::path& rel, const LockOptions& options) const override;
    std::optional<std::uint64_t> free_space() const override;
    std::string describe(const std::filesystem::path& rel) const override;

    struct State;  // shared with the writers and readers it hands out

private:
    std::shared_ptr<State> state_;
};

}  // namespace nightjar::test
