#!/usr/bin/env bash
# Builds the Debian package nightjar_<version>_amd64.deb from the tree with CPack's DEB generator:
# a release build (prefix /usr, no tests, so no test hooks) in build-deb/ (or $NIGHTJAR_DEB_BUILD_DIR).
# Prints the package's path on stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${NIGHTJAR_DEB_BUILD_DIR:-$root/build-deb}
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF \
  -DNIGHTJAR_WERROR=ON "${launcher[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)" >&2
rm -f "$build"/nightjar_*.deb
(cd "$build" && cpack -G DEB >&2)
ls "$build"/nightjar_*_amd64.deb
