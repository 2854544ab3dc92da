#pragma once
#include <string_view>

namespace nightjar {

// Named crash points for tests: inert unless NIGHTJAR_FAILPOINT equals `name`, which then raises SIGKILL
// (or SIGSTOP when NIGHTJAR_FAILPOINT_ACTION=stop).
void failpoint(std::string_view name);

}  // namespace nightjar
