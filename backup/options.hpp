#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace nightjar {

struct BackupOptions {
    std::string config = "/etc/nightjar/nightjar.json";  // the config file
    std::string backup_dir;                               // overrides config backup_dir
    bool dry_run = false;                                 // validate and print the plan; write nothing
    bool skip_config = false;                             // leave out the files component
    bool skip_db = false;                                 // leave out PostgreSQL
    bool skip_redis = false;                              // leave out Redis
    bool json = false;                                    // one JSON summary on stdout
    int compression_level = 0;                            // overrides config compression.level when > 0
    bool quiet = false;                                   // only warnings and errors on stderr
    std::string log_file;                                 // also append log lines here
    std::string db_host;                                  // overrides postgres host (every database)
    int db_port = 0;                                      // overrides postgres port when > 0

    void add_to(CLI::App& app);
    std::vector<std::string> skipped_kinds() const;
};

}  // namespace nightjar
