#!/bin/bash
# Check the test-server scripts end to end against real servers, then stop everything.
# Usage: tests/servers/selftest.sh [openldap|samba|all]    (default all; samba needs root)
# Env:   WORK=dir   where the lab dirs go (default: a new temp dir, removed at the end
#                   together with the Samba snapshot made there)
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WHAT=${1:-all}
own_work=""
if [ -z "${WORK:-}" ]; then WORK=$(mktemp -d "${TMPDIR:-/tmp}/ocsh-servers-selftest.XXXXXX"); own_work=1; fi
PASS=${OCSH_TEST_PASSWORD:-'Passw0rd!Lab'}
BINDDN="CN=Administrator,CN=Users,DC=example,DC=com"
BASE="DC=example,DC=com"
cleanup() {
  "$HERE/openldap-stop.sh" "$WORK/slapd" 2>/dev/null || true
  "$HERE/samba-stop.sh" "$WORK/samba" 2>/dev/null || true
  [ -z "$own_work" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "FAIL (line $LINENO: $BASH_COMMAND)" >&2' ERR
now() { date +%s%N; }
ms() { echo "$(( ($(now) - $1) / 1000000 )) ms"; }
ok() { echo "ok   $*"; }
die() { echo "FAIL $*" >&2; exit 1; }
count() { grep -c '^dn:' || true; }
# entries found by ldapsearch "$@", whatever its exit status (4 size limit, 32 no such object, ...)
nfound() { { ldapsearch "$@" 2>/dev/null || true; } | count; }

openldap() {
  local L=$WORK/slapd U=ldap://127.0.0.1:${PORT:-3389} t n
  local A=(-x -D "$BINDDN" -w "$PASS")
  t=$(now); "$HERE/openldap-setup.sh" "$L" >/dev/null; ok "openldap-setup.sh ($(ms "$t"))"
  n=$(nfound "${A[@]}" -H "$U" -b "$BASE" -LLL '(objectClass=msRTCSIP-Pools)' dn)
  [ "$n" = 2 ] || die "expected 2 msRTCSIP-Pools containers, got $n"; ok "both Pools containers"
  LDAPTLS_REQCERT=never ldapwhoami "${A[@]}" -ZZ -H "$U" >/dev/null || die "StartTLS"
  LDAPTLS_CACERT=$L/tls/ca.pem ldapwhoami "${A[@]}" -ZZ -H "$U" >/dev/null || die "StartTLS with CA"
  ok "StartTLS (REQCERT=never and verified against DIR/tls/ca.pem)"
  LDAPTLS_CACERT=$L/tls/ca.pem ldapwhoami "${A[@]}" -H "ldaps://127.0.0.1:${TLSPORT:-3636}" >/dev/null || die "ldaps"
  ok "ldaps"
  for i in $(seq -w 1 3000); do
    printf 'dn: CN=Bulk User %s,CN=Users,%s\nobjectClass: user\ncn: Bulk User %s\nsn: User%s\nsAMAccountName: bulk%s\n\n' \
      "$i" "$BASE" "$i" "$i" "$i"
  done > "$WORK/bulk.ldif"
  t=$(now); QUIET=1 "$HERE/load-ldif.sh" "$U" "$WORK/bulk.ldif" >/dev/null || die "loading 3000 users"
  ok "3000 users added ($(ms "$t"))"
  t=$(now)
  n=$(nfound "${A[@]}" -H "$U" -b "$BASE" -LLL -E pr=1000/noprompt '(sAMAccountName=bulk*)' dn)
  [ "$n" = 3000 ] || die "paged search returned $n of 3000"; ok "paged search (pr=1000) returned 3000 ($(ms "$t"))"
  n=$(nfound "${A[@]}" -H "$U" -b "$BASE" -LLL '(sAMAccountName=bulk*)' dn)
  [ "$n" = 1000 ] || die "unpaged search returned $n, expected the 1000 cap"; ok "unpaged search capped at 1000 (rc 4)"
  t=$(now); "$HERE/openldap-stop.sh" "$L"; ok "openldap-stop.sh ($(ms "$t"))"
  (exec 3<>"/dev/tcp/127.0.0.1/${PORT:-3389}") 2>/dev/null && die "port still open after stop"
  t=$(now); "$HERE/openldap-setup.sh" "$L" >/dev/null; ok "setup again in the same DIR ($(ms "$t"))"
  ldapwhoami "${A[@]}" -H "$U" >/dev/null || die "bind after restart"; ok "bind after restart"
  "$HERE/openldap-stop.sh" "$L"
}

samba() {
  local S=$WORK/samba U=ldap://127.0.0.1 t n P
  local A=(-x -H ldap://127.0.0.1 -D "$BINDDN" -w "$PASS")
  [ "$(id -u)" = 0 ] || die "the Samba part needs root"
  t=$(now); "$HERE/samba-setup.sh" "$S" >/dev/null; ok "samba-setup.sh, provision + schema + snapshot ($(ms "$t"))"
  ldapsearch "${A[@]}" -b "" -s base -LLL dn >/dev/null || die "simple bind"; ok "simple bind on ldap://"
  ldapsearch "${A[@]}" -b "" -s base -LLL configurationNamingContext | grep -q "^configurationNamingContext: CN=Configuration,$BASE" \
    || die "no configurationNamingContext"; ok "rootDSE has configurationNamingContext"
  LDAPTLS_CACERT=$S/tls/ca.pem ldapsearch -x -D "$BINDDN" -w "$PASS" -ZZ -H "$U" -b "" -s base -LLL dn >/dev/null || die "StartTLS"
  LDAPTLS_CACERT=$S/tls/ca.pem ldapsearch -x -D "$BINDDN" -w "$PASS" -H ldaps://127.0.0.1 -b "" -s base -LLL dn >/dev/null || die "ldaps"
  ok "StartTLS and ldaps verified against DIR/tls/ca.pem"
  n=$(nfound "${A[@]}" -b "$BASE" -LLL '(objectClass=msRTCSIP-Pools)' dn)
  n2=$(nfound "${A[@]}" -b "CN=Configuration,$BASE" -LLL '(objectClass=msRTCSIP-Pools)' dn)
  if [ "$n" != 1 ] || [ "$n2" != 1 ]; then
    die "Pools containers: $n in the domain, $n2 in the configuration partition"
  fi
  ok "Pools containers in CN=System and in the configuration partition"
  P="CN=selftest,CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,$BASE"
  ldapadd "${A[@]}" >/dev/null <<LDIF || die "adding a pool"
dn: $P
objectClass: msRTCSIP-Pool
msRTCSIP-PoolDisplayName: selftest
dNSHostName: selftest.example.com
msRTCSIP-PoolType: 10
msRTCSIP-PoolVersion: 4
LDIF
  ldapsearch "${A[@]}" -b "$P" -s base -LLL msRTCSIP-PoolDisplayName | grep -q '^msRTCSIP-PoolDisplayName: selftest$' \
    || die "reading the pool back"; ok "msRTCSIP-Pool added under the R2 Pools container and read back"
  t=$(now); "$HERE/samba-stop.sh" "$S"; ok "samba-stop.sh ($(ms "$t"))"
  (exec 3<>/dev/tcp/127.0.0.1/389) 2>/dev/null && die "port 389 still open after stop"
  t=$(now); out=$("$HERE/samba-setup.sh" "$S")
  grep -q "restored from" <<< "$out" || die "snapshot not used: $out"
  ok "setup again: snapshot restored ($(ms "$t"))"
  n=$(nfound "${A[@]}" -b "$P" -s base -LLL dn)
  [ "$n" = 0 ] || die "the restored DC still has the test pool"; ok "restored DC is back to the post-schema state"
  "$HERE/samba-stop.sh" "$S"
}

case "$WHAT" in
  openldap) openldap ;;
  samba) samba ;;
  all) openldap; samba ;;
  *) echo "usage: $0 [openldap|samba|all]" >&2; exit 2 ;;
esac
echo "selftest $WHAT: all passed"
