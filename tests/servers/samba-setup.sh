#!/bin/bash
# Provision and start a throw-away Samba AD domain controller for ocsh's tests, with the
# msRTCSIP (OCS) schema extension and both OCS pool layouts.
#
# Usage: tests/servers/samba-setup.sh DIR
#   Needs root (samba itself and the fixed ports 389/636): one instance at a time.
#   DIR is wiped and rebuilt (a non-empty DIR not made by this script is refused); a
#   samba still running from DIR is stopped first.
#   Snapshot: after the schema step the stopped DC is copied to DIR.snapshot; the next
#   run restores that copy instead of provisioning (about 1 s instead of 10+ s). The
#   snapshot is used only when it was made with the same password, domain, samba
#   version, schema file and this script; otherwise it is rebuilt.
# Env:
#   OCSH_TEST_PASSWORD   Administrator password (default Passw0rd!Lab; AD's complexity
#                        rules apply: upper, lower, digit/symbol, 7+ characters)
#   SNAPSHOT=DIR.snapshot  where the snapshot lives; SNAPSHOT= (empty) disables it
#   FRESH=1              ignore (and rebuild) an existing snapshot
#   SKIP_SCHEMA=1        plain DC, no msRTCSIP schema or OCS containers (never snapshotted)
#   REALM=EXAMPLE.COM DOMAIN=EXAMPLE BASE=DC=example,DC=com (change all three together)
#   SERVICES=ldap        samba's "server services"
#
# Result: ldap://127.0.0.1 (389, StartTLS) and ldaps://127.0.0.1 (636), bound to lo;
# bind DN CN=Administrator,CN=Users,$BASE. DIR/samba.pid holds the root samba PID,
# DIR/samba.out its log, DIR/tls/cert.pem the certificate (CN localhost, SANs
# localhost, 127.0.0.1, this host's name), DIR/env the connection settings
# (`. DIR/env`). Stop with samba-stop.sh DIR.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ $# -ne 1 ] || [ -z "$1" ]; then echo "usage: $0 DIR" >&2; exit 2; fi
[ "$(id -u)" = 0 ] || { echo "$0 needs root (samba, ports 389/636)" >&2; exit 1; }
mkdir -p "$1"
LAB=$(cd "$1" && pwd)
PASS=${OCSH_TEST_PASSWORD:-'Passw0rd!Lab'}
REALM=${REALM:-EXAMPLE.COM}; DOMAIN=${DOMAIN:-EXAMPLE}
BASE=${BASE:-DC=example,DC=com}
SERVICES=${SERVICES:-ldap}
SNAP=${SNAPSHOT-$LAB.snapshot}
[ -z "${SKIP_SCHEMA:-}" ] || SNAP=""
BINDDN="CN=Administrator,CN=Users,$BASE"
MARKER=.ocsh-samba-lab
export PATH=$PATH:/usr/sbin:/sbin
# Progress goes to stdout; a reader that stops early (| head -1) must not kill the setup
# half-way through (SIGPIPE), so ignore SIGPIPE and failed writes of these lines.
trap '' PIPE
say() { printf '%s\n' "$*" 2>/dev/null || true; }
now() { date +%s%N; }
secs() { local d=$(( $2 - $1 )); printf '%d.%03d' $(( d / 1000000000 )) $(( d / 1000000 % 1000 )); }
for tool in samba samba-tool ldapsearch ldapmodify openssl sha256sum; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run $HERE/install-packages.sh" >&2; exit 1; }
done

t0=$(now)
if [ -n "$(ls -A "$LAB")" ] && [ ! -e "$LAB/$MARKER" ]; then
  echo "$LAB is not empty and was not made by $0; refusing to wipe it" >&2; exit 1
fi
"$HERE/samba-stop.sh" "$LAB"
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in 389 636 3268 3269; do
  if port_busy "$p"; then echo "port $p is already in use (another directory server running?)" >&2; exit 1; fi
done

A=(-x -H ldap://127.0.0.1 -D "$BINDDN" -w "$PASS")
start_samba() {  # start samba from $LAB in the background and wait until a bound search answers
  local pid
  samba -s "$LAB/etc/smb.conf" -F --debug-stdout -d1 >> "$LAB/samba.out" 2>&1 &
  pid=$!
  echo "$pid" > "$LAB/samba.pid"
  # PID and start time: samba rewrites its command line, so the stop script recognises
  # its process by this pair instead.
  echo "$pid $(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20)" > "$LAB/samba.pid.start"
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || { echo "samba exited during start-up; $LAB/samba.out:" >&2; tail -50 "$LAB/samba.out" >&2; exit 1; }
    # (not ldapwhoami: Samba does not implement the WhoAmI extended operation)
    if ldapsearch "${A[@]}" -b "" -s base -LLL dn >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  echo "samba did not answer within 30s; $LAB/samba.out:" >&2; tail -50 "$LAB/samba.out" >&2
  "$HERE/samba-stop.sh" "$LAB"; exit 1
}

# Everything that makes one snapshot different from another.
KEY=$( { echo "$PASS|$REALM|$DOMAIN|$BASE|$SERVICES|$LAB"; samba -V
         sha256sum < "$HERE/samba-msrtc-schema.ldif.in"; sha256sum < "$0"; } | sha256sum | cut -c1-64)

if [ -n "$SNAP" ] && [ -z "${FRESH:-}" ] && [ -f "$SNAP/.ocsh-snapshot-key" ] \
   && [ "$(cat "$SNAP/.ocsh-snapshot-key")" = "$KEY" ]; then
  # ---- restore the snapshot ----
  find "$LAB" -mindepth 1 -delete
  cp -a "$SNAP/." "$LAB/"
  rm -f "$LAB/.ocsh-snapshot-key"
  : > "$LAB/samba.out"
  t1=$(now)
  start_samba
  t2=$(now)
  say "samba restored from $SNAP: copy $(secs "$t0" "$t1")s, start->answering $(secs "$t1" "$t2")s"
else
  # ---- provision afresh ----
  find "$LAB" -mindepth 1 -delete
  touch "$LAB/$MARKER"
  mkdir -p "$LAB/run" "$LAB/tls"
  # Our own certificate, so that clients can verify 127.0.0.1/localhost against DIR/tls/cert.pem
  # (Samba's generated one names dc1.example.com only). Samba wants the key mode 0600.
  "$HERE/make-cert.sh" "$LAB/tls"
  # --option values are written into DIR/etc/smb.conf (except the strong-auth one, see below).
  if ! samba-tool domain provision --targetdir="$LAB" --realm="$REALM" --domain="$DOMAIN" \
      --server-role=dc --dns-backend=NONE --host-name=dc1 --adminpass="$PASS" \
      --backend-store=mdb \
      --option="interfaces=lo" --option="bind interfaces only=yes" \
      --option="ldap server require strong auth=no" \
      --option="dsdb:schema update allowed=true" \
      --option="server services=$SERVICES" \
      --option="pid directory=$LAB/run" \
      --option="tls keyfile=$LAB/tls/key.pem" --option="tls certfile=$LAB/tls/cert.pem" \
      --option="tls cafile=" \
      --option="log file=$LAB/log.%m" > "$LAB/provision.log" 2>&1; then
    echo "samba-tool domain provision failed; $LAB/provision.log:" >&2; tail -30 "$LAB/provision.log" >&2; exit 1
  fi
  # samba-tool silently drops "ldap server require strong auth" from the generated smb.conf:
  # add it by hand (without it simple binds on ldap:// fail with rc 8, strongerAuthRequired).
  # ldb:nosync skips the fsync of every ldb transaction, as Samba's own selftest does.
  sed -i 's/^\[global\]$/[global]\n\tldap server require strong auth = no\n\tldb:nosync = true/' "$LAB/etc/smb.conf"
  t1=$(now)
  : > "$LAB/samba.out"
  start_samba
  t2=$(now)
  say "samba provisioned: provision $(secs "$t0" "$t1")s, start->answering $(secs "$t1" "$t2")s"

  if [ -z "${SKIP_SCHEMA:-}" ]; then
    sed "s/@SCHEMA@/CN=Schema,CN=Configuration,$BASE/g" "$HERE/samba-msrtc-schema.ldif.in" > "$LAB/msrtc-schema.ldif"
    ldapmodify "${A[@]}" -f "$LAB/msrtc-schema.ldif" > "$LAB/schema.out" 2>&1 \
      || { echo "schema extension failed; $LAB/schema.out:" >&2; tail -20 "$LAB/schema.out" >&2; "$HERE/samba-stop.sh" "$LAB"; exit 1; }
    # Where OCS keeps its pools:
    #   OCS 2007 R2: CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,<domain> (configuration partition)
    #   OCS 2007:    CN=Pools,CN=RTC Service,CN=Microsoft,CN=System,<domain>        (domain partition)
    cat > "$LAB/layout.ldif" <<LDIF
dn: CN=RTC Service,CN=Services,CN=Configuration,$BASE
objectClass: msRTCSIP-Service

dn: CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,$BASE
objectClass: msRTCSIP-Pools

dn: CN=Microsoft,CN=System,$BASE
objectClass: container

dn: CN=RTC Service,CN=Microsoft,CN=System,$BASE
objectClass: msRTCSIP-Service

dn: CN=Pools,CN=RTC Service,CN=Microsoft,CN=System,$BASE
objectClass: msRTCSIP-Pools
LDIF
    ldapadd "${A[@]}" -f "$LAB/layout.ldif" > "$LAB/layout.out" 2>&1 \
      || { echo "creating the OCS containers failed; $LAB/layout.out:" >&2; cat "$LAB/layout.out" >&2; "$HERE/samba-stop.sh" "$LAB"; exit 1; }
    t3=$(now)
    say "schema extension + OCS containers: $(secs "$t2" "$t3")s"
  fi

  if [ -n "$SNAP" ]; then
    # Copy the stopped DC (a live mdb/tdb copy could be torn), then start it again.
    "$HERE/samba-stop.sh" "$LAB"
    rm -rf "$SNAP" "$SNAP.tmp.$$"
    cp -a "$LAB" "$SNAP.tmp.$$"
    # leave out the run-time leftovers: our PID files, samba's pid file and messaging sockets
    rm -f "$SNAP.tmp.$$/samba.pid" "$SNAP.tmp.$$/samba.pid.start" "$SNAP.tmp.$$/env" "$SNAP.tmp.$$/run/samba.pid"
    find "$SNAP.tmp.$$/msg.lock" "$SNAP.tmp.$$/msg.sock" -mindepth 1 -delete 2>/dev/null || true
    echo "$KEY" > "$SNAP.tmp.$$/.ocsh-snapshot-key"   # written last: marks a complete copy
    mv "$SNAP.tmp.$$" "$SNAP"
    t4=$(now)
    : > "$LAB/samba.out"
    start_samba
    t5=$(now)
    say "snapshot $SNAP: copy $(secs "$t3" "$t4")s, restart $(secs "$t4" "$t5")s"
  fi
fi

q() { local v=${2//\'/\'\\\'\'}; printf "%s='%s'\n" "$1" "$v"; }  # KEY='value', sh-safe
{
  echo "# written by $0; load with: . $LAB/env"
  q OCSH_TEST_SERVER samba
  q OCSH_TEST_LDAP_URL "ldap://127.0.0.1"
  q OCSH_TEST_LDAPS_URL "ldaps://127.0.0.1"
  q OCSH_TEST_CA_CERT "$LAB/tls/ca.pem"
  q OCSH_TEST_BIND_DN "$BINDDN"
  q OCSH_TEST_PASSWORD "$PASS"
  q OCSH_TEST_BASE "$BASE"
} > "$LAB/env"

t9=$(now)
say "samba AD DC running (pid $(cat "$LAB/samba.pid")), total $(secs "$t0" "$t9")s"
say "  ldap://127.0.0.1  (389, StartTLS available)"
say "  ldaps://127.0.0.1  (636, CA: $LAB/tls/ca.pem)"
say "  bind: $BINDDN  base: $BASE  settings: $LAB/env"
say "  stop: $HERE/samba-stop.sh $LAB"
