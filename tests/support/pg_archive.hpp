#pragma once
// Writes pg_dump custom-format archive fields the way pg_dump's WriteInt/WriteStr do (a sign byte and 4 bytes
// little-endian; a string as its length, -1 for NULL, then its bytes), for synthetic archives in unit tests.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace nightjar::test {

struct ArchiveBytes {
    std::string b;
    void byte(int v) { b.push_back(static_cast<char>(v)); }
    void integer(std::int64_t v) {
        byte(v < 0 ? 1 : 0);
        std::uint64_t u = static_cast<std::uint64_t>(v < 0 ? -v : v);
        for (int i = 0; i < 4; ++i) byte(static_cast<int>((u >> (8 * i)) & 0xFF));
    }
    void str(const char* s) {
        if (!s) return integer(-1);
        integer(static_cast<std::int64_t>(std::strlen(s)));
        b += s;
    }
    // The header of a 1.<minor> custom archive with intSize 4, offSize 8, no compression, then the TOC count.
    void header(int minor, int entries) {
        b = "PGDMP";
        byte(1);
        byte(minor);
        byte(0);
        byte(4);  // intSize
        byte(8);  // offSize
        byte(1);  // custom
        if (minor >= 15)
            byte(0);
        else
            integer(0);
        for (int i = 0; i < 7; ++i) integer(i);
        str("shopdb");
        str("15.18 (Debian)");
        str("15.18 (Debian)");
        integer(entries);
    }
    // data_state: 1 a block follows (offset not set, as pg_dump writes to a pipe), 3 no data.
    void entry(int id, const char* desc, const char* schema, const char* tag, int data_state, int section = 2,
               const std::vector<int>& deps = {3}) {
        integer(id);
        integer(1);  // hadDumper
        str("1259");
        str("16384");
        str(tag);
        str(desc);
        integer(section);
        str("");
        str("");
        str(nullptr);
        str(schema);
        str("");
        str("heap");
        str("nightjar");
        str("false");
        for (int d : deps) str(std::to_string(d).c_str());
        str(nullptr);
        byte(data_state);
        for (int i = 0; i < 8; ++i) byte(0);
    }
    // A data block: BLK_DATA, the entry's id, then each chunk as its length and bytes, ended by a 0 length.
    void block(int id, const std::vector<std::string>& chunks) {
        byte(1);
        integer(id);
        for (const auto& c : chunks) {
            integer(static_cast<std::int64_t>(c.size()));
            b += c;
        }
        integer(0);
    }
};

}  // namespace nightjar::test
