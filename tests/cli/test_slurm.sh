#!/usr/bin/env bash
# [tier: cli] ctbmd-slurm on a real single-node Slurm (Debian's slurm-wlm, started here by
# tools/slurm-local.sh in a temporary folder and stopped at the end): a 3-task array over 6
# phantoms, at most 2 at once, 1 CPU each, and the merge after it give results identical to a
# one-process run; the logs are per task; each task used the CPUs it was given; a task whose
# cases are lost is found by status and queued again alone by resume. Slurm that cannot start
# is a failure, not a skip.
source "$(dirname "$0")/common.sh"
SRC=${CTBMD_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
PATH=$PATH:/usr/sbin
compare() { py "$SRC/tests/golden/compare_outputs.py" "$1" "$2" --exact --rtol 0 --atol 0; }
# WORK's trap removes the folder; Slurm's daemons go first
trap 'bash "$SRC/tools/slurm-local.sh" stop "$WORK/slurm" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
bash "$SRC/tools/slurm-local.sh" start "$WORK/slurm" >"$WORK/slurm-start.out" 2>&1 ||
  { cat "$WORK/slurm-start.out" >&2; fail "Slurm did not start (tools/slurm-local.sh)"; }
export SLURM_CONF=$WORK/slurm/slurm.conf

mkdir -p "$WORK/in/a" "$WORK/in/b"
for s in 21 22 23 24 25 26; do
  d=$([[ $s -le 23 ]] && echo a || echo b)
  "$CTBMD_BIN/ctbmd-phantom" -q -o "$WORK/ph/p$s.nii.gz" --size 200x200 --pixel 1.2 --slice 2.5 --seed $s
  cp "$WORK/ph/p$s.nii.gz" "$WORK/in/$d/p$s.nii.gz"
done
expect_rc 0 "$CTBMD_BIN/ctbmd-run" -q "$WORK/in" -o "$WORK/ref" -p erode-4mm

wait_idle() {  # until neither the array nor the merge is queued (status says so), or fail
  for _ in $(seq 1 300); do
    [[ -z $(squeue -h) ]] && return 0
    sleep 0.5
  done
  squeue >&2
  fail "the batch did not finish within 150 s"
}

# a command line ctbmd-run refuses is refused before anything is queued
expect_rc 1 "$CTBMD_BIN/ctbmd-slurm" submit "$WORK/in" -o "$WORK/bad" --tasks 3 -- -p erode4mm
grep -q "erode-4mm" "$WORK/last.out" || fail "the refusal does not say what was meant"
[[ -z $(squeue -h) ]] || fail "a refused batch was queued"

expect_rc 0 "$CTBMD_BIN/ctbmd-slurm" submit "$WORK/in" -o "$WORK/out" --tasks 3 --max-running 2 \
  --cpus-per-task 1 --partition debug -- -p erode-4mm
read -r array merge < <(tail -1 "$WORK/last.out")
[[ $array =~ ^[0-9]+$ && $merge =~ ^[0-9]+$ ]] || fail "submit printed no job ids: $(cat "$WORK/last.out")"
grep -q -- "--array=0-2%2" "$WORK/out/slurm/array.sbatch" || fail "array spec: $(grep array "$WORK/out/slurm/array.sbatch")"
wait_idle
compare "$WORK/ref" "$WORK/out" || fail "the Slurm batch differs from the one-process run"
for t in 0 1 2; do
  [[ -s $WORK/out/slurm/logs/${array}_$t.log || -f $WORK/out/slurm/logs/${array}_$t.log ]] || fail "no log for task $t"
done
[[ -f $WORK/out/slurm/logs/merge_$merge.log ]] || fail "no merge log"
py - "$WORK/out" <<'PY'
import glob, json, sys
recs = [json.load(open(p)) for p in glob.glob(f"{sys.argv[1]}/*/case.json")]
assert len(recs) == 6, len(recs)
# --cpus-per-task 1: each task's ctbmd-run ran on SLURM_CPUS_PER_TASK threads
assert all(r["provenance"]["threads"] == 1 for r in recs), [r["provenance"]["threads"] for r in recs]
assert all("--shard" in r["provenance"]["command_line"] for r in recs)
m = json.load(open(f"{sys.argv[1]}/merge.json"))
assert m["cases"] == 6 and m["expected"] == 6 and m["missing"] == [], m
PY
expect_rc 0 "$CTBMD_BIN/ctbmd-slurm" status "$WORK/out"
grep -q "cases: 6 of 6 finished" "$WORK/last.out" || { cat "$WORK/last.out"; fail "status: $(cat "$WORK/last.out")"; }

# a task whose cases are lost (as a node failure would): status names it, resume queues it alone
lost=$(py -c "import json,sys; print(json.load(open(sys.argv[1]))['cases'][0]['id'])" "$WORK/out/shards/1-of-3.json")
rm "$WORK/out/$lost/case.json"
expect_rc 0 "$CTBMD_BIN/ctbmd-slurm" status "$WORK/out"
grep -q "task 1: 1 of [0-9]* case(s) not recorded" "$WORK/last.out" || { cat "$WORK/last.out"; fail "status did not name task 1"; }
expect_rc 0 "$CTBMD_BIN/ctbmd-slurm" resume "$WORK/out"
grep -q -- "--array=1%2" "$WORK/last.out" || { cat "$WORK/last.out"; fail "resume did not queue task 1 alone"; }
wait_idle
compare "$WORK/ref" "$WORK/out" || fail "after resume the batch differs from the one-process run"
expect_rc 0 "$CTBMD_BIN/ctbmd-slurm" resume "$WORK/out"
grep -q "nothing to queue" "$WORK/last.out" || fail "resume of a complete batch queued something"
# a second submit into the same folder is refused
expect_rc 1 "$CTBMD_BIN/ctbmd-slurm" submit "$WORK/in" -o "$WORK/out" --tasks 2
echo "slurm: all passed"
