#pragma once
// What a restore of the config-files component may do beyond the defaults (restore/options.cpp fills it from
// the flags; a drill fills it itself). Where the files go is the RestoreContext's target root.
#include <nlohmann/json.hpp>

namespace nightjar::files {

struct FilesRestoreOptions {
    bool allow_special = false;  // FIFOs, devices and sockets the manifest declares verify and restore
                                 // (--allow-special); without it they are verification failures
};

inline void to_json(nlohmann::json& j, const FilesRestoreOptions& o) {
    j = {{"allow_special", o.allow_special}};
}

}  // namespace nightjar::files
