#pragma once
// The age v1 file format (age-encryption.org/v1) on OpenSSL EVP: keys, a streaming encrypter and decrypter,
// and a structure check that needs no key. X25519 recipients for writing; X25519 and scrypt for reading.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nightjar/core/error.hpp"
#include "nightjar/io/filter.hpp"

namespace nightjar::io {

// Payload chunk size of the STREAM construction (plaintext bytes per chunk).
inline constexpr std::size_t kAgeChunkSize = 64 * 1024;

// Which way an age file failed to decrypt; every one is a Kind::Verification error.
enum class AgeFailure {
    NoMatch,  // no identity opens any stanza
    Header,   // malformed or unsupported header
    Hmac,     // header MAC mismatch
    Payload,  // payload chunk truncated, forged, reordered, or followed by data
};

class AgeError : public Error {
public:
    AgeError(AgeFailure failure, const std::string& message)
        : Error(Kind::Verification, message), failure_(failure) {}
    AgeFailure failure() const noexcept { return failure_; }

private:
    AgeFailure failure_;
};

// An `age1…` X25519 recipient (public key).
struct AgeRecipient {
    std::array<std::byte, 32> key{};
    // Kind::Config "age: recipient: …" when not a valid Bech32 age1 recipient (the text is not echoed).
    static AgeRecipient parse(std::string_view text);
    std::string str() const;
};

// An `AGE-SECRET-KEY-1…` X25519 identity (secret key). Wiped on destruction.
class AgeIdentity {
public:
    static AgeIdentity generate();
    // Kind::Config "age: identity: …"; the message never contains the text.
    static AgeIdentity parse(std::string_view text);
    AgeIdentity(const AgeIdentity&) = default;
    AgeIdentity& operator=(const AgeIdentity&) = default;
    ~AgeIdentity();
    AgeRecipient recipient() const;
    // The secret in Bech32: write it only where a secret belongs.
    std::string secret_str() const;
    const std::array<std::byte, 32>& secret() const { return secret_; }

private:
    AgeIdentity() = default;
    std::array<std::byte, 32> secret_{};
};

// Reads identities from an age identity file: one per line, `#` comments and blank lines skipped.
// Kind::Config "age: identity file <path>:<line>: …" (never the line's content); at least one identity,
// at most 1 MiB of file.
std::vector<AgeIdentity> read_identity_file(const std::filesystem::path& path);

// What a decrypter may try, in order: every X25519 identity, then the passphrase for an scrypt stanza.
struct AgeIdentities {
    std::vector<AgeIdentity> x25519;        // X25519 identities (none by default)
    std::optional<std::string> passphrase;  // for an scrypt stanza (none by default)
    int max_scrypt_work_factor = 22;        // larger log2(N) is a header failure (22: 4 GiB of scrypt memory)
};

// Encrypts to every recipient. The header is emitted with the first output; plaintext is sealed in
// 64 KiB chunks, the last one (possibly full, possibly empty) marked final at finish().
// The constructor throws Kind::Config with no recipient, before any byte exists.
class AgeEncryptFilter final : public Filter {
public:
    explicit AgeEncryptFilter(const std::vector<AgeRecipient>& recipients);
    ~AgeEncryptFilter() override;
    Bytes process(Bytes in, std::vector<std::byte>& scratch) override;
    Bytes finish(std::vector<std::byte>& scratch) override;

private:
    struct State;
    std::unique_ptr<State> state_;
};

// Decrypts into `next`: header parsed and authenticated before any payload byte, then each chunk's
// plaintext is written only once that chunk authenticates. Errors are AgeError. finish() finishes `next`
// only when the stream ended with its final chunk and nothing after it.
class AgeDecryptWriter final : public Writer {
public:
    AgeDecryptWriter(AgeIdentities identities, Writer& next);
    ~AgeDecryptWriter() override;
    void write(Bytes data) override;
    void finish() override;

private:
    struct State;
    std::unique_ptr<State> state_;
};

// The same as a filter (for a FilteredReader/FilteredWriter chain).
class AgeDecryptFilter final : public Filter {
public:
    explicit AgeDecryptFilter(AgeIdentities identities);
    ~AgeDecryptFilter() override;
    Bytes process(Bytes in, std::vector<std::byte>& scratch) override;
    Bytes finish(std::vector<std::byte>& scratch) override;

private:
    struct Sink;
    std::unique_ptr<Sink> sink_;
    std::unique_ptr<AgeDecryptWriter> writer_;
};

// What a key-less structure check learned.
struct AgeStructure {
    std::vector<std::string> stanza_types;  // in header order
    std::uint64_t header_bytes = 0;         // through the MAC line
    std::uint64_t payload_bytes = 0;        // nonce and chunks
    std::uint64_t chunks = 0;               // payload chunks the length implies
};

// Parses and validates the header (grammar, canonical base64, known stanza shapes) and checks that the
// payload length is that of a chunked stream. Authenticates nothing. Errors are AgeError.
AgeStructure check_age_structure(Reader& src);

}  // namespace nightjar::io
