// age key rotation: re-wrapping a file key into a new header, and reading a new header with an old payload.
#include "nightjar/io/age_rotation.hpp"

#include <algorithm>
#include <cstring>

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

std::string rewrap_age_header(Reader& artifact, const AgeIdentities& identities,
                              const std::vector<AgeRecipient>& add, const RewrapOptions& options) {
    if (add.empty())
        throw Error(Kind::Config, "age: rotate: no recipient to add: give at least one age1… recipient");
    HeaderParser parser;
    read_header(artifact, parser);
    const Header& h = parser.header();
    if (identities.x25519.empty() && !identities.passphrase)
        throw Error(Kind::Config, "age: rotate: no identity to open the header with");
    FileKey file_key = open_file_key(h, identities);
    std::string header = std::string(kVersionLine) + "\n";
    try {
        if (options.keep_existing) {
            for (const auto& s : h.stanzas) {
                if (s.type == "scrypt")
                    throw Error(Kind::Config,
                                "age: rotate: the header has a passphrase (scrypt) stanza, which must stay "
                                "alone: rotate with keep_existing = false");
                header += format_stanza(s);
            }
        }
        for (const auto& r : add) header += format_stanza(x25519_stanza(file_key, r));
        if (header.size() > kMaxHeaderBytes)
            throw Error(Kind::Config, "age: rotate: the new header would be larger than 1 MiB");
        if ((options.keep_existing ? h.stanzas.size() : 0) + add.size() > kMaxStanzas)
            throw Error(Kind::Config, "age: rotate: the new header would have more than 256 stanzas");
        header += "---";
        Key32 mac = header_mac(file_key, header);
        header += " " + base64_encode(mac) + "\n";
    } catch (...) {
        wipe(file_key);
        throw;
    }
    wipe(file_key);
    return header;
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

}  // namespace nightjar::io
