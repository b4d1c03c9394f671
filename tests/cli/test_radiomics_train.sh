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

# Evaluation as the seed reports it: ctbmd-evaluate's one-vs-rest AUCs of the class
# probabilities against scikit-learn's roc_auc_score on the same cases.
mkdir -p "$WORK/cohort_cts" "$WORK/truth"
for id in ph001 ph003 ph005 ph007 ph009 ph011; do
  cp "$c/cases/$id.nii.gz" "$WORK/cohort_cts/"
  cp "$c/cases/${id}_truth.json" "$WORK/truth/"
done
"$CTBMD_BIN/ctbmd-run" -q "$WORK/cohort_cts" -o "$WORK/run6" --rule radiomics-rf --classify-model "$c/model"
"$CTBMD_BIN/ctbmd-evaluate" -q -p "$WORK/run6" -r "$WORK/truth" -o "$WORK/eval" --no-plots --no-dice
py - "$WORK/eval/evaluation.json" "$WORK/run6" "$WORK/truth" <<'PY'
import glob, json, os, sys
from sklearn.metrics import roc_auc_score
ev = json.load(open(sys.argv[1]))
cp = ev["class_probabilities"]
ids = sorted(os.path.basename(p)[:5] for p in glob.glob(f"{sys.argv[3]}/ph*_truth.json"))
cls = {i: json.load(open(f"{sys.argv[2]}/{i}/classification.json")) for i in ids}
# a case beyond the model's training range is unavailable and has no probabilities
ids = [i for i in ids if cls[i].get("probabilities")]
assert len(ids) >= 3, "too few classified cases to compare AUCs"
probs = {i: cls[i]["probabilities"] for i in ids}
ref = {i: json.load(open(f"{sys.argv[3]}/{i}_truth.json"))["category"] for i in ids}
assert cp["cases"] == len(ids), (cp["cases"], len(ids))
for cls, e in cp["per_class"].items():
    y = [ref[i] == cls for i in ids]
    if "auc" in e:
        want = roc_auc_score(y, [probs[i][cls] for i in ids])
        assert abs(e["auc"] - want) < 1e-12, (cls, e["auc"], want)
print("ctbmd-evaluate class-probability AUCs equal scikit-learn's:", {k: v.get("auc") for k, v in cp["per_class"].items()})
PY
grep -q "Class probabilities" "$WORK/eval/evaluation.md" || fail "evaluation.md lacks the class-probability table"

# The shipped phantom model (models/radiomics-rf-phantom): its card, forest and feature set load
# and it classifies phantoms it never saw (seeds 9201-9203), one per population.
ship="$CTBMD_SRC/models/radiomics-rf-phantom"
"$CTBMD_BIN/ctbmd-model" -q check "$ship"
mkdir -p "$WORK/unseen"
k=0
for pop in normal osteopenia osteoporosis; do
  k=$((k + 1))
  "$CTBMD_BIN/ctbmd-phantom" -q -o "$WORK/unseen/u$k.nii.gz" --size 256x256 --pixel 1.2 --slice 1.5 --levels T12-L3 \
    --seed $((9200 + k)) --population "$pop" --texture-model density
  rm "$WORK/unseen/u${k}_seg.nii.gz"
done
"$CTBMD_BIN/ctbmd-run" -q "$WORK/unseen" -o "$WORK/unseen_run" --rule radiomics-rf --classify-model "$ship"
py - "$WORK/unseen_run/results.csv" "$WORK/unseen" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 3 and all(r["status"] == "ok" for r in rows), [(r["case_id"], r["status"], r["reason"]) for r in rows]
for r in rows:
    assert r["category"] in ("normal", "osteopenia", "osteoporosis"), r["category"]
    truth = json.load(open(f"{sys.argv[2]}/{r['case_id']}_truth.json"))["category"]
    print(f"  {r['case_id']}: shipped model says {r['category']}, truth {truth}")
PY

# A real scan is not a phantom: the shipped phantom model must not answer for example_ct (its
# features lie outside the training range), and says so in the table's reason and flags.
if have_ref; then
  "$CTBMD_BIN/ctbmd-run" -q "$CTBMD_REF/totalsegmentator/example_ct.nii.gz" -o "$WORK/real" --rule radiomics-rf \
    --classify-model "$ship"
  py - "$WORK/real/results.csv" <<'PY'
import csv, sys
r = next(csv.DictReader(open(sys.argv[1])))
assert r["category"] == "unavailable", f"phantom model classified a real CT: {r['category']}"
assert "outside_training_range" in r["flags"].split(";"), r["flags"]
assert "outside what it was trained on" in r["reason"], r["reason"]
print("example_ct with the phantom model: unavailable,", r["reason"][:90], "...")
PY
fi

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
