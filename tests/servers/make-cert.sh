#!/usr/bin/env bash
# make-cert.sh TLSDIR: a throwaway CA (TLSDIR/ca.pem) and a server certificate signed by it
# (TLSDIR/cert.pem, key TLSDIR/key.pem) for localhost, 127.0.0.1 and this host's name.
# Clients trust TLSDIR/ca.pem. A self-signed certificate used directly as the server's is
# refused by strict verifiers (rustls/webpki: CaUsedAsEndEntity), so the chain is real.
# ECDSA P-256: RSA key generation took up to 2 s here.
set -euo pipefail
TLS=${1:?usage: make-cert.sh TLSDIR}
mkdir -p "$TLS"
SAN="DNS:localhost,IP:127.0.0.1"
h=$(hostname 2>/dev/null || true)
# libldap checks "localhost" against the reverse lookup of the peer (this host's name).
case "$h" in ""|localhost|*[!A-Za-z0-9.-]*) ;; *) SAN="$SAN,DNS:$h" ;; esac
log="$TLS/openssl.log"
{
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=ocsh test CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$TLS/ca-key.pem" -out "$TLS/ca.pem"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
    -keyout "$TLS/key.pem" -out "$TLS/server.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$SAN" >"$TLS/server.ext"
  openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca-key.pem" -CAcreateserial \
    -days 30 -extfile "$TLS/server.ext" -out "$TLS/cert.pem"
} >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
chmod 600 "$TLS/key.pem" "$TLS/ca-key.pem"
