#pragma once
// Reading the head of a pg_dump custom-format archive (pg_backup_archiver.c ReadHead/ReadToc): the header
// and the table of contents, without a server and without pg_restore. Pure functions over bytes.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nightjar/io/stream.hpp"

namespace nightjar::postgres {

struct PgTocEntry {
    int dump_id = 0;
    std::string desc;    // "TABLE", "TABLE DATA", "INDEX", "BLOBS", ...
    std::string schema;  // namespace; "" when none
    std::string tag;     // the object's name ("t1", "tab_pkey")
    std::string owner;
    std::vector<int> deps;  // dump ids of the entries this one depends on
    int section = 0;        // 1 none, 2 pre-data, 3 data, 4 post-data (archives from 1.11 on); 0 unknown
    bool has_data = false;  // custom format: a data block belongs to this entry
    int data_state = 0;     // custom format: 1 data offset not set (a piped dump), 2 offset set, 3 no data
};

struct PgArchive {
    int version_major = 0, version_minor = 0, version_revision = 0;  // archive format, 1.14.0 for PG12-15
    int int_size = 0, offset_size = 0;
    int format = 0;              // 1 = custom, 3 = tar (also a directory's toc.dat), 5 = directory
    int compression = 0;         // < 1.15: zlib level (-1 default, 0 none); >= 1.15: algorithm id (0 none)
    std::string database;        // the dumped database's name
    std::string server_version;  // "15.18 (Debian 15.18-0+deb12u1)"
    std::string dump_version;    // pg_dump's version string
    std::vector<PgTocEntry> toc;
    std::size_t toc_end = 0;  // bytes from the start of the archive to the end of the TOC

    std::string version() const;  // "1.14.0"
    bool uncompressed() const { return compression == 0; }
};

// Parses the header and TOC from the first bytes of an archive. nullopt when `head` ends before the TOC does
// (read more and call again); Kind::Verification naming `what` when the bytes are not a readable archive.
std::optional<PgArchive> parse_pg_archive(io::Bytes head, const std::string& what);

}  // namespace nightjar::postgres
