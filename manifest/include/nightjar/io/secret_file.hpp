#pragma once
// Small files that hold secrets (identities, signing keys): created once, mode 0600, atomically and never
// over an existing file; read back only when their mode and owner show that nobody else can read them.
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "nightjar/core/error.hpp"

namespace nightjar::io {

// Creates `path` with `content`, mode 0600: written to a temporary name in the same directory, synced, then
// linked into place, so a crash leaves either no file or the whole one, and an existing file (even one
// created concurrently) is never replaced. Kind::Storage naming the path when it exists or cannot be
// written; the message never contains the content.
void create_secret_file(const std::filesystem::path& path, std::string_view content);

struct SecretFileOptions {
    std::size_t max_bytes = 64 * 1024;  // a larger file is refused (secret files are a few lines)
    Kind kind = Kind::Config;           // what every failure throws
    std::string what = "secret file";   // names the file's role in messages ("encryption.identity_file")
};

// Reads a secret file: a regular file owned by the effective user with no group or other permission bits
// (0600 or 0400). Anything else throws `options.kind` naming the path and what to fix.
std::string read_secret_file(const std::filesystem::path& path, const SecretFileOptions& options = {});

// Overwrites a string's bytes with zeros before it is freed.
void wipe_string(std::string& s) noexcept;

}  // namespace nightjar::io
