#pragma once
// The storage conformance suite: what every Storage backend must do, as functions over a factory so any
// backend (the S3 one included) joins with one TEST_CASE each:
//
//     TEST_CASE("storage conformance: s3", "[conformance][s3]") { test::storage_conformance(make_s3); }
//
// Each function is made of Catch2 SECTIONs; Catch runs the TEST_CASE once per section, so the factory is
// called for every section and must return a fresh, empty storage each time.
#include <functional>
#include <memory>

#include "nightjar/repo/storage.hpp"

namespace nightjar::test {

// A fresh, empty storage for one section; the pointer keeps whatever backs it (a temp dir) alive.
using StorageFactory = std::function<std::shared_ptr<Storage>()>;

// Every call on a writable backend: atomic and create-only writes (with races), ranged reads at the edges,
// stat, list, list by prefix, remove, remove_tree, and the capability-gated calls (rename, locks, free
// space), each either working or refused as the declared capabilities say.
void storage_conformance(const StorageFactory& make);

// The read half through a ReadOnlyStorage over a populated backend from `make`: every read call answers as
// the backend does, every mutation throws Kind::Internal, and the backend is unchanged afterwards.
void read_only_conformance(const StorageFactory& make);

// The repository's publish protocol on `make`'s backend, wrapped in a FaultyStorage that crashes at each
// storage call of a whole backup run in turn (begin, the artifacts, every publish step): after each crash
// RepositoryReader::list() shows the earlier backup and either the whole new one or nothing of it, and the
// next run's begin() plus a prune leave no staging, no half manifest and no orphan artifacts. Also a
// failed write or sync (ENOSPC, EIO) during a run fails it with Kind::Storage and publishes nothing.
void publish_conformance(const StorageFactory& make);

}  // namespace nightjar::test
