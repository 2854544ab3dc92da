#include "nightjar/repo/drill_record.hpp"

#include <algorithm>
#include <ctime>

#include "nightjar/core/error.hpp"
#include "nightjar/io/stream.hpp"
#include "nightjar/repo/manifest.hpp"

namespace nightjar {
using nlohmann::json;

namespace {

std::int64_t time_of_name(const std::string& name) {
    // YYYYMMDDTHHMMSSZ[...]
    if (name.size() < 16 || name[8] != 'T' || name[15] != 'Z') return -1;
    return parse_backup_id_time(name.substr(0, 8) + "_" + name.substr(9, 6));
}

std::string read_bounded(const Storage& storage, const std::string& rel) {
    auto reader = storage.open_read(rel);
    std::string text;
    std::vector<std::byte> buf(64 << 10);
    while (std::size_t n = reader->read(buf)) {
        text.append(reinterpret_cast<const char*>(buf.data()), n);
        if (text.size() > kDrillRecordMaxBytes)
            throw Error(Kind::Verification, "drill record " + rel + " is over " +
                                                std::to_string(kDrillRecordMaxBytes) + " bytes");
    }
    return text;
}

}  // namespace

std::string drill_record_name(std::int64_t t) {
    std::time_t tt = t;
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

std::optional<LastDrill> last_drill(const Storage& storage, const std::string& backup_id) {
    if (!is_backup_id(backup_id)) return std::nullopt;
    const std::string dir = std::string(kDrillsDir) + "/" + backup_id;
    std::vector<std::string> names;
    for (const auto& e : storage.list(dir))
        if (!e.is_dir && e.name.size() > 5 && e.name.ends_with(".json") && time_of_name(e.name) > 0)
            names.push_back(e.name);
    if (names.empty()) return std::nullopt;
    std::sort(names.begin(), names.end());
    LastDrill d;
    d.file = dir + "/" + names.back();
    d.time = time_of_name(names.back());
    try {
        json j = json::parse(read_bounded(storage, d.file));
        d.passed = j.is_object() && j.value("ok", false) == true;
        if (!d.passed) d.reason = j.is_object() ? j.value("reason", std::string("failed")) : "not an object";
    } catch (const std::exception& e) {
        d.passed = false;
        d.reason = std::string("unreadable drill record: ") + e.what();
    }
    return d;
}

std::string write_drill_record(Storage& storage, const std::string& backup_id, std::int64_t finished_at,
                               const json& record) {
    if (!is_backup_id(backup_id)) throw Error(Kind::Internal, "drill record for a malformed backup id");
    const std::string dir = std::string(kDrillsDir) + "/" + backup_id;
    storage.make_dir(dir);
    const std::string base = drill_record_name(finished_at);
    const std::string text = record.dump(2) + "\n";
    for (int n = 1; n < 1000; ++n) {
        const std::string rel = dir + "/" + base + (n == 1 ? "" : "_" + std::to_string(n)) + ".json";
        if (storage.stat(rel)) continue;
        try {
            auto w = storage.open_write(rel, {.atomic = true, .sync = true, .create_only = true});
            w->write(io::as_bytes(std::string_view(text)));
            w->finish();
            return rel;
        } catch (const StorageExists&) {
            continue;  // another drill of the same backup took the name in between: never written over
        }
    }
    throw Error(Kind::Storage, "drill record: no free name under " + storage.describe(dir));
}

}  // namespace nightjar
