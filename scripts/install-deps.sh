#!/usr/bin/env bash
# Installs every build and test dependency from Debian 12's packages. Idempotent: a second run only checks.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang-format ccache
  age
  libarchive-dev libzstd-dev libssl-dev libhiredis-dev libpq-dev libcurl4-openssl-dev
  nlohmann-json3-dev libcli11-dev catch2 libxml2-dev
  postgresql postgresql-client redis-server redis-tools zstd jq python3 procps curl
  ceph-mon ceph-osd radosgw awscli
  help2man scdoc man-db bsdextrautils dpkg-dev lintian adduser
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged servers on install; our tests and demo run their own throwaway ones.
for svc in postgresql redis-server; do
  $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
echo "install-deps: done"
