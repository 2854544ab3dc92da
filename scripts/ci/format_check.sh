#!/usr/bin/env bash
# Fails when a tracked C++ file drifts from the project's .clang-format (clang-format 14, Debian 12).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
if ! clang-format --dry-run --Werror "${files[@]}" 2>"${TMPDIR:-/tmp}/nightjar-format.$$"; then
  grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error)' "${TMPDIR:-/tmp}/nightjar-format.$$" | cut -d: -f1 | sort -u |
    sed 's/^/format: drifts from .clang-format: /' >&2
  rm -f "${TMPDIR:-/tmp}/nightjar-format.$$"
  echo "format: run clang-format -i on the files above" >&2
  exit 1
fi
rm -f "${TMPDIR:-/tmp}/nightjar-format.$$"
echo "format: ${#files[@]} files clean"
