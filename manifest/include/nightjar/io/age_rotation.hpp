#pragma once
// Key rotation without rewriting data: a new age header for an existing artifact that wraps the same file
// key for more recipients. The payload (its nonce and chunks) depends only on the file key, so
// `<new header> ‖ <original payload>` is a valid age file for every recipient of the new header; the
// stored artifact is never touched (object lock forbids that anyway).
#include <cstdint>
#include <filesystem>
#include <functional>
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
// added recipient (its ephemeral key derived as add_age_recipients() says), and a MAC under the same file
// key. Kind::Config with no recipient to add, or when an scrypt stanza would have to share the header (the
// format allows it only alone).
std::string rewrap_age_header(Reader& artifact, const AgeIdentities& identities,
                              const std::vector<AgeRecipient>& add, const RewrapOptions& options = {});

// What add_age_recipients() made of one header.
struct RotationHeader {
    std::string header;                 // the new header through its MAC line; "" when nothing was added
    std::vector<AgeRecipient> added;    // recipients given a stanza, in the order asked (duplicates once)
    std::vector<AgeRecipient> present;  // recipients the header already had a rotation stanza for
};

// rewrap_age_header() keeping every stanza, for the recipients the header (`header`: an age file or a
// rotation header object) does not already hold. A stanza written by a rotation derives its ephemeral key
// from the file key and the recipient, so a later rotation recognizes it: adding a recipient twice adds it
// once. Recipients of the original header are not recognized (their ephemeral keys are random): the caller
// knows them from the backup index. Errors as rewrap_age_header().
RotationHeader add_age_recipients(Reader& header, const AgeIdentities& identities,
                                  const std::vector<AgeRecipient>& add);

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

// Rotation headers a reader tries (numbers 1..kMaxRotationHeaders), and the most a rotation writes.
inline constexpr unsigned kMaxRotationHeaders = 32;

// Opens the n-th rotation header object of one age file (age_header_object_name(path, n)); null when
// there is none.
using RotationHeaderSource = std::function<std::unique_ptr<Reader>(unsigned n)>;

// The age file to decrypt for `artifact`: the artifact as it is when an X25519 identity opens its own
// header (or when that header is malformed or there is no X25519 identity: the decrypter then says what is
// wrong), else the first rotation header 1..32 from `headers` that an identity opens, spliced onto the
// payload through RotatedArtifactReader. A rotation header that does not parse or open is passed over:
// whichever header gave the file key, the payload still authenticates under it. When rotation headers
// exist and none opens (and there is no passphrase left to try): AgeError NoMatch saying so.
class RotationAwareReader final : public Reader {
public:
    RotationAwareReader(Reader& artifact, AgeIdentities identities, RotationHeaderSource headers);
    ~RotationAwareReader() override;
    std::size_t read(MutableBytes buf) override;
    // After the first read: the number of the rotation header in use, 0 for the artifact's own.
    unsigned header_used() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace nightjar::io
