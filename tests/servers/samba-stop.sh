#!/bin/bash
# Stop the samba that samba-setup.sh started from DIR: SIGTERM to its recorded root
# process (checked by PID and start time, since samba rewrites its command line), then
# wait for it and its children; SIGKILL by PID whatever is left after 10 s.
# Keeps DIR's data. Usage: tests/servers/samba-stop.sh DIR   (exit 0 when nothing ran)
set -uo pipefail
if [ $# -ne 1 ] || [ -z "$1" ]; then echo "usage: $0 DIR" >&2; exit 2; fi
[ -d "$1" ] || exit 0
LAB=$(cd "$1" && pwd)
[ -f "$LAB/samba.pid.start" ] || { rm -f "$LAB/samba.pid"; exit 0; }
read -r pid start < "$LAB/samba.pid.start" || true

# A dead process may linger as a zombie until its parent reaps it (PID 1 here does so
# late), and `kill -0` succeeds on zombies: count state Z as stopped.
alive() {
  local st
  st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
starttime() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }  # field 22, after the (comm)
descendants() {  # "pid:starttime" of all descendants of $1
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do echo "$c:$(starttime "$c")"; descendants "$c"; done
}
still() {  # is "pid:starttime" $1 still that same live process?
  alive "${1%%:*}" && [ "$(starttime "${1%%:*}")" = "${1#*:}" ]
}

if [[ "${pid:-}" =~ ^[0-9]+$ ]] && alive "$pid" \
   && [ "$(starttime "$pid")" = "${start:-x}" ]; then
  procs="$pid:$start $(descendants "$pid" | tr '\n' ' ')"
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 1000); do
    left=""; for p in $procs; do still "$p" && left="$left $p"; done
    [ -n "$left" ] || break
    sleep 0.01
  done
  if [ -n "$left" ]; then
    echo "samba processes still running after 10s:$left; sending SIGKILL" >&2
    for p in $left; do kill -9 "${p%%:*}" 2>/dev/null; done
    sleep 0.2
  fi
fi
rm -f "$LAB/samba.pid" "$LAB/samba.pid.start"
exit 0
