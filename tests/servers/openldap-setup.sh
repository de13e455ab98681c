#!/bin/bash
# Create and start a private, throw-away OpenLDAP slapd for ocsh's tests.
#
# Usage: tests/servers/openldap-setup.sh DIR
#   DIR is wiped and rebuilt on every run (a DIR that exists, is not empty and was
#   not made by this script is refused). A slapd still running from DIR is stopped
#   first, so running the script again is a restart from a clean state.
# Env:
#   PORT=3389              plain LDAP (StartTLS too when TLS is on)
#   TLSPORT=3636           ldaps; set TLSPORT= (empty) to switch TLS off entirely
#   OCSH_TEST_PASSWORD     password of the bind DN (default Passw0rd!Lab)
#   SUFFIX=DC=example,DC=com   (the schema/layout assume example.com; change with care)
#   SYNCPROV=1             load the syncprov overlay with a sessionlog (the suffix carries
#                          contextCSN, RFC 4533 refreshes report deletions); SYNCPROV=0 leaves
#                          it out, for the fallback a replicator must still handle
#   DEBUGLEVEL=0           slapd -d level, output goes to DIR/slapd.log (e.g. 256 = stats)
#   SLAPD=/usr/sbin/slapd
#
# Result: slapd on ldap://127.0.0.1:$PORT and ldaps://127.0.0.1:$TLSPORT, bound to
# loopback only; bind DN CN=Administrator,CN=Users,$SUFFIX. Its PID is in DIR/slapd.pid,
# its log in DIR/slapd.log, the server certificate in DIR/tls/cert.pem (its CA: DIR/tls/ca.pem) and the connection
# settings in DIR/env (shell syntax, for `. DIR/env`). Stop with openldap-stop.sh DIR.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ $# -ne 1 ] || [ -z "$1" ]; then echo "usage: $0 DIR" >&2; exit 2; fi
mkdir -p "$1"
LAB=$(cd "$1" && pwd)
PORT=${PORT:-3389}
TLSPORT=${TLSPORT-3636}
PASS=${OCSH_TEST_PASSWORD:-'Passw0rd!Lab'}
SUFFIX=${SUFFIX:-DC=example,DC=com}
SLAPD=${SLAPD:-/usr/sbin/slapd}
BINDDN="CN=Administrator,CN=Users,$SUFFIX"
SYNCPROV=${SYNCPROV:-1}
SYNCMOD=""; SYNCOVL=""; SLAPADD_CSN=""
if [ "$SYNCPROV" = 1 ]; then
  SYNCMOD="olcModuleLoad: syncprov"
  # The sessionlog keeps the last 10,000 deletions (and renames out of scope), so a refresh
  # from a cookie names the deleted entryUUIDs instead of sending every entry present.
  SYNCOVL="dn: olcOverlay={1}syncprov,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {1}syncprov
olcSpCheckpoint: 100 1
olcSpSessionlog: 10000"
  SLAPADD_CSN="-w"   # write contextCSN for the base entries, so it is there from the start
fi
MARKER=.ocsh-openldap-lab
export PATH=$PATH:/usr/sbin:/sbin
# Progress goes to stdout; a reader that stops early (| head -1) must not kill the setup
# half-way through (SIGPIPE), so ignore SIGPIPE and failed writes of these lines.
trap '' PIPE
say() { printf '%s\n' "$*" 2>/dev/null || true; }
now() { date +%s%N; }
secs() { local d=$(( $2 - $1 )); printf '%d.%03d' $(( d / 1000000000 )) $(( d / 1000000 % 1000 )); }
for tool in slapadd slappasswd ldapwhoami openssl "$SLAPD"; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run $HERE/install-packages.sh" >&2; exit 1; }
done

t0=$(now)
# Refuse to wipe a directory that this script did not create.
if [ -n "$(ls -A "$LAB")" ] && [ ! -e "$LAB/$MARKER" ]; then
  echo "$LAB is not empty and was not made by $0; refusing to wipe it" >&2; exit 1
fi
"$HERE/openldap-stop.sh" "$LAB"   # a previous instance from this DIR, if any
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$PORT" ${TLSPORT:+"$TLSPORT"}; do
  if port_busy "$p"; then echo "port $p is already in use (another server? try PORT=/TLSPORT=)" >&2; exit 1; fi
done
# Wipe the contents, not DIR itself (the caller may hold it, e.g. a tempfile::TempDir).
find "$LAB" -mindepth 1 -delete
touch "$LAB/$MARKER"
mkdir -p "$LAB"/{slapd.d,data,run}
HASH=$(slappasswd -s "$PASS")

TLSCONF=""; URLS="ldap://127.0.0.1:$PORT/"
if [ -n "$TLSPORT" ]; then
  # A test CA and a server certificate signed by it; clients trust $LAB/tls/ca.pem.
  "$HERE/make-cert.sh" "$LAB/tls"
  TLSCONF="olcTLSCertificateFile: $LAB/tls/cert.pem
olcTLSCertificateKeyFile: $LAB/tls/key.pem"
  URLS="$URLS ldaps://127.0.0.1:$TLSPORT/"
fi

# Schema next to this script; copied into DIR so that the instance does not depend on the checkout.
cp "$HERE/openldap-msrtc-schema.ldif" "$LAB/msrtc-schema.ldif"

cat > "$LAB/config.ldif" <<LDIF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $LAB/run/slapd.pid
olcArgsFile: $LAB/run/slapd.args
olcLogLevel: none
$TLSCONF

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: constraint
$SYNCMOD

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif
include: file://$LAB/msrtc-schema.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcAccess: {0}to dn.base="" by * read
olcAccess: {1}to dn.base="cn=Subschema" by * read

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcRootDN: cn=admin,cn=config
olcRootPW: $HASH

# Size limits: an unpaged search stops at 1000 entries (rc 4, like AD's MaxPageSize);
# a paged search may use pages of any size and return any total (size.pr, size.prtotal),
# so a paged search of thousands of users with 1000 per page returns them all.
dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: $SUFFIX
olcDbDirectory: $LAB/data
olcDbMaxSize: 2147483648
olcDbNoSync: TRUE
olcRootDN: cn=admin,$SUFFIX
olcRootPW: $HASH
olcSizeLimit: size.soft=1000 size.hard=1000 size.pr=unlimited size.prtotal=unlimited
olcDbIndex: objectClass eq
olcDbIndex: cn,sAMAccountName,userPrincipalName,mail,msRTCSIP-PrimaryUserAddress eq
olcDbIndex: msRTCSIP-UserEnabled,msRTCSIP-PrimaryHomeServer eq
olcDbIndex: entryCSN,entryUUID eq
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by dn.exact="$BINDDN" write by users read by * none

# AD refuses a DN-syntax value that names no existing object; emulate that for the home-server attributes.
dn: olcOverlay={0}constraint,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcConstraintConfig
olcOverlay: {0}constraint
olcConstraintAttribute: msRTCSIP-PrimaryHomeServer uri "ldap:///$SUFFIX?entryDN?sub?(objectClass=*)"
olcConstraintAttribute: msRTCSIP-TargetHomeServer uri "ldap:///$SUFFIX?entryDN?sub?(objectClass=*)"

$SYNCOVL
LDIF

# Base entries: the domain, the Administrator, and both places where OCS keeps its pools:
#   OCS 2007 R2: CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,<domain>
#                (in AD the configuration partition; here a plain subtree of the domain)
#   OCS 2007:    CN=Pools,CN=RTC Service,CN=Microsoft,CN=System,<domain>
cat > "$LAB/base.ldif" <<LDIF
dn: $SUFFIX
objectClass: top
objectClass: domain
dc: example

dn: CN=Users,$SUFFIX
objectClass: container
cn: Users

dn: $BINDDN
objectClass: user
cn: Administrator
sn: Administrator
sAMAccountName: Administrator
userPrincipalName: Administrator@example.com
userPassword: $HASH

dn: CN=Configuration,$SUFFIX
objectClass: container
cn: Configuration

dn: CN=Services,CN=Configuration,$SUFFIX
objectClass: container
cn: Services

dn: CN=RTC Service,CN=Services,CN=Configuration,$SUFFIX
objectClass: msRTCSIP-Service
cn: RTC Service

dn: CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,$SUFFIX
objectClass: msRTCSIP-Pools
cn: Pools

dn: CN=System,$SUFFIX
objectClass: container
cn: System

dn: CN=Microsoft,CN=System,$SUFFIX
objectClass: container
cn: Microsoft

dn: CN=RTC Service,CN=Microsoft,CN=System,$SUFFIX
objectClass: msRTCSIP-Service
cn: RTC Service

dn: CN=Pools,CN=RTC Service,CN=Microsoft,CN=System,$SUFFIX
objectClass: msRTCSIP-Pools
cn: Pools
LDIF

slapadd -n0 -F "$LAB/slapd.d" -l "$LAB/config.ldif" -q 2>"$LAB/run/slapadd.log" \
  || { echo "slapadd of cn=config failed:" >&2; cat "$LAB/run/slapadd.log" >&2; exit 1; }
slapadd -n1 -F "$LAB/slapd.d" -l "$LAB/base.ldif" -q $SLAPADD_CSN 2>>"$LAB/run/slapadd.log" \
  || { echo "slapadd of the base entries failed:" >&2; cat "$LAB/run/slapadd.log" >&2; exit 1; }
t1=$(now)

# -d: stay in the foreground (no fork, so $! is slapd's own PID) and log to DIR/slapd.log.
"$SLAPD" -h "$URLS" -F "$LAB/slapd.d" -d "${DEBUGLEVEL:-0}" >"$LAB/slapd.log" 2>&1 &
pid=$!
echo "$pid" > "$LAB/slapd.pid"
fail() {
  echo "$1; slapd log ($LAB/slapd.log):" >&2
  cat "$LAB/slapd.log" >&2
  "$HERE/openldap-stop.sh" "$LAB"
  exit 1
}
ready=""
for _ in $(seq 1 200); do
  kill -0 "$pid" 2>/dev/null || fail "slapd exited during start-up"
  if ldapwhoami -x -H "ldap://127.0.0.1:$PORT" -D "$BINDDN" -w "$PASS" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.05
done
[ -n "$ready" ] || fail "slapd did not answer within 10s"
t2=$(now)

q() { local v=${2//\'/\'\\\'\'}; printf "%s='%s'\n" "$1" "$v"; }  # KEY='value', sh-safe
{
  echo "# written by $0; load with: . $LAB/env"
  q OCSH_TEST_SERVER openldap
  q OCSH_TEST_LDAP_URL "ldap://127.0.0.1:$PORT"
  [ -z "$TLSPORT" ] || q OCSH_TEST_LDAPS_URL "ldaps://127.0.0.1:$TLSPORT"
  [ -z "$TLSPORT" ] || q OCSH_TEST_CA_CERT "$LAB/tls/ca.pem"
  q OCSH_TEST_BIND_DN "$BINDDN"
  q OCSH_TEST_PASSWORD "$PASS"
  q OCSH_TEST_BASE "$SUFFIX"
} > "$LAB/env"

say "slapd running (pid $pid): config+slapadd $(secs "$t0" "$t1")s, start->answering $(secs "$t1" "$t2")s"
if [ -n "$TLSPORT" ]; then say "  ldap://127.0.0.1:$PORT  (StartTLS available)"; else say "  ldap://127.0.0.1:$PORT  (TLS off)"; fi
[ -z "$TLSPORT" ] || say "  ldaps://127.0.0.1:$TLSPORT  (CA: $LAB/tls/ca.pem)"
say "  bind: $BINDDN  base: $SUFFIX  settings: $LAB/env"
say "  stop: $HERE/openldap-stop.sh $LAB"
