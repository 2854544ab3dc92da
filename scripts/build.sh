#!/usr/bin/env bash
# Configures and builds once into build/ (or $NIGHTJAR_BUILD_DIR) with warnings as errors.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${NIGHTJAR_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNIGHTJAR_WERROR=ON >/dev/null
cmake --build "$build" -j "$(nproc)"
