#include "nightjar/repo/drill_record.hpp"

#include <algorithm>
#include <ctime>

#include "nightjar/core/error.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/io/stream.hpp"
#include "nightjar/repo/manifest.hpp"

namespace nightjar {
using nlohmann::json;

namespace {

constexpr std::string_view kDrillSignatureDomain = "nightjar-drill-record-v1\n";

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

std::string drill_record_signed_bytes(const json& record) {
    json body = record.is_object() ? record : json::object();
    body.erase("signature");
    // nlohmann's default object type sorts keys, so dump() is canonical.
    return std::string(kDrillSignatureDomain) + body.dump();
}

void sign_drill_record(json& record, const io::SigningKey& key) {
    if (!record.is_object()) throw Error(Kind::Internal, "drill record: not an object");
    record.erase("signature");
    record["signer"] = key.public_key().str();
    record["signature"] = io::signature_str(key.sign(io::as_bytes(drill_record_signed_bytes(record))));
}

std::string drill_record_distrust(const json& record, const io::TrustedSigners& trusted) {
    if (!record.is_object()) return "not an object";
    const auto signer_text = record.find("signer");
    const auto signature_text = record.find("signature");
    if (signer_text == record.end() || signature_text == record.end()) return "not signed";
    if (!signer_text->is_string() || !signature_text->is_string())
        return "signer or signature is not a string";
    io::SigningPublicKey signer;
    try {
        signer = io::SigningPublicKey::parse(signer_text->get<std::string>());
    } catch (const Error&) {
        return "its signer is not an ed25519 public key";
    }
    const auto host_field = record.find("host");
    const std::string host =
        host_field != record.end() && host_field->is_string() ? host_field->get<std::string>() : "";
    auto it = trusted.find(host);
    if (it == trusted.end() || std::find(it->second.begin(), it->second.end(), signer) == it->second.end())
        return "signed by " + signer.fingerprint() + ", which is not pinned for host \"" + host + "\"";
    auto sig = io::parse_signature(signature_text->get<std::string>());
    if (!sig || !io::verify_signature(signer, io::as_bytes(drill_record_signed_bytes(record)), *sig))
        return "the signature does not verify under " + signer.fingerprint() + " (host \"" + host + "\")";
    return "";
}

std::optional<LastDrill> last_drill(const Storage& storage, const std::string& backup_id,
                                    const io::TrustedSigners* trusted) {
    if (!is_backup_id(backup_id)) return std::nullopt;
    const std::string dir = std::string(kDrillsDir) + "/" + backup_id;
    std::vector<std::string> names;
    for (const auto& e : storage.list(dir))
        if (!e.is_dir && e.name.size() > 5 && e.name.ends_with(".json") && time_of_name(e.name) > 0)
            names.push_back(e.name);
    if (names.empty()) return std::nullopt;
    std::sort(names.begin(), names.end());
    const bool pinned = trusted && !trusted->empty();
    std::optional<LastDrill> refused;  // the newest record, when signers are pinned and it does not count
    for (auto name = names.rbegin(); name != names.rend(); ++name) {
        LastDrill d;
        d.file = dir + "/" + *name;
        d.time = time_of_name(*name);
        json j;
        std::string unreadable;
        try {
            j = json::parse(read_bounded(storage, d.file));
        } catch (const std::exception& e) {
            unreadable = std::string("unreadable drill record: ") + e.what();
        }
        if (pinned) {
            std::string why = unreadable.empty() ? drill_record_distrust(j, *trusted) : unreadable;
            if (!why.empty()) {
                log::warn("drill record ", storage.describe(d.file), " does not count: ", why);
                if (!refused) {
                    refused = d;
                    refused->reason = "drill record not trusted: " + why;
                }
                continue;
            }
        }
        if (!unreadable.empty()) {
            d.reason = unreadable;
            return d;
        }
        auto field = [&](const char* key, json::value_t type) {
            return j.is_object() && j.contains(key) && j[key].type() == type;
        };
        d.passed = field("ok", json::value_t::boolean) && j["ok"].get<bool>();
        if (!d.passed)
            d.reason = !j.is_object()                           ? "not an object"
                       : field("reason", json::value_t::string) ? j["reason"].get<std::string>()
                                                                : "failed";
        if (field("signer", json::value_t::string)) d.signer = j["signer"].get<std::string>();
        d.ignored = refused ? static_cast<int>(name - names.rbegin()) : 0;
        return d;
    }
    refused->ignored = static_cast<int>(names.size());
    refused->counts = false;
    return refused;
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
