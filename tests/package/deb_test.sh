#!/usr/bin/env bash
# Builds the .deb with scripts/package.sh, checks it with lintian, installs it with dpkg, runs it, and
# purges it again, leaving no file of it behind.
# Usage: deb_test.sh SOURCE_DIR
set -euo pipefail
src=$1
. "$src/tests/package/lib.sh"
[ "$(id -u)" -eq 0 ] || fail "dpkg -i needs root"
if dpkg-query -W -f='${Status}' nightjar 2>/dev/null | grep -q "install ok installed"; then
  fail "a nightjar package is already installed on this machine: purge it first (dpkg --purge nightjar)"
fi
trap 'dpkg --purge nightjar >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
deb=$(NIGHTJAR_DEB_BUILD_DIR=$src/build-deb "$src/scripts/package.sh" 2>"$tmp/build.log") || { cat "$tmp/build.log" >&2; fail "package.sh failed"; }
case "$(basename "$deb")" in nightjar_*_amd64.deb) ;; *) fail "unexpected package name $deb" ;; esac
dpkg-deb --info "$deb" > "$tmp/info"
grep -q '^ Depends:.*libc6' "$tmp/info" || fail "Depends was not computed by dpkg-shlibdeps: $(grep Depends "$tmp/info")"
grep -q '^ Depends:.*libpq5' "$tmp/info" || fail "Depends lacks libpq5"
lintian --tag-display-limit 0 "$deb" > "$tmp/lintian" 2>&1 || true
cat "$tmp/lintian"
grep -q '^E:' "$tmp/lintian" && fail "lintian reports errors"
dpkg -i "$deb" >/dev/null
/usr/bin/nightjar-backup --help >/dev/null || fail "installed nightjar-backup does not run"
/usr/bin/nightjar-restore --help >/dev/null || fail "installed nightjar-restore does not run"
if /usr/bin/nightjar-backup --version >/dev/null 2>&1; then /usr/bin/nightjar-backup --version; fi
getent passwd nightjar >/dev/null || fail "the package did not create the nightjar user"
[ -f /etc/nightjar/nightjar.json.example ] || fail "no example config"
[ -f /lib/systemd/system/nightjar-backup.service ] || fail "no backup unit"
grep -q "ExecStart=/usr/bin/nightjar-backup" /lib/systemd/system/nightjar-backup.service || fail "unit names the wrong binary"
man -w nightjar-backup >/dev/null 2>&1 || [ -f /usr/share/man/man1/nightjar-backup.1.gz ] || fail "no man page"
dpkg -L nightjar | sort > "$tmp/files"
dpkg --purge nightjar >/dev/null
while read -r f; do
  [ -d "$f" ] && continue
  [ -e "$f" ] && fail "purge left $f behind"
done < "$tmp/files"
echo "1 passed, 0 failed"
