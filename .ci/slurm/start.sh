#!/usr/bin/env bash
# Start a throwaway single-node SLURM cluster (munge + slurmctld + slurmd) for CI.
# Two partitions, sysa (default) and sysb, both holding this one node.
# Idempotent: re-running keeps already-running daemons that this script started.
# Needs root. No systemd: daemons are started directly.
set -euo pipefail

STATE_DIR="${REPROSCOPE_SLURM_DIR:-/var/lib/reproscope-slurm}"
CONF=/etc/slurm/slurm.conf          # default path, so sbatch/squeue/jobs need no SLURM_CONF
PIDS="$STATE_DIR/started.pids"      # "name pid" lines, read by stop.sh
MARKER="# managed by reproscope .ci/slurm/start.sh"
WAIT_S="${REPROSCOPE_SLURM_WAIT_S:-60}"

log() { echo "[slurm-start] $*" >&2; }
t0=$SECONDS

[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }

# --- packages -----------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  log "installing slurm-wlm munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
  log "apt done after $((SECONDS - t0))s"
fi

mkdir -p "$STATE_DIR"/{ctld,spool,log,run}
touch "$PIDS"

alive() {  # alive PID COMM: true if PID runs a process whose name is COMM
  [ -n "${1:-}" ] && [ "$(ps -o comm= -p "$1" 2>/dev/null)" = "$2" ]
}
recorded_pid() { awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$PIDS"; }
record() {  # record NAME PID (replaces an older entry for NAME)
  { grep -v "^$1 " "$PIDS" || true; echo "$1 $2"; } >"$PIDS.tmp"
  mv "$PIDS.tmp" "$PIDS"
}
wait_pidfile() {  # wait_pidfile FILE COMM: print the pid once the daemon is up
  local pid
  for _ in $(seq 1 50); do
    pid=$(cat "$1" 2>/dev/null || true)
    if alive "$pid" "$2"; then echo "$pid"; return 0; fi
    sleep 0.2
  done
  return 1
}

# --- munge --------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  log "creating munge key"
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge /etc/munge/munge.key
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge

if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  log "munged already running"
else
  runuser -u munge -- /usr/sbin/munged
  pid=$(wait_pidfile /run/munge/munged.pid munged) || { log "munged failed to start"; exit 1; }
  record munged "$pid"
  munge -n | unmunge >/dev/null
  log "munged started (pid $pid)"
fi

# --- slurm.conf ---------------------------------------------------------------
NODE=$(hostname -s)
# slurmd -C prints e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2
# ThreadsPerCore=1 RealMemory=24105"; keep the hardware fields, drop NodeName.
HW=$(slurmd -C | head -n1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore|RealMemory)=' | tr '\n' ' ')

if [ -e "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
  log "$CONF exists and was not written by this script; moving it to $CONF.reproscope-bak"
  mv "$CONF" "$CONF.reproscope-bak"
fi
mkdir -p /etc/slurm
cat >"$CONF.tmp" <<EOF
$MARKER
ClusterName=reproscope
# NodeAddr/SlurmctldHost pinned to loopback: the CI host name may not resolve.
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$STATE_DIR/run/slurmctld.pid
SlurmdPidFile=$STATE_DIR/run/slurmd.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
Waittime=0
MessageTimeout=10
# Snakemake's executor polls with squeue, which only sees finished jobs for
# MinJobAge seconds; its poll interval backs off up to 180s, and it falls back
# to sacct (which fails without slurmdbd) if MinJobAge < 3 * its init interval.
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# SLURM's own record of every finished job (partition, state, node) for CI checks.
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE_DIR/jobcomp.log
NodeName=$NODE NodeAddr=127.0.0.1 ${HW}State=UNKNOWN
PartitionName=sysa Nodes=$NODE Default=YES MaxTime=120 State=UP
PartitionName=sysb Nodes=$NODE Default=NO MaxTime=120 State=UP
EOF
if ! cmp -s "$CONF.tmp" "$CONF" 2>/dev/null; then
  mv "$CONF.tmp" "$CONF"
  CONF_CHANGED=1
else
  rm -f "$CONF.tmp"
  CONF_CHANGED=0
fi

# --- daemons ------------------------------------------------------------------
ctld_pid=$(recorded_pid slurmctld)
if alive "$ctld_pid" slurmctld; then
  [ "$CONF_CHANGED" = 1 ] && scontrol reconfigure
  log "slurmctld already running (pid $ctld_pid)"
else
  slurmctld -f "$CONF"
  ctld_pid=$(wait_pidfile "$STATE_DIR/run/slurmctld.pid" slurmctld) \
    || { log "slurmctld failed; see $STATE_DIR/log/slurmctld.log"; tail -n 20 "$STATE_DIR/log/slurmctld.log" >&2; exit 1; }
  record slurmctld "$ctld_pid"
  log "slurmctld started (pid $ctld_pid)"
fi

d_pid=$(recorded_pid slurmd)
if alive "$d_pid" slurmd; then
  log "slurmd already running (pid $d_pid)"
else
  slurmd -f "$CONF"
  d_pid=$(wait_pidfile "$STATE_DIR/run/slurmd.pid" slurmd) \
    || { log "slurmd failed; see $STATE_DIR/log/slurmd.log"; tail -n 20 "$STATE_DIR/log/slurmd.log" >&2; exit 1; }
  record slurmd "$d_pid"
  log "slurmd started (pid $d_pid)"
fi

# --- wait for the node --------------------------------------------------------
deadline=$((SECONDS + WAIT_S))
state=""
while :; do
  state=$(sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -n1 || true)
  case "$state" in
    idle|mixed|allocated) break ;;
    down*|drain*|fail*)
      log "node state '$state', resuming"
      scontrol update NodeName="$NODE" State=RESUME || true ;;
  esac
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "node $NODE not idle after ${WAIT_S}s (state '$state')"
    sinfo -N -l >&2 || true
    scontrol show node "$NODE" >&2 || true
    tail -n 20 "$STATE_DIR/log/slurmctld.log" "$STATE_DIR/log/slurmd.log" >&2 || true
    exit 1
  fi
  sleep 1
done

log "cluster ready in $((SECONDS - t0))s: node $NODE is $state"
sinfo
