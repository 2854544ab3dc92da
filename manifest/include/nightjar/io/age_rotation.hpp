#pragma once
// Key rotation without rewriting data: a new age header for an existing artifact that wraps the same file
// key for more recipients. The payload (its nonce and chunks) depends only on the file key, so
// `<new header> ‖ <original payload>` is a valid age file for every recipient of the new header; the
// stored artifact is never touched (object lock forbids that anyway).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "nightjar/io/age.hpp"
#include "nightjar/io/stream.hpp"

namespace nightjar::io {

struct RewrapOptions {
    bool keep_existing = true;  // keep the header's existing stanzas (their recipients keep access); false:
                                // the new header has only the added recipients
};

// Reads the age header at the front of `artifact` (nothing past the MAC line is needed or checked), opens
// it with `identities` (AgeError NoMatch, Hmac or Header when it cannot), and returns a new header through
// its MAC line and newline: the version line, the kept stanzas byte for byte, one new X25519 stanza per
// added recipient, and a MAC under the same file key. Kind::Config with no recipient to add, or when an
// scrypt stanza would have to share the header (the format allows it only alone).
std::string rewrap_age_header(Reader& artifact, const AgeIdentities& identities,
                              const std::vector<AgeRecipient>& add, const RewrapOptions& options = {});

// The key-less check of a stored rotation header object: a well-formed header (grammar, canonical base64,
// known stanza shapes) that ends at its MAC line with nothing after it. Returns the stanza types in order.
// Errors are AgeError (Header). Authenticates nothing: only an identity proves the MAC.
std::vector<std::string> check_age_header_object(Reader& header);

// "<artifact path>.age-header.<n>" (n >= 1): where the n-th rotation header of an artifact is stored.
std::string age_header_object_name(const std::string& artifact_path, unsigned n);

// Reads `header` (a rotation header) and then what follows the header of `artifact`: the age file a reader
// decrypts with an identity of the rotation header. The artifact's own header is parsed and skipped (an
// AgeError Header when it is malformed); the replacement is passed on as is, so a bad one fails in the
// decrypter like any damaged header.
class RotatedArtifactReader final : public Reader {
public:
    RotatedArtifactReader(Reader& header, Reader& artifact);
    ~RotatedArtifactReader() override;
    std::size_t read(MutableBytes buf) override;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace nightjar::io
