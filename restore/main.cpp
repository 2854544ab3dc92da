#include "nightjar/run/cli_main.hpp"
#include "nightjar/run/version.hpp"
#include "options.hpp"
#include "run.hpp"

int main(int argc, char** argv) {
    CLI::App app{"nightjar-restore: verify and restore nightjar backups (all components or some)"};
    nightjar::RestoreCliOptions options;
    options.add_to(app);
    app.set_version_flag(
        "--version", [] { return nightjar::version_text("nightjar-restore"); },
        "Print the version, the git commit and the library versions, then exit");
    return nightjar::cli_main(app, argc, argv, [&] { return nightjar::run_restore(options); });
}
