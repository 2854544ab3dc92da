#include "nightjar/repo/verified_record.hpp"
#include "nightjar/core/clock.hpp"

#include <nlohmann/json.hpp>
#include <optional>

#include "nightjar/core/error.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/repo/verify.hpp"

namespace nightjar {

using nlohmann::json;

namespace {

constexpr std::size_t kRecordMaxBytes = 1u << 20;
// A record older than this is stale whatever it matches: silent rot changes no stat field, so every backup
// still counted on is hashed again at least weekly.
constexpr std::int64_t kRecordMaxAgeS = 7 * 86400;

// What the record binds its result to: the manifest's self-digest and each artifact's stat.
std::optional<json> current_state(const RepositoryReader& repo, const Manifest& manifest) {
    json arts = json::array();
    for (const auto& a : manifest.artifacts) {
        auto st = repo.stat_artifact(a);
        if (!st || st->stamp.empty()) return std::nullopt;  // nothing stable to bind to: always hash
        arts.push_back({{"path", a.path}, {"size", st->size}, {"stamp", st->stamp}});
    }
    return json{{"id", manifest.id},
                {"manifest_sha256", to_json_with_digest(manifest)["manifest_sha256"]},
                {"artifacts", arts}};
}

// The record's result when it matches `state` exactly; nullopt for a missing, unreadable, malformed or
// stale record.
std::optional<StoredVerification> read_record(const Storage& storage, const std::string& name,
                                              const json& state) {
    try {
        RegularFile file = storage.open_regular(name);
        if (!file.reader || file.size > kRecordMaxBytes) return std::nullopt;
        std::string text;
        std::vector<std::byte> buf(16 * 1024);
        while (std::size_t n = file.reader->read(buf)) {
            text.append(reinterpret_cast<const char*>(buf.data()), n);
            if (text.size() > kRecordMaxBytes) return std::nullopt;
        }
        json j = parse_json_document(text, "verified record " + name, Kind::Verification, {.max_depth = 8});
        JsonFields f(j, "verified record " + name, Kind::Verification);
        f.only({"state", "ok", "problem", "verified_at", "verified_unix"});
        if (f.raw().at("state") != state) return std::nullopt;
        const std::int64_t age = unix_now() - f.integer("verified_unix", 0, std::int64_t{1} << 40);
        if (age < 0 || age > kRecordMaxAgeS) return std::nullopt;
        return StoredVerification{f.boolean_or("ok", false), f.string_or("problem", ""), true};
    } catch (const std::exception&) {
        return std::nullopt;  // any doubt about the record means hashing again
    }
}

void write_record(Storage& storage, const std::string& name, const json& state, const StoredVerification& r) {
    const std::int64_t now = unix_now();
    json j{{"state", state},
           {"ok", r.ok},
           {"problem", r.problem},
           {"verified_at", rfc3339_utc(now)},
           {"verified_unix", now}};
    try {
        auto out = storage.open_write(name, {.atomic = true, .sync = true, .mode = 0640});
        out->write(io::as_bytes(j.dump(2) + "\n"));
        out->finish();
    } catch (const Error& e) {
        // Only an optimisation: the next prune hashes again.
        log::warn("prune: could not record the verification of ", state["id"].get<std::string>(), ": ",
                  e.what());
    }
}

}  // namespace

std::string verified_record_name(const std::string& id) {
    return "verified_" + id + ".json";
}

StoredVerification verify_backup_stored(const RepositoryReader& repo, const Manifest& manifest,
                                        StoredVerificationOptions options) {
    const std::string name = verified_record_name(manifest.id);
    std::optional<json> state = current_state(repo, manifest);
    if (state)
        if (auto recorded = read_record(repo.storage(), name, *state)) return *recorded;
    StoredVerification result{true, "", false};
    for (const auto& a : manifest.artifacts) {
        VerifyOutcome v = verify_stored_bytes(repo, a);
        if (!v.ok()) {
            result = {
                false,
                a.name + " (" + a.path + "): " + std::string(verify_status_name(v.status)) + ": " + v.detail,
                false};
            break;
        }
    }
    // The stat taken before hashing binds the result: a file changed meanwhile no longer matches it.
    if (state && options.record_to) write_record(*options.record_to, name, *state, result);
    return result;
}

}  // namespace nightjar
