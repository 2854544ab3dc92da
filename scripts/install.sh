#!/usr/bin/env bash
# Installs the built binaries, the systemd units (or the cron file) and an example config.
# Usage: scripts/install.sh [--cron] [--prefix /usr/local]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr/local
use_cron=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cron) use_cron=1 ;;
    --prefix) prefix=$2; shift ;;
    *) echo "usage: $0 [--cron] [--prefix DIR]" >&2; exit 2 ;;
  esac
  shift
done
build=${NIGHTJAR_BUILD_DIR:-$root/build}
[ -x "$build/backup/nightjar-backup" ] || "$root/scripts/build.sh"
install -D -m 0755 "$build/backup/nightjar-backup" "$prefix/bin/nightjar-backup"
install -D -m 0755 "$build/restore/nightjar-restore" "$prefix/bin/nightjar-restore"
install -D -m 0644 "$root/README.md" "$prefix/share/doc/nightjar/README.md"
install -d -m 0750 /etc/nightjar /var/log/nightjar /var/lib/nightjar /var/lib/nightjar/cdc
[ -f /etc/nightjar/nightjar.json ] || install -m 0640 "$root/samples/nightjar.json" /etc/nightjar/nightjar.json
if [ "$use_cron" -eq 1 ]; then
  install -m 0644 "$root/scripts/cron/nightjar-backup" /etc/cron.d/nightjar-backup
  echo "installed /etc/cron.d/nightjar-backup"
else
  for unit in nightjar-backup.service nightjar-backup.timer nightjar-backup-failed@.service \
              nightjar-cdc-watch.service; do
    sed "s#/usr/local/bin#$prefix/bin#g" "$root/scripts/systemd/$unit" > "/etc/systemd/system/$unit"
  done
  systemctl daemon-reload
  systemctl enable --now nightjar-backup.timer
  echo "installed and enabled nightjar-backup.timer (next run: systemctl list-timers nightjar-backup.timer)"
  # The CDC watchdog heals what a killed run or an expired pause window left paused, and handles FAILED
  # connectors. Enabled by default wherever the config has a "cdc" section (without one it could only exit 2).
  if grep -q '"cdc"' /etc/nightjar/nightjar.json; then
    systemctl enable --now nightjar-cdc-watch.service
    echo "installed and enabled nightjar-cdc-watch.service (systemctl status nightjar-cdc-watch.service)"
  else
    echo "installed nightjar-cdc-watch.service; once the config has a \"cdc\" section run:" \
      "systemctl enable --now nightjar-cdc-watch.service"
  fi
fi
echo "edit /etc/nightjar/nightjar.json, then try: $prefix/bin/nightjar-backup --dry-run"
