#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine, as root, for the Slurm executor's tests.
# Idempotent: installs slurm-wlm and munge with apt when missing, writes the configuration,
# starts munged, slurmctld and slurmd when they are not running, and waits until the node
# is idle. Exits non-zero (with the reason on stderr) when the cluster cannot start.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "slurm: the one-node cluster runs as root" >&2
    exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "slurm: installing slurm-wlm and munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# -- munge: the authentication of every Slurm command ---------------------------
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then
        mungekey -c -f -k /etc/munge/munge.key
    else
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "slurm: starting munged"
    runuser -u munge -- /usr/sbin/munged
fi

# -- slurm's configuration ------------------------------------------------------
host=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
config=$(cat <<CONF
ClusterName=jobyard
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
SchedulerType=sched/backfill
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
MinJobAge=600
KillWait=5
SchedulerParameters=sched_interval=1
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
CONF
)
if [ "$(cat /etc/slurm/slurm.conf 2>/dev/null)" != "$config" ]; then
    echo "slurm: writing /etc/slurm/slurm.conf"
    printf '%s\n' "$config" >/etc/slurm/slurm.conf
    changed=1
fi
cgroup=$'CgroupPlugin=cgroup/v1\nIgnoreSystemd=yes'
if [ "$(cat /etc/slurm/cgroup.conf 2>/dev/null)" != "$cgroup" ]; then
    printf '%s\n' "$cgroup" >/etc/slurm/cgroup.conf
fi

if [ -n "${changed:-}" ]; then  # a new configuration: restart what runs
    pkill_pidfile() { [ -s "$1" ] && kill "$(cat "$1")" 2>/dev/null || true; }
    pkill_pidfile /run/slurmd.pid
    pkill_pidfile /run/slurmctld.pid
    sleep 1
fi

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if ! running /run/slurmctld.pid; then
    echo "slurm: starting slurmctld"
    /usr/sbin/slurmctld
fi
if ! running /run/slurmd.pid; then
    echo "slurm: starting slurmd"
    /usr/sbin/slurmd
fi

for _ in $(seq 1 120); do
    state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
    case "$state" in
        idle*|mix*|alloc*) echo "slurm: node $host is $state"; exit 0 ;;
        down*|drain*) scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.5
done
echo "slurm: the node did not become idle (state: ${state:-no answer}); see /var/log/slurm" >&2
exit 1
