#include "nightjar/cli_main.hpp"
#include "options.hpp"
#include "run.hpp"

int main(int argc, char** argv) {
    CLI::App app{"nightjar-restore: verify and restore nightjar backups (all components or some)"};
    nightjar::RestoreCliOptions options;
    options.add_to(app);
    return nightjar::cli_main(app, argc, argv, [&] { return nightjar::run_restore(options); });
}
