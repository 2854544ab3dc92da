// A delete the store refuses (AccessDenied on an object store: a lock, or a credential without delete
// rights) stops that one backup, is reported naming the object, and the prune goes on with the others.
#include <algorithm>
#include <catch2/catch.hpp>

#include "nightjar/repo/memory_storage.hpp"
#include "nightjar/repo/prune.hpp"
#include "nightjar/repo/repository.hpp"
#include "support/manifests.hpp"

using namespace nightjar;
namespace fs = std::filesystem;

namespace {

// MemoryStorage whose remove() of one name is refused as a store refuses it.
class RefusingStorage final : public Storage {
public:
    explicit RefusingStorage(std::string refused) : refused_(std::move(refused)) {}
    StorageCapabilities capabilities() const override { return inner_.capabilities(); }
    std::unique_ptr<io::Reader> open_read(const fs::path& rel, ReadRange range) const override {
        return inner_.open_read(rel, range);
    }
    RegularFile open_regular(const fs::path& rel) const override { return inner_.open_regular(rel); }
    std::unique_ptr<io::Writer> open_write(const fs::path& rel, WriteOptions options) override {
        return inner_.open_write(rel, options);
    }
    std::vector<Entry> list(const fs::path& dir) const override { return inner_.list(dir); }
    std::vector<Entry> list_prefix(const std::string& prefix) const override {
        return inner_.list_prefix(prefix);
    }
    std::optional<Entry> stat(const fs::path& rel) const override { return inner_.stat(rel); }
    void make_dir(const fs::path& rel) override { inner_.make_dir(rel); }
    void rename(const fs::path& from, const fs::path& to) override { inner_.rename(from, to); }
    void remove(const fs::path& rel) override {
        if (rel == refused_)
            throw Error(Kind::Storage, "s3: DeleteObject s3://b/" + rel.string() + ": HTTP 403 AccessDenied");
        inner_.remove(rel);
    }
    void remove_tree(const fs::path& rel) override { inner_.remove_tree(rel); }
    void sync_dir(const fs::path& rel) override { inner_.sync_dir(rel); }
    LockAttempt try_lock(const fs::path& rel, const LockOptions& options) const override {
        return inner_.try_lock(rel, options);
    }
    std::string describe(const fs::path& rel) const override { return inner_.describe(rel); }

private:
    MemoryStorage inner_;
    std::string refused_;
};

void publish(RepositoryWriter& repo, const std::string& id) {
    Staging staging = repo.begin(id, {});
    auto w = staging.artifact("data.bin");
    w->write(io::as_bytes(std::string("payload of ") + id));
    w->finish();
    repo.publish(std::move(staging), test::complete_manifest(id, {w->artifact("files", "data", "raw")}));
}

}  // namespace

TEST_CASE("prune: a delete the store refuses is reported naming the object and the others still go",
          "[prune][lock]") {
    const std::string oldest = "20240101_000000", old = "20240102_000000", newest = "20240103_000000";
    RefusingStorage storage("manifest_" + old + ".json");
    RepositoryWriter repo(storage);
    Lock lock = repo.lock();
    for (const auto& id : {oldest, old, newest}) publish(repo, id);
    PruneResult r = prune(repo, {.keep_last = 1}, parse_backup_id_time(newest) + 60, false);
    CHECK(r.deleted == 1);
    REQUIRE(r.errors.size() == 1);
    CHECK_THAT(r.errors[0], Catch::Contains("prune: cannot delete " + old) &&
                                Catch::Contains("manifest_" + old + ".json: HTTP 403 AccessDenied"));
    std::vector<std::string> left;
    for (const auto& ref : repo.list()) left.push_back(ref.id);
    std::sort(left.begin(), left.end());
    CHECK(left == std::vector<std::string>{old, newest});  // the refused one stays whole, the oldest went
    CHECK(storage.stat(old + "/data.bin"));
}
