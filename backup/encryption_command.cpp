#include "encryption_command.hpp"

#include <filesystem>
#include <iostream>

#include "nightjar/run/cli_log.hpp"
#include "nightjar/run/config.hpp"
#include "nightjar/run/encryption_config.hpp"
#include "nightjar/run/repository_config.hpp"
#include "nightjar/run/rotation.hpp"

namespace nightjar {

namespace fs = std::filesystem;

void EncryptionCommandOptions::add_to(CLI::App& app) {
    CLI::App* enc = app.add_subcommand("encryption", "Encrypted backups: recipients for past backups");
    enc->require_subcommand(1);
    enc->fallthrough();
    CLI::App* add = enc->add_subcommand(
        "add-recipient",
        "Give more age recipients access to past encrypted backups: writes a rotation header "
        "<object>.age-header.N beside each artifact and the manifest (never rewrites them)");
    add->add_option("--recipient", recipients, "An age1... recipient to add (repeatable)");
    add->add_option("--recipients-file", recipients_file, "A file of age1... recipients, one a line");
    auto* backup = add->add_option("--backup", backups, "The backup id to rotate (repeatable; or latest)");
    add->add_flag("--all", all, "Every encrypted backup in the backup dir")->excludes(backup);
    add->add_option("--identity", identity,
                    "Identity file (AGE-SECRET-KEY-1..., mode 0600) that opens the existing headers "
                    "(default: the config's encryption.identity_file)");
    add->fallthrough();
    add->callback([this, add] { action = add->get_name(); });
}

int run_encryption_command(const EncryptionCommandOptions& enc, const BackupOptions& options) {
    configure_cli_log({.quiet = options.quiet, .format = options.log_format, .file = options.log_file});
    // --backup-dir alone is enough when there is no config file (the identity then comes from --identity).
    std::optional<Config> config;
    if (options.backup_dir.empty() || fs::exists(options.config)) config = load_config(options.config);
    const fs::path dir = !options.backup_dir.empty() ? fs::path(options.backup_dir)
                         : config                    ? config->backup_dir
                                                     : fs::path();
    if (dir.empty())
        throw Error(Kind::Config, "config " + options.config +
                                      ": /backup_dir: required field is missing (or pass --backup-dir)");
    AddRecipientRequest request{.recipients = {},
                                .backups = enc.backups,
                                .all = enc.all,
                                .identities = {},
                                .trusted_hosts = {},
                                .dry_run = options.dry_run};
    for (const auto& text : enc.recipients) {
        try {
            request.recipients.push_back(io::AgeRecipient::parse(text));
        } catch (const Error& e) {
            throw Error(Kind::Usage, std::string("--recipient: ") + e.what());
        }
    }
    if (!enc.recipients_file.empty())
        for (const auto& r : read_recipients_file(enc.recipients_file, "--recipients-file"))
            request.recipients.push_back(r);
    if (!enc.identity.empty())
        request.identities.x25519 = read_identity_file(enc.identity, "identity file (--identity)");
    else if (config && config->encryption)
        request.identities.x25519 = config->encryption->identities;
    if (config && config->encryption) request.trusted_hosts = config->encryption->trusted_hosts;
    auto storage = open_repository(absolute_location(dir), config ? config->repository : RepositoryConfig{});
    RotationReport report = add_recipients(*storage, request);
    if (options.json) std::cout << report.to_json().dump(2) << std::endl;
    return report.exit_code();
}

}  // namespace nightjar
