#pragma once
// The crash journal of a backup run into an object store (no lock, no rename there): `runs/<id>.json`
// (host, pid, start) is created create-only before the first artifact and removed when the run ends, by
// publication or by dropping its staging. A run killed in between (SIGKILL, power) leaves it behind with
// unfinished multipart uploads under `<id>/`. The next run on the same host whose journal's pid is gone
// owns that run: heal_crashed_runs() aborts its uploads (nothing stays billed), removes its unpublished
// objects and the journal, and says what it did. Nothing of a published backup is touched.
#include <cstdint>
#include <string>
#include <vector>

#include "nightjar/repo/storage.hpp"

namespace nightjar {

inline constexpr const char* kRunJournalDir = "runs";

// Held by a run for its lifetime (a no-op on a backend with locks: the repository lock and staging dirs
// already tell a crashed run's leftovers there).
class RunJournal {
public:
    RunJournal() = default;
    RunJournal(Storage& storage, std::string id);
    RunJournal(RunJournal&&) = delete;
    ~RunJournal();

private:
    Storage* storage_ = nullptr;
    std::string id_;
};

// What crashed runs of this host left in `storage` (an S3Storage; elsewhere nothing): one line per thing
// done, for the log and the report. `own_id` is never touched.
std::vector<std::string> heal_crashed_runs(Storage& storage, const std::string& own_id);
// `nightjar-backup --prune-only`: aborts every multipart upload under the storage's prefix initiated more
// than `older_than_s` ago (a live run's uploads are younger). One line per upload aborted.
std::vector<std::string> abort_stale_uploads(Storage& storage, std::int64_t now,
                                             std::int64_t older_than_s = 86400);

}  // namespace nightjar
