#include <CLI/CLI.hpp>
#include <iostream>

#include "nightjar/error.hpp"
#include "nightjar/log.hpp"
#include "options.hpp"
#include "run.hpp"

int main(int argc, char** argv) {
    using nightjar::exit_code, nightjar::Kind;
    CLI::App app{"nightjar-backup: back up PostgreSQL, Redis and configuration files into a verified backup"};
    app.footer(
        "Exit codes: 0 ok, 1 internal, 2 usage/config, 3 source unavailable, 4 verification, 5 lock held,\n"
        "6 partial, 7 restore failed, 8 CDC resume failed, 9 storage, 128+n interrupted by signal n.");
    nightjar::BackupOptions options;
    options.add_to(app);
    try {
        app.parse(argc, argv);
        return nightjar::run_backup(options);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : exit_code(Kind::Usage);
    } catch (const nightjar::Error& e) {
        nightjar::log::error(e.what());
        return exit_code(e);
    } catch (const std::exception& e) {
        nightjar::log::error("internal error: ", e.what());
        return exit_code(Kind::Internal);
    }
}
