#!/bin/bash
# Stop the slapd that openldap-setup.sh started from DIR (by its recorded PID only,
# and only when that PID is still a slapd serving DIR/slapd.d). Keeps DIR's data.
# Usage: tests/servers/openldap-stop.sh DIR     Exit 0 also when nothing was running.
set -uo pipefail
if [ $# -ne 1 ] || [ -z "$1" ]; then echo "usage: $0 DIR" >&2; exit 2; fi
[ -d "$1" ] || exit 0
LAB=$(cd "$1" && pwd)

ours() {  # is $1 a live slapd started with -F $LAB/slapd.d ?
  local args
  args=$(tr '\0' ' ' 2>/dev/null < "/proc/$1/cmdline") || return 1
  case "$args" in *slapd*" -F $LAB/slapd.d "*) return 0 ;; *) return 1 ;; esac
}

# A dead slapd may linger as a zombie until its parent (often PID 1 or a subreaper)
# reaps it, and `kill -0` still succeeds on a zombie: count state Z as stopped.
alive() {
  local st
  st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

status=0
for f in "$LAB/slapd.pid" "$LAB/run/slapd.pid"; do
  [ -f "$f" ] || continue
  pid=$(cat "$f" 2>/dev/null)
  if [[ "$pid" =~ ^[0-9]+$ ]] && ours "$pid"; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 500); do alive "$pid" || break; sleep 0.01; done
    if alive "$pid"; then
      echo "slapd $pid did not stop within 5s; sending SIGKILL" >&2
      kill -9 "$pid" 2>/dev/null
      sleep 0.1
    fi
    alive "$pid" && { echo "slapd $pid is still running" >&2; status=1; }
  fi
  [ $status -ne 0 ] || rm -f "$f"
done
exit $status
