#pragma once
// Restores a pg_dump custom-format archive while it is decompressed, without a spool file. pg_restore --jobs
// wants a seekable file it has whole, which would put a full decompression (and a copy of the whole dump on
// disk) before the first row is loaded. Instead pg_restore runs by section, the split pg_restore --section
// documents: pre-data from the archive's head as soon as the table of contents has been read; then the data,
// by `jobs` workers that each decompress the artifact from its start on their own reader, skipping (cheaply,
// decompression is far faster than COPY) the blocks another worker has taken, and feed the blocks they take
// to pg_restore --use-list on stdin, a batch of small tables to one pg_restore; then post-data (indexes,
// constraints) with pg_restore --jobs from the head alone, once every block is loaded and the first reader
// has reached the end, where its digests are proven.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nightjar/components/postgres/archive.hpp"
#include "nightjar/io/process.hpp"
#include "nightjar/io/stream.hpp"

namespace nightjar::postgres {

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
    std::size_t batch_bytes = 8 << 20;  // small blocks are gathered in memory up to this many bytes per batch
    // Another reader of the same content from its start, for each worker beyond the first (no digest checks:
    // the `content` reader proves them). Without it one worker does everything.
    std::function<std::unique_ptr<io::Reader>()> reopen;
    // Called once the table of contents is known, before any pg_restore runs: the last point where the
    // restore can still be refused with nothing applied (it may throw).
    std::function<void(const PgArchive&)> on_head;
    // Called on a worker's thread when the pg_restore of a batch has ended, with the dump ids it loaded; the
    // other workers go on meanwhile (the row counts of a batch's tables are taken here, off the critical
    // path).
    std::function<void(const std::vector<int>&)> after_batch;
};

// Restores `content` as above and reads it to its end; returns every pg_restore run in the order they ended.
// A stream that fails (a digest mismatch thrown by `content`, a malformed archive) stops the pg_restore
// processes and throws; what was applied before then stays (the caller decides what to undo).
std::vector<PgRestoreStep> streamed_pg_restore(io::Reader& content, const StreamedPgRestore& how);

}  // namespace nightjar::postgres
