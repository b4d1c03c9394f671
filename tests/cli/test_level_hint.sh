#!/usr/bin/env bash
# --level-hint on a scan that shows neither anchor: a phantom cut to L2-L4 is named only from
# the hint, the hint is recorded in the JSON (anchors and provenance), ctbmd-run passes it on,
# and a malformed hint is refused before any work.
source "$(dirname "$0")/common.sh"
"$CTBMD_BIN/ctbmd-phantom" -q -o "$WORK/cut.nii.gz" --size 320x320 --pixel 1.0 --slice 2.0 --seed 4 \
  --levels L2-L4
"$CTBMD_BIN/ctbmd-localize" -q -o "$WORK/plain.json" "$WORK/cut.nii.gz"
py - "$WORK/plain.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["anchors"]["used"] == "none", j["anchors"]
assert all(l["status"] == "missing" for l in j["levels"].values()), "levels named without an anchor"
PY
"$CTBMD_BIN/ctbmd-run" -q --level-hint L3 -o "$WORK/run" "$WORK/cut.nii.gz"
py - "$WORK/run/cut/localize.json" "$WORK/cut_truth.json" <<'PY'
import json, math, sys
j, t = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert j["anchors"]["used"] == "user-hint", j["anchors"]
assert j["anchors"]["level_hint"] == "L3"
assert j["provenance"]["parameters"]["level_hint"] == "L3", j["provenance"]["parameters"]
l3 = j["levels"]["L3"]
assert l3["status"] != "missing"
d = math.dist(l3["center_mm"], t["levels"]["L3"]["centroid_mm"])
assert d < 6, f"L3 centre {d:.1f} mm from the truth"
assert j["levels"]["L1"]["status"] == "missing" and j["levels"]["T12"]["status"] == "missing"
assert any("--level-hint" in w for w in j["warnings"]), j["warnings"]
PY
[[ -s "$WORK/run/cut/segmentation.nii.gz" ]] || fail "no segmentation from the hinted run"
expect_rc 1 "$CTBMD_BIN/ctbmd-localize" -q --level-hint L3@top -o "$WORK/x.json" "$WORK/cut.nii.gz"
grep -q "expected NAME or NAME@Z" "$WORK/last.out" || fail "unclear message: $(cat "$WORK/last.out")"
[[ ! -e "$WORK/x.json" ]] || fail "a refused run wrote output"
echo "ok"
