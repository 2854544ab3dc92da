#pragma once
// The config-files component's section of the config file.
#include <string>
#include <vector>

namespace nightjar::files {

struct FilesConfig {
    std::vector<std::string> paths;      // files, directories (recursive) and globs; absolute
    std::vector<std::string> exclude;    // glob patterns matched against the full path and the base name
    std::string on_unreadable = "fail";  // "fail": an unreadable or vanished file fails the component; "warn"
};

}  // namespace nightjar::files
