#!/usr/bin/env bash
# Files component vs the standard tools on the same data, in one run. Prints times and ratios, not a verdict.
#   nightjar-backup (tar + sha256 of content + zstd + sha256 of stored, one pass)
#   tar -cf - | zstd -T0 -3 | tee >(sha256sum) > file      (the hand pipeline doing the same job)
#   nightjar-restore --dry-run (full verify)  vs  zstd -d | sha256sum + tar -t
# Usage: bench/files_bench.sh [MiB of data, default 300]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size_mib=${1:-300}
bin=${NIGHTJAR_BUILD_DIR:-$root/build}
[ -x "$bin/backup/nightjar-backup" ] || "$root/scripts/build.sh"
work=$(mktemp -d /tmp/nightjar-bench-files-XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "generating ${size_mib} MiB in 2,000 files (half compressible text, half random)..."
python3 - "$work/data" "$size_mib" <<'PY'
import os, random, sys
root, mib = sys.argv[1], int(sys.argv[2])
random.seed(7)
words = [b"listen", b"server", b"timeout", b"worker", b"include", b"location", b"proxy", b"= ", b"\n", b"{", b"}"]
per = mib * 1024 * 1024 // 2000
for i in range(2000):
    d = os.path.join(root, f"d{i % 40}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.conf"), "wb") as f:
        if i % 2:
            f.write(os.urandom(per))
        else:
            out = bytearray()
            while len(out) < per:
                out += random.choice(words) + b" " + str(random.randint(0, 99999)).encode()
            f.write(bytes(out[:per]))
PY
sync
cat > "$work/cfg.json" <<JSON
{"backup_dir": "$work/backups", "files": {"paths": ["$work/data"]}}
JSON

measure() {  # measure NAME CMD...: wall seconds and peak RSS (KiB) of CMD
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time.$name" "$@" >/dev/null 2>"$work/err.$name" || { cat "$work/err.$name" >&2; exit 1; }
  read -r secs rss < "$work/time.$name"
  printf '%-28s %7.2f s  peak %6d KiB\n' "$name" "$secs" "$rss"
  eval "t_$name=$secs"
}
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null

# Both sides read the same warm page cache: read the data once first.
tar -C "$work" -cf - data > /dev/null
measure nightjar_backup "$bin/backup/nightjar-backup" --config "$work/cfg.json" -q
measure hand_pipeline bash -c "tar -C '$work' -cf - data | zstd -q -T0 -3 | tee >(sha256sum > '$work/hand.sha') > '$work/hand.tar.zst'"
measure nightjar_verify "$bin/restore/nightjar-restore" latest --backup-dir "$work/backups" --dry-run -q
measure hand_verify bash -c "sha256sum '$work/hand.tar.zst' >/dev/null && zstd -q -d -c '$work/hand.tar.zst' | tee >(sha256sum >/dev/null) | tar -tf - >/dev/null"

ours=$(du -b "$work"/backups/2*/files.tar.zst | awk '{print $1}')
hand=$(du -b "$work/hand.tar.zst" | awk '{print $1}')
echo
echo "artifact size: nightjar $ours bytes, hand pipeline $hand bytes (ratio $(python3 -c "print(f'{$ours/$hand:.3f}')"))"
echo "backup time ratio nightjar/hand: $(python3 -c "print(f'{$t_nightjar_backup/$t_hand_pipeline:.2f}')")"
echo "verify time ratio nightjar/hand: $(python3 -c "print(f'{$t_nightjar_verify/$t_hand_verify:.2f}')") (nightjar also checks every file's digest against the manifest)"
