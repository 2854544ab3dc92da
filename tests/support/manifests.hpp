#pragma once
// A minimal, valid, complete manifest for tests that publish hand-made artifacts.
#include <string>
#include <vector>

#include "nightjar/repo/manifest.hpp"

namespace nightjar::test {

inline Manifest complete_manifest(const std::string& id, std::vector<Artifact> artifacts) {
    Manifest m;
    m.id = id;
    m.started_at = m.finished_at = "2024-01-01T00:00:00Z";
    m.host = "test-host";
    m.nightjar_version = "test";
    m.status = "complete";
    m.artifacts = std::move(artifacts);
    return m;
}

}  // namespace nightjar::test
