// Ed25519 keys, signatures and key files on OpenSSL EVP.
#include "nightjar/io/signing.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cerrno>
#include <memory>

#include "age_internal.hpp"
#include "nightjar/io/secret_file.hpp"

namespace nightjar::io {

namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

const unsigned char* uc(const std::byte* p) {
    return reinterpret_cast<const unsigned char*>(p);
}

[[noreturn]] void internal(const char* what) {
    throw Error(Kind::Internal, std::string("signing: OpenSSL ") + what + " failed");
}

Pkey private_pkey(const std::array<std::byte, 32>& seed) {
    Pkey k(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, uc(seed.data()), seed.size()));
    if (!k) internal("EVP_PKEY_new_raw_private_key");
    return k;
}

// The secret line's value, when the text is a key file.
std::optional<std::array<std::byte, 32>> parse_key_file(std::string& text) {
    std::optional<std::array<std::byte, 32>> seed;
    std::size_t pos = 0;
    int secrets = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string_view line(text.data() + pos, end - pos);
        pos = end + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty() || line[0] == '#') continue;
        if (!line.starts_with(kSigningSecretPrefix) || ++secrets > 1) return std::nullopt;
        auto decoded = age_detail::base64_decode(line.substr(kSigningSecretPrefix.size()));
        if (!decoded || decoded->size() != 32) {
            if (decoded) age_detail::wipe(*decoded);
            return std::nullopt;
        }
        seed.emplace();
        std::copy(decoded->begin(), decoded->end(), seed->begin());
        age_detail::wipe(*decoded);
    }
    return seed;
}

}  // namespace

std::string key_fingerprint(Bytes raw_public_key) {
    std::array<std::byte, 32> digest{};
    unsigned int len = 0;
    if (EVP_Digest(raw_public_key.data(), raw_public_key.size(),
                   reinterpret_cast<unsigned char*>(digest.data()), &len, EVP_sha256(), nullptr) != 1 ||
        len != digest.size())
        internal("EVP_Digest");
    return "SHA256:" + age_detail::base64_encode(digest);
}

SigningPublicKey SigningPublicKey::parse(std::string_view text) {
    if (!text.starts_with(kSigningPublicKeyPrefix))
        throw Error(Kind::Config, "signing key: expected \"ed25519:\" followed by the base64 public key");
    auto decoded = age_detail::base64_decode(text.substr(kSigningPublicKeyPrefix.size()));
    if (!decoded || decoded->size() != 32)
        throw Error(
            Kind::Config,
            "signing key: the public key after \"ed25519:\" is not 32 bytes of canonical unpadded base64");
    SigningPublicKey k;
    std::copy(decoded->begin(), decoded->end(), k.key.begin());
    return k;
}

std::string SigningPublicKey::str() const {
    return std::string(kSigningPublicKeyPrefix) + age_detail::base64_encode(key);
}

std::string SigningPublicKey::fingerprint() const {
    return key_fingerprint(key);
}

std::string signature_str(const Signature& signature) {
    return age_detail::base64_encode(signature);
}

std::optional<Signature> parse_signature(std::string_view text) {
    auto decoded = age_detail::base64_decode(text);
    if (!decoded || decoded->size() != kSignatureSize) return std::nullopt;
    Signature s{};
    std::copy(decoded->begin(), decoded->end(), s.begin());
    return s;
}

bool verify_signature(const SigningPublicKey& key, Bytes message, Bytes signature) {
    if (signature.size() != kSignatureSize) return false;
    Pkey pk(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, uc(key.key.data()), key.key.size()));
    if (!pk) return false;  // not a point on the curve
    MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx) internal("EVP_MD_CTX_new");
    if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pk.get()) != 1) return false;
    return EVP_DigestVerify(ctx.get(), uc(signature.data()), signature.size(), uc(message.data()),
                            message.size()) == 1;
}

SigningKey SigningKey::generate() {
    SigningKey k;
    age_detail::random_bytes(k.seed_);
    k.derive_public();
    return k;
}

void SigningKey::derive_public() {
    Pkey pk = private_pkey(seed_);
    std::size_t len = public_.key.size();
    if (EVP_PKEY_get_raw_public_key(pk.get(), reinterpret_cast<unsigned char*>(public_.key.data()), &len) !=
            1 ||
        len != public_.key.size())
        internal("EVP_PKEY_get_raw_public_key");
}

SigningKey::~SigningKey() {
    age_detail::wipe(seed_);
}

Signature SigningKey::sign(Bytes message) const {
    Pkey pk = private_pkey(seed_);
    MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx) internal("EVP_MD_CTX_new");
    if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pk.get()) != 1)
        internal("EVP_DigestSignInit");
    Signature sig{};
    std::size_t len = sig.size();
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, uc(message.data()),
                       message.size()) != 1 ||
        len != sig.size())
        internal("EVP_DigestSign");
    return sig;
}

std::string SigningKey::file_text() const {
    return "# nightjar signing key (Ed25519): signs this host's backup indexes; never copy it off the host\n"
           "# public key: " +
           public_.str() + "\n" + std::string(kSigningSecretPrefix) + age_detail::base64_encode(seed_) + "\n";
}

SigningKey SigningKey::load(const std::filesystem::path& path) {
    std::string text = read_secret_file(path, {.max_bytes = 4096, .what = "signing key file"});
    auto seed = parse_key_file(text);
    wipe_string(text);
    if (!seed)
        throw Error(Kind::Config, "signing key file " + path.string() +
                                      ": not a nightjar Ed25519 signing key (one " +
                                      std::string(kSigningSecretPrefix) + " line expected)");
    SigningKey k;
    k.seed_ = *seed;
    age_detail::wipe(*seed);
    k.derive_public();
    return k;
}

SigningKey SigningKey::create(const std::filesystem::path& path) {
    SigningKey k = generate();
    std::string text = k.file_text();
    try {
        create_secret_file(path, text);
    } catch (...) {
        wipe_string(text);
        throw;
    }
    wipe_string(text);
    return k;
}

SigningKey SigningKey::load_or_create(const std::filesystem::path& path, bool* created) {
    if (created) *created = false;
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
        try {
            SigningKey k = create(path);
            if (created) *created = true;
            return k;
        } catch (const Error&) {
            // Another run created it first: use that one. Anything else is the error to report.
            if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec))) throw;
        }
    }
    return load(path);
}

}  // namespace nightjar::io
