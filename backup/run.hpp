#pragma once
#include "options.hpp"

namespace nightjar {

// The whole backup run; returns the process exit code or throws nightjar::Error.
int run_backup(const BackupOptions& options);

}  // namespace nightjar
