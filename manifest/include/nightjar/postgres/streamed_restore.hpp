#pragma once
// Restores a pg_dump custom-format archive while it streams in. pg_restore --jobs wants a seekable file it
// has whole, which would put a full read of the artifact before the first row is loaded. Instead the stream
// is kept in a temporary spool file and pg_restore runs by section, the split pg_restore's --section
// documents: pre-data as soon as the table of contents has arrived; the data in batches of entries, up to
// `jobs` pg_restore processes at a time, each fed the archive's head and then its own blocks on stdin while
// the spool fills; post-data (indexes, constraints) with pg_restore --jobs from the head alone, once every
// block is loaded and the stream has ended with its digests proven.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nightjar/io/stream.hpp"
#include "nightjar/postgres/archive.hpp"
#include "nightjar/process.hpp"

namespace nightjar {

struct PgRestoreStep {
    std::string name;  // "pre-data", "data (3 entries)", "post-data"
    int exit_code = 0;
    std::string stderr_text;
};

struct StreamedPgRestore {
    std::vector<std::string> argv;  // pg_restore and its connection options, without a file or a section
    SpawnOptions spawn;             // the environment that carries the password
    int jobs = 2;                   // pg_restore processes at a time
    std::string what;               // names the archive in messages
    std::size_t head_limit = 64 << 20;
    std::uint64_t content_size =
        0;  // the archive's size if known: the spool reserves it before anything runs
    std::uint64_t batch_bytes = 64 << 20;  // a data batch gathers finished blocks up to this many bytes
    // Called on the reading thread once the table of contents is known, before any pg_restore runs: the last
    // point where the restore can still be refused with nothing applied (it may throw).
    std::function<void(const PgArchive&)> on_head;
};

// Reads `content` to its end and restores it as above; returns every pg_restore run in the order they ended.
// A stream that fails (a digest mismatch thrown by `content`, a malformed archive) stops the pg_restore
// processes and throws; what was applied before then stays (the caller decides what to undo).
std::vector<PgRestoreStep> streamed_pg_restore(io::Reader& content, const StreamedPgRestore& how);

}  // namespace nightjar
