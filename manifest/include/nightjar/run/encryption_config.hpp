#pragma once
// The `encryption` section of the config file: who backups are encrypted to, which identity this host
// decrypts with, which hosts' signing keys it trusts, and where this host's signing key lives. Parsed fail
// closed: a section that is present but cannot give a usable recipient list is a Kind::Config error, so a
// backup never falls back to cleartext. Messages name the key and its JSON pointer, never a secret.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nightjar/core/json_fields.hpp"
#include "nightjar/io/age.hpp"
#include "nightjar/io/signing.hpp"

namespace nightjar {

// The signing key file name used when `signing_key_file` is not given: beside the config file.
inline constexpr std::string_view kDefaultSigningKeyName = "nightjar-signing.key";

struct EncryptionConfig {
    std::vector<io::AgeRecipient> recipients;  // `recipients` then `recipients_file`; never empty
    std::filesystem::path recipients_file;     // where some came from ("" when none)
    std::filesystem::path identity_file;       // AGE-SECRET-KEY-1… file, 0600; "" on backup-only hosts
    std::vector<io::AgeIdentity> identities;   // read from identity_file when given
    io::TrustedSigners trusted_hosts;          // pinned signing keys, for restore and verify
    std::filesystem::path signing_key_file;    // this host's Ed25519 key, created on first backup

    // The fingerprints (io::key_fingerprint) of the recipients, for the backup index.
    std::vector<std::string> recipient_fingerprints() const;
    // What a decrypter tries: the identities; Kind::Config naming `encryption.identity_file` when none.
    io::AgeIdentities age_identities() const;
};

// Parses an `encryption` object. `config_source` is the config file (its directory holds the default
// signing key); `what` prefixes messages like the config's ("config /etc/nightjar.json") and `pointer` is
// the section's JSON pointer ("/encryption"). Reads recipients_file and identity_file now, so a missing or
// bad file fails at load time, before anything is written. Kind::Config for every failure:
// "<what>: <pointer>/<key>: <what is wrong>: <what to do>".
EncryptionConfig parse_encryption_config(const nlohmann::json& j, const std::string& what,
                                         const std::string& pointer,
                                         const std::filesystem::path& config_source);
// The same for the section as config.cpp holds it: `parse_encryption_config(*f.optional_object(
// "encryption"), source)`; messages carry that JsonFields' `what` and pointer.
EncryptionConfig parse_encryption_config(const JsonFields& f, const std::filesystem::path& config_source);

// Reads a recipients file: one `age1…` recipient a line, `#` comments and blank lines skipped, at most
// 1 MiB. Kind::Config "<what>: <path>:<line>: …" for a bad line, a missing or empty file.
std::vector<io::AgeRecipient> read_recipients_file(const std::filesystem::path& path,
                                                   const std::string& what);

// Reads an identity file: `AGE-SECRET-KEY-1…` lines, `#` comments and blank lines skipped, mode 0600 (or
// 0400) and owned by us, at most 1 MiB; the text is wiped after parsing. `what` names it when it cannot be
// read ("identity file", "identity file (--identity)"); Kind::Config "identity file <path>:<line>: …" for a
// bad line, and when it holds no identity.
std::vector<io::AgeIdentity> read_identity_file(const std::filesystem::path& path, const std::string& what);

}  // namespace nightjar
