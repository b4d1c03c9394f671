#!/usr/bin/env bash
# [tier: quick] ctbmd-run runs each case in a supervised worker process: a worker killed by a
# signal, one over its time limit and one over its memory limit each become that case's error
# row with the reason, and the other cases keep their results.
source "$(dirname "$0")/common.sh"
mkdir -p "$WORK/in"
for s in 11 12; do
  "$CTBMD_BIN/ctbmd-phantom" -q -o "$WORK/ph/p$s.nii.gz" --size 200x200 --pixel 1.2 --slice 2.5 --seed $s
  cp "$WORK/ph/p$s.nii.gz" "$WORK/in/p$s.nii.gz"
done

# 1. a signal inside a worker (as a library's abort() would raise): the first case's worker is
#    sent SIGABRT while it runs; the second case still gets its results.
"$CTBMD_BIN/ctbmd-run" -q "$WORK/in" -o "$WORK/out1" >"$WORK/run1.log" 2>&1 &
run=$!
child=""
for _ in $(seq 1 400); do
  child=$(pgrep -P "$run" | head -1 || true)
  [[ -n $child ]] && break
  sleep 0.02
done
[[ -n $child ]] || fail "no worker process seen"
kill -ABRT "$child"
set +e; wait "$run"; rc=$?; set -e
[[ $rc == 4 ]] || { cat "$WORK/run1.log" >&2; fail "expected exit 4 after a crashed worker, got $rc"; }
py - "$WORK/out1/results.csv" <<'PY'
import csv, sys
rows = {r["case_id"]: r for r in csv.DictReader(open(sys.argv[1]))}
assert rows["p11"]["status"] == "error", rows["p11"]
assert "crashed (signal 6" in rows["p11"]["error"] and "p11.nii.gz" in rows["p11"]["error"], rows["p11"]
assert rows["p12"]["status"] == "ok" and float(rows["p12"]["bmd_l1l2"]) > 0, rows["p12"]
PY
if find "$WORK/out1" -name '*.tmp-*' | grep -q .; then fail "the crashed worker left temporary files"; fi

# 2. the time limit: a case takes ~2 s here, a 0.3 s limit stops every worker
expect_rc 2 "$CTBMD_BIN/ctbmd-run" -q --case-timeout 0.3 "$WORK/in/p11.nii.gz" -o "$WORK/out2"
grep -q "took longer than 0 s\|took longer than" "$WORK/out2/results.csv" || fail "no timeout reason: $(cat "$WORK/out2/results.csv")"

# 3. the memory limit: 0.05 GiB of address space is too little for this small phantom's case
#    (measured: 0.02-0.07 GiB fail with a memory reason - a thread's stack, the reader's voxel
#    buffer or a later allocation, by the limit - and 0.1 GiB completes, its worker threads
#    fewer when their stacks cannot all be mapped)
expect_rc 2 "$CTBMD_BIN/ctbmd-run" -q --case-memory 0.05 "$WORK/in/p11.nii.gz" -o "$WORK/out3"
grep -qi "memory" "$WORK/out3/results.csv" || fail "no memory reason: $(cat "$WORK/out3/results.csv")"

# 4. option values are validated before any case runs
expect_rc 1 "$CTBMD_BIN/ctbmd-run" --case-timeout -1 "$WORK/in" -o "$WORK/out4"
[[ ! -e "$WORK/out4" ]] || fail "a refused command line made its output folder"
# 5. a batch killed from outside (kill -9, as a scheduler's time limit) keeps the cases it
#    finished in results.partial.csv; the complete results.csv only appears at the end
"$CTBMD_BIN/ctbmd-run" -q --jobs 1 "$WORK/in" -o "$WORK/out5" >/dev/null 2>&1 &  # one at a time: a kill between the two
run=$!
for _ in $(seq 1 600); do
  [[ -f $WORK/out5/results.partial.csv && $(wc -l <"$WORK/out5/results.partial.csv") -ge 2 ]] && break
  sleep 0.05
done
kill -9 "$run" 2>/dev/null || true
wait "$run" 2>/dev/null || true
[[ -f $WORK/out5/results.partial.csv ]] || fail "no results.partial.csv after a kill"
py - "$WORK/out5" <<'PY'
import csv, os, sys
rows = list(csv.DictReader(open(f"{sys.argv[1]}/results.partial.csv")))
assert len(rows) >= 1 and rows[0]["case_id"] in ("p11", "p12") and rows[0]["status"] == "ok", rows  # two workers: either ends first
assert float(rows[0]["bmd_l1l2"]) > 0, rows[0]
lv = list(csv.DictReader(open(f"{sys.argv[1]}/levels.partial.csv")))
assert len(lv) == 6 * len(rows), (len(lv), len(rows))
PY
# run to its end: the partial files go, the complete tables stay
expect_rc 0 "$CTBMD_BIN/ctbmd-run" -q --jobs 1 --force "$WORK/in" -o "$WORK/out5"
[[ -f $WORK/out5/results.csv && ! -e $WORK/out5/results.partial.csv && ! -e $WORK/out5/levels.partial.csv ]] ||
  fail "partial tables left after a complete batch: $(ls "$WORK/out5")"
# 6. two workers at once (--jobs 2): the same outputs as one at a time, each worker on half the
#    threads; the time limit stops each worker on its own
expect_rc 0 "$CTBMD_BIN/ctbmd-run" -q --jobs 2 --threads 2 "$WORK/in" -o "$WORK/out6"
py "${CTBMD_SRC:-$(dirname "$0")/../..}/tests/golden/compare_outputs.py" "$WORK/out5" "$WORK/out6" --exact --rtol 0 --atol 0 ||
  fail "--jobs 2 outputs differ from one worker at a time"
py - "$WORK/out6" <<'PY'
import json, sys
for c in ("p11", "p12"):
    assert json.load(open(f"{sys.argv[1]}/{c}/case.json"))["provenance"]["threads"] == 1, c
    assert json.load(open(f"{sys.argv[1]}/{c}/localize.json"))["provenance"]["threads"] == 1, c
PY
expect_rc 2 "$CTBMD_BIN/ctbmd-run" -q --jobs 2 --case-timeout 0.3 "$WORK/in" -o "$WORK/out7"
[[ $(grep -c "took longer than" "$WORK/out7/results.csv") == 2 ]] || fail "not both workers stopped: $(cat "$WORK/out7/results.csv")"
echo "supervised batch: all passed"
