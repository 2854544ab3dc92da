#pragma once
// How the binaries set up logging from their flags (--quiet, --log-format, --log-file), in one place.
#include <string>

#include "nightjar/core/log.hpp"

namespace nightjar {

struct CliLogFlags {
    bool quiet = false;           // only warnings and errors on stderr
    std::string format = "text";  // "text" or "json" (one object per line)
    std::string file = "";        // also append log lines here ("" = none)
};

inline void configure_cli_log(const CliLogFlags& flags) {
    log::configure({.min_level = log::Level::Info,
                    .format = flags.format == "json" ? log::Format::Json : log::Format::Text,
                    .quiet = flags.quiet});
    if (!flags.file.empty()) log::set_file(flags.file);
}

}  // namespace nightjar
