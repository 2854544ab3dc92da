# Shared by the package tests: fail with a message, a temp dir removed on exit.
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
