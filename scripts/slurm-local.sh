#!/usr/bin/env bash
# A one-machine SLURM cluster on loopback, to try the workflow's SLURM profile on a workstation (docs/workflow.md,
# "Trying the SLURM path on one machine"; tests/workflow/test_slurm_cluster.py runs the DAG on it).
#   bash scripts/slurm-local.sh start    install slurm-wlm and munge if missing, write the config, start the daemons
#   bash scripts/slurm-local.sh status   the daemons this script started, and sinfo
#   bash scripts/slurm-local.sh stop     stop the daemons this script started (by their pid files, nothing else)
# Everything lives under TUNEBENCH_SLURM_DIR (default /tmp/tunebench-slurm): config, munge key and socket, state,
# logs and pid files. Clients find the cluster through its config: export SLURM_CONF="$TUNEBENCH_SLURM_DIR/slurm.conf".
# One thing lives outside it: the link /etc/slurm/slurm.conf to that config (made only where no such file exists or
# a killed run of this script left it; removed by stop), because Snakemake's jobstep executor clears every SLURM_*
# variable, SLURM_CONF included, before it calls srun inside a job, and srun then reads the default path.
# One node (this host, all its cores, its memory less 1 GiB) in two partitions, `cpu` (the default) and `gpu`, with two
# fake GPUs (GRES backed by /dev/null and /dev/zero: a job gets the allocation, not a device). No accounting database,
# so `sacct` fails: Snakemake's SLURM executor needs `--slurm-status-command squeue` here. A job-submit filter (lua)
# rejects a GPU request outside `gpu` and a job without one inside it, so a misrouted rule fails at sbatch. Needs
# root: slurmd runs jobs as their users, and munged's key must belong to the daemons' user.
set -euo pipefail

DIR=${TUNEBENCH_SLURM_DIR:-/tmp/tunebench-slurm}
CTLD_PORT=${TUNEBENCH_SLURM_PORT:-6817}  # slurmd listens on the next port
HOST=$(hostname -s)
DEFAULT_CONF=/etc/slurm/slurm.conf

die() { echo "slurm-local: $*" >&2; exit 1; }

install_packages() {
  # Debian/Ubuntu names; slurm-wlm brings slurmctld, slurmd and the clients, lua job-submit plugin included.
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
    return
  fi
  command -v apt-get >/dev/null || die "slurm-wlm and munge are missing and there is no apt-get to install them"
  echo "slurm-local: installing slurm-wlm and munge" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_config() {
  local cpus mem_mb
  cpus=$(nproc)
  # Leave 1 GiB to the system; a job asking for more than the node has is refused at sbatch, as on a real cluster.
  mem_mb=$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
  mkdir -p "$DIR"/{munge,state,spool,log,run}
  chmod 700 "$DIR/munge"
  if [ ! -s "$DIR/munge/munge.key" ]; then
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$DIR/munge/munge.key"
  fi
  cat >"$DIR/slurm.conf" <<EOF
# Written by scripts/slurm-local.sh for host $HOST: one node on loopback, no accounting, no cgroups.
ClusterName=tunebench
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$((CTLD_PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# No systemd or cgroups needed: processes are tracked by their parent ids, tasks are not confined.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
JobSubmitPlugins=lua
MpiDefault=none
MailProg=/bin/true
# Finished jobs stay visible to squeue and scontrol for an hour: without accounting these are the only records,
# and the executor's squeue status check needs a job to outlive its polling interval.
MinJobAge=3600
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MessageTimeout=30
NodeName=$HOST NodeAddr=127.0.0.1 NodeHostname=$HOST CPUs=$cpus RealMemory=$mem_mb Gres=gpu:2 State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST MaxTime=INFINITE State=UP
EOF
  # Two fake GPUs, so that two GPU jobs can share a 2-core node as two CPU jobs do. SLURM counts a GPU per device
  # file; a job is allocated one (and its CUDA_VISIBLE_DEVICES) but never opens it.
  printf 'NodeName=%s Name=gpu File=%s\n' "$HOST" /dev/null "$HOST" /dev/zero >"$DIR/gres.conf"
  cp "$(dirname "$0")/slurm-local/job_submit.lua" "$DIR/job_submit.lua"
}

pid_alive() {  # pid_alive NAME [FOLDER]: the daemon whose pid file this script wrote (in FOLDER, default DIR) runs
  local pidfile="${2:-$DIR}/run/$1.pid"
  [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

die_with_logs() {  # die_with_logs MESSAGE: die, with the end of every daemon log (CI keeps only what is printed)
  local log
  for log in "$DIR"/log/*.log; do
    [ -f "$log" ] && { echo "--- last lines of $log:"; tail -n 15 "$log"; } >&2
  done
  die "$*"
}

wait_started() {  # wait_started NAME: wait for the daemon's pid file; the daemon forks and writes it some time later
  local _
  for _ in $(seq 150); do
    pid_alive "$1" && return
    sleep 0.2
  done
  die_with_logs "$1 did not start within 30 s (no live pid in $DIR/run/$1.pid)"
}

link_default_conf() {  # the job steps' config (see the header); never replaces another cluster's config
  if [ -L "$DEFAULT_CONF" ] && [ "$(readlink "$DEFAULT_CONF")" = "$DIR/slurm.conf" ]; then
    return
  fi
  # A link to a missing file configures no cluster: a run killed before its `stop` left it, so it goes.
  if [ -L "$DEFAULT_CONF" ] && [ ! -e "$DEFAULT_CONF" ]; then
    echo "slurm-local: removing the dangling link $DEFAULT_CONF -> $(readlink "$DEFAULT_CONF")" >&2
    rm "$DEFAULT_CONF"
  fi
  # A link to another folder's config written by this script, whose controller is not running: a run killed before
  # its `stop` whose folder outlived it (an interrupted test's temporary folder) left it, and it configures no live
  # cluster either.
  if [ -L "$DEFAULT_CONF" ]; then
    local target
    target=$(readlink "$DEFAULT_CONF")
    if head -n 1 "$target" | grep -q "^# Written by scripts/slurm-local.sh" \
        && ! pid_alive slurmctld "$(dirname "$target")"; then
      echo "slurm-local: removing $DEFAULT_CONF -> $target, left by a stopped cluster of this script" >&2
      rm "$DEFAULT_CONF"
    fi
  fi
  [ ! -e "$DEFAULT_CONF" ] && [ ! -L "$DEFAULT_CONF" ] \
    || die "$DEFAULT_CONF exists (another cluster's config?); job steps would read it instead of $DIR/slurm.conf"
  mkdir -p "$(dirname "$DEFAULT_CONF")"
  ln -s "$DIR/slurm.conf" "$DEFAULT_CONF"
}

start() {
  [ "$(id -u)" -eq 0 ] || die "needs root (slurmd and munged run as root here)"
  install_packages
  write_config
  export SLURM_CONF="$DIR/slurm.conf"  # the daemons find gres.conf and job_submit.lua beside it
  # Each daemon forks into the background and writes its pid file a moment later: wait for it before going on,
  # else a busy machine reads "no pid file" as "stopped" (a CI run failed so while slurmd was starting normally).
  pid_alive munged || munged --key-file "$DIR/munge/munge.key" --socket "$DIR/munge/munge.socket" \
    --pid-file "$DIR/run/munged.pid" --log-file "$DIR/log/munged.log" --seed-file "$DIR/munge/munged.seed" --force
  wait_started munged
  # -c: each start is a fresh cluster (no jobs or node states of an earlier one, e.g. a node drained by a bad config)
  pid_alive slurmctld || slurmctld -c -f "$SLURM_CONF"
  wait_started slurmctld
  pid_alive slurmd || slurmd -f "$SLURM_CONF"
  wait_started slurmd
  link_default_conf
  local state=""
  for _ in $(seq 60); do
    pid_alive slurmctld && pid_alive slurmd || die_with_logs "a daemon stopped while starting; see $DIR/log/"
    state=$(sinfo -h -N -o %T 2>/dev/null | sort -u | tr '\n' ' ' || true)
    [ "$state" = "idle " ] && break
    sleep 1
  done
  [ "$state" = "idle " ] || die_with_logs "node not idle after 60 s (state: '${state:-no answer}'); see $DIR/log/"
  echo "slurm-local: up; export SLURM_CONF=$SLURM_CONF"
}

stop() {
  local name pid
  # Cancel the cluster's jobs first: killing slurmd would leave their job steps (slurmstepd and the job) running.
  if pid_alive slurmctld; then
    export SLURM_CONF="$DIR/slurm.conf"
    squeue -h -o %i | xargs -r scancel
    for _ in $(seq 30); do [ -z "$(squeue -h -o %i)" ] && break; sleep 1; done
  fi
  for name in slurmd slurmctld munged; do
    if pid_alive "$name"; then
      pid=$(cat "$DIR/run/$name.pid")
      kill "$pid"
      for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -f "$DIR/run/$name.pid"
  done
  if [ -L "$DEFAULT_CONF" ] && [ "$(readlink "$DEFAULT_CONF")" = "$DIR/slurm.conf" ]; then
    rm "$DEFAULT_CONF"
  fi
  echo "slurm-local: stopped"
}

status() {
  local name
  for name in munged slurmctld slurmd; do
    if pid_alive "$name"; then echo "$name: running (pid $(cat "$DIR/run/$name.pid"))"; else echo "$name: stopped"; fi
  done
  if pid_alive slurmctld; then SLURM_CONF="$DIR/slurm.conf" sinfo; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 start|stop|status" ;;
esac
