#!/usr/bin/env bash
# Configures and builds once into build/ (or $NIGHTJAR_BUILD_DIR) with warnings as errors.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${NIGHTJAR_BUILD_DIR:-$root/build}
# shellcheck source=lib/cmake_configure.sh
. "$root/scripts/lib/cmake_configure.sh"
cmake -S "$root" -B "$build" "${nightjar_cmake_flags[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)"
