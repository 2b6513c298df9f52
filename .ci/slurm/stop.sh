#!/usr/bin/env bash
# Stop only the daemons that .ci/slurm/start.sh started (read from its PID file).
# Usage: stop.sh [NAME...]   NAME in slurmd, slurmctld, munged; default: all three.
# With names, only those are stopped and only their PID-file entries are dropped
# (run_study.sh passes the daemons that its own start.sh call started).
set -euo pipefail

STATE_DIR="${REPROSCOPE_SLURM_DIR:-/var/lib/reproscope-slurm}"
PIDS="$STATE_DIR/started.pids"

log() { echo "[slurm-stop] $*" >&2; }

[ -f "$PIDS" ] || { log "no $PIDS; nothing to stop"; exit 0; }

# Reverse start order: slurmd, slurmctld, then munged.
for name in slurmd slurmctld munged; do
  if [ "$#" -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
    continue
  fi
  pid=$(awk -v n="$name" '$1 == n { p = $2 } END { print p }' "$PIDS")
  [ -n "$pid" ] || continue
  # Guard against PID reuse: only signal if the PID still runs that daemon.
  if [ "$(ps -o comm= -p "$pid" 2>/dev/null)" != "$name" ]; then
    log "$name (pid $pid) not running"
    continue
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) ignored SIGTERM, sending SIGKILL"
    kill -KILL "$pid" || true
  fi
  log "stopped $name (pid $pid)"
done
if [ "$#" -eq 0 ]; then
  : >"$PIDS"
else
  { grep -v -E "^($(IFS='|'; echo "$*")) " "$PIDS" || true; } >"$PIDS.tmp"
  mv "$PIDS.tmp" "$PIDS"
fi
