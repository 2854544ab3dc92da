#pragma once
// The config-files component: files, directories and globs into one tar (pax) artifact, with every file's
// path, type, mode, owner, mtime, size and SHA-256 recorded in the manifest.
#include <optional>

#include "nightjar/components/component.hpp"
#include "nightjar/components/files/config.hpp"
#include "nightjar/components/files/restore_options.hpp"

namespace nightjar::files {

class FilesComponent final : public Component {
public:
    explicit FilesComponent(std::optional<FilesConfig> config = std::nullopt,
                            FilesRestoreOptions restore_options = {});
    std::string_view kind() const override { return "files"; }
    bool takes_snapshot() const override { return false; }  // files are not a CDC connector's sink
    CheckReport check() const override;
    DumpResult dump(DumpContext& context, Staging& staging) override;
    VerifyOutcome verify(const Artifact& artifact, io::Reader& content) const override;
    RestorePlan plan_restore(const Artifact& artifact, const RestoreContext& context) const override;
    RestoreReport restore(const Artifact& artifact, io::Reader& content,
                          const RestoreContext& context) override;

private:
    std::optional<FilesConfig> config_;
    FilesRestoreOptions restore_options_;
};

// Paths in the manifest are JSON strings: valid UTF-8 is stored as "path", anything else as "path_hex".
bool is_valid_utf8(std::string_view s);

}  // namespace nightjar::files
