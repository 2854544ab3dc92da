#!/usr/bin/env bash
# Builds the Debian package nightjar_<version>_amd64.deb from the tree with CPack's DEB generator:
# a release build (prefix /usr, no tests, so no test hooks) in build-deb/ (or $NIGHTJAR_DEB_BUILD_DIR).
# Prints the package's path on stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${NIGHTJAR_DEB_BUILD_DIR:-$root/build-deb}
# shellcheck source=lib/cmake_configure.sh
. "$root/scripts/lib/cmake_configure.sh"
cmake -S "$root" -B "$build" "${nightjar_cmake_flags[@]}" -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" >&2
rm -f "$build"/nightjar_*.deb
(cd "$build" && cpack -G DEB >&2)
ls "$build"/nightjar_*_amd64.deb
