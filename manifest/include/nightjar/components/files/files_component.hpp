#pragma once
// The config-files component: files, directories and globs into one tar (pax) artifact, with every file's
// path, type, mode, owner, mtime, size and SHA-256 recorded in the manifest.
#include <optional>

#include "nightjar/components/component.hpp"
#include "nightjar/run/config.hpp"

namespace nightjar {

// What a restore of this component may do beyond the defaults.
struct FilesRestoreSettings {
    bool allow_special = false;  // FIFOs, devices and sockets the manifest declares verify and restore
                                 // (--allow-special); without it they are verification failures
};

class FilesComponent final : public Component {
public:
    explicit FilesComponent(std::optional<FilesConfig> config = std::nullopt,
                            FilesRestoreSettings settings = {});
    std::string_view kind() const override { return "files"; }
    CheckReport check() const override;
    DumpResult dump(DumpContext& context, Staging& staging) override;
    VerifyOutcome verify(const Artifact& artifact, io::Reader& content) const override;
    RestorePlan plan_restore(const Artifact& artifact, const RestoreOptions& options) const override;
    RestoreReport restore(const Artifact& artifact, io::Reader& content,
                          const RestoreOptions& options) override;

private:
    std::optional<FilesConfig> config_;
    FilesRestoreSettings settings_;
};

// Paths in the manifest are JSON strings: valid UTF-8 is stored as "path", anything else as "path_hex".
bool is_valid_utf8(std::string_view s);

}  // namespace nightjar
