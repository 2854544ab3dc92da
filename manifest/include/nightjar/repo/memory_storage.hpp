#pragma once
// A Storage held in this process's memory, shaped like an object store: flat keys, "directories" are key
// prefixes, every finished write is atomic and durable, and (by default) no rename and no directory sync.
// For tests and for the conformance suite; not for backups of any size (it keeps every byte).
#include <memory>
#include <string>

#include "nightjar/repo/storage.hpp"

namespace nightjar {

struct MemoryStorageOptions {
    bool rename = false;            // offer rename() (moves a key, or every key below a prefix, at once)
    bool advisory_lock = true;      // offer try_lock() (locks are held within this process)
    std::string label = "memory:";  // describe() prefixes keys with it
};

class MemoryStorage final : public Storage {
public:
    explicit MemoryStorage(MemoryStorageOptions options = {});
    ~MemoryStorage() override;
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
    std::string describe(const std::filesystem::path& rel) const override;

    struct State;  // shared with open writers, readers and lock holds

private:
    MemoryStorageOptions options_;
    std::shared_ptr<State> state_;
};

}  // namespace nightjar
