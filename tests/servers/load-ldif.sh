#!/bin/bash
# Load an LDIF file into a running test server with `ldapadd -c` and report what happened.
#
# Usage: tests/servers/load-ldif.sh URL LDIF        (LDIF may be - for stdin)
# Env:
#   OCSH_TEST_BIND_DN    default CN=Administrator,CN=Users,DC=example,DC=com
#   OCSH_TEST_PASSWORD   default Passw0rd!Lab
#   ALLOW_ERRORS=1       exit 0 even when entries were refused (e.g. the demo forest's
#                        deliberately broken users on OpenLDAP)
#   LDAPADD_ARGS         extra ldapadd arguments, e.g. "-ZZ" (word-split)
#   QUIET=1              only the summary line, not one line per refused entry
#   LDAPTLS_REQCERT / LDAPTLS_CACERT are passed on to ldapadd as usual.
#
# Prints "<records> records: <n> added, <n> already existed, <n> failed" and, per
# refused entry (other than "Already exists"), its DN and the server's error. Exit status:
#   0  every record was added or already existed (rc 68; also Samba's rc 10 "Referral" for
#      an add of an existing naming-context head such as the domain root), or ALLOW_ERRORS=1 and ldapadd
#      got through the whole file
#   1  some record failed with another error
#   2  usage error, or ldapadd could not process the file (no connection, bad bind,
#      LDIF parse error): never excused by ALLOW_ERRORS
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: $0 URL LDIF" >&2; exit 2; }
URL=$1; LDIF=$2
BINDDN=${OCSH_TEST_BIND_DN:-CN=Administrator,CN=Users,DC=example,DC=com}
PASS=${OCSH_TEST_PASSWORD:-'Passw0rd!Lab'}
command -v ldapadd >/dev/null || { echo "ldapadd missing: run $(dirname "$0")/install-packages.sh" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ocsh-load-ldif.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
name=$(basename "$LDIF")
if [ "$LDIF" = - ]; then cat > "$tmp/input.ldif"; LDIF=$tmp/input.ldif; name="(stdin)"; fi
[ -r "$LDIF" ] || { echo "cannot read $LDIF" >&2; exit 2; }
# Password in a file (ldapadd -y reads it verbatim) rather than on the command line.
(umask 077; printf '%s' "$PASS" > "$tmp/pw")

# Records = lines starting with "dn:" (folded continuation lines start with a space).
total=$(grep -c -E '^dn::?' "$LDIF")
t0=$(date +%s%N)
# shellcheck disable=SC2086
ldapadd -c -x -H "$URL" -D "$BINDDN" -y "$tmp/pw" ${LDAPADD_ARGS:-} -S "$tmp/skipped.ldif" \
  -f "$LDIF" > "$tmp/out" 2> "$tmp/err"
rc=$?
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))

# ldapadd prints one of these lines for every record it sends to the server.
processed=$(grep -c -E '^(adding new entry|modifying entry|deleting entry|modifying rdn of entry)' "$tmp/out" || true)
touch "$tmp/skipped.ldif"

# Skipped records: "# Error: <text> (<rc>)[, additional info: ...]" then the record itself.
# Print "<rc>\t<error text>\t<dn>" per skipped record (base64 DNs decoded).
awk '
  function flush() { if (err != "") { print code "\t" err "\t" dn }; err = ""; dn = ""; code = "" }
  /^# Error: / {
    flush(); err = substr($0, 10)
    if (match(err, /\(-?[0-9]+\)/)) code = substr(err, RSTART + 1, RLENGTH - 2); else code = "?"
    next
  }
  /^dn:: / && err != "" && dn == "" { dn = "b64:" substr($0, 6); next }
  /^dn: / && err != "" && dn == "" { dn = substr($0, 5); next }
  END { flush() }
' "$tmp/skipped.ldif" > "$tmp/errors.tsv"

# Samba answers an add of an existing naming-context head (the domain root DC=example,DC=com)
# with rc 10 (Referral) instead of 68: count that as "already exists" too.
lower() { printf '%s' "$1" | tr '[:upper:]' '[:lower:]' | sed 's/, */,/g'; }
ncs=""
if grep -q -P '^10\t' "$tmp/errors.tsv"; then
  # shellcheck disable=SC2086
  ncs=$(ldapsearch -x -H "$URL" -D "$BINDDN" -y "$tmp/pw" ${LDAPADD_ARGS:-} -b "" -s base -LLL -o ldif-wrap=no \
        namingContexts 2>/dev/null | sed -n 's/^namingContexts: //p' | while read -r nc; do lower "$nc"; echo; done)
fi
exists=0; failed=0; : > "$tmp/errors2.tsv"
while IFS=$'\t' read -r code err dn; do
  if [ "$code" = 10 ] && [ -n "$ncs" ] && [ "${dn#b64:}" = "$dn" ] && grep -qxF "$(lower "$dn")" <<< "$ncs"; then
    code=68; err="$err (existing naming context)"
  fi
  printf '%s\t%s\t%s\n' "$code" "$err" "$dn" >> "$tmp/errors2.tsv"
  if [ "$code" = 68 ]; then exists=$((exists + 1)); else failed=$((failed + 1)); fi
done < "$tmp/errors.tsv"
mv "$tmp/errors2.tsv" "$tmp/errors.tsv"
skipped=$((exists + failed))
added=$((processed - skipped))
[ "$added" -ge 0 ] || added=0
what=added
grep -q -E '^(modifying entry|deleting entry|modifying rdn of entry)' "$tmp/out" && what="added/modified/deleted"

echo "load-ldif: $name -> $URL: $total records: $added $what, $exists already existed, $failed failed (${ms} ms)"
if [ "${QUIET:-}" != 1 ] && [ "$failed" -gt 0 ]; then
  while IFS=$'\t' read -r code err dn; do
    case "$dn" in b64:*) dn=$(printf '%s' "${dn#b64:}" | base64 -d 2>/dev/null || printf '%s' "$dn") ;; esac
    [ "$code" = 68 ] && continue   # only counted
    printf '  rc %s: %s: %s\n' "$code" "$dn" "$err"
  done < "$tmp/errors.tsv"
fi

# ldapadd stopped before the end of the file (no server, bad bind, LDIF syntax error, ...).
if [ "$processed" -lt "$total" ] || { [ "$rc" -ne 0 ] && [ "$skipped" -eq 0 ]; }; then
  echo "load-ldif: ldapadd stopped after $processed of $total records (exit $rc):" >&2
  grep -v -E '^ldap_(add|modify|delete|rename): Already exists' "$tmp/err" | tail -5 >&2
  exit 2
fi
if [ "$failed" -gt 0 ]; then
  if [ "${ALLOW_ERRORS:-}" = 1 ]; then
    echo "load-ldif: $failed refused entries allowed (ALLOW_ERRORS=1)"
    exit 0
  fi
  exit 1
fi
exit 0
