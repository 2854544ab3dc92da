#include "run.hpp"

#include <iostream>

#include "nightjar/run/backup_run.hpp"
#include "nightjar/run/cli_log.hpp"
#include "nightjar/run/config.hpp"
#include "nightjar/run/keygen.hpp"

namespace nightjar {

int run_backup(const BackupOptions& options) {
    configure_cli_log({.quiet = options.quiet, .format = options.log_format, .file = options.log_file});
    if (options.keygen && options.keygen->parsed()) {  // needs no config
        run_keygen({.output = options.keygen_output}, std::cout);
        return 0;
    }
    const BackupRequest request = options.to_request(load_config(options.config));
    if (options.resume_cdc) return resume_cdc_only(request);
    nlohmann::json summary;
    auto print = [&] {
        if (options.json) std::cout << summary.dump(2) << std::endl;
    };
    if (options.prune_only) {
        int code = prune_only(request, options.dry_run, &summary);
        print();
        return code;
    }
    if (options.dry_run) {
        int code = check_backup(request, &summary);
        print();
        return code;
    }
    return nightjar::run_backup(request, [&](const RunReport& report) {
        summary = report;
        print();
    });
}

}  // namespace nightjar
