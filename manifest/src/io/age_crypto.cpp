// The primitives age needs, on OpenSSL 3.0 EVP: HKDF, HMAC, ChaCha20-Poly1305, X25519.
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <memory>

#include "age_internal.hpp"

namespace nightjar::io::age_detail {

namespace {

[[noreturn]] void openssl_fail(const char* what) {
    throw Error(Kind::Internal, std::string("age: OpenSSL ") + what + " failed");
}

const unsigned char* uc(Bytes b) {
    return reinterpret_cast<const unsigned char*>(b.data());
}
unsigned char* uc(std::span<std::byte> b) {
    return reinterpret_cast<unsigned char*>(b.data());
}

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct CipherCtxFree {
    void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct KdfFree {
    void operator()(EVP_KDF* p) const { EVP_KDF_free(p); }
};
struct KdfCtxFree {
    void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
};
struct MacFree {
    void operator()(EVP_MAC* p) const { EVP_MAC_free(p); }
};
struct MacCtxFree {
    void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};

std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> chacha_ctx(Bytes key, Bytes nonce, int enc) {
    std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx(EVP_CIPHER_CTX_new());
    if (!ctx || key.size() != 32 || nonce.size() != 12) openssl_fail("ChaCha20-Poly1305 setup");
    if (EVP_CipherInit_ex(ctx.get(), EVP_chacha20_poly1305(), nullptr, uc(key), uc(nonce), enc) != 1)
        openssl_fail("ChaCha20-Poly1305 init");
    return ctx;
}

}  // namespace

void fail(AgeFailure failure, const std::string& message) {
    throw AgeError(failure, message);
}

void random_bytes(std::span<std::byte> out) {
    if (RAND_bytes(uc(out), static_cast<int>(out.size())) != 1) openssl_fail("RAND_bytes");
}

void wipe(std::span<std::byte> bytes) {
    OPENSSL_cleanse(bytes.data(), bytes.size());
}

std::vector<std::byte> hkdf_sha256(Bytes ikm, Bytes salt, std::string_view info, std::size_t length) {
    std::unique_ptr<EVP_KDF, KdfFree> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
    if (!kdf) openssl_fail("HKDF fetch");
    std::unique_ptr<EVP_KDF_CTX, KdfCtxFree> ctx(EVP_KDF_CTX_new(kdf.get()));
    if (!ctx) openssl_fail("HKDF context");
    char digest[] = "SHA256";
    OSSL_PARAM params[5];
    std::size_t n = 0;
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
    params[n++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::byte*>(ikm.data()), ikm.size());
    // An empty salt is HKDF's default (a hash-length string of zeros), so it is simply left out.
    if (!salt.empty())
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                        const_cast<std::byte*>(salt.data()), salt.size());
    params[n++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size());
    params[n] = OSSL_PARAM_construct_end();
    std::vector<std::byte> out(length);
    if (EVP_KDF_derive(ctx.get(), uc(std::span<std::byte>(out)), out.size(), params) != 1)
        openssl_fail("HKDF");
    return out;
}

Key32 hmac_sha256(Bytes key, Bytes data) {
    std::unique_ptr<EVP_MAC, MacFree> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
    if (!mac) openssl_fail("HMAC fetch");
    std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_new(mac.get()));
    if (!ctx) openssl_fail("HMAC context");
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    Key32 out{};
    std::size_t len = 0;
    if (EVP_MAC_init(ctx.get(), uc(key), key.size(), params) != 1 ||
        EVP_MAC_update(ctx.get(), uc(data), data.size()) != 1 ||
        EVP_MAC_final(ctx.get(), uc(std::span<std::byte>(out)), &len, out.size()) != 1 || len != out.size())
        openssl_fail("HMAC-SHA256");
    return out;
}

std::vector<std::byte> chacha_seal(Bytes key, Bytes nonce, Bytes plaintext) {
    auto ctx = chacha_ctx(key, nonce, 1);
    std::vector<std::byte> out(plaintext.size() + kTagSize);
    int len = 0;
    if (!plaintext.empty() && (EVP_CipherUpdate(ctx.get(), uc(std::span<std::byte>(out)), &len, uc(plaintext),
                                                static_cast<int>(plaintext.size())) != 1 ||
                               static_cast<std::size_t>(len) != plaintext.size()))
        openssl_fail("ChaCha20-Poly1305 seal");
    int fin = 0;
    if (EVP_CipherFinal_ex(ctx.get(), uc(std::span<std::byte>(out)) + len, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize),
                            out.data() + plaintext.size()) != 1)
        openssl_fail("ChaCha20-Poly1305 tag");
    return out;
}

std::optional<std::vector<std::byte>> chacha_open(Bytes key, Bytes nonce, Bytes sealed) {
    if (sealed.size() < kTagSize) return std::nullopt;
    auto ctx = chacha_ctx(key, nonce, 0);
    std::size_t n = sealed.size() - kTagSize;
    std::vector<std::byte> out(n);
    int len = 0;
    if (n > 0 && (EVP_CipherUpdate(ctx.get(), uc(std::span<std::byte>(out)), &len, uc(sealed),
                                   static_cast<int>(n)) != 1 ||
                  static_cast<std::size_t>(len) != n))
        openssl_fail("ChaCha20-Poly1305 open");
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize),
                            const_cast<std::byte*>(sealed.data() + n)) != 1)
        openssl_fail("ChaCha20-Poly1305 tag");
    int fin = 0;
    if (EVP_CipherFinal_ex(ctx.get(), uc(std::span<std::byte>(out)) + len, &fin) != 1) {
        wipe(out);
        return std::nullopt;
    }
    return out;
}

Key32 x25519_public(const Key32& secret) {
    std::unique_ptr<EVP_PKEY, PkeyFree> key(
        EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, uc(Bytes(secret)), secret.size()));
    if (!key) openssl_fail("X25519 key");
    Key32 pub{};
    std::size_t len = pub.size();
    if (EVP_PKEY_get_raw_public_key(key.get(), uc(std::span<std::byte>(pub)), &len) != 1 || len != pub.size())
        openssl_fail("X25519 public key");
    return pub;
}

std::optional<Key32> x25519_shared(const Key32& secret, const Key32& peer_public) {
    std::unique_ptr<EVP_PKEY, PkeyFree> key(
        EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, uc(Bytes(secret)), secret.size()));
    std::unique_ptr<EVP_PKEY, PkeyFree> peer(
        EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, uc(Bytes(peer_public)), peer_public.size()));
    if (!key || !peer) openssl_fail("X25519 key");
    std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
    if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1) openssl_fail("X25519 derive");
    Key32 shared{};
    std::size_t len = shared.size();
    // OpenSSL refuses an all-zero result (a low-order peer share): derive fails, and so do we.
    if (EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1 ||
        EVP_PKEY_derive(ctx.get(), uc(std::span<std::byte>(shared)), &len) != 1 || len != shared.size())
        return std::nullopt;
    Key32 zero{};
    if (CRYPTO_memcmp(shared.data(), zero.data(), zero.size()) == 0) return std::nullopt;
    return shared;
}

}  // namespace nightjar::io::age_detail
