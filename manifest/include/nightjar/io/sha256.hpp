#pragma once
#include <array>
#include <memory>
#include <string>

#include "nightjar/io/filter.hpp"

namespace nightjar::io {

// Incremental SHA-256 through OpenSSL EVP.
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void update(Bytes data);
    // Finalises once; later calls return the same digest.
    std::string hex();

private:
    struct Ctx;
    std::unique_ptr<Ctx> ctx_;
    std::string hex_;
};

std::string sha256_hex(Bytes data);
inline std::string sha256_hex(std::string_view s) {
    return sha256_hex(as_bytes(s));
}
bool is_sha256_hex(std::string_view s);

// Observer: the digest of everything that passed.
class Sha256Filter final : public Filter {
public:
    Bytes process(Bytes in, std::vector<std::byte>&) override {
        sha_.update(in);
        return in;
    }
    std::string hex() { return sha_.hex(); }

private:
    Sha256 sha_;
};

// Observer: the number of bytes that passed.
class SizeFilter final : public Filter {
public:
    Bytes process(Bytes in, std::vector<std::byte>&) override {
        bytes_ += in.size();
        return in;
    }
    std::uint64_t bytes() const { return bytes_; }

private:
    std::uint64_t bytes_ = 0;
};

}  // namespace nightjar::io
