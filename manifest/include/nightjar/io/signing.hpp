#pragma once
// Ed25519 signatures on OpenSSL EVP: a per-host signing key kept in a 0600 file, created on first use and
// never overwritten; public keys in a text form operators pin ("ed25519:<base64>") and a short fingerprint.
#include <array>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nightjar/core/error.hpp"
#include "nightjar/io/stream.hpp"

namespace nightjar::io {

inline constexpr std::string_view kSigningPublicKeyPrefix = "ed25519:";
inline constexpr std::string_view kSigningSecretPrefix = "NIGHTJAR-ED25519-SECRET-KEY:";
inline constexpr std::size_t kSignatureSize = 64;

using Signature = std::array<std::byte, kSignatureSize>;

// "SHA256:<unpadded base64 of SHA-256(raw)>", as ssh-keygen -l prints: for naming a public key briefly.
std::string key_fingerprint(Bytes raw_public_key);

// An Ed25519 public key.
struct SigningPublicKey {
    std::array<std::byte, 32> key{};
    // Kind::Config "signing key: …" when not "ed25519:" followed by 32 bytes of canonical unpadded base64.
    static SigningPublicKey parse(std::string_view text);
    std::string str() const;          // "ed25519:<base64>"
    std::string fingerprint() const;  // key_fingerprint(key)
    bool operator==(const SigningPublicKey&) const = default;
};

// Host name -> the signing public keys pinned for it (any one of them may sign for that host).
using TrustedSigners = std::map<std::string, std::vector<SigningPublicKey>>;

// A signature as text (unpadded base64) and back; nullopt unless exactly 64 bytes of canonical base64.
std::string signature_str(const Signature& signature);
std::optional<Signature> parse_signature(std::string_view text);

// True when `signature` is a valid Ed25519 signature of `message` by `key` (never throws for a bad one).
bool verify_signature(const SigningPublicKey& key, Bytes message, Bytes signature);

// An Ed25519 private key (the 32-byte seed). Wiped on destruction.
class SigningKey {
public:
    static SigningKey generate();
    // Reads a key file written by create()/load_or_create(): mode 0600 (or 0400) and owned by us, else
    // Kind::Config naming the path; the message never contains the key.
    static SigningKey load(const std::filesystem::path& path);
    // Writes a new key file (create-only, 0600, atomic); Kind::Storage when it exists.
    static SigningKey create(const std::filesystem::path& path);
    // The key at `path`, generating it on first use. `created` (when given) says whether it was generated.
    static SigningKey load_or_create(const std::filesystem::path& path, bool* created = nullptr);

    SigningKey(const SigningKey&) = default;
    SigningKey& operator=(const SigningKey&) = default;
    ~SigningKey();

    const SigningPublicKey& public_key() const { return public_; }
    Signature sign(Bytes message) const;
    // The key file's text: comments with the public key, then the secret line.
    std::string file_text() const;

private:
    SigningKey() = default;
    void derive_public();
    std::array<std::byte, 32> seed_{};
    SigningPublicKey public_;
};

}  // namespace nightjar::io
