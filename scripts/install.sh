#!/usr/bin/env bash
# Installs nightjar with `cmake --install`: binaries, man pages, bash completion, systemd units (or the cron
# file), logrotate snippet and /etc/nightjar/nightjar.json.example. With --destdir (or DESTDIR) everything
# goes beneath that directory and nothing else on the host is touched. Without it, the units are enabled
# when systemd runs (the timer and the CDC watchdog), unless --no-enable.
# Usage: scripts/install.sh [--prefix /usr/local] [--destdir DIR] [--cron] [--no-enable]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr/local
destdir=${DESTDIR:-}
use_cron=0
enable=1
while [ $# -gt 0 ]; do
  case "$1" in
    --cron) use_cron=1 ;;
    --no-enable) enable=0 ;;
    --prefix) prefix=$2; shift ;;
    --destdir) destdir=$2; shift ;;
    *) echo "usage: $0 [--prefix DIR] [--destdir DIR] [--cron] [--no-enable]" >&2; exit 2 ;;
  esac
  shift
done
case "$prefix" in /*) ;; *) echo "install: --prefix must be absolute, got $prefix" >&2; exit 2 ;; esac

# Decide everything that can fail before writing anything: no half-installs.
systemd_up=0
[ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && systemd_up=1
if [ -z "$destdir" ] && [ "$use_cron" -eq 0 ] && [ "$enable" -eq 1 ] && [ "$systemd_up" -eq 0 ]; then
  echo "install: systemd is not running here; use --cron, or --no-enable to install the units without enabling them" >&2
  exit 2
fi

build=${NIGHTJAR_BUILD_DIR:-$root/build-install}
# shellcheck source=lib/cmake_configure.sh
. "$root/scripts/lib/cmake_configure.sh"
cmake -S "$root" -B "$build" "${nightjar_cmake_flags[@]}" -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
cmake --build "$build" -j "$(nproc)" --target nightjar-backup nightjar-restore man deb_changelog >/dev/null
DESTDIR="$destdir" cmake --install "$build" >/dev/null
echo "installed nightjar under ${destdir:-/}${destdir:+ (prefix $prefix)}"
[ -n "$destdir" ] && exit 0

getent passwd nightjar >/dev/null || {
  if command -v adduser >/dev/null 2>&1; then adduser --system --group --home /var/lib/nightjar --no-create-home --quiet nightjar
  else useradd --system --home-dir /var/lib/nightjar --shell /usr/sbin/nologin --user-group nightjar; fi
}
# The units run as nightjar: it reads /etc/nightjar (group) and owns the conventional backup dir.
install -d -m 0750 -o root -g nightjar /etc/nightjar
install -d -m 0700 -o nightjar -g nightjar /var/backups/nightjar
# The host-wide CDC journal (systemd units get it from StateDirectory=; cron runs need it made).
install -d -m 0700 -o nightjar -g nightjar /var/lib/nightjar /var/lib/nightjar/cdc
if [ "$use_cron" -eq 1 ]; then
  install -m 0644 "$build/scripts/units/nightjar-backup" /etc/cron.d/nightjar-backup
  echo "installed /etc/cron.d/nightjar-backup"
elif [ "$enable" -eq 1 ]; then
  systemctl daemon-reload
  systemctl enable --now nightjar-backup.timer
  echo "enabled nightjar-backup.timer (next run: systemctl list-timers nightjar-backup.timer)"
  # The CDC watchdog heals what a killed run or an expired pause window left paused, and handles FAILED
  # connectors. Enabled wherever the config has a "cdc" section (without one it could only exit 2).
  if grep -q '"cdc"' /etc/nightjar/nightjar.json 2>/dev/null; then
    systemctl enable --now nightjar-cdc-watch.service
    echo "enabled nightjar-cdc-watch.service"
  else
    echo "once the config has a \"cdc\" section: systemctl enable --now nightjar-cdc-watch.service"
  fi
fi
[ -f /etc/nightjar/nightjar.json ] || echo "copy /etc/nightjar/nightjar.json.example to /etc/nightjar/nightjar.json and edit it"
echo "then try: $prefix/bin/nightjar-backup --dry-run"
