#include "nightjar/io/sha256.hpp"

#include <openssl/evp.h>

#include "nightjar/core/error.hpp"

namespace nightjar::io {

struct Sha256::Ctx {
    EVP_MD_CTX* md = nullptr;
    ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
    ctx_->md = EVP_MD_CTX_new();
    if (!ctx_->md || EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1)
        throw Error(Kind::Internal, "sha256: OpenSSL could not initialise a digest context");
}

Sha256::~Sha256() = default;

void Sha256::update(Bytes data) {
    if (!hex_.empty()) throw Error(Kind::Internal, "sha256: update after the digest was taken");
    if (EVP_DigestUpdate(ctx_->md, data.data(), data.size()) != 1)
        throw Error(Kind::Internal, "sha256: OpenSSL digest update failed");
}

std::string Sha256::hex() {
    if (hex_.empty()) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (EVP_DigestFinal_ex(ctx_->md, digest, &len) != 1)
            throw Error(Kind::Internal, "sha256: OpenSSL digest final failed");
        static const char* digits = "0123456789abcdef";
        for (unsigned i = 0; i < len; ++i) {
            hex_.push_back(digits[digest[i] >> 4]);
            hex_.push_back(digits[digest[i] & 15]);
        }
    }
    return hex_;
}

std::string sha256_hex(Bytes data) {
    Sha256 sha;
    sha.update(data);
    return sha.hex();
}

bool is_sha256_hex(std::string_view s) {
    if (s.size() != 64) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

}  // namespace nightjar::io
