#!/usr/bin/env bash
# Runs an example sweep as a real Slurm job array: installs Debian's slurm-wlm and munge (if
# missing), starts a single-node cluster on localhost (munged, slurmctld, slurmd), submits the
# script `cramulator sweep sbatch` prints as a 4-task array plus the dependent merge job,
# waits, checks that the merged results equal a local single-process run byte for byte, and
# stops every daemon it started. Needs root (or password-less sudo) for apt and the daemons.
#
#   tests/slurm.sh            # uses target/release/cramulator (built if missing)
#
# The cluster follows the recipe in docs/model.md §5.4: proctrack/linuxproc and
# task/none (no cgroups), accounting off, state and logs in a scratch folder.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN="$ROOT/target/release/cramulator"
SWEEP=configs/sweeps/digits-bits-sparsity.toml

say() { printf '[slurm test %3ss] %s\n' "$SECONDS" "$*"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "tests/slurm.sh needs root or password-less sudo (apt-get, munged, slurmctld)" >&2
    exit 1
  fi
fi

[ -x "$BIN" ] || cargo build --release --locked

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends slurm-wlm munge > /dev/null
fi
slurmctld -V

LAB=$(mktemp -d "${TMPDIR:-/tmp}/cramulator-slurm.XXXXXX")
chmod 755 "$LAB"
STARTED=()  # "name pid" of every daemon started here

stop_all() {
  set +e
  if [ -n "${JOBS:-}" ]; then scancel $JOBS 2>/dev/null; fi
  # Newest first: slurmd, slurmctld, then munged.
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    read -r name pid <<< "${STARTED[$i]}"
    if kill -0 "$pid" 2>/dev/null; then
      $SUDO kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && $SUDO kill -9 "$pid"
      say "stopped $name (pid $pid)"
    fi
  done
  # slurmctld's helper (slurmscriptd) goes with it; check that nothing of ours is left.
  sleep 0.5
  if pgrep -f "$LAB" > /dev/null; then
    echo "daemons left running:" >&2
    pgrep -af "$LAB" >&2
    pkill -9 -f "$LAB"
  fi
}
trap stop_all EXIT

# --- munge: reuse a running munged, else start one (the package made the key) ------------
if munge -n 2>/dev/null | unmunge > /dev/null 2>&1; then
  say "munged already running; using it"
else
  if [ ! -f /etc/munge/munge.key ]; then
    $SUDO mungekey --create > /dev/null 2>&1 || $SUDO sh -c 'dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null'
    $SUDO chown munge:munge /etc/munge/munge.key
    $SUDO chmod 400 /etc/munge/munge.key
  fi
  $SUDO mkdir -p /run/munge /var/log/munge /var/lib/munge
  $SUDO chown munge:munge /run/munge /var/log/munge /var/lib/munge
  $SUDO setsid runuser -u munge -- munged --foreground > "$LAB/munged.out" 2>&1 &
  for _ in $(seq 100); do
    pid=$(pgrep -n -u munge -x munged || true)
    [ -n "$pid" ] && munge -n 2>/dev/null | unmunge > /dev/null 2>&1 && break
    sleep 0.1
  done
  [ -n "$pid" ] || { cat "$LAB/munged.out" >&2; exit 1; }
  STARTED+=("munged $pid")
  say "munged up (pid $pid)"
fi

# --- slurm: one node, this host, every core ---------------------------------------------
HOST=$(hostname -s)
CPUS=$(nproc)
mkdir -p "$LAB/state" "$LAB/spool"
cat > "$LAB/slurm.conf" <<EOF
ClusterName=cramulator-test
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$LAB/state
SlurmdSpoolDir=$LAB/spool
SlurmctldPidFile=$LAB/slurmctld.pid
SlurmdPidFile=$LAB/slurmd.pid
SlurmctldLogFile=$LAB/slurmctld.log
SlurmdLogFile=$LAB/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MaxArraySize=10001
MinJobAge=600
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$LAB/slurm.conf"
$SUDO env SLURM_CONF="$SLURM_CONF" setsid slurmctld -D -f "$SLURM_CONF" > "$LAB/slurmctld.out" 2>&1 &
STARTED+=("slurmctld $!")
for _ in $(seq 100); do scontrol ping > /dev/null 2>&1 && break; sleep 0.2; done
$SUDO env SLURM_CONF="$SLURM_CONF" setsid slurmd -D -f "$SLURM_CONF" > "$LAB/slurmd.out" 2>&1 &
STARTED+=("slurmd $!")
for _ in $(seq 150); do
  state=$(sinfo -h -o %t 2>/dev/null || true)
  [ "$state" = "idle" ] && break
  sleep 0.2
done
[ "$state" = "idle" ] || { echo "node not idle: '$state'" >&2; tail -20 "$LAB"/slurm*.log >&2; exit 1; }
say "cluster up: $(sinfo -h -o '%P %a %D %t %N')"

# --- the sweep: as a job array, and locally -----------------------------------------------
"$BIN" sweep plan "$SWEEP" --out "$LAB/array"
"$BIN" sweep sbatch "$LAB/array" --shards 4 --cpus 1 --time 00:10:00 > "$LAB/printed.sbatch"
grep -q -- '--array=0-3' "$LAB/printed.sbatch"
JID=$(sbatch --parsable "$LAB/printed.sbatch")
MID=$(sbatch --parsable --dependency=afterok:"$JID" "$LAB/array/slurm/merge.sbatch")
JOBS="$JID $MID"
say "submitted array job $JID (4 tasks) and merge job $MID"
for _ in $(seq 1200); do
  [ -z "$(squeue -h -j "$JID,$MID" 2>/dev/null)" ] && break
  sleep 0.5
done
[ -z "$(squeue -h -j "$JID,$MID" 2>/dev/null)" ] || { echo "jobs still queued after 10 minutes" >&2; squeue >&2; exit 1; }
merge_state=$(scontrol show job "$MID" 2>/dev/null | grep -o 'JobState=[A-Z]*' || true)
say "jobs done; merge job $merge_state"
ls "$LAB/array/shards"
cat "$LAB"/array/slurm/logs/merge_*.out
[ "$merge_state" = "JobState=COMPLETED" ] || { tail -50 "$LAB"/array/slurm/logs/* >&2; exit 1; }
[ "$(ls "$LAB/array/shards" | grep -c '^shard-000[0-3]-of-0004.jsonl$')" -eq 4 ]

"$BIN" sweep plan "$SWEEP" --out "$LAB/local"
"$BIN" sweep run "$LAB/local" --threads 1
"$BIN" sweep merge "$LAB/local"
for f in results.csv results.jsonl summary.json; do
  cmp "$LAB/array/$f" "$LAB/local/$f"
done
say "merged array results == local single-process results, byte for byte (results.csv: $(wc -l < "$LAB/local/results.csv") lines)"

stop_all
trap - EXIT
rm -rf "$LAB"
say "all daemons stopped; passed"
