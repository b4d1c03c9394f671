#!/usr/bin/env bash
# A real single-node Slurm on this machine, in a folder of its own, for tests and trying
# ctbmd-slurm: munged (its own key and socket), slurmctld and slurmd from Debian's slurm-wlm,
# on free loopback ports, as the current user (root in a container).
#   tools/slurm-local.sh start DIR   start it; prints "export SLURM_CONF=DIR/slurm.conf"
#   tools/slurm-local.sh stop DIR    stop what start started
# Accounting is off (no slurmdbd): sacct answers "accounting storage is disabled", and
# ctbmd-slurm status reads finished tasks from scontrol instead.
set -euo pipefail
cmd=${1:?start or stop}
dir=${2:?folder}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
export SLURM_CONF=$dir/slurm.conf

# Waits up to $1 tenths of a second for the pids that follow to end; 1 when some live on.
wait_gone() {
  local n=$1
  shift
  for _ in $(seq 1 "$n"); do
    local alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  return 1
}

stop() {
  local daemons=() munge=()
  for f in slurmd.pid slurmctld.pid; do [[ -f $dir/$f ]] && daemons+=("$(cat "$dir/$f")"); done
  [[ -f $dir/munge/munged.pid ]] && munge+=("$(cat "$dir/munge/munged.pid")")
  if [[ -f $SLURM_CONF ]]; then scontrol shutdown >/dev/null 2>&1 || true; fi
  # shutdown is asynchronous: wait, then signal what is left
  wait_gone 50 "${daemons[@]}" || { kill "${daemons[@]}" 2>/dev/null; wait_gone 20 "${daemons[@]}"; } ||
    kill -9 "${daemons[@]}" 2>/dev/null || true
  if ((${#munge[@]})); then
    kill "${munge[@]}" 2>/dev/null || true
    wait_gone 30 "${munge[@]}" || kill -9 "${munge[@]}" 2>/dev/null || true
  fi
}

if [[ $cmd == stop ]]; then
  stop
  exit 0
fi
[[ $cmd == start ]] || { echo "usage: $0 start|stop DIR" >&2; exit 1; }
for exe in munged slurmctld slurmd sbatch squeue scontrol; do
  command -v "$exe" >/dev/null || PATH=$PATH:/usr/sbin
  command -v "$exe" >/dev/null || { echo "slurm-local: $exe not found (Debian: slurmctld slurmd slurm-client munge; tools/install-deps.sh installs them)" >&2; exit 1; }
done
mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
chmod 711 "$dir/munge"
head -c 1024 /dev/urandom >"$dir/munge/munge.key"
chmod 600 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed"
read -r p1 p2 < <(/usr/bin/python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
host=$(hostname -s)
cat >"$SLURM_CONF" <<EOF
ClusterName=ctbmdlocal
SlurmctldHost=$host(127.0.0.1)
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
SlurmctldPort=$p1
SlurmdPort=$p2
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
SchedulerType=sched/backfill
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -i
slurmd -N "$host"
for _ in $(seq 1 100); do
  if sinfo -h -o %t 2>/dev/null | grep -qx "idle"; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.2
done
echo "slurm-local: the node did not come up within 20 s; logs: $dir/log" >&2
tail -5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
stop
exit 1
