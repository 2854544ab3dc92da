#!/usr/bin/env bash
# scripts/install.sh --destdir puts every file beneath DESTDIR and touches nothing else on the host.
# Usage: destdir_install_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
. "$src/tests/package/lib.sh"
watched=(/etc/nightjar /etc/cron.d /etc/systemd/system /etc/logrotate.d /usr/local/bin /usr/local/share /usr/local/lib /lib/systemd/system)
snapshot() { for d in "${watched[@]}"; do [ -e "$d" ] && find "$d" -printf '%p %s %T@\n' 2>/dev/null; done | sort; }
snapshot > "$tmp/before"
NIGHTJAR_BUILD_DIR=$build "$src/scripts/install.sh" --prefix /usr/local --destdir "$tmp/root" >/dev/null
snapshot > "$tmp/after"
diff -u "$tmp/before" "$tmp/after" || fail "install.sh --destdir changed the host outside DESTDIR"
(cd "$tmp/root" && find . -type f -o -type l | sed 's#^\.##' | sort) > "$tmp/tree"
cat "$tmp/tree"
expected=(
  /usr/local/bin/nightjar-backup /usr/local/bin/nightjar-restore
  /usr/local/share/man/man1/nightjar-backup.1.gz /usr/local/share/man/man1/nightjar-restore.1.gz
  /usr/local/share/man/man5/nightjar.json.5.gz
  /usr/local/share/bash-completion/completions/nightjar-backup /usr/local/share/bash-completion/completions/nightjar-restore
  /usr/local/lib/systemd/system/nightjar-backup.service /usr/local/lib/systemd/system/nightjar-backup.timer
  /usr/local/lib/systemd/system/nightjar-cdc-watch.service /usr/local/lib/systemd/system/nightjar-backup-failed@.service
  /usr/local/share/nightjar/cron/nightjar-backup
  /etc/nightjar/nightjar.json.example /etc/logrotate.d/nightjar /usr/local/share/doc/nightjar/README.md
  /usr/local/lib/sysusers.d/nightjar.conf
)
for f in "${expected[@]}"; do grep -qxF "$f" "$tmp/tree" || fail "missing from the install: $f"; done
# Nothing outside the two roots the layout allows.
if grep -vE '^/(usr/local|etc)/' "$tmp/tree"; then fail "files installed outside /usr/local and /etc (above)"; fi
grep -q "ExecStart=/usr/local/bin/nightjar-backup" "$tmp/root/usr/local/lib/systemd/system/nightjar-backup.service" \
  || fail "the installed unit does not name the installed binary"
[ ! -e "$tmp/root/etc/nightjar/nightjar.json" ] || fail "a real config was installed"
"$tmp/root/usr/local/bin/nightjar-backup" --help >/dev/null || fail "the installed binary does not run"
echo "1 passed, 0 failed"
