#!/usr/bin/env bash
# [tier: cli] Cohort batches: stable case ids from paths; kill -9 at random moments then
# --resume gives outputs identical to an uninterrupted run; --resume keeps what stands and
# reruns what changed; one case run into a folder keeps the other cases' rows; --shard I/N
# parts (in one folder, in parallel, or in separate folders) merged by ctbmd-merge equal a
# one-process run; ctbmd-merge refuses a case in two folders and reports unfinished ones.
source "$(dirname "$0")/common.sh"
SRC=${CTBMD_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
compare() { py "$SRC/tests/golden/compare_outputs.py" "$1" "$2" --exact --rtol 0 --atol 0; }
mkdir -p "$WORK/in/s1" "$WORK/in/s2" "$WORK/ph"
for s in 11 12 13 14 15 16; do
  "$CTBMD_BIN/ctbmd-phantom" -q -o "$WORK/ph/p$s.nii.gz" --size 200x200 --pixel 1.2 --slice 2.5 --seed $s
done
# two inputs with one file name in different folders, four flat
cp "$WORK/ph/p11.nii.gz" "$WORK/in/s1/image.nii.gz"
cp "$WORK/ph/p12.nii.gz" "$WORK/in/s2/image.nii.gz"
for s in 13 14 15 16; do cp "$WORK/ph/p$s.nii.gz" "$WORK/in/p$s.nii.gz"; done
ids="p13 p14 p15 p16 s1__image s2__image"

# the uninterrupted run everything else is compared with
t0=$(date +%s.%N)
expect_rc 0 "$CTBMD_BIN/ctbmd-run" -q "$WORK/in" -o "$WORK/ref"
full=$(py -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$(date +%s.%N)")
py - "$WORK/ref" $ids <<'PY'
import csv, json, os, sys
d, ids = sys.argv[1], sys.argv[2:]
rows = {r["case_id"]: r for r in csv.DictReader(open(f"{d}/results.csv"))}
assert sorted(rows) == sorted(ids), sorted(rows)
for i in ids:
    rec = json.load(open(f"{d}/{i}/case.json"))
    assert rec["schema"]["name"] == "ctbmd.case" and rec["case_id"] == i, rec
    assert rec["status"] == "ok" and rows[i]["status"] == "ok", (i, rows[i]["status"])
    assert len(rec["input_sha256"]) == 64 and len(rec["params_sha256"]) == 64
assert not [f for f in os.listdir(d) if "partial" in f], os.listdir(d)
PY

# 1. kill -9 at random moments (seeded: the times are printed), then --resume to the end
RANDOM=2026
for trial in 1 2 3; do
  out="$WORK/k$trial"
  jobs=$([[ $trial == 3 ]] && echo 2 || echo 1)  # the last trial with two workers at once
  for attempt in 1 2; do
    ms=$((100 + RANDOM % (${full%.*} * 1000 + 1)))
    "$CTBMD_BIN/ctbmd-run" -q --jobs "$jobs" $([[ $attempt == 2 ]] && echo --resume) "$WORK/in" -o "$out" >/dev/null 2>&1 &
    run=$!
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    kill -9 "$run" 2>/dev/null || true
    wait "$run" 2>/dev/null || true
    echo "trial $trial: killed after $ms ms (attempt $attempt, --jobs $jobs)"
    # the worker dies with its parent: nothing goes on writing into the folder
    sleep 0.3
    if pgrep -f -- "-o $out" >/dev/null; then fail "a worker outlived its killed batch ($out)"; fi
  done
  expect_rc 0 "$CTBMD_BIN/ctbmd-run" -q --jobs "$jobs" --resume "$WORK/in" -o "$out"
  compare "$WORK/ref" "$out" || fail "trial $trial: killed and resumed outputs differ from the uninterrupted run"
  if find "$out" -name '*.tmp-*' | grep -q .; then fail "trial $trial: temporary files left"; fi
done

# 2. --resume keeps every finished case untouched ...
sha_of() { sha256sum "$WORK/ref/$1/case.json" | cut -c1-64; }
declare -A before
for i in $ids; do before[$i]=$(sha_of "$i"); done
expect_rc 0 "$CTBMD_BIN/ctbmd-run" --resume "$WORK/in" -o "$WORK/ref"
grep -q "6 kept from before (--resume), 0 run now" "$WORK/last.out" || { cat "$WORK/last.out"; fail "resume did not keep all six"; }
for i in $ids; do [[ ${before[$i]} == $(sha_of "$i") ]] || fail "resume rewrote $i"; done
# ... reruns the one whose input changed ...
cp "$WORK/ph/p11.nii.gz" "$WORK/in/p13.nii.gz"
expect_rc 0 "$CTBMD_BIN/ctbmd-run" --resume "$WORK/in" -o "$WORK/ref"
grep -q "p13: runs again: its input changed" "$WORK/last.out" || { cat "$WORK/last.out"; fail "changed input not rerun"; }
grep -q "5 kept from before (--resume), 1 run now" "$WORK/last.out" || fail "resume reran more than the changed case"
for i in p14 p15 p16 s1__image s2__image; do [[ ${before[$i]} == $(sha_of "$i") ]] || fail "resume rewrote $i"; done
cp "$WORK/ph/p13.nii.gz" "$WORK/in/p13.nii.gz"
expect_rc 0 "$CTBMD_BIN/ctbmd-run" -q --resume "$WORK/in" -o "$WORK/ref"
# ... and reruns all when a parameter changes
expect_rc 0 "$CTBMD_BIN/ctbmd-run" --resume -p erode-4mm "$WORK/in/p14.nii.gz" -o "$WORK/ref"
grep -q "p14: runs again: the parameters differ" "$WORK/last.out" || { cat "$WORK/last.out"; fail "parameter change not rerun"; }
py - "$WORK/ref/results.csv" <<'PY'
import csv, sys
rows = {r["case_id"]: r for r in csv.DictReader(open(sys.argv[1]))}
# one case run into the folder: the other five rows stay
assert len(rows) == 6, sorted(rows)
assert rows["p14"]["protocol"] == "erode-4mm" and rows["p15"]["protocol"] == "ellipse-s1", rows["p14"]
PY
expect_rc 0 "$CTBMD_BIN/ctbmd-run" -q --resume "$WORK/in/p14.nii.gz" -o "$WORK/ref"

# 3. without --resume or --force, cases with outputs are refused before any work
expect_rc 1 "$CTBMD_BIN/ctbmd-run" "$WORK/in" -o "$WORK/ref"
grep -q -- "--resume" "$WORK/last.out" || fail "the refusal does not mention --resume"

# 4. shards in one folder, run in parallel, then merged in place
for i in 0 1 2; do "$CTBMD_BIN/ctbmd-run" -q --threads 1 --shard $i/3 "$WORK/in" -o "$WORK/one" & done
wait
[[ ! -e $WORK/one/results.csv ]] || fail "a shard wrote results.csv (the merge writes it)"
expect_rc 0 "$CTBMD_BIN/ctbmd-merge" "$WORK/one"
compare "$WORK/ref" "$WORK/one" || fail "merged shards differ from the one-process run"
# shards in separate folders: every case in exactly one, merged into a new folder
for i in 0 1 2; do expect_rc 0 "$CTBMD_BIN/ctbmd-run" -q --shard $i/3 "$WORK/in" -o "$WORK/sh$i"; done
n=$(find "$WORK"/sh? -name case.json | wc -l)
[[ $n == 6 ]] || fail "3 shards made $n case records, not 6"
for i in $ids; do
  [[ $(find "$WORK"/sh? -path "*/$i/case.json" | wc -l) == 1 ]] || fail "$i is not in exactly one shard"
done
expect_rc 0 "$CTBMD_BIN/ctbmd-merge" -o "$WORK/merged" "$WORK/sh0" "$WORK/sh1" "$WORK/sh2"
for f in results.csv levels.csv; do
  mkdir -p "$WORK/cmp_ref" && cp "$WORK/ref/$f" "$WORK/cmp_ref/"
done
compare "$WORK/cmp_ref" "$WORK/merged" || fail "the merge of separate shard folders differs"
# a case in two folders is refused, naming both
first=$(find "$WORK/sh0" -name case.json | head -1 | xargs dirname | xargs basename)
cp -r "$WORK/sh0/$first" "$WORK/sh1/"
expect_rc 1 "$CTBMD_BIN/ctbmd-merge" -o "$WORK/m2" "$WORK/sh0" "$WORK/sh1" "$WORK/sh2"
grep -q "$first" "$WORK/last.out" && grep -q "two output folders" "$WORK/last.out" || fail "duplicate not reported"
rm -rf "${WORK:?}/sh1/$first"
# a case a shard owned that never finished: merged anyway, reported, exit 4
gone=$(find "$WORK/sh2" -name case.json | head -1)
gone_id=$(basename "$(dirname "$gone")")
rm "$gone"
expect_rc 4 "$CTBMD_BIN/ctbmd-merge" -o "$WORK/m3" "$WORK/sh0" "$WORK/sh1" "$WORK/sh2"
grep -q "$gone_id" "$WORK/last.out" || fail "the unfinished case is not named"
py - "$WORK/m3/merge.json" "$gone_id" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["missing"] == [sys.argv[2]] and m["cases"] == 5 and m["expected"] == 6, m
PY
# resuming that shard completes the cohort
expect_rc 0 "$CTBMD_BIN/ctbmd-run" -q --resume --shard 2/3 "$WORK/in" -o "$WORK/sh2"
expect_rc 0 "$CTBMD_BIN/ctbmd-merge" --force -o "$WORK/m3" "$WORK/sh0" "$WORK/sh1" "$WORK/sh2"

# ctbmd-evaluate on a merge finds the cases' folders in the shard folders (Dice, unusable levels);
# on a results.csv with no case folders beside it, it says what it left out
expect_rc 0 "$CTBMD_BIN/ctbmd-evaluate" -q -p "$WORK/m3" -r "$WORK/ph" -o "$WORK/ev" --no-plots
mkdir -p "$WORK/copy" && cp "$WORK/m3/results.csv" "$WORK/copy/"
expect_rc 0 "$CTBMD_BIN/ctbmd-evaluate" -q -p "$WORK/copy/results.csv" -r "$WORK/ph" -o "$WORK/ev2" --no-plots
py - "$WORK/ev/evaluation.json" "$WORK/ev2/evaluation.json" <<'PY'
import json, sys
ev, ev2 = (json.load(open(p)) for p in sys.argv[1:])
dice = ev["segmentation"]["dice"]
assert dice and all(v["n"] == 4 for k, v in dice.items() if k != "all"), dice  # p13-p16 have truth
assert all(v["mean"] > 0.9 for k, v in dice.items() if k != "all"), dice
assert not any("no case folder" in n for n in ev["notes"]), ev["notes"]
assert any("no case folder" in n and "Dice" in n for n in ev2["notes"]), ev2["notes"]
PY

# 5. a case list with explicit ids
printf 'path,id\n%s,first\nin/p16.nii.gz\n' "$WORK/in/p15.nii.gz" >"$WORK/list.csv"
expect_rc 0 "$CTBMD_BIN/ctbmd-run" -q --case-list "$WORK/list.csv" -o "$WORK/list"
[[ -f $WORK/list/first/case.json && -f $WORK/list/in__p16/case.json ]] || fail "case-list ids not used: $(ls "$WORK/list")"

# 6. option values refused before any work
expect_rc 1 "$CTBMD_BIN/ctbmd-run" --shard 3/3 "$WORK/in" -o "$WORK/bad1"
expect_rc 1 "$CTBMD_BIN/ctbmd-run" --resume --force "$WORK/in" -o "$WORK/bad2"
expect_rc 1 "$CTBMD_BIN/ctbmd-run" --retry-errors "$WORK/in" -o "$WORK/bad3"
[[ ! -e $WORK/bad1 && ! -e $WORK/bad2 && ! -e $WORK/bad3 ]] || fail "a refused command line made its output folder"
echo "resume and shards: all passed"
