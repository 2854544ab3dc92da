#!/usr/bin/env bash
# Builds the fast tests twice more, with ASan+UBSan and with TSan, and runs them under the sanitizers:
# every unit and storage-conformance test under ASan+UBSan; under TSan the ones whose code runs threads
# (the pipeline's stage thread and zstd workers, the streamed PostgreSQL restore's workers). Build dirs: build-asan/, build-tsan/.
# Warnings are not errors here: GCC 12 reports false stringop-overflow warnings under the sanitizers.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib/cmake_configure.sh
. "$root/scripts/lib/cmake_configure.sh"
# NIGHTJAR_SANITIZERS picks the variants: "asan tsan" (default), "asan" or "tsan".
variants=${NIGHTJAR_SANITIZERS:-asan tsan}
for name in $variants; do
  case "$name" in
    asan) flags=address,undefined ;;
    tsan) flags=thread ;;
    *) echo "sanitizers: unknown variant $name (asan or tsan)" >&2; exit 2 ;;
  esac
  # -O1 -g1: line tables for the reports, at about half the compile time of the normal -O2 -g build.
  cmake -S "$root" -B "$root/build-$name" "${nightjar_cmake_flags[@]}" -DNIGHTJAR_SANITIZE="$flags" \
    -DNIGHTJAR_WERROR=OFF -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g1" >/dev/null
  targets=(unit_tests)
  [[ $name == asan ]] && targets+=(conformance_tests)
  cmake --build "$root/build-$name" -j "$(nproc)" --target "${targets[@]}" >"$root/build-$name/build.log" 2>&1 ||
    { tail -n 60 "$root/build-$name/build.log" >&2; echo "sanitizers: the $name build failed" >&2; exit 1; }
done
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if [[ " $variants " == *" asan "* ]]; then
  echo "sanitizers: unit tests under ASan+UBSan"
  "$root/build-asan/tests/unit_tests" --reporter compact
  echo "sanitizers: storage conformance under ASan+UBSan"
  "$root/build-asan/tests/conformance_tests" --reporter compact
fi
if [[ " $variants " == *" tsan "* ]]; then
  echo "sanitizers: threaded tests under TSan"
  TSAN_OPTIONS=halt_on_error=1 "$root/build-tsan/tests/unit_tests" --reporter compact "[threaded],[pipeline],[restore]"
fi
