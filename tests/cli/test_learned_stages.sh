#!/usr/bin/env bash
# The learned stages end to end inside ctbmd-run with the shipped phantom-trained models
# (models/*-phantom), on a phantom none of them saw in training (seed 9301): each stage is
# selected with its --*-method option, the models are recorded in provenance with their sha256,
# and the results meet bounds set from the held-out study in the README (phantom data only).
# The stand-alone executables give the same results as ctbmd-run for the same inputs.
source "$(dirname "$0")/common.sh"
[[ -f "$CTBMD_BIN/libctbmd-torch.so" ]] || { echo "built without LibTorch: skipped"; exit 0; }
[[ "${CTBMD_SANITIZE:-OFF}" == ON ]] && { echo "LibTorch is not sanitizer-instrumented: skipped"; exit 0; }
M="$CTBMD_SRC/models"
for m in unet2d-phantom dense-unet3d-phantom mip-localizer-phantom densenet3d-phantom bccnet-phantom; do
  [[ -d "$M/$m" ]] || fail "shipped model folder models/$m is missing"
done
"$CTBMD_BIN/ctbmd-phantom" -q -o "$WORK/ph/c1.nii.gz" --size 300x300 --pixel 1.1 --slice 2.5 --seed 9301 \
  --population osteopenia --noise 20 --orientation RAS
R="$CTBMD_BIN/ctbmd-run"
"$R" -q "$WORK/ph" -o "$WORK/a" --device cpu --threads 2 \
  --localize-method mip-localizer --localize-model "$M/mip-localizer-phantom" \
  --segment-method unet2d --segment-model "$M/unet2d-phantom" \
  -p mosaic-392 --bmd-method densenet3d --bmd-model "$M/densenet3d-phantom" \
  --rule bccnet --classify-model "$M/bccnet-phantom"
# A batch of two cases loads the model once.
mkdir -p "$WORK/ph2" && cp "$WORK/ph/c1.nii.gz" "$WORK/ph2/c1.nii.gz" && cp "$WORK/ph/c1.nii.gz" "$WORK/ph2/c2.nii.gz"
"$R" "$WORK/ph2" -o "$WORK/b" --device cpu --threads 2 --segment-method dense-unet3d \
  --segment-model "$M/dense-unet3d-phantom" 2> "$WORK/b.log"
[[ $(grep -c "model dense-unet3d-phantom (dense-unet3d) loaded" "$WORK/b.log") == 1 ]] || fail "model not loaded exactly once: $(cat "$WORK/b.log")"
[[ -s "$WORK/a/c1/classification_qc.png" ]] || fail "no pie chart of the class probabilities"
# Stand-alone segment from ctbmd-run's localize.json: the same label map.
"$CTBMD_BIN/ctbmd-segment" -q "$WORK/ph/c1.nii.gz" -l "$WORK/a/c1/localize.json" -o "$WORK/seg.nii.gz" \
  --method unet2d --model "$M/unet2d-phantom" --device cpu
cmp <(py -c "import nibabel as n,sys; sys.stdout.buffer.write(n.load('$WORK/seg.nii.gz').get_fdata().tobytes())") \
    <(py -c "import nibabel as n,sys; sys.stdout.buffer.write(n.load('$WORK/a/c1/segmentation.nii.gz').get_fdata().tobytes())") \
  || fail "ctbmd-segment --method unet2d differs from ctbmd-run"
# The shipped mosaic regressor on the mosaics ctbmd-run wrote (stand-alone bmd-estimate).
"$CTBMD_BIN/ctbmd-bmd-estimate" -q "$WORK/a/c1/roi.json" -o "$WORK/bmd_mosaic.json" --bmd-method mosaic-cnn \
  --bmd-model "$M/mosaic-cnn-phantom" --device cpu
# A learned method without its model is a usage error before any case runs.
expect_rc 1 "$R" -q "$WORK/ph" -o "$WORK/x" --segment-method unet2d
expect_rc 1 "$R" -q "$WORK/ph" -o "$WORK/x" --rule bccnet --classify-model "$M/bccnet-phantom"
# A model for another task is refused with the reason.
expect_rc 2 "$R" -q "$WORK/ph" -o "$WORK/x" --segment-method unet2d --segment-model "$M/bccnet-phantom"
grep -q "is a classify model; this stage needs a segment model" "$WORK/last.out" || fail "unclear refusal: $(cat "$WORK/last.out")"
py - "$WORK" "$M" <<'PY'
import json, sys
import numpy as np, nibabel as nib
w, M = sys.argv[1:3]
t = json.load(open(f"{w}/ph/c1_truth.json"))
g = np.asarray(nib.load(f"{w}/ph/c1_seg.nii.gz").dataobj)
def sha(m): return json.load(open(f"{M}/{m}/model.json"))["weights"]["sha256"]
loc = json.load(open(f"{w}/a/c1/localize.json"))
assert loc["method"] == "mip-localizer"
assert {m["weights_sha256"] for m in loc["provenance"]["models"]} == {sha("mip-localizer-phantom/stage1"), sha("mip-localizer-phantom/stage2")}
assert loc["levels"]["T12"]["status"] == "missing" and loc["levels"]["L5"]["status"] == "missing"
for L in ("L1", "L2", "L3", "L4"):
    v = loc["levels"][L]
    assert v["status"] == "found", (L, v["status"])
    e = np.abs(np.array(v["center_mm"]) - np.array(t["levels"][L]["centroid_mm"]))
    # held-out study: median centre error ~1 slice; 2 slices (5 mm) in z and 8 mm in-plane bound it
    assert e[2] <= 5.0 and max(e[0], e[1]) <= 8.0, (L, e)
for run, method, model in (("a", "unet2d", "unet2d-phantom"), ("b", "dense-unet3d", "dense-unet3d-phantom")):
    seg = json.load(open(f"{w}/{run}/c1/segmentation.json"))
    assert seg["method"] == method and seg["provenance"]["models"][0]["weights_sha256"] == sha(model)
    s = np.asarray(nib.load(f"{w}/{run}/c1/segmentation.nii.gz").dataobj)
    for lab, L in ((20, "L1"), (21, "L2"), (22, "L3"), (23, "L4")):
        a, b = g == lab, s == lab
        d = 2 * (a & b).sum() / (a.sum() + b.sum())
        # held-out study: Dice >= 0.95 for every level; the issue's target is 0.90
        assert d >= 0.90, (method, L, d)
b = json.load(open(f"{w}/a/c1/bmd.json"))
assert b["method"] == "densenet3d" and b["status"] == "learned"
assert b["provenance"]["models"][0]["weights_sha256"] == sha("densenet3d-phantom")
errs = [b["levels"][L]["bmd_mg_cm3"] - t["levels"][L]["bmd_mg_cm3"] for L in ("L1", "L2", "L3", "L4") if b["levels"][L]["usable"]]
assert len(errs) >= 3, b["levels"]
# held-out study: per-level MAE ~10 mg/cm3; one case's mean error bounded at 25
assert np.mean(np.abs(errs)) <= 25, errs
bm = json.load(open(f"{w}/bmd_mosaic.json"))
em = [bm["levels"][L]["bmd_mg_cm3"] - t["levels"][L]["bmd_mg_cm3"] for L in ("L1", "L2", "L3", "L4") if bm["levels"][L]["usable"]]
assert len(em) >= 3 and np.mean(np.abs(em)) <= 25, em  # held out: MAE 5.5 mg/cm3
c = json.load(open(f"{w}/a/c1/classification.json"))
assert c["rule"] == "bccnet" and abs(sum(c["probabilities"].values()) - 1) < 1e-6, c
assert c["category"] == max(c["probabilities"], key=c["probabilities"].get)
assert c["provenance"]["models"][0]["weights_sha256"] == sha("bccnet-phantom")
PY
echo "ok"
