// age keys: Bech32 (BIP-173) recipients and identities, key generation, identity files.
#include <fstream>

#include "age_internal.hpp"

namespace nightjar::io {

namespace {

constexpr std::string_view kCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
constexpr std::string_view kRecipientHrp = "age";
constexpr std::string_view kIdentityHrp = "age-secret-key-";
constexpr std::uintmax_t kMaxIdentityFile = 1 << 20;

std::uint32_t polymod(const std::vector<std::uint8_t>& values) {
    constexpr std::uint32_t kGen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
    std::uint32_t chk = 1;
    for (std::uint8_t v : values) {
        std::uint32_t top = chk >> 25;
        chk = ((chk & 0x1ffffff) << 5) ^ v;
        for (int i = 0; i < 5; ++i)
            if ((top >> i) & 1) chk ^= kGen[i];
    }
    return chk;
}

std::vector<std::uint8_t> hrp_expand(std::string_view hrp) {
    std::vector<std::uint8_t> out;
    for (char c : hrp) out.push_back(static_cast<std::uint8_t>(static_cast<unsigned char>(c) >> 5));
    out.push_back(0);
    for (char c : hrp) out.push_back(static_cast<std::uint8_t>(static_cast<unsigned char>(c) & 31));
    return out;
}

// Lower-case Bech32 of 32 bytes under `hrp` (lower case).
std::string bech32_encode(std::string_view hrp, const std::array<std::byte, 32>& data) {
    std::vector<std::uint8_t> five;
    unsigned acc = 0;
    int bits = 0;
    for (std::byte b : data) {
        acc = (acc << 8) | std::to_integer<unsigned>(b);
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            five.push_back(static_cast<std::uint8_t>((acc >> bits) & 31));
        }
    }
    if (bits > 0) five.push_back(static_cast<std::uint8_t>((acc << (5 - bits)) & 31));
    auto values = hrp_expand(hrp);
    values.insert(values.end(), five.begin(), five.end());
    values.insert(values.end(), 6, 0);
    std::uint32_t mod = polymod(values) ^ 1;
    std::string out(hrp);
    out += '1';
    for (std::uint8_t v : five) out += kCharset[v];
    for (int i = 0; i < 6; ++i) out += kCharset[(mod >> (5 * (5 - i))) & 31];
    return out;
}

// Decodes Bech32 with the expected (lower-case) hrp into 32 bytes; nullopt on any defect.
std::optional<std::array<std::byte, 32>> bech32_decode(std::string_view text, std::string_view hrp) {
    bool lower = false, upper = false;
    std::string s;
    for (char c : text) {
        if (c < 33 || c > 126) return std::nullopt;
        if (c >= 'a' && c <= 'z') lower = true;
        if (c >= 'A' && c <= 'Z') {
            upper = true;
            c = static_cast<char>(c - 'A' + 'a');
        }
        s += c;
    }
    if (lower && upper) return std::nullopt;
    std::size_t sep = s.rfind('1');
    if (sep == std::string::npos || std::string_view(s).substr(0, sep) != hrp || s.size() - sep - 1 < 6)
        return std::nullopt;
    std::vector<std::uint8_t> five;
    for (std::size_t i = sep + 1; i < s.size(); ++i) {
        auto pos = kCharset.find(s[i]);
        if (pos == std::string_view::npos) return std::nullopt;
        five.push_back(static_cast<std::uint8_t>(pos));
    }
    auto values = hrp_expand(hrp);
    values.insert(values.end(), five.begin(), five.end());
    if (polymod(values) != 1) return std::nullopt;
    five.resize(five.size() - 6);
    std::vector<std::byte> bytes;
    unsigned acc = 0;
    int bits = 0;
    for (std::uint8_t v : five) {
        acc = (acc << 5) | v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            bytes.push_back(static_cast<std::byte>((acc >> bits) & 0xff));
        }
    }
    // Strict padding: fewer than 5 bits left, all zero.
    if (bits >= 5 || (acc & ((1u << bits) - 1)) != 0 || bytes.size() != 32) return std::nullopt;
    std::array<std::byte, 32> out{};
    std::copy(bytes.begin(), bytes.end(), out.begin());
    age_detail::wipe(bytes);
    return out;
}

std::string to_upper(std::string s) {
    for (char& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return s;
}

}  // namespace

AgeRecipient AgeRecipient::parse(std::string_view text) {
    auto key = bech32_decode(text, kRecipientHrp);
    if (!key || !text.starts_with("age1"))
        throw Error(Kind::Config, "age: recipient: not a valid age1… X25519 recipient: check the public key");
    return AgeRecipient{*key};
}

std::string AgeRecipient::str() const {
    return bech32_encode(kRecipientHrp, key);
}

AgeIdentity AgeIdentity::generate() {
    AgeIdentity id;
    age_detail::random_bytes(id.secret_);
    return id;
}

AgeIdentity AgeIdentity::parse(std::string_view text) {
    auto key = bech32_decode(text, kIdentityHrp);
    if (!key || !text.starts_with("AGE-SECRET-KEY-1"))
        throw Error(Kind::Config, "age: identity: not a valid AGE-SECRET-KEY-1… X25519 identity");
    AgeIdentity id;
    id.secret_ = *key;
    age_detail::wipe(*key);
    return id;
}

AgeIdentity::~AgeIdentity() {
    age_detail::wipe(secret_);
}

AgeRecipient AgeIdentity::recipient() const {
    return AgeRecipient{age_detail::x25519_public(secret_)};
}

std::string AgeIdentity::secret_str() const {
    return to_upper(bech32_encode(kIdentityHrp, secret_));
}

std::vector<AgeIdentity> read_identity_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw Error(Kind::Config, "age: identity file " + path.string() + ": cannot be opened");
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    if (!ec && size > kMaxIdentityFile)
        throw Error(Kind::Config,
                    "age: identity file " + path.string() + ": larger than 1 MiB: not an identity file");
    std::vector<AgeIdentity> ids;
    std::string line;
    std::size_t number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::size_t start = line.find_first_not_of(" \t");
        if (start == std::string::npos || line[start] == '#') continue;
        std::size_t end = line.find_last_not_of(" \t");
        try {
            ids.push_back(AgeIdentity::parse(std::string_view(line).substr(start, end - start + 1)));
        } catch (const Error&) {
            age_detail::wipe(std::as_writable_bytes(std::span(line)));
            throw Error(Kind::Config, "age: identity file " + path.string() + ":" + std::to_string(number) +
                                          ": not an AGE-SECRET-KEY-1… identity");
        }
        age_detail::wipe(std::as_writable_bytes(std::span(line)));
    }
    if (in.bad()) throw Error(Kind::Config, "age: identity file " + path.string() + ": read failed");
    if (ids.empty()) throw Error(Kind::Config, "age: identity file " + path.string() + ": no identity in it");
    return ids;
}

}  // namespace nightjar::io
