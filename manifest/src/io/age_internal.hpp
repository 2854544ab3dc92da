#pragma once
// Pieces shared by the age modules: primitives on OpenSSL EVP, base64 and the header grammar.
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nightjar/io/age.hpp"

namespace nightjar::io::age_detail {

using Key32 = std::array<std::byte, 32>;
using FileKey = std::array<std::byte, 16>;

inline constexpr std::string_view kVersionLine = "age-encryption.org/v1";
inline constexpr std::size_t kTagSize = 16;
inline constexpr std::size_t kSealedChunkSize = kAgeChunkSize + kTagSize;
inline constexpr std::size_t kMaxHeaderLine = 4096;  // bytes per header line, newline excluded
inline constexpr std::size_t kMaxStanzas = 256;      // stanzas per header
inline constexpr std::size_t kMaxHeaderBytes = 1 << 20;

[[noreturn]] void fail(AgeFailure failure, const std::string& message);

// Primitives (OpenSSL EVP). Failures of the library itself throw Kind::Internal.
void random_bytes(std::span<std::byte> out);
std::vector<std::byte> hkdf_sha256(Bytes ikm, Bytes salt, std::string_view info, std::size_t length);
Key32 hmac_sha256(Bytes key, Bytes data);
std::vector<std::byte> chacha_seal(Bytes key, Bytes nonce, Bytes plaintext);
// nullopt when the tag does not authenticate.
std::optional<std::vector<std::byte>> chacha_open(Bytes key, Bytes nonce, Bytes sealed);
Key32 x25519_public(const Key32& secret);
// nullopt when the shared secret is all zeros (a low-order share).
std::optional<Key32> x25519_shared(const Key32& secret, const Key32& peer_public);
void wipe(std::span<std::byte> bytes);

// Standard base64 without padding; decoding is strict and canonical (nullopt otherwise).
std::string base64_encode(Bytes data);
std::optional<std::vector<std::byte>> base64_decode(std::string_view text);

struct Stanza {
    std::string type;
    std::vector<std::string> args;
    std::vector<std::byte> body;
};

struct Header {
    std::vector<Stanza> stanzas;
    std::string mac_input;  // the header through "---"
    Key32 mac{};
};

// Incremental header reader: feed bytes until done(); the rest of the input is payload.
class HeaderParser {
public:
    // Consumes from `in` what belongs to the header; returns how many bytes it took.
    std::size_t feed(Bytes in);
    bool done() const { return done_; }
    // At end of input with the header unfinished.
    [[noreturn]] void fail_truncated() const;
    Header& header() { return header_; }
    std::uint64_t bytes() const { return bytes_; }

private:
    void line(std::string_view text);
    std::string pending_;
    std::string text_;  // the header so far
    Header header_;
    bool done_ = false;
    bool seen_version_ = false;
    bool in_body_ = false;
    std::uint64_t bytes_ = 0;
};

// Shape checks of the stanza types we know (the same whether a key is at hand or not).
void check_x25519_stanza(const Stanza& s);
// Returns log2(N) after checking the shape.
int check_scrypt_stanza(const Stanza& s, int max_work_factor);

std::string format_stanza(const Stanza& s);
// Checks every stanza we know the shape of, with no key (an scrypt stanza must be alone).
void check_known_stanzas(const Header& h, int max_work_factor);

// The header MAC: HMAC-SHA-256 under HKDF(file key, "header") over the header through "---".
Key32 header_mac(const FileKey& file_key, std::string_view mac_input);
// A new X25519 stanza wrapping `file_key` for `r` (fresh ephemeral key). Kind::Config for a low-order key.
Stanza x25519_stanza(const FileKey& file_key, const AgeRecipient& r);
// The file key of a parsed header: the first identity that opens a stanza, then the header MAC checked.
// AgeError NoMatch / Hmac / Header otherwise.
FileKey open_file_key(const Header& h, const AgeIdentities& ids);

}  // namespace nightjar::io::age_detail
