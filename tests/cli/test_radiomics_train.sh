#!/usr/bin/env bash
# ctbmd-train radiomics end to end on a small phantom cohort (tools/train/radiomics_phantom.sh
# with a cheap feature set), every selection step against scikit-learn and a direct mRMR
# (tests/oracle/selection_oracle.py), then the model applied: ctbmd-classify --rule radiomics-rf
# on features.csv and ctbmd-run --rule radiomics-rf on a scan; refusals of a tampered model, of
# features from another feature set, and of the rule without its model.
source "$(dirname "$0")/common.sh"
py -c "import sklearn" 2>/dev/null || fail "python3-sklearn is missing (tools/install-deps.sh installs it)"
cat > "$WORK/set.json" <<'JSON'
{"schema": "ctbmd.radiomics-config", "name": "test-cheap",
 "resegmentation": {"min_hu": -1000}, "discretisation": {"method": "fixed-bin-size", "bin_width": 25},
 "images": [{"type": "original"}, {"type": "log", "sigma_mm": 2}],
 "families": ["stat", "cm", "rlm", "szm", "ngt"], "aggregations": ["3D_avg", "3D"]}
JSON
c="$WORK/cohort"
bash "$CTBMD_SRC/tools/train/radiomics_phantom.sh" "$CTBMD_BIN" "$c" 15 "$WORK/set.json" \
  --rfe-keep 30 --mrmr-keep 8 --trees 200 -q
[[ -f $c/model/model.json && -f $c/model/forest.yml && -f $c/model/feature_set.json ]] || fail "model folder incomplete"
py "$CTBMD_SRC/tests/oracle/selection_oracle.py" check "$c/model"
py - "$c/model/model.json" <<'PY'
import json, sys
card = json.load(open(sys.argv[1]))
assert card["task"] == "radiomics-classify" and card["weights"]["format"] == "opencv-yml"
sel = card["selection"]
assert sel["candidates"] == 2 * (18 + 25 + 16 + 16 + 5), sel["candidates"]
assert len(sel["rfe"]["kept"]) == 30 and len(sel["mrmr"]["kept_in_order"]) == 8
assert 1 <= len(card["input"]["features"]) <= 8
split = card["training"]["split"]
assert not set(split["train_cases"]) & set(split["test_cases"]), "a case in both splits"
assert len(split["test_cases"]) == int(0.3 * 15 + 0.5)  # rounded half up
t = card["metrics"]["test"]
assert 0 <= t["accuracy"] <= 1 and sum(map(sum, t["confusion"]["counts"])) == t["n"]
print(f"card: {len(card['input']['features'])} features, held-out accuracy {t['accuracy']:.2f} on {t['n']} cases")
PY

# Applying it: per-row results with probabilities summing to 1.
"$CTBMD_BIN/ctbmd-classify" -q --rule radiomics-rf --classify-model "$c/model" --features "$c/features/ph001.csv" \
  -o "$WORK/cls.json"
py - "$WORK/cls.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["schema"]["name"] == "ctbmd.radiomics-classification"
r = j["rois"][0]
assert r["category"] in ("normal", "osteopenia", "osteoporosis"), r
assert abs(sum(r["probabilities"].values()) - 1) < 1e-9, r["probabilities"]
PY
# The rule in ctbmd-run: the case's own segmentation, the model's feature set.
"$CTBMD_BIN/ctbmd-run" -q "$c/cases/ph002.nii.gz" -o "$WORK/run" --rule radiomics-rf --classify-model "$c/model"
py - "$WORK/run/results.csv" "$WORK/run/ph002/classification.json" <<'PY'
import csv, json, sys
row = next(csv.DictReader(open(sys.argv[1])))
assert row["rule"] == "radiomics-rf" and row["status"] == "ok", row
j = json.load(open(sys.argv[2]))
assert j["category"] == row["category"] and j["category"] in ("normal", "osteopenia", "osteoporosis"), j["category"]
assert abs(sum(j["probabilities"].values()) - 1) < 1e-9
print(f"ctbmd-run radiomics-rf: {j['category']} {j['probabilities']}")
PY

# Refusals.
expect_rc 1 "$CTBMD_BIN/ctbmd-run" "$c/cases/ph002.nii.gz" -o "$WORK/run2" --rule radiomics-rf
grep -q "needs --classify-model" "$WORK/last.out" || fail "unclear: $(cat "$WORK/last.out")"
expect_rc 1 "$CTBMD_BIN/ctbmd-classify" "$WORK/run/ph002/bmd.json" --rule radiomics-rf --classify-model "$c/model" \
  -o "$WORK/x.json"
"$CTBMD_BIN/ctbmd-radiomics" -q "$c/cases/ph001.nii.gz" -m "$c/cases/ph001_seg.nii.gz" -l 20,21 --merge \
  -o "$WORK/other.csv"
expect_rc 2 "$CTBMD_BIN/ctbmd-classify" --rule radiomics-rf --classify-model "$c/model" --features "$WORK/other.csv" \
  -o "$WORK/x.json"
grep -q "another feature set" "$WORK/last.out" || fail "unclear: $(cat "$WORK/last.out")"
cp -r "$c/model" "$WORK/tampered"
echo "# changed" >> "$WORK/tampered/forest.yml"
expect_rc 2 "$CTBMD_BIN/ctbmd-classify" --rule radiomics-rf --classify-model "$WORK/tampered" \
  --features "$c/features/ph001.csv" -o "$WORK/x.json"
grep -q "sha256" "$WORK/last.out" || fail "tampered forest not caught: $(cat "$WORK/last.out")"
echo "ok"
