#pragma once
// The one place each binary's main() catches: parse errors -> exit 2 (--help -> 0), nightjar::Error -> its
// kind's exit code, anything else -> internal error. Header-only: only the binaries (which link CLI11) use
// it.
#include <CLI/CLI.hpp>
#include <exception>

#include "nightjar/core/error.hpp"
#include "nightjar/core/log.hpp"

namespace nightjar {

template <typename Run>
int cli_main(CLI::App& app, int argc, char** argv, Run&& run) {
    app.footer(
        "Exit codes: 0 ok, 1 internal, 2 usage/config, 3 source unavailable, 4 verification, 5 lock held,\n"
        "6 partial, 7 restore failed, 8 CDC resume failed, 9 storage, 128+n interrupted by signal n.");
    try {
        app.parse(argc, argv);
        return run();
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : exit_code(Kind::Usage);
    } catch (const Error& e) {
        log::write(log::Level::Error, e.what(), {{"error_kind", std::string(kind_name(e.kind()))}});
        return exit_code(e);
    } catch (const std::exception& e) {
        log::write(log::Level::Error, std::string("internal error: ") + e.what(),
                   {{"error_kind", std::string(kind_name(Kind::Internal))}});
        return exit_code(Kind::Internal);
    }
}

}  // namespace nightjar
