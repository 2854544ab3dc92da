#pragma once
#include <string_view>

namespace nightjar {

// Named crash points for tests. Armed only in the test copies of the binaries (build/tests/armed/), where
// NIGHTJAR_FAILPOINT equal to `name` raises SIGKILL (SIGSTOP when NIGHTJAR_FAILPOINT_ACTION=stop); the
// shipped binaries link an empty definition and do not read the variable.
void failpoint(std::string_view name);

}  // namespace nightjar
