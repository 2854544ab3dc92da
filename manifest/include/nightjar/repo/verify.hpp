#pragma once
#include <functional>

#include "nightjar/io/pipeline.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/verify_outcome.hpp"

namespace nightjar {

// Told the stored bytes read so far, for progress on a terminal.
using VerifyProgress = std::function<void(std::uint64_t)>;

// Every function here reads through the artifact's recorded pipeline (io/pipeline, Artifact::spec()). The
// overloads without `keys` read with no identity: an encrypted artifact then throws Kind::Verification
// naming it (never read in clear), except verify_stored_bytes, which needs no key.

// The verify chain: stored file -> sha256 + size -> [decrypt] -> decompress -> sha256 + size -> `check`
// (a component's format check: components/component.hpp has the overloads taking a Component). The
// stored digest is judged first, then the content; a bad artifact is a returned outcome, not a throw.
VerifyOutcome verify_artifact(const RepositoryReader& repo, const Artifact& artifact,
                              const std::function<VerifyOutcome(io::Reader&)>& check,
                              const VerifyProgress& progress = {});
VerifyOutcome verify_artifact(const RepositoryReader& repo, const Artifact& artifact,
                              const std::function<VerifyOutcome(io::Reader&)>& check,
                              const io::ReadKeys& keys, const VerifyProgress& progress = {});

// Only the stored bytes: size and SHA-256 against the manifest (and an encrypted artifact's age header
// structure), nothing decrypted or decompressed: no key needed (RepositoryReader::check_rotation_headers
// checks its rotation header objects). The read chains above open an encrypted artifact through its
// rotation headers when the identity does not open its own header.
VerifyOutcome verify_stored_bytes(const RepositoryReader& repo, const Artifact& artifact,
                                  const VerifyProgress& progress = {});
// An artifact's decompressed content with no digest checks, for a second reader beside a checked one.
std::unique_ptr<io::Reader> open_unchecked_content(const RepositoryReader& repo, const Artifact& artifact);
std::unique_ptr<io::Reader> open_unchecked_content(const RepositoryReader& repo, const Artifact& artifact,
                                                   const io::ReadKeys& keys);
// Opens an artifact's decompressed content; at end of stream its stored and content digests are checked
// and a mismatch throws Kind::Verification naming the artifact. `stored_proven`: the stored SHA-256 was
// proven by an earlier read (verify_stored_bytes) and only its size is checked again.
std::unique_ptr<io::Reader> open_verified_content(const RepositoryReader& repo, const Artifact& artifact,
                                                  bool stored_proven = false);
std::unique_ptr<io::Reader> open_verified_content(const RepositoryReader& repo, const Artifact& artifact,
                                                  const io::ReadKeys& keys, bool stored_proven = false);

}  // namespace nightjar
