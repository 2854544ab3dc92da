#!/usr/bin/env bash
# The second README command: installs dependencies, builds once, checks the format, starts throwaway
# PostgreSQL, Redis and Ceph (radosgw) servers on loopback, runs the whole suite in one ctest call, and stops the servers.
# Before the servers start, scripts/ci/sanitizers.sh builds the fast tests with ASan+UBSan and with TSan and runs
# them (NIGHTJAR_SANITIZERS=none skips that, for a quicker local run; CI never sets it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
"$root/scripts/ci/format_check.sh"
"$root/scripts/ci/include_layers.sh"
[[ ${NIGHTJAR_SANITIZERS:-} == none ]] || "$root/scripts/ci/sanitizers.sh"
# shellcheck source=lib/services.sh
. "$root/scripts/lib/services.sh"
trap services_stop EXIT
services_start
cd "${NIGHTJAR_BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 600 "$@"
