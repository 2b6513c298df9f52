#!/usr/bin/env bash
# CI: run the SLURM smoke study (config/slurm-smoke.yaml, systems sysa + sysb) on the
# throwaway single-node cluster of start.sh and check that SLURM ran every job where
# the study says:
#   * every accuracy/latency job of system S ran (COMPLETED) in S's slurm_partition,
#     expectations derived from the SLURM rule log dirs (.snakemake/slurm_logs/
#     rule_<rule>/<system>_<manifest>_<env>_<device>[_<bs>]/<jobid>.log);
#   * every inference result JSON carries the SLURM job id it ran under
#     (fingerprint.slurm_job_id), and that job is in SLURM's jobcomp log: an inference
#     job that bypassed SLURM fails the check;
#   * all other rules ran through SLURM too, in the profile's default partition (sysa);
#   * results/summary/runs.csv has rows for both systems, hostname + slurm_job_id set.
# On exit it stops only the daemons that its own start.sh call started.
#
# Usage: .ci/slurm/run_study.sh [--clean]
#   Needs root (start.sh) and a tree without results/ (a fresh CI checkout): the study
#   writes results/ and the check reads it, so an existing results/ is refused;
#   --clean deletes results/ first. Env: REPROSCOPE_SLURM_TIMEOUT_S (default 1200),
#   REPROSCOPE_SLURM_CONFIG, REPROSCOPE_SLURM_PROFILE, REPROSCOPE_SLURM_DIR (start.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

STATE_DIR="${REPROSCOPE_SLURM_DIR:-/var/lib/reproscope-slurm}"
PIDS="$STATE_DIR/started.pids"
JOBCOMP="$STATE_DIR/jobcomp.log"
CONFIG="${REPROSCOPE_SLURM_CONFIG:-config/slurm-smoke.yaml}"
PROFILE="${REPROSCOPE_SLURM_PROFILE:-profiles/slurm}"
TIMEOUT_S="${REPROSCOPE_SLURM_TIMEOUT_S:-1200}"
LOGDIR=.snakemake/slurm_logs
PYTHON="${PYTHON:-python3}"

log() { echo "[run-study] $*" >&2; }
t0=$SECONDS
t_cluster=0 t_snakemake=0 t_check=0

CLEAN=0
case "${1:-}" in
  "") ;;
  --clean) CLEAN=1 ;;
  *) log "usage: $0 [--clean]"; exit 2 ;;
esac

# --- which daemons does this run start? --------------------------------------------
# start.sh records "name pid" for each daemon it starts and keeps running ones, so the
# daemons this run started are those whose recorded pid is alive now but was not
# before start.sh ran. Computed at exit, so a start.sh that fails half-way is covered.
recorded_alive() {  # recorded_alive NAME: the recorded pid of NAME if it runs NAME
  local pid
  pid=$(awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$PIDS" 2>/dev/null || true)
  if [ -n "$pid" ] && [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "$1" ]; then echo "$pid"; fi
}
declare -A BEFORE=()
for n in munged slurmctld slurmd; do BEFORE[$n]=$(recorded_alive "$n"); done
STARTED_CLUSTER=0

cleanup() {
  local rc=$? n now ours=()
  trap - EXIT INT TERM
  for n in slurmd slurmctld munged; do
    now=$(recorded_alive "$n")
    if [ -n "$now" ] && [ "$now" != "${BEFORE[$n]}" ]; then ours+=("$n"); fi
  done
  if [ "$rc" -ne 0 ] && [ "$STARTED_CLUSTER" = 1 ] && command -v squeue >/dev/null; then
    # Jobs of this tree still queued/running (a timeout or a failed run): cancel them
    # before their daemons go, else slurmstepd keeps running them.
    local ids
    ids=$(squeue -h -o '%i %Z' 2>/dev/null | awk -v d="$ROOT" '$2 == d || index($2, d "/") == 1 { print $1 }' || true)
    if [ -n "$ids" ]; then
      log "cancelling this run's SLURM jobs: $(tr "\n" " " <<<"$ids")"
      # shellcheck disable=SC2086
      scancel $ids || true
    fi
  fi
  if [ "${#ours[@]}" -gt 0 ]; then
    "$HERE/stop.sh" "${ours[@]}" || log "stop.sh failed"
  else
    log "no daemons started by this run; leaving the cluster as it was"
  fi
  log "time: cluster ${t_cluster}s, snakemake ${t_snakemake}s, checks ${t_check}s," \
      "total $((SECONDS - t0))s (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- a clean tree ------------------------------------------------------------------
if [ -d results ] && [ -n "$(ls -A results)" ]; then
  if [ "$CLEAN" = 1 ]; then
    log "--clean: deleting results/"
    rm -rf results
  else
    log "results/ exists: the check needs this run to produce every result through SLURM;"
    log "run in a fresh checkout, or pass --clean to delete results/ first"
    exit 2
  fi
fi
# Stale SLURM logs would label jobs of earlier runs: keep one previous set for debugging.
if [ -d "$LOGDIR" ]; then
  rm -rf "$LOGDIR.prev"
  mv "$LOGDIR" "$LOGDIR.prev"
fi

# --- cluster -----------------------------------------------------------------------
t=$SECONDS
STARTED_CLUSTER=1
"$HERE/start.sh"
t_cluster=$((SECONDS - t))

# --- study -------------------------------------------------------------------------
t=$SECONDS
log "snakemake --profile $PROFILE --configfile $CONFIG (timeout ${TIMEOUT_S}s)"
rc=0
timeout "$TIMEOUT_S" snakemake --profile "$PROFILE" --configfile "$CONFIG" || rc=$?
t_snakemake=$((SECONDS - t))
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 124 ] && log "snakemake timed out after ${TIMEOUT_S}s"
  log "snakemake failed (exit $rc) after ${t_snakemake}s; SLURM logs under $LOGDIR," \
      "daemon logs under $STATE_DIR/log"
  exit "$rc"
fi

# --- checks ------------------------------------------------------------------------
t=$SECONDS
mapfile -t EXPECT < <("$PYTHON" "$HERE/check_study.py" expect "$CONFIG" "$PROFILE" --logdir "$LOGDIR")
# (mapfile hides the helper's exit status; an empty list means it failed)
[ "${#EXPECT[@]}" -gt 0 ] || { log "check_study.py expect failed"; exit 1; }
"$PYTHON" "$HERE/check_jobcomp.py" "$JOBCOMP" --workdir "$ROOT" --logdir "$LOGDIR" \
  --only-labelled --require-record "${EXPECT[@]}"
"$PYTHON" "$HERE/check_study.py" runs "$CONFIG"
t_check=$((SECONDS - t))
n_jobs=$(find "$LOGDIR" -name '*.log' | wc -l)
log "OK: $n_jobs SLURM jobs in ${t_snakemake}s of snakemake" \
    "($(awk -v a="$t_snakemake" -v b="$n_jobs" 'BEGIN { printf "%.1f", b ? a / b : 0 }')s per job)"
