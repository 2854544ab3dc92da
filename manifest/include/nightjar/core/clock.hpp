#pragma once
// Wall-clock helpers shared by every area.
#include <cstdint>
#include <string>

namespace nightjar {

// The current time, unix seconds.
std::int64_t unix_now();
// "2026-11-25T01:30:00Z" for a time.
std::string rfc3339_utc(std::int64_t unix_seconds);

}  // namespace nightjar
