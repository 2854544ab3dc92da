// age v1 streams: the encrypting filter, the decrypting writer, and the key-less structure check.
#include "nightjar/io/age.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <exception>

#include "age_internal.hpp"

namespace nightjar::io {

using namespace age_detail;

namespace {

constexpr std::string_view kX25519Info = "age-encryption.org/v1/X25519";
constexpr std::string_view kScryptLabel = "age-encryption.org/v1/scrypt";
constexpr std::size_t kNonceSize = 16;

Bytes view(const std::vector<std::byte>& v) {
    return Bytes(v.data(), v.size());
}

std::array<std::byte, 12> chunk_nonce(std::uint64_t counter, bool last) {
    std::array<std::byte, 12> n{};
    for (int i = 0; i < 8; ++i) n[10 - i] = static_cast<std::byte>((counter >> (8 * i)) & 0xff);
    n[11] = last ? std::byte{1} : std::byte{0};
    return n;
}

// nullopt: this stanza is not for this identity.
std::optional<FileKey> unwrap_x25519(const Stanza& s, const AgeIdentity& id) {
    check_x25519_stanza(s);
    Key32 share{};
    auto decoded = base64_decode(s.args[0]);
    std::copy(decoded->begin(), decoded->end(), share.begin());
    auto shared = x25519_shared(id.secret(), share);
    if (!shared)
        fail(AgeFailure::Header, "age: header: X25519 stanza has a low-order share: the file is forged");
    Key32 recipient = age_detail::x25519_public(id.secret());
    std::vector<std::byte> salt(share.begin(), share.end());
    salt.insert(salt.end(), recipient.begin(), recipient.end());
    auto wrap_key = hkdf_sha256(*shared, view(salt), kX25519Info, 32);
    wipe(*shared);
    std::array<std::byte, 12> zero_nonce{};
    auto opened = chacha_open(view(wrap_key), zero_nonce, view(s.body));
    wipe(wrap_key);
    if (!opened) return std::nullopt;
    FileKey fk{};
    std::copy(opened->begin(), opened->end(), fk.begin());
    wipe(*opened);
    return fk;
}

std::optional<FileKey> unwrap_scrypt(const Stanza& s, const std::string& passphrase, int max_work_factor) {
    int log_n = check_scrypt_stanza(s, max_work_factor);
    auto salt = base64_decode(s.args[0]);
    std::vector<std::byte> full_salt(
        reinterpret_cast<const std::byte*>(kScryptLabel.data()),
        reinterpret_cast<const std::byte*>(kScryptLabel.data()) + kScryptLabel.size());
    full_salt.insert(full_salt.end(), salt->begin(), salt->end());
    const std::uint64_t n = std::uint64_t{1} << log_n;
    const std::uint64_t r = 8, p = 1;
    const std::uint64_t maxmem = 128 * r * (n + p + 2) + 4096;
    Key32 key{};
    if (EVP_PBE_scrypt(passphrase.data(), passphrase.size(),
                       reinterpret_cast<const unsigned char*>(full_salt.data()), full_salt.size(), n, r, p,
                       maxmem, reinterpret_cast<unsigned char*>(key.data()), key.size()) != 1)
        throw Error(Kind::Internal,
                    "age: scrypt failed (work factor " + std::to_string(log_n) + "): out of memory?");
    std::array<std::byte, 12> zero_nonce{};
    auto opened = chacha_open(key, zero_nonce, view(s.body));
    wipe(key);
    if (!opened) return std::nullopt;
    FileKey fk{};
    std::copy(opened->begin(), opened->end(), fk.begin());
    wipe(*opened);
    return fk;
}

}  // namespace

namespace age_detail {

void check_known_stanzas(const Header& h, int max_work_factor) {
    for (const auto& s : h.stanzas) {
        if (s.type == "X25519") check_x25519_stanza(s);
        if (s.type == "scrypt") {
            if (h.stanzas.size() != 1)
                fail(AgeFailure::Header,
                     "age: header: an scrypt stanza must be the only one: the file is forged");
            check_scrypt_stanza(s, max_work_factor);
        }
    }
}

Key32 header_mac(const FileKey& file_key, std::string_view mac_input) {
    auto key = hkdf_sha256(file_key, {}, "header", 32);
    Key32 mac = hmac_sha256(view(key), as_bytes(mac_input));
    wipe(key);
    return mac;
}

Stanza x25519_stanza(const FileKey& file_key, const AgeRecipient& r) {
    Key32 eph{};
    random_bytes(eph);
    Key32 share = age_detail::x25519_public(eph);
    auto shared = x25519_shared(eph, r.key);
    wipe(eph);
    if (!shared) throw Error(Kind::Config, "age: encrypt: recipient " + r.str() + " is a low-order point");
    std::vector<std::byte> salt(share.begin(), share.end());
    salt.insert(salt.end(), r.key.begin(), r.key.end());
    auto wrap_key = hkdf_sha256(*shared, view(salt), kX25519Info, 32);
    wipe(*shared);
    std::array<std::byte, 12> zero_nonce{};
    Stanza s{.type = "X25519",
             .args = {base64_encode(share)},
             .body = chacha_seal(view(wrap_key), zero_nonce, file_key)};
    wipe(wrap_key);
    return s;
}

FileKey open_file_key(const Header& h, const AgeIdentities& ids) {
    check_known_stanzas(h, ids.max_scrypt_work_factor);
    std::optional<FileKey> fk;
    for (const auto& id : ids.x25519) {
        for (const auto& s : h.stanzas)
            if (s.type == "X25519" && (fk = unwrap_x25519(s, id))) break;
        if (fk) break;
    }
    if (!fk && ids.passphrase)
        for (const auto& s : h.stanzas)
            if (s.type == "scrypt" && (fk = unwrap_scrypt(s, *ids.passphrase, ids.max_scrypt_work_factor)))
                break;
    if (!fk)
        fail(AgeFailure::NoMatch, "age: no identity matches any of the " + std::to_string(h.stanzas.size()) +
                                      " recipient stanza(s): use the key the file was encrypted to");
    Key32 mac = header_mac(*fk, h.mac_input);
    if (CRYPTO_memcmp(mac.data(), h.mac.data(), mac.size()) != 0) {
        wipe(*fk);
        fail(AgeFailure::Hmac, "age: header MAC mismatch: the header was modified");
    }
    FileKey out = *fk;
    wipe(*fk);
    return out;
}

}  // namespace age_detail

// ---- encryption ----

struct AgeEncryptFilter::State {
    FileKey file_key{};
    std::vector<std::byte> payload_key;
    std::string header;  // pending until the first output
    bool header_sent = false;
    std::vector<std::byte> plain;  // at most one chunk
    std::uint64_t counter = 0;
    bool finished = false;
    ~State() {
        wipe(file_key);
        wipe(payload_key);
        wipe(plain);
    }
    void emit_header(std::vector<std::byte>& out) {
        if (header_sent) return;
        auto b = as_bytes(header);
        out.insert(out.end(), b.begin(), b.end());
        header_sent = true;
    }
    void seal(bool last, std::vector<std::byte>& out) {
        auto nonce = chunk_nonce(counter++, last);
        auto sealed = chacha_seal(view(payload_key), nonce, view(plain));
        out.insert(out.end(), sealed.begin(), sealed.end());
        wipe(plain);
        plain.clear();
    }
};

AgeEncryptFilter::AgeEncryptFilter(const std::vector<AgeRecipient>& recipients)
    : state_(std::make_unique<State>()) {
    if (recipients.empty())
        throw Error(Kind::Config, "age: encrypt: no recipient: give at least one age1… recipient");
    auto& st = *state_;
    random_bytes(st.file_key);
    std::string header = std::string(kVersionLine) + "\n";
    for (const auto& r : recipients) header += format_stanza(x25519_stanza(st.file_key, r));
    header += "---";
    Key32 mac = header_mac(st.file_key, header);
    header += " " + base64_encode(mac) + "\n";
    std::array<std::byte, kNonceSize> nonce{};
    random_bytes(nonce);
    auto nb = Bytes(nonce);
    header.append(as_chars(nb));
    st.payload_key = hkdf_sha256(st.file_key, nonce, "payload", 32);
    st.header = std::move(header);
    st.plain.reserve(kAgeChunkSize);
}

AgeEncryptFilter::~AgeEncryptFilter() = default;

Bytes AgeEncryptFilter::process(Bytes in, std::vector<std::byte>& scratch) {
    auto& st = *state_;
    if (st.finished) throw Error(Kind::Internal, "age: encrypt: data after finish");
    scratch.clear();
    st.emit_header(scratch);
    while (!in.empty()) {
        // A full chunk is sealed only once more data shows it is not the last.
        if (st.plain.size() == kAgeChunkSize) st.seal(false, scratch);
        std::size_t take = std::min(in.size(), kAgeChunkSize - st.plain.size());
        st.plain.insert(st.plain.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(take));
        in = in.subspan(take);
    }
    return view(scratch);
}

Bytes AgeEncryptFilter::finish(std::vector<std::byte>& scratch) {
    auto& st = *state_;
    scratch.clear();
    if (st.finished) return {};
    st.emit_header(scratch);
    st.seal(true, scratch);  // possibly full, empty only for an empty plaintext
    st.finished = true;
    return view(scratch);
}

// ---- decryption ----

struct AgeDecryptWriter::State {
    AgeIdentities ids;
    Writer& next;
    HeaderParser parser;
    bool header_ok = false;
    std::vector<std::byte> nonce;
    std::vector<std::byte> payload_key;
    std::vector<std::byte> buf;  // sealed bytes not yet opened (at most one chunk + 1 byte)
    std::uint64_t counter = 0;
    std::exception_ptr failure;  // the first error, raised again by any later call
    bool finished = false;
    State(AgeIdentities i, Writer& n) : ids(std::move(i)), next(n) {}
    ~State() {
        wipe(payload_key);
        if (ids.passphrase) wipe(std::as_writable_bytes(std::span(*ids.passphrase)));
    }

    void open_header() {
        file_key = open_file_key(parser.header(), ids);
        header_ok = true;
    }
    FileKey file_key{};

    // Opens the chunk at the front of buf (of `size` bytes); `at_end`: nothing follows it.
    void open_chunk(std::size_t size, bool at_end) {
        Bytes sealed(buf.data(), size);
        if (at_end && size < kSealedChunkSize) {
            if (size == kTagSize && counter != 0)
                fail(AgeFailure::Payload,
                     "age: payload: empty final chunk after chunk " + std::to_string(counter));
            auto out = chacha_open(view(payload_key), chunk_nonce(counter, true), sealed);
            if (!out)
                fail(AgeFailure::Payload,
                     "age: payload: chunk " + std::to_string(counter) + " fails to authenticate");
            release(*out, size);
            finished = true;
            return;
        }
        // A full chunk: normally not the last; a full final chunk is tried second.
        bool last = false;
        auto out = chacha_open(view(payload_key), chunk_nonce(counter, false), sealed);
        if (!out) {
            out = chacha_open(view(payload_key), chunk_nonce(counter, true), sealed);
            last = true;
        }
        if (!out)
            fail(AgeFailure::Payload,
                 "age: payload: chunk " + std::to_string(counter) + " fails to authenticate");
        release(*out, size);
        if (last) {
            finished = true;
            if (!at_end) fail(AgeFailure::Payload, "age: payload: data after the final chunk");
        } else if (at_end) {
            fail(AgeFailure::Payload, "age: payload: truncated after chunk " + std::to_string(counter - 1) +
                                          ": the final chunk is missing");
        }
    }
    void release(std::vector<std::byte>& out, std::size_t consumed) {
        ++counter;
        buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(consumed));
        if (!out.empty()) next.write(view(out));
        wipe(out);
    }

    void write(Bytes data) {
        if (!parser.done()) {
            data = data.subspan(parser.feed(data));
            if (!parser.done()) return;
        }
        if (nonce.size() < kNonceSize) {
            std::size_t take = std::min(data.size(), kNonceSize - nonce.size());
            nonce.insert(nonce.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
            data = data.subspan(take);
            if (nonce.size() < kNonceSize) return;
            open_header();
            payload_key = hkdf_sha256(file_key, view(nonce), "payload", 32);
            wipe(file_key);
        }
        while (!data.empty()) {
            if (finished) fail(AgeFailure::Payload, "age: payload: data after the final chunk");
            std::size_t take = std::min(data.size(), kSealedChunkSize + 1 - buf.size());
            buf.insert(buf.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
            data = data.subspan(take);
            if (buf.size() > kSealedChunkSize) open_chunk(kSealedChunkSize, false);
        }
    }

    void finish() {
        if (!parser.done()) parser.fail_truncated();
        if (nonce.size() < kNonceSize)
            fail(AgeFailure::Header, "age: header: payload nonce is missing or short");
        if (!finished) {
            if (buf.empty())
                fail(AgeFailure::Payload, counter == 0 ? std::string("age: payload: no chunk after the nonce")
                                                       : "age: payload: truncated after chunk " +
                                                             std::to_string(counter - 1) +
                                                             ": the final chunk is missing");
            open_chunk(buf.size(), true);
        }
        next.finish();
    }
};

AgeDecryptWriter::AgeDecryptWriter(AgeIdentities identities, Writer& next)
    : state_(std::make_unique<State>(std::move(identities), next)) {
    if (state_->ids.x25519.empty() && !state_->ids.passphrase)
        throw Error(Kind::Config, "age: decrypt: no identity and no passphrase given");
}

AgeDecryptWriter::~AgeDecryptWriter() = default;

void AgeDecryptWriter::write(Bytes data) {
    auto& st = *state_;
    if (st.failure) std::rethrow_exception(st.failure);
    try {
        st.write(data);
    } catch (...) {
        st.failure = std::current_exception();
        throw;
    }
}

void AgeDecryptWriter::finish() {
    auto& st = *state_;
    if (st.failure) std::rethrow_exception(st.failure);
    try {
        st.finish();
    } catch (...) {
        st.failure = std::current_exception();
        throw;
    }
}

struct AgeDecryptFilter::Sink final : Writer {
    std::vector<std::byte>* out = nullptr;
    void write(Bytes data) override { out->insert(out->end(), data.begin(), data.end()); }
    void finish() override {}
};

AgeDecryptFilter::AgeDecryptFilter(AgeIdentities identities)
    : sink_(std::make_unique<Sink>()),
      writer_(std::make_unique<AgeDecryptWriter>(std::move(identities), *sink_)) {}

AgeDecryptFilter::~AgeDecryptFilter() = default;

Bytes AgeDecryptFilter::process(Bytes in, std::vector<std::byte>& scratch) {
    scratch.clear();
    sink_->out = &scratch;
    writer_->write(in);
    return view(scratch);
}

Bytes AgeDecryptFilter::finish(std::vector<std::byte>& scratch) {
    scratch.clear();
    sink_->out = &scratch;
    writer_->finish();
    return view(scratch);
}

// ---- structure ----

AgeStructure check_age_structure(Reader& src) {
    HeaderParser parser;
    AgeStructure result;
    std::vector<std::byte> buf(kSealedChunkSize);
    std::uint64_t payload = 0;
    while (std::size_t n = src.read(buf)) {
        Bytes data(buf.data(), n);
        if (!parser.done()) data = data.subspan(parser.feed(data));
        payload += data.size();
    }
    if (!parser.done()) parser.fail_truncated();
    check_known_stanzas(parser.header(), 22);
    if (payload < kNonceSize) fail(AgeFailure::Header, "age: header: payload nonce is missing or short");
    for (const auto& s : parser.header().stanzas) result.stanza_types.push_back(s.type);
    result.header_bytes = parser.bytes();
    result.payload_bytes = payload;
    std::uint64_t sealed = payload - kNonceSize;
    if (sealed == 0) fail(AgeFailure::Payload, "age: payload: no chunk after the nonce");
    std::uint64_t full = sealed / kSealedChunkSize, rest = sealed % kSealedChunkSize;
    if (rest == 0) {
        result.chunks = full;
    } else {
        if (rest < kTagSize)
            fail(AgeFailure::Payload, "age: payload: last chunk shorter than its tag: truncated");
        if (rest == kTagSize && full > 0)
            fail(AgeFailure::Payload, "age: payload: empty final chunk after a full one");
        result.chunks = full + 1;
    }
    return result;
}

}  // namespace nightjar::io
