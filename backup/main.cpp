#include "cdc_command.hpp"
#include "encryption_command.hpp"
#include "nightjar/run/cli_main.hpp"
#include "nightjar/run/version.hpp"
#include "options.hpp"
#include "run.hpp"

int main(int argc, char** argv) {
    CLI::App app{"nightjar-backup: back up PostgreSQL, Redis and configuration files into a verified backup"};
    nightjar::BackupOptions options;
    options.add_to(app);
    app.set_version_flag(
        "--version", [] { return nightjar::version_text("nightjar-backup"); },
        "Print the version, the git commit and the library versions, then exit");
    nightjar::CdcCommandOptions cdc;
    cdc.add_to(app);
    nightjar::EncryptionCommandOptions encryption;
    encryption.add_to(app);
    return nightjar::cli_main(app, argc, argv, [&] {
        if (cdc.selected()) return nightjar::run_cdc_command(cdc, options);
        if (encryption.selected()) return nightjar::run_encryption_command(encryption, options);
        return nightjar::run_backup(options);
    });
}
