#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the test suite and for trying `neuronmerge slurm`:
#   bash scripts/slurm-local.sh start DIR   starts it (config, state and logs in DIR) and prints the
#                                           SLURM_CONF to export for sbatch, squeue and neuronmerge slurm
#   bash scripts/slurm-local.sh stop DIR    stops it
# Needs root and Debian's slurm-wlm and munge (apt-get install slurm-wlm munge). Exit code 3: it
# cannot start here (what is missing is printed).
set -euo pipefail
what=${1:-}; dir=${2:-}
[ -n "$what" ] && [ -n "$dir" ] || { echo "usage: slurm-local.sh start|stop DIR" >&2; exit 2; }
dir=$(realpath -m "$dir")
case $what in
start)
  for b in slurmctld slurmd sbatch squeue munged munge; do
    command -v "$b" >/dev/null 2>&1 || { echo "slurm-local: $b is not installed (apt-get install slurm-wlm munge)" >&2; exit 3; }
  done
  [ "$(id -u)" = 0 ] || { echo "slurm-local: the daemons need root" >&2; exit 3; }
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  # munge: one daemon for the machine, started where none answers
  if ! munge -n </dev/null >/dev/null 2>&1; then
    if [ ! -s /etc/munge/munge.key ]; then
      mkdir -p /etc/munge
      dd if=/dev/urandom of=/etc/munge/munge.key bs=128 count=1 status=none
      chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n </dev/null >/dev/null 2>&1 || { echo "slurm-local: munged does not answer" >&2; exit 3; }
  fi
  host=$(hostname -s)
  port=$((20000 + RANDOM % 20000))
  cat > "$dir/slurm.conf" <<CONF
ClusterName=nm$port
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldPort=$port
SlurmdPort=$((port + 1))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
MpiDefault=none
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 100); do
    [ "$(sinfo -h -o %T 2>/dev/null | head -1)" = idle ] && { echo "$SLURM_CONF"; exit 0; }
    sleep 0.2
  done
  echo "slurm-local: the node did not come up (logs in $dir/log)" >&2
  exit 3
  ;;
stop)
  for p in slurmd slurmctld; do
    [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
  done
  ;;
*) echo "usage: slurm-local.sh start|stop DIR" >&2; exit 2 ;;
esac
