#!/bin/bash
# Install the Debian packages the directory-server tests need, only when missing:
#   OpenLDAP: slapd ldap-utils openssl
#   Samba AD: samba samba-ad-dc samba-ad-provision samba-dsdb-modules winbind
# Idempotent: does nothing (not even `apt-get update`) when everything is installed.
# Needs root when something must be installed. Tests start their own private
# server instances, so the daemons that the packages' postinst scripts would start
# (slapd, samba-ad-dc, smbd, nmbd, winbindd) are prevented from starting, and any
# that started anyway are stopped and disabled.
#
# Usage: tests/servers/install-packages.sh
# Env:   ONLY=openldap|samba   install just one group (default: both)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export PATH=$PATH:/usr/sbin:/sbin

openldap_pkgs=(slapd ldap-utils openssl)
samba_pkgs=(samba samba-ad-dc samba-ad-provision samba-dsdb-modules winbind)
# Not a server: the REPL tests drive ocsh through a real terminal with tmux.
tool_pkgs=(tmux)
case "${ONLY:-}" in
  "") wanted=("${openldap_pkgs[@]}" "${samba_pkgs[@]}" "${tool_pkgs[@]}") ;;
  openldap) wanted=("${openldap_pkgs[@]}") ;;
  samba) wanted=("${openldap_pkgs[@]}" "${samba_pkgs[@]}") ;;  # samba tests use ldap-utils too
  *) echo "ONLY must be openldap or samba" >&2; exit 2 ;;
esac

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for p in "${wanted[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "all packages present: ${wanted[*]}"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "missing packages (${missing[*]}); run this script as root" >&2
  exit 1
fi

# Daemons already running before the install (never ours to touch).
# (pgrep refuses patterns longer than 15 characters, so ask for each name.)
daemon_pids() { for n in slapd samba smbd nmbd winbindd; do pgrep -x "$n" || true; done; }
before=" $(daemon_pids | tr '\n' ' ') "

# Tell invoke-rc.d not to start services during the install (Debian's policy-rc.d
# mechanism, exit 101 = action forbidden). Keep an existing policy-rc.d as it is.
created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# temporary, created by ocsh tests/servers/install-packages.sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
cleanup() { [ -z "$created_policy" ] || rm -f /usr/sbin/policy-rc.d; }
trap cleanup EXIT

echo "installing: ${missing[*]}"
t0=$(date +%s)
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "installed in $(( $(date +%s) - t0 ))s"

# Stop and disable the system services the packages ship: the tests never use them.
for svc in slapd samba-ad-dc smbd nmbd winbind; do
  [ -e "/etc/init.d/$svc" ] || continue
  service "$svc" stop >/dev/null 2>&1 || true
  update-rc.d "$svc" disable >/dev/null 2>&1 || true
  # works offline too (removes the multi-user.target.wants links the postinst made)
  systemctl disable "$svc" >/dev/null 2>&1 || true
  [ ! -d /run/systemd/system ] || systemctl stop "$svc" >/dev/null 2>&1 || true
done

# Kill any package daemon that appeared during the install (by PID, never by name).
# A daemon started with a private config (slapd -F/-f, samba -s/--configfile outside
# /etc) belongs to someone's test run, not to the package: leave it alone.
system_daemon() {
  local args
  args=$(tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null) || return 1
  case "$args" in
    *" -F "*|*" -f "*|*" -s "*|*--configfile*) case "$args" in *" /etc/"*|*"=/etc/"*) return 0 ;; *) return 1 ;; esac ;;
  esac
  return 0
}
after=""
for pid in $(daemon_pids); do
  case "$before" in *" $pid "*) continue ;; esac
  system_daemon "$pid" && after="$after $pid"
done
for pid in $after; do
  echo "stopping package-started $(ps -o comm= -p "$pid" 2>/dev/null || echo daemon) (pid $pid)"
  kill "$pid" 2>/dev/null || true
done
for pid in $after; do
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
done
now=$(daemon_pids | tr '\n' ' ')
echo "done; slapd/samba/smbd/nmbd/winbindd processes running now: ${now:-none}"
