#!/usr/bin/env bash
# ctbmd-run over a folder with a good phantom, an MR image and a truncated .nii.gz: results
# for the good case, readable errors for the others, exit 4, and no partial files.
source "$(dirname "$0")/common.sh"
have_ref || { echo "reference data missing: skipped"; exit 0; }
mkdir -p "$WORK/in/sub" "$WORK/ph"
"$CTBMD_BIN/ctbmd-phantom" -q -o "$WORK/ph/good.nii.gz" --size 400x400 --pixel 1.0 --slice 2.0 --seed 3
cp "$WORK/ph/good.nii.gz" "$WORK/in/good.nii.gz"
cp "$WORK/ph/good_seg.nii.gz" "$WORK/in/good_seg.nii.gz"   # a label map: skipped by default
cp "$CTBMD_REF/totalsegmentator/example_mr_small.nii.gz" "$WORK/in/sub/mr.nii.gz"
head -c 300000 "$CTBMD_REF/totalsegmentator/example_ct.nii.gz" > "$WORK/in/truncated.nii.gz"

expect_rc 4 "$CTBMD_BIN/ctbmd-run" "$WORK/in" -o "$WORK/out"
csv="$WORK/out/results.csv"
[[ -f $csv ]] || fail "no results.csv"
py - "$csv" <<'PY'
import csv, sys
rows = {r["case_id"]: r for r in csv.DictReader(open(sys.argv[1]))}
assert set(rows) == {"good", "sub__mr", "truncated"}, rows.keys()  # ids: paths under the folder given
g = rows["good"]
assert g["status"] == "ok" and g["error"] == "", g
assert g["category"] in ("normal", "osteopenia", "osteoporosis"), g
assert float(g["L1_hu"]) > 0 and float(g["bmd_l1l2"]) > 0 and g["calibration"] == "uncalibrated", g
m, t = rows["sub__mr"], rows["truncated"]
assert m["status"] == "error" and "does not look like CT" in m["error"], m
assert t["status"] == "error" and "truncated" in t["error"] and "truncated.nii.gz" in t["error"], t
PY
for f in localize.json localize_qc.png segmentation.nii.gz segmentation.json roi.nii.gz roi.json bmd.json classification.json; do
  [[ -s "$WORK/out/good/$f" ]] || fail "good/$f missing"
done
py -c "import sys; sys.exit(open(sys.argv[1], 'rb').read(8) != b'\\x89PNG\\r\\n\\x1a\\n')" "$WORK/out/good/localize_qc.png" || fail "localize_qc.png is not a PNG"
# a failed case keeps its record (case.json: what --resume reads) and nothing else
for c in sub__mr truncated; do
  [[ $(ls -A "$WORK/out/$c") == case.json ]] || fail "failed case $c left outputs: $(ls -A "$WORK/out/$c")"
done
if find "$WORK/out" -name '*.tmp-*' | grep -q .; then fail "temporary files left behind"; fi
# Provenance in every JSON.
py - "$WORK/out/good" <<'PY'
import json, sys, os, hashlib
d = sys.argv[1]
for f in ["localize.json", "segmentation.json", "roi.json", "bmd.json", "classification.json"]:
    j = json.load(open(os.path.join(d, f)))
    p = j["provenance"]
    for k in ["ctbmd_version", "git_commit", "command_line", "host", "start_time", "inputs", "parameters"]:
        assert k in p, (f, k)
    assert j["schema"]["name"].startswith("ctbmd."), f
loc = json.load(open(os.path.join(d, "localize.json")))
ct = loc["provenance"]["inputs"]["ct"]
assert ct["sha256"] == hashlib.sha256(open(ct["path"], "rb").read()).hexdigest()
PY
# Refuses to overwrite without --force; overwrites with it, keeping the other cases' rows.
expect_rc 1 "$CTBMD_BIN/ctbmd-run" "$WORK/in/good.nii.gz" -o "$WORK/out"
grep -q -- "--force" "$WORK/last.out" || fail "overwrite refusal does not mention --force"
expect_rc 0 "$CTBMD_BIN/ctbmd-run" "$WORK/in/good.nii.gz" -o "$WORK/out" --force
[[ $(wc -l <"$WORK/out/results.csv") == 4 ]] || fail "a one-case rerun dropped the other rows: $(cat "$WORK/out/results.csv")"
# Only bad inputs: exit 2.
expect_rc 2 "$CTBMD_BIN/ctbmd-run" "$WORK/in/sub/mr.nii.gz" -o "$WORK/out2"
echo "run batch: ok"
