#pragma once
// `nightjar-backup encryption add-recipient`: flags to an AddRecipientRequest (run/rotation), nothing more.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "options.hpp"

namespace nightjar {

struct EncryptionCommandOptions {
    std::string action;                   // "add-recipient"; "" when no encryption subcommand was given
    std::vector<std::string> recipients;  // --recipient age1… (repeatable)
    std::string recipients_file;          // --recipients-file: one age1… a line
    std::vector<std::string> backups;     // --backup ID (repeatable; "latest" too)
    bool all = false;                     // --all: every encrypted backup
    std::string identity;                 // --identity FILE; "" = the config's encryption.identity_file

    // Adds `encryption add-recipient`. The top-level --config, --backup-dir, --dry-run, --json, --log-file
    // work after it too.
    void add_to(CLI::App& app);
    bool selected() const { return !action.empty(); }
};

// Runs the chosen encryption subcommand; returns the exit code. Throws nightjar::Error like run_backup.
int run_encryption_command(const EncryptionCommandOptions& enc, const BackupOptions& options);

}  // namespace nightjar
