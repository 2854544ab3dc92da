#include "nightjar/repo/backup_index.hpp"

#include <algorithm>

#include "nightjar/core/error.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/storage.hpp"

namespace nightjar {

using nlohmann::json;

namespace {

constexpr std::string_view kSignatureDomain = "nightjar-backup-index-v1\n";
constexpr std::size_t kMaxPath = 4096;
constexpr std::size_t kMaxTime = 64;
constexpr std::size_t kMaxHost = 253;

json object_json(const IndexObject& o) {
    return json{{"path", o.path}, {"size", o.size}, {"sha256", o.sha256}};
}

// Everything but the signature.
json body_json(const BackupIndex& x) {
    json artifacts = json::array();
    for (const auto& a : x.artifacts) artifacts.push_back(object_json(a));
    json j{{"schema", x.schema},           {"id", x.id},
           {"status", x.status},           {"started_at", x.started_at},
           {"finished_at", x.finished_at}, {"host", x.host},
           {"encryption", x.encryption},   {"manifest", object_json(x.manifest)},
           {"artifacts", artifacts},       {"recipients", x.recipients}};
    if (!x.signer.empty()) j["signer"] = x.signer;
    return j;
}

bool printable_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

bool valid_host(std::string_view h) {
    if (h.empty() || h.size() > kMaxHost) return false;
    return std::all_of(h.begin(), h.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '-' || c == '_';
    });
}

// "SHA256:" and 43 characters of unpadded base64 (a 32-byte digest).
bool valid_fingerprint(std::string_view f) {
    if (f.size() != 7 + 43 || !f.starts_with("SHA256:")) return false;
    return std::all_of(f.begin() + 7, f.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
               c == '/';
    });
}

std::string bounded_string(const JsonFields& f, std::string_view key, std::size_t max) {
    std::string s = f.string(key);
    if (s.empty() || s.size() > max || !printable_ascii(s))
        f.fail(key, "expected 1-" + std::to_string(max) + " printable ASCII characters");
    return s;
}

IndexObject parse_object(const JsonFields& f) {
    f.only({"path", "size", "sha256"});
    IndexObject o;
    o.path = bounded_string(f, "path", kMaxPath);
    if (!is_safe_relative(o.path))
        f.fail("path", "path escapes the backup directory: " + describe_json(o.path));
    o.size = f.uint64("size");
    o.sha256 = f.string("sha256");
    if (!io::is_sha256_hex(o.sha256))
        f.fail("sha256", "malformed SHA-256 (64 lowercase hex digits expected)");
    return o;
}

BackupIndex parse_index_json(const json& j, const std::string& what) {
    JsonFields f(j, what, Kind::Verification);
    if (f.has("schema") && f.integer("schema", 0, 1 << 30) != kIndexSchema)
        f.fail("schema", "unknown index schema " + describe_json(j["schema"]) + " (this nightjar reads " +
                             std::to_string(kIndexSchema) + ")");
    f.only({"schema", "id", "status", "started_at", "finished_at", "host", "encryption", "manifest",
            "artifacts", "recipients", "signer", "signature"});
    BackupIndex x;
    x.schema = static_cast<int>(f.integer("schema", kIndexSchema, kIndexSchema));
    x.id = f.string("id");
    if (!is_backup_id(x.id)) f.fail("id", "malformed backup id " + describe_json(j["id"]));
    x.status = f.choice("status", {"complete", "partial"}, "");
    if (x.status.empty()) f.fail("status", "required field is missing");
    x.started_at = bounded_string(f, "started_at", kMaxTime);
    x.finished_at = bounded_string(f, "finished_at", kMaxTime);
    x.host = f.string("host");
    if (!valid_host(x.host)) f.fail("host", "not a host name (letters, digits, '.', '-', '_'; at most 253)");
    x.encryption = f.choice("encryption", {"age", "none"}, "");
    if (x.encryption.empty()) f.fail("encryption", "required field is missing");
    x.manifest = parse_object(f.object("manifest"));
    const json& arts = f.array("artifacts");
    if (arts.size() > kIndexMaxArtifacts)
        f.fail("artifacts", "more than " + std::to_string(kIndexMaxArtifacts) + " artifacts");
    for (std::size_t i = 0; i < arts.size(); ++i)
        x.artifacts.push_back(parse_object(f.element("artifacts", i)));
    if (!f.has("recipients")) f.fail("recipients", "required field is missing");
    if (f.raw().at("recipients").is_array() && f.raw().at("recipients").size() > kIndexMaxRecipients)
        f.fail("recipients", "more than " + std::to_string(kIndexMaxRecipients) + " recipients");
    x.recipients = f.strings_or("recipients", {});
    for (std::size_t i = 0; i < x.recipients.size(); ++i)
        if (!valid_fingerprint(x.recipients[i]))
            f.fail("recipients/" + std::to_string(i), "expected a key fingerprint \"SHA256:<base64>\"");
    if (x.encryption == "age" && x.recipients.empty())
        f.fail("recipients", "an encrypted backup names at least one recipient");
    if (x.encryption == "none" && !x.recipients.empty())
        f.fail("recipients", "a backup without encryption has no recipients");
    if (f.has("signer") != f.has("signature"))
        f.fail(f.has("signer") ? "signature" : "signer", "signer and signature go together: one is missing");
    if (f.has("signer")) {
        x.signer = f.string("signer");
        try {
            io::SigningPublicKey::parse(x.signer);
        } catch (const Error& e) {
            f.fail("signer", e.what());
        }
        x.signature = f.string("signature");
        if (!io::parse_signature(x.signature))
            f.fail("signature", "expected 64 bytes of canonical unpadded base64");
    }
    return x;
}

}  // namespace

BackupIndex make_index(const Manifest& m, const IndexObject& manifest_object,
                       const std::vector<std::string>& recipient_fingerprints) {
    if (!valid_host(m.host))
        throw Error(Kind::Config,
                    "backup index: host name " + describe_json(m.host) +
                        " cannot be pinned in encryption.trusted_hosts (letters, digits, '.', '-', '_')");
    BackupIndex x;
    x.id = m.id;
    x.status = m.status;
    x.started_at = m.started_at;
    x.finished_at = m.finished_at;
    x.host = m.host;
    x.encryption = recipient_fingerprints.empty() ? "none" : "age";
    x.manifest = manifest_object;
    for (const auto& a : m.artifacts) x.artifacts.push_back({a.path, a.size, a.sha256});
    x.recipients = recipient_fingerprints;
    return x;
}

std::string signed_bytes(const BackupIndex& index) {
    // nlohmann's default object type sorts keys, so dump() is canonical.
    return std::string(kSignatureDomain) + body_json(index).dump();
}

void sign_index(BackupIndex& index, const io::SigningKey& key) {
    index.signer = key.public_key().str();
    index.signature.clear();
    index.signature = io::signature_str(key.sign(io::as_bytes(signed_bytes(index))));
}

IndexTrust verify_index(const BackupIndex& index, const io::TrustedSigners& trusted,
                        const VerifyIndexOptions& options) {
    const std::string name = "backup " + index.id + " (host " + index.host + ")";
    if (!options.expected_id.empty() && index.id != options.expected_id)
        throw Error(Kind::Verification, "backup " + options.expected_id + ": its index names backup " +
                                            index.id + ": the index was copied from another backup");
    if (!index.is_signed()) {
        if (options.allow_unsigned) return IndexTrust::Unsigned;
        throw Error(Kind::Verification, name +
                                            ": the index is not signed: restore it only if you trust "
                                            "whoever could write the backup dir, with --allow-unsigned");
    }
    io::SigningPublicKey signer;
    try {
        signer = io::SigningPublicKey::parse(index.signer);
    } catch (const Error&) {
        throw Error(Kind::Verification, name + ": the index's signer is not an ed25519 public key");
    }
    auto it = trusted.find(index.host);
    if (it == trusted.end() || std::find(it->second.begin(), it->second.end(), signer) == it->second.end())
        throw Error(Kind::Verification, name + ": signed by " + signer.fingerprint() +
                                            ", a key not pinned for host " + index.host +
                                            ": if that host's key is genuine, add \"" + signer.str() +
                                            "\" to encryption.trusted_hosts." + index.host);
    auto sig = io::parse_signature(index.signature);
    if (!sig || !io::verify_signature(signer, io::as_bytes(signed_bytes(index)), *sig))
        throw Error(Kind::Verification, name + ": the index signature does not verify under host " +
                                            index.host + "'s pinned key: the index was modified or forged");
    return IndexTrust::Signed;
}

void check_unindexed_backup(const std::string& id, const VerifyIndexOptions& options) {
    if (!options.allow_unsigned)
        throw Error(Kind::Verification, "backup " + id +
                                            ": has no signed index (written before indexes existed): "
                                            "restore it only with --allow-unsigned");
}

json to_json(const BackupIndex& index) {
    json j = body_json(index);
    if (!index.signature.empty()) j["signature"] = index.signature;
    return j;
}

std::string serialize(const BackupIndex& index) {
    return to_json(index).dump(2) + "\n";
}

BackupIndex parse_index(std::string_view text, const std::string& what) {
    if (text.size() > kIndexMaxBytes)
        throw Error(Kind::Verification, what + ": larger than the " + std::to_string(kIndexMaxBytes >> 20) +
                                            " MiB an index may have");
    json j = parse_json_document(text, what, Kind::Verification);
    try {
        return parse_index_json(j, what);
    } catch (const json::exception& e) {
        throw Error(Kind::Verification, what + ": " + e.what());
    }
}

std::string index_file_name(const std::string& id) {
    return "index_" + id + ".json";
}

}  // namespace nightjar
