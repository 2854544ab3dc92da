#pragma once
#include "options.hpp"

namespace nightjar {

// Lists, verifies (--dry-run) or restores; returns the exit code or throws nightjar::Error.
int run_restore(const RestoreCliOptions& options);

}  // namespace nightjar
