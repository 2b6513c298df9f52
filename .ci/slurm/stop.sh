#!/usr/bin/env bash
# Stop only the daemons that .ci/slurm/start.sh started (read from its PID file).
set -euo pipefail

STATE_DIR="${REPROSCOPE_SLURM_DIR:-/var/lib/reproscope-slurm}"
PIDS="$STATE_DIR/started.pids"

log() { echo "[slurm-stop] $*" >&2; }

[ -f "$PIDS" ] || { log "no $PIDS; nothing to stop"; exit 0; }

# Reverse start order: slurmd, slurmctld, then munged.
for name in slurmd slurmctld munged; do
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
: >"$PIDS"
