#pragma once
// The backup index: the small plaintext document beside an encrypted manifest. It carries what retention,
// listing, locking and offsite checks need without a key (id, status, times, host, the stored artifacts'
// paths, sizes and SHA-256s, the recipients' fingerprints) and nothing about content: no component, table
// or file names, no row counts, no content digests. It is signed with the host's Ed25519 key, and a restore
// host accepts it only under a key pinned for the host it names.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "nightjar/io/signing.hpp"

namespace nightjar {

inline constexpr int kIndexSchema = 1;
// An index larger than this is refused before it is parsed.
inline constexpr std::size_t kIndexMaxBytes = 16u << 20;
// More stored objects than this in one backup is refused (real backups have a handful to a few hundred).
inline constexpr std::size_t kIndexMaxArtifacts = 100000;
inline constexpr std::size_t kIndexMaxRecipients = 256;

// One stored object: an artifact, the encrypted manifest, or a rotation header.
struct IndexObject {
    std::string path;        // relative to the backup dir: "<id>/<file>"
    std::uint64_t size = 0;  // stored bytes
    std::string sha256;      // of the stored bytes
};

struct BackupIndex {
    int schema = kIndexSchema;
    std::string id;           // backup id
    std::string status;       // "complete" | "partial"
    std::string started_at;   // RFC 3339 UTC
    std::string finished_at;  // RFC 3339 UTC
    std::string host;  // the host that wrote it: the trusted_hosts entry its signer must be pinned under
    std::string encryption = "age";       // "age" | "none"
    IndexObject manifest;                 // the (encrypted) manifest object
    std::vector<IndexObject> artifacts;   // every stored artifact
    std::vector<std::string> recipients;  // fingerprints (io::key_fingerprint) of the age recipients
    std::string signer;                   // "ed25519:…" public key; "" when unsigned (legacy)
    std::string signature;                // base64 Ed25519 signature over signed_bytes(); "" when unsigned

    bool is_signed() const { return !signer.empty(); }
};

struct Manifest;

// The index of a backup whose manifest is `m`: id, status, times and host from it, each artifact's path,
// stored size and stored SHA-256 (nothing else of it), the manifest object as stored, and the recipients'
// fingerprints ("none" encryption when there are none). Unsigned: sign_index() it. Kind::Config when the
// manifest's host is not a name trusted_hosts could pin.
BackupIndex make_index(const Manifest& m, const IndexObject& manifest_object,
                       const std::vector<std::string>& recipient_fingerprints);

// The bytes a signature covers: a domain label, then the canonical JSON of every field but `signature`.
std::string signed_bytes(const BackupIndex& index);
// Sets signer and signature.
void sign_index(BackupIndex& index, const io::SigningKey& key);

struct VerifyIndexOptions {
    bool allow_unsigned = false;  // --allow-unsigned: accept an index without a signature (legacy backups)
    std::string expected_id;      // the backup id its file name says ("" = not checked); a signed index
                                  // copied over another backup's is refused
};

enum class IndexTrust {
    Signed,    // the signature verifies under a key pinned for index.host
    Unsigned,  // no signature, accepted because allow_unsigned
};

// Kind::Verification naming the backup and the host when: its id is not expected_id, the index is unsigned
// (unless allow_unsigned),
// its signer is not pinned for its host, or the signature does not verify (a bad signature is refused even
// with allow_unsigned).
IndexTrust verify_index(const BackupIndex& index, const io::TrustedSigners& trusted,
                        const VerifyIndexOptions& options = {});
// For a backup that has no index at all (written before indexes existed): Kind::Verification unless
// allow_unsigned.
void check_unindexed_backup(const std::string& id, const VerifyIndexOptions& options);

nlohmann::json to_json(const BackupIndex& index);
std::string serialize(const BackupIndex& index);
// Strict and total: any input gives a BackupIndex or a Kind::Verification error naming `what` and the JSON
// pointer of the bad field (size, depth, unknown fields, unsafe paths, malformed digests or keys). Parsing
// proves shape only; verify_index proves who wrote it.
BackupIndex parse_index(std::string_view text, const std::string& what);

std::string index_file_name(const std::string& id);  // "index_<id>.json"

}  // namespace nightjar
