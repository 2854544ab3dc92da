#include "nightjar/components/postgres/archive.hpp"

#include <climits>
#include <cstdlib>
#include <cstring>

#include "nightjar/core/error.hpp"

namespace nightjar::postgres {

namespace {

constexpr int version_code(int maj, int min, int rev) {
    return (maj * 256 + min) * 256 + rev;
}
constexpr int kV1_10 = version_code(1, 10, 0), kV1_11 = version_code(1, 11, 0),
              kV1_14 = version_code(1, 14, 0), kV1_15 = version_code(1, 15, 0),
              kV1_16 = version_code(1, 16, 0);
// The oldest format we read (PostgreSQL 9.x wrote 1.12/1.13) and the newest we know (PostgreSQL 17).
constexpr int kOldest = version_code(1, 12, 0), kNewest = version_code(1, 16, 255);

struct NeedMore {};

// A cursor over the head; running off the end throws NeedMore.
class Cursor {
public:
    Cursor(io::Bytes b, const std::string& what) : b_(b), what_(what) {}
    int byte() {
        if (pos_ >= b_.size()) throw NeedMore{};
        return static_cast<int>(std::to_integer<unsigned char>(b_[pos_++]));
    }
    void bytes(char* out, std::size_t n) {
        if (b_.size() - pos_ < n) throw NeedMore{};
        std::memcpy(out, b_.data() + pos_, n);
        pos_ += n;
    }
    // ReadInt: a sign byte, then int_size bytes little-endian.
    std::int64_t integer() {
        bool negative = byte() != 0;
        std::uint64_t v = 0;
        for (int i = 0; i < int_size; ++i) v |= static_cast<std::uint64_t>(byte()) << (8 * i);
        auto s = static_cast<std::int64_t>(v);
        return negative ? -s : s;
    }
    // ReadStr: an int length (-1 = NULL), then the bytes.
    std::optional<std::string> str() {
        std::int64_t n = integer();
        if (n < 0) return std::nullopt;
        if (n > (1LL << 30)) fail("string of " + std::to_string(n) + " bytes in the table of contents");
        std::string s(static_cast<std::size_t>(n), '\0');
        bytes(s.data(), s.size());
        return s;
    }
    std::string text() { return str().value_or(""); }
    void skip(std::size_t n) {
        if (b_.size() - pos_ < n) throw NeedMore{};
        pos_ += n;
    }
    [[noreturn]] void fail(const std::string& why) const {
        throw Error(Kind::Verification, what_ + ": not a readable pg_dump archive: " + why);
    }
    std::size_t pos() const { return pos_; }
    int int_size = 4;

private:
    io::Bytes b_;
    std::size_t pos_ = 0;
    const std::string& what_;
};

}  // namespace

std::string PgArchive::version() const {
    return std::to_string(version_major) + "." + std::to_string(version_minor) + "." +
           std::to_string(version_revision);
}

std::optional<PgArchive> parse_pg_archive(io::Bytes head, const std::string& what) {
    Cursor c(head, what);
    PgArchive a;
    try {
        char magic[5];
        c.bytes(magic, 5);
        if (std::memcmp(magic, "PGDMP", 5) != 0) c.fail("no PGDMP magic at the start");
        a.version_major = c.byte();
        a.version_minor = c.byte();
        a.version_revision = c.byte();
        const int v = version_code(a.version_major, a.version_minor, a.version_revision);
        if (v < kOldest || v > kNewest) c.fail("unsupported archive version " + a.version());
        a.int_size = c.byte();
        a.offset_size = c.byte();
        if (a.int_size < 1 || a.int_size > 8 || a.offset_size < 1 || a.offset_size > 8)
            c.fail("implausible integer sizes " + std::to_string(a.int_size) + "/" +
                   std::to_string(a.offset_size));
        c.int_size = a.int_size;
        a.format = c.byte();
        if (a.format != 1) c.fail("format " + std::to_string(a.format) + " is not the custom format (1)");
        a.compression = static_cast<int>(v >= kV1_15 ? c.byte() : c.integer());
        for (int i = 0; i < 7; ++i) c.integer();  // creation time: sec, min, hour, mday, mon, year, isdst
        a.database = c.text();
        a.server_version = c.text();
        a.dump_version = c.text();
        std::int64_t count = c.integer();
        if (count < 0 || count > 100'000'000) c.fail("implausible TOC entry count " + std::to_string(count));
        for (std::int64_t i = 0; i < count; ++i) {
            PgTocEntry e;
            e.dump_id = static_cast<int>(c.integer());
            if (e.dump_id <= 0)
                c.fail("TOC entry " + std::to_string(i) + " has dump id " + std::to_string(e.dump_id));
            c.integer();  // hadDumper
            c.str();      // tableoid
            c.str();      // oid
            e.tag = c.text();
            e.desc = c.text();
            if (v >= kV1_11) e.section = static_cast<int>(c.integer());
            c.str();  // defn
            c.str();  // dropStmt
            c.str();  // copyStmt
            e.schema = c.text();
            if (v >= kV1_10) c.str();      // tablespace
            if (v >= kV1_14) c.str();      // table access method
            if (v >= kV1_16) c.integer();  // relkind
            e.owner = c.text();
            c.str();                      // "false": WITH OIDS
            while (auto dep = c.str()) {  // dependencies (dump ids), ended by a NULL string
                char* end = nullptr;
                long id = std::strtol(dep->c_str(), &end, 10);
                if (end != dep->c_str() && id > 0 && id < INT_MAX) e.deps.push_back(static_cast<int>(id));
            }
            // Custom format extra: a data-state flag byte and the data block's offset.
            int state = c.byte();
            e.data_state = state;
            c.skip(static_cast<std::size_t>(a.offset_size));
            if (state < 1 || state > 3)
                c.fail("TOC entry " + std::to_string(e.dump_id) + " has data state " + std::to_string(state));
            e.has_data = state != 3;  // 1: offset not set (a piped dump), 2: offset set, 3: no data
            a.toc.push_back(std::move(e));
        }
        a.toc_end = c.pos();
    } catch (const NeedMore&) {
        return std::nullopt;
    }
    return a;
}

}  // namespace nightjar::postgres
