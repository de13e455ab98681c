#!/bin/bash
# ocsh against the OpenLDAP clients on the same server, in one run (issue 9):
#
#   P1  bulk enable of the 5,500 never-enabled users of 10,000 with `ocsh run --apply`
#       vs one `ldapmodify -f` of the same changes (ocsh's own plan as LDIF)
#       vs 4 parallel `ldapmodify` clients, each a quarter of the changes
#   P2  a report over all 10,000 users (`emit` sam, sip, flags, --format json)
#       vs `ldapsearch -E pr=1000/noprompt` of the same attributes
#
# Each P1 contender starts from a freshly loaded server; P2 runs each side 3 times and
# keeps the fastest. Prints the times and the ratios (ocsh / yardstick). Not part of
# `cargo test`; see README "Benchmarks" and docs/performance.md.
#
# Usage: bench/ldap-throughput.sh            (builds ocsh --release first)
# Env:   USERS=10000 (5,500 of them never enabled per 10,000), PORT=free port, KEEP=1
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SERVERS=$ROOT/tests/servers
USERS=${USERS:-10000}
BINDDN='CN=Administrator,CN=Users,DC=example,DC=com'
PASS='Passw0rd!Lab'
POOL01='CN=LC Services,CN=Microsoft,CN=pool01,CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,DC=example,DC=com'

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
  || echo $(( 20000 + RANDOM % 20000 )); }
PORT=${PORT:-$(free_port)}
URL="ldap://127.0.0.1:$PORT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ocsh-bench.XXXXXX")
LAB=$WORK/lab
cleanup() {
  "$SERVERS/openldap-stop.sh" "$LAB" >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$LAB"
(umask 077; printf '%s' "$PASS" > "$WORK/pw")

echo "building ocsh --release ..." >&2
(cd "$ROOT" && cargo build --release -q)
OCSH=$ROOT/target/release/ocsh

# The demo forest without its users (domain, containers, pools, SIP domains).
awk 'BEGIN { RS = ""; ORS = "\n\n" } !/\nobjectClass: user(\n|$)/' \
  "$ROOT/src/directory/demo-forest.ldif" > "$WORK/deployment.ldif"
# OU=Scale: user i is enabled on pool01..03 when i % 20 < 9 (45%), never enabled otherwise.
never=0
{
  printf 'dn: OU=Scale,DC=example,DC=com\nobjectClass: top\nobjectClass: organizationalUnit\nou: Scale\n\n'
  for ((i = 0; i < USERS; i++)); do
    s=$(printf 'scale%05d' "$i")
    printf 'dn: CN=Scale User %05d,OU=Scale,DC=example,DC=com\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\ncn: Scale User %05d\nsn: User %05d\ngivenName: Scale\nsAMAccountName: %s\nuserPrincipalName: %s@example.com\nmail: %s@example.com\nuserAccountControl: 512\n' \
      "$i" "$i" "$i" "$s" "$s" "$s"
    if (( i % 20 < 9 )); then
      pool=pool0$(( i % 3 + 1 ))
      printf 'proxyAddresses: SIP:%s@example.com\nmsRTCSIP-UserEnabled: TRUE\nmsRTCSIP-PrimaryUserAddress: sip:%s@example.com\nmsRTCSIP-PrimaryHomeServer: CN=LC Services,CN=Microsoft,CN=%s,CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,DC=example,DC=com\nmsRTCSIP-OptionFlags: 256\n' \
        "$s" "$s" "$pool"
    else
      never=$((never + 1))
    fi
    printf '\n'
  done
} > "$WORK/users.ldif"

fresh_server() {
  PORT=$PORT TLSPORT= "$SERVERS/openldap-setup.sh" "$LAB" >/dev/null
  ALLOW_ERRORS=1 QUIET=1 "$SERVERS/load-ldif.sh" "$URL" "$WORK/deployment.ldif" >/dev/null
  QUIET=1 "$SERVERS/load-ldif.sh" "$URL" "$WORK/users.ldif" >/dev/null
}

cat > "$WORK/enable.rhai" <<'EOF'
let p = pool("pool01");
for u in users("(&(objectClass=user)(!(msRTCSIP-UserEnabled=*))(mail=*))") { u.enable(p); }
EOF
cat > "$WORK/report.rhai" <<'EOF'
for u in users() { emit(#{ sam: u.sam, sip: u.sip, flags: u.flags.value }); }
EOF

ocsh() { OCSH_PASSWORD=$PASS "$OCSH" "$@" --directory "$URL" --bind-dn "$BINDDN" --journal "$WORK/journal.jsonl"; }
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "P1: $USERS users, $never never enabled" >&2
fresh_server
ocsh run "$WORK/enable.rhai" --format ldif > "$WORK/changes.ldif"
changes=$(grep -c '^dn:' "$WORK/changes.ldif")
t0=$(now); ldapmodify -x -H "$URL" -D "$BINDDN" -y "$WORK/pw" -f "$WORK/changes.ldif" >/dev/null; t1=$(now)
lm=$(secs "$t0" "$t1")

fresh_server
awk -v dir="$WORK" 'BEGIN { RS = ""; ORS = "\n\n" } /(^|\n)dn:/ { print > (dir "/part" (n++ % 4) ".ldif") }' "$WORK/changes.ldif"
t0=$(now)
for k in 0 1 2 3; do
  ldapmodify -x -H "$URL" -D "$BINDDN" -y "$WORK/pw" -f "$WORK/part$k.ldif" >/dev/null &
done
wait
t1=$(now)
lm4=$(secs "$t0" "$t1")

fresh_server
t0=$(now); ocsh run "$WORK/enable.rhai" --apply --yes > "$WORK/apply.out" 2>&1; t1=$(now)
p1=$(secs "$t0" "$t1")
grep -q "Applied $changes of $changes entries: 0 conflicted, 0 failed." "$WORK/apply.out" \
  || { echo "ocsh did not apply all $changes entries:" >&2; tail -5 "$WORK/apply.out" >&2; exit 1; }

echo "P2: report over $USERS users" >&2
best() { sort -n | head -1; }
p2=$(for _ in 1 2 3; do t0=$(now); ocsh run "$WORK/report.rhai" --format json > "$WORK/report.json"; t1=$(now); secs "$t0" "$t1"; echo; done | best)
ls2=$(for _ in 1 2 3; do t0=$(now); ldapsearch -x -LLL -H "$URL" -D "$BINDDN" -y "$WORK/pw" -E pr=1000/noprompt \
  -b DC=example,DC=com '(objectClass=user)' sAMAccountName msRTCSIP-PrimaryUserAddress msRTCSIP-OptionFlags > "$WORK/ls.ldif"; t1=$(now); secs "$t0" "$t1"; echo; done | best)
grep -q '"sam"' "$WORK/report.json" || { echo "the report is empty" >&2; exit 1; }

printf '\n%-58s %8s %8s\n' "measure ($(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))" "seconds" "ratio"
printf '%-58s %8s\n' "P1 ldapmodify -f ($changes entries)" "$lm"
printf '%-58s %8s\n' "P1 4 x ldapmodify in parallel" "$lm4"
printf '%-58s %8s %8s\n' "P1 ocsh run --apply (vs 1 ldapmodify; bound 0.8)" "$p1" "$(ratio "$p1" "$lm")"
printf '%-58s %8s %8s\n' "P1 ocsh run --apply (vs 4 ldapmodify; bound 1.2)" "$p1" "$(ratio "$p1" "$lm4")"
printf '%-58s %8s\n' "P2 ldapsearch -E pr=1000/noprompt ($USERS users)" "$ls2"
printf '%-58s %8s %8s\n' "P2 ocsh report --format json (vs ldapsearch; bound 1.5)" "$p2" "$(ratio "$p2" "$ls2")"
