// age key rotation: re-wrapping a file key into a new header, and reading a new header with an old payload.
#include "nightjar/io/age_rotation.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

#include "age_internal.hpp"

namespace nightjar::io {

using namespace age_detail;

namespace {

constexpr std::size_t kReadPiece = 4096;

// Feeds `src` into `parser` until the header ends; returns the bytes read past it (the payload's start).
std::vector<std::byte> read_header(Reader& src, HeaderParser& parser) {
    std::vector<std::byte> buf(kReadPiece);
    while (!parser.done()) {
        std::size_t n = src.read(buf);
        if (n == 0) parser.fail_truncated();
        std::size_t used = parser.feed(Bytes(buf.data(), n));
        if (parser.done())
            return std::vector<std::byte>(buf.begin() + static_cast<std::ptrdiff_t>(used),
                                          buf.begin() + static_cast<std::ptrdiff_t>(n));
    }
    return {};
}

}  // namespace

namespace {

constexpr std::string_view kX25519Info = "age-encryption.org/v1/X25519";
constexpr std::string_view kEphemeralInfo = "nightjar.age-rotation/v1/ephemeral";

// An X25519 stanza for `r` whose ephemeral secret is derived from the file key and the recipient rather
// than drawn at random: to every age reader it is an ordinary stanza (the ephemeral secret is as secret as
// the file key), and a later rotation that holds the file key can recompute its share and tell that `r` is
// already in a header.
Stanza derived_stanza(const FileKey& file_key, const AgeRecipient& r) {
    auto derived = hkdf_sha256(file_key, Bytes(r.key.data(), r.key.size()), kEphemeralInfo, 32);
    Key32 eph{};
    std::copy(derived.begin(), derived.end(), eph.begin());
    wipe(derived);
    Key32 share = x25519_public(eph);
    auto shared = x25519_shared(eph, r.key);
    wipe(eph);
    if (!shared) throw Error(Kind::Config, "age: rotate: recipient " + r.str() + " is a low-order point");
    std::vector<std::byte> salt(share.begin(), share.end());
    salt.insert(salt.end(), r.key.begin(), r.key.end());
    auto wrap_key = hkdf_sha256(*shared, Bytes(salt.data(), salt.size()), kX25519Info, 32);
    wipe(*shared);
    std::array<std::byte, 12> zero_nonce{};
    Stanza s{.type = "X25519",
             .args = {base64_encode(share)},
             .body = chacha_seal(Bytes(wrap_key.data(), wrap_key.size()), zero_nonce, file_key)};
    wipe(wrap_key);
    return s;
}

bool has_stanza(const Header& h, const Stanza& s) {
    return std::any_of(h.stanzas.begin(), h.stanzas.end(),
                       [&](const Stanza& have) { return have.type == s.type && have.args == s.args; });
}

struct RewrapRequest {
    const std::vector<AgeRecipient>& add;
    bool keep_existing;
    bool skip_present;
};

RotationHeader rewrap(Reader& artifact, const AgeIdentities& identities, const RewrapRequest& request) {
    if (request.add.empty())
        throw Error(Kind::Config, "age: rotate: no recipient to add: give at least one age1… recipient");
    HeaderParser parser;
    read_header(artifact, parser);
    const Header& h = parser.header();
    if (identities.x25519.empty() && !identities.passphrase)
        throw Error(Kind::Config, "age: rotate: no identity to open the header with");
    FileKey file_key = open_file_key(h, identities);
    RotationHeader out;
    std::string header = std::string(kVersionLine) + "\n";
    try {
        std::size_t stanzas = 0;
        if (request.keep_existing) {
            for (const auto& s : h.stanzas) {
                if (s.type == "scrypt")
                    throw Error(Kind::Config,
                                "age: rotate: the header has a passphrase (scrypt) stanza, which must stay "
                                "alone: rotate with keep_existing = false");
                header += format_stanza(s);
                ++stanzas;
            }
        }
        for (const auto& r : request.add) {
            Stanza s = derived_stanza(file_key, r);
            const bool twice = std::any_of(out.added.begin(), out.added.end(),
                                           [&](const AgeRecipient& a) { return a.key == r.key; });
            if (twice) continue;
            if (request.skip_present && has_stanza(h, s)) {
                out.present.push_back(r);
                continue;
            }
            header += format_stanza(s);
            out.added.push_back(r);
            ++stanzas;
        }
        if (header.size() > kMaxHeaderBytes)
            throw Error(Kind::Config, "age: rotate: the new header would be larger than 1 MiB");
        if (stanzas > kMaxStanzas)
            throw Error(Kind::Config, "age: rotate: the new header would have more than 256 stanzas");
        header += "---";
        Key32 mac = header_mac(file_key, header);
        header += " " + base64_encode(mac) + "\n";
    } catch (...) {
        wipe(file_key);
        throw;
    }
    wipe(file_key);
    if (!out.added.empty()) out.header = std::move(header);
    return out;
}

}  // namespace

std::string rewrap_age_header(Reader& artifact, const AgeIdentities& identities,
                              const std::vector<AgeRecipient>& add, const RewrapOptions& options) {
    return rewrap(artifact, identities,
                  {.add = add, .keep_existing = options.keep_existing, .skip_present = false})
        .header;
}

RotationHeader add_age_recipients(Reader& header, const AgeIdentities& identities,
                                  const std::vector<AgeRecipient>& add) {
    return rewrap(header, identities, {.add = add, .keep_existing = true, .skip_present = true});
}

std::vector<std::string> check_age_header_object(Reader& header) {
    HeaderParser parser;
    auto rest = read_header(header, parser);
    check_known_stanzas(parser.header(), 22);
    std::vector<std::byte> buf(16);
    if (!rest.empty() || header.read(buf) != 0)
        fail(AgeFailure::Header,
             "age: header object: bytes after the MAC line: a rotation header holds no payload");
    std::vector<std::string> types;
    for (const auto& s : parser.header().stanzas) types.push_back(s.type);
    return types;
}

std::string age_header_object_name(const std::string& artifact_path, unsigned n) {
    if (n == 0) throw Error(Kind::Internal, "age: rotation header numbers start at 1");
    return artifact_path + ".age-header." + std::to_string(n);
}

struct RotatedArtifactReader::State {
    Reader& header;
    Reader& artifact;
    bool header_done = false;
    bool skipped = false;
    std::vector<std::byte> rest;  // payload bytes read with the artifact's header
    std::size_t rest_pos = 0;
};

RotatedArtifactReader::RotatedArtifactReader(Reader& header, Reader& artifact)
    : state_(std::make_unique<State>(State{.header = header, .artifact = artifact})) {}

RotatedArtifactReader::~RotatedArtifactReader() = default;

std::size_t RotatedArtifactReader::read(MutableBytes buf) {
    auto& st = *state_;
    if (buf.empty()) return 0;
    if (!st.header_done) {
        if (std::size_t n = st.header.read(buf)) return n;
        st.header_done = true;
    }
    if (!st.skipped) {
        HeaderParser parser;
        st.rest = read_header(st.artifact, parser);
        st.skipped = true;
    }
    if (st.rest_pos < st.rest.size()) {
        std::size_t n = std::min(buf.size(), st.rest.size() - st.rest_pos);
        std::memcpy(buf.data(), st.rest.data() + st.rest_pos, n);
        st.rest_pos += n;
        return n;
    }
    return st.artifact.read(buf);
}

namespace {

// Hands out `head` (bytes already read from `src`), then the rest of `src`.
class ReplayReader final : public Reader {
public:
    ReplayReader(std::vector<std::byte> head, Reader& src) : head_(std::move(head)), src_(src) {}
    std::size_t read(MutableBytes buf) override {
        if (pos_ < head_.size()) {
            std::size_t n = std::min(buf.size(), head_.size() - pos_);
            std::memcpy(buf.data(), head_.data() + pos_, n);
            pos_ += n;
            return n;
        }
        return src_.read(buf);
    }

private:
    std::vector<std::byte> head_;
    std::size_t pos_ = 0;
    Reader& src_;
};

// A whole rotation header object, or nullopt when it is larger than any header may be.
std::optional<std::string> read_header_object(Reader& src) {
    std::string text;
    std::vector<std::byte> buf(kReadPiece);
    while (std::size_t n = src.read(buf)) {
        text.append(as_chars(Bytes(buf.data(), n)));
        if (text.size() > kMaxHeaderBytes) return std::nullopt;
    }
    return text;
}

// Whether `ids` open the header `text` (a complete header object, nothing after its MAC line).
bool opens(const std::string& text, const AgeIdentities& ids) {
    try {
        HeaderParser parser;
        std::size_t used = parser.feed(as_bytes(text));
        if (!parser.done() || used != text.size()) return false;
        FileKey key = open_file_key(parser.header(), ids);
        wipe(key);
        return true;
    } catch (const AgeError&) {
        return false;
    }
}

}  // namespace

struct RotationAwareReader::State {
    Reader& artifact;
    AgeIdentities identities;
    RotationHeaderSource headers;
    bool chosen = false;
    unsigned used = 0;
    std::unique_ptr<ReplayReader> replay;  // the artifact, its header included
    std::unique_ptr<ReplayReader> header;  // the rotation header in use
    EmptyReader no_more;
    std::unique_ptr<RotatedArtifactReader> rotated;
    Reader* out = nullptr;

    void choose();
};

void RotationAwareReader::State::choose() {
    HeaderParser parser;
    std::vector<std::byte> head;
    std::vector<std::byte> buf(kReadPiece);
    try {
        while (!parser.done()) {
            std::size_t n = artifact.read(buf);
            if (n == 0) break;
            head.insert(head.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
            parser.feed(Bytes(buf.data(), n));
        }
    } catch (const AgeError&) {
        // A malformed header: the decrypter reads the same bytes and reports it.
    }
    replay = std::make_unique<ReplayReader>(std::move(head), artifact);
    out = replay.get();
    if (!parser.done() || identities.x25519.empty()) return;
    // Only X25519 identities here: a passphrase is tried once, by the decrypter (scrypt is slow on purpose).
    AgeIdentities x25519{.x25519 = identities.x25519,
                         .passphrase = std::nullopt,
                         .max_scrypt_work_factor = identities.max_scrypt_work_factor};
    try {
        FileKey key = open_file_key(parser.header(), x25519);
        wipe(key);
        return;
    } catch (const AgeError& e) {
        if (e.failure() != AgeFailure::NoMatch) return;
    }
    unsigned found = 0;
    for (unsigned n = 1; headers && n <= kMaxRotationHeaders; ++n) {
        std::unique_ptr<Reader> object = headers(n);
        if (!object) continue;
        ++found;
        std::optional<std::string> text = read_header_object(*object);
        if (!text || !opens(*text, x25519)) continue;
        header = std::make_unique<ReplayReader>(
            std::vector<std::byte>(reinterpret_cast<const std::byte*>(text->data()),
                                   reinterpret_cast<const std::byte*>(text->data()) + text->size()),
            no_more);
        rotated = std::make_unique<RotatedArtifactReader>(*header, *replay);
        out = rotated.get();
        used = n;
        return;
    }
    if (found == 0 || identities.passphrase) return;
    fail(AgeFailure::NoMatch, "age: no identity matches any recipient stanza of its header nor of its " +
                                  std::to_string(found) +
                                  " rotation header(s) (.age-header.N): use a key it was encrypted to or "
                                  "that nightjar-backup encryption add-recipient added");
}

RotationAwareReader::RotationAwareReader(Reader& artifact, AgeIdentities identities,
                                         RotationHeaderSource headers)
    : state_(std::make_unique<State>(
          State{.artifact = artifact, .identities = std::move(identities), .headers = std::move(headers)})) {}

RotationAwareReader::~RotationAwareReader() = default;

std::size_t RotationAwareReader::read(MutableBytes buf) {
    auto& st = *state_;
    if (!st.chosen) {
        st.chosen = true;
        st.choose();
    }
    return st.out->read(buf);
}

unsigned RotationAwareReader::header_used() const {
    return state_->used;
}

}  // namespace nightjar::io
