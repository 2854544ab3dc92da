#!/usr/bin/env bash
# The second README command: installs dependencies, builds once, starts throwaway PostgreSQL and Redis
# servers on loopback, runs the whole suite in one ctest call, and stops the servers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
# shellcheck source=lib/services.sh
. "$root/scripts/lib/services.sh"
trap services_stop EXIT
services_start
cd "${NIGHTJAR_BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 600 "$@"
