#pragma once
// Fault injection on stored files, after RocksDB's test utilities.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

namespace nightjar::test {

// Inverts every bit of the byte at `offset` (negative: from the end).
void flip_byte(const std::filesystem::path& file, std::int64_t offset);
// Cuts the file to `size` bytes.
void truncate_to(const std::filesystem::path& file, std::uint64_t size);
// Rewrites a manifest through `edit` without fixing its self-digest (what a careless hand edit does).
void edit_manifest(const std::filesystem::path& file, const std::function<void(nlohmann::json&)>& edit);

}  // namespace nightjar::test
