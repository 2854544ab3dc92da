#!/usr/bin/env bash
# Free loopback TCP ports for throwaway servers (test services, benchmarks, the manual-restore check).
# Source this file. A port found free can be taken by someone else before it is bound: callers start
# their server right away and fail clearly if it does not come up.

# Prints one free port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# A free range of N consecutive ports (Ceph's messenger binds within ms bind port min/max); prints "MIN MAX".
free_port_range() {
  python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    base = random.randint(20000, 60000 - n)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
        print(base, base + n - 1)
        sys.exit(0)
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
sys.exit(1)
PY
}
