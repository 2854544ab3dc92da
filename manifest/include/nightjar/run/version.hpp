#pragma once
// What `--version` prints: nightjar's version (CMake project(VERSION)), the git commit it was configured from
// ("unknown" outside git), and the versions of the libraries it runs with.
#include <string>
#include <string_view>

namespace nightjar {

// "nightjar-backup 0.1.0 (commit 1a2b3c4d5e6f)\nlibpq 15.10\nhiredis 0.14.1\n...": one line each, no newline
// at the end.
std::string version_text(std::string_view program);

}  // namespace nightjar
