#pragma once
// `nightjar-backup keygen`: a new age X25519 identity in a file age itself reads (as age-keygen writes it:
// "# created: …", "# public key: age1…", then the AGE-SECRET-KEY-1… line), mode 0600, create-only.
#include <filesystem>
#include <ostream>
#include <string>

#include "nightjar/io/age.hpp"

namespace nightjar {

struct KeygenOptions {
    std::filesystem::path output;  // the identity file to create; it must not exist
};

// The identity file's text for `id`, created at `created_at` (RFC 3339).
std::string identity_file_text(const io::AgeIdentity& id, const std::string& created_at);

// Creates the identity file (Kind::Usage with no output path, Kind::Storage when it exists or cannot be
// written) and writes the recipient to `out` as "Public key: age1…\n" (what age-keygen prints), the only
// part of the pair that is not a secret. Returns the recipient.
io::AgeRecipient run_keygen(const KeygenOptions& options, std::ostream& out);

}  // namespace nightjar
