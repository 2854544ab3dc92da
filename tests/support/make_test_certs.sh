#!/usr/bin/env bash
# Makes a throwaway TLS setup in DIR for the Redis TLS tests: a test CA (ca.crt), a server certificate for
# localhost and 127.0.0.1 signed by it (server.crt/server.key), a client certificate (client.crt/client.key)
# and a second, unrelated CA (other-ca.crt) for the wrong-CA case. Keys are 0600. Nothing outside DIR.
set -euo pipefail
dir=${1:?usage: make_test_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077
days=2
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days "$days" \
  -subj "/CN=nightjar test CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt -days "$days" \
  -subj "/CN=some other CA" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
issue() {  # name subject extensions
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days "$days" \
    -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
issue server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
issue client "/CN=nightjar backup" "extendedKeyUsage=clientAuth"
chmod 0644 ca.crt other-ca.crt server.crt client.crt
chmod 0600 ca.key other-ca.key server.key client.key
