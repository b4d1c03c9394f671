#!/usr/bin/env bash
# ctbmd-train: a regressor and a classifier learn toy data; a run resumed from its checkpoint
# ends exactly where an uninterrupted run ends; the model folder it writes is valid.
source "$(dirname "$0")/common.sh"
[[ -f "$CTBMD_BIN/libctbmd-torch.so" ]] || { echo "built without LibTorch: skipped"; exit 0; }
[[ "${CTBMD_SANITIZE:-OFF}" == ON ]] && { echo "LibTorch is not sanitizer-instrumented: skipped"; exit 0; }
T="$CTBMD_BIN/ctbmd-train"
M="$CTBMD_BIN/ctbmd-model"
gen="$CTBMD_SRC/tests/oracle/train_data.py"
py "$gen" "$WORK/reg" 48 1 regress
py "$gen" "$WORK/cls" 48 2 classify
common=(--arch mosaic-cnn --hyper '{"channels": [8, 16]}' --batch 8 --seed 5 --threads 1)
"$T" -q regress --csv "$WORK/reg/data.csv" -o "$WORK/r1" "${common[@]}" --epochs 25 --lr 3e-3 --loss l2
"$M" -q check "$WORK/r1" --task bmd-regress > /dev/null
py - "$WORK" <<'PY'
import csv, json, sys, numpy as np
w = sys.argv[1]
log = list(csv.DictReader(open(f"{w}/r1/train_log.csv")))
assert len(log) == 25
card = json.load(open(f"{w}/r1/model.json"))
targets = [float(r["target"]) for r in csv.DictReader(open(f"{w}/reg/data.csv"))]
mae = card["metrics"]["val_mae"]
# Predicting the mean would give a MAE near 0.5 x SD of the targets; the network must beat it.
assert mae < 0.35 * np.std(targets), (mae, np.std(targets))
assert float(log[-1]["train_loss"]) < 0.2 * float(log[0]["train_loss"]), log
PY
"$T" -q classify --csv "$WORK/cls/data.csv" -o "$WORK/c1" --arch bccnet --hyper '{"stem_channels": 16}' --batch 8 \
  --seed 5 --threads 1 --epochs 15 --lr 3e-3 --loss focal
py -c "import json; c=json.load(open('$WORK/c1/model.json')); assert c['labels']==['normal','osteopenia','osteoporosis']; assert c['metrics']['val_accuracy']>=0.6, c['metrics']"
# Resumption: 4 epochs at once == 2 epochs, then resumed to 4 (SGD with momentum, augmentation).
args=(regress --csv "$WORK/reg/data.csv" "${common[@]}" --optimizer sgd --lr 1e-2 --milestones 3 --augment-rotate 10 --augment-translate 0.05 --augment-scale 0.1)
"$T" -q "${args[@]}" -o "$WORK/full" --epochs 4
"$T" -q "${args[@]}" -o "$WORK/half" --epochs 2
"$T" -q "${args[@]}" -o "$WORK/half" --epochs 4 --resume
cmp <(tail -n 2 "$WORK/full/train_log.csv") <(tail -n 2 "$WORK/half/train_log.csv") || fail "resumed epochs differ: $(cat "$WORK/full/train_log.csv" "$WORK/half/train_log.csv")"
py -c "import numpy as np; np.random.default_rng(0).uniform(0, 1, (3, 1, 48, 48)).astype(np.float32).tofile('$WORK/x.bin')"
for r in full half; do "$M" -q infer "$WORK/$r" -i "$WORK/x.bin" --shape 3,1,48,48 -o "$WORK/$r.out" --device cpu; done
cmp "$WORK/full.out" "$WORK/half.out" || fail "resumed run ends with other weights"
expect_rc 3 "$T" -q regress --csv "$WORK/reg/data.csv" -o "$WORK/none" --resume --epochs 2
# Segmenters and the MIP localizer from a VerSe-layout dataset (three small phantoms): the
# cards say what the stages need; a 3-D run resumed from its checkpoint (3-D augmentation,
# label warping) ends where an uninterrupted run ends.
for s in 1 2 3; do
  "$CTBMD_BIN/ctbmd-phantom" -q -o "$WORK/ds" --layout verse --seed $((60 + s)) --size 176x176 --pixel 1.9 --slice 3 \
    --orientation "$(echo LPS RAS PIR | cut -d' ' -f$s)"
done
"$T" -q segment --dataset "$WORK/ds" -o "$WORK/u2" --arch unet2d --hyper '{"base_channels": 4, "depth": 2}' \
  --patch 32x32 --spacing 2.5 --epochs 2 --batch 16 --threads 1 --seed 3
"$M" -q check "$WORK/u2" --task segment > /dev/null
py -c "import json; c=json.load(open('$WORK/u2/model.json')); assert c['task']=='segment' and c['input']['patch']==[32,32] and c['input']['spacing_mm']==[2.5,2.5,2.5] and c['labels']==['background','vertebral_body'] and len(c['training']['data']['subjects'])==3, c"
d3=(segment --dataset "$WORK/ds" --arch dense-unet3d --hyper '{"base_channels": 4, "depth": 1, "layers": 2, "growth": 4}'
    --patch 16x16x16 --spacing 4 --per-body 1 --batch 4 --threads 1 --seed 3 --augment-rotate 10 --augment-scale 0.1 --augment-translate 0.05)
"$T" -q "${d3[@]}" -o "$WORK/d3full" --epochs 2
"$T" -q "${d3[@]}" -o "$WORK/d3half" --epochs 1
"$T" -q "${d3[@]}" -o "$WORK/d3half" --epochs 2 --resume
cmp <(tail -n 1 "$WORK/d3full/train_log.csv") <(tail -n 1 "$WORK/d3half/train_log.csv") || fail "resumed 3-D segmentation differs"
"$T" -q localize --stage 1 --dataset "$WORK/ds" -o "$WORK/l1" --hyper '{"channels": [4, 8]}' --per-body 2 --epochs 1 --threads 1
py -c "import json; c=json.load(open('$WORK/l1/model.json')); assert c['task']=='localize' and c['input']['mip']['stage']==1 and c['metrics']['n_train']+c['metrics']['n_val']==6, c"
expect_rc 2 "$T" -q segment --dataset "$WORK/reg" -o "$WORK/none2" --epochs 1
# The 3-D DenseNet as a classifier on 3-D images with the focal loss and multi-step decay.
py - "$WORK" <<'PY'
import os, sys, numpy as np, nibabel as nib
w = sys.argv[1]; os.makedirs(f"{w}/v3", exist_ok=True)
rng = np.random.default_rng(4); rows = ["image,target"]
for i in range(12):
    c = i % 3
    v = (rng.normal(0, 30, (16, 16, 16)) + 100 * c).astype(np.float32)
    nib.save(nib.Nifti1Image(v, np.eye(4)), f"{w}/v3/v{i}.nii.gz")
    rows.append(f"v{i}.nii.gz,{['normal', 'osteopenia', 'osteoporosis'][c]}")
open(f"{w}/v3/data.csv", "w").write("\n".join(rows) + "\n")
PY
"$T" -q classify --csv "$WORK/v3/data.csv" -o "$WORK/d3" --arch densenet121bc-3d \
  --hyper '{"growth": 4, "blocks": [1, 1], "stem_channels": 8}' --hu-window 100,400 --loss focal --milestones 1 \
  --epochs 2 --batch 4 --threads 1
py -c "import json; c=json.load(open('$WORK/d3/model.json')); assert c['task']=='classify' and c['input']['patch']==[16,16,16] and c['training']['config']['loss']=='focal' and c['architecture']['hyper_parameters']['outputs']==3, c"
# A learned BMD method inside ctbmd-run (plumbing, with an untrained model folder): the model
# is recorded with its sha256, results are marked learned, and the single-stage executable
# gives the same BMD from the files ctbmd-run wrote.
"$CTBMD_BIN/ctbmd-phantom" -q -o "$WORK/ph.nii.gz" --size 336x336 --pixel 1.15 --slice 2.5 --levels T12-L3 --seed 41
"$M" -q init mosaic-cnn -o "$WORK/mcnn" --hyper '{"channels": [8, 16]}' --seed 2
"$CTBMD_BIN/ctbmd-run" -q "$WORK/ph.nii.gz" -o "$WORK/run" -p mosaic-392 --bmd-method mosaic-cnn --bmd-model "$WORK/mcnn" --device cpu
"$CTBMD_BIN/ctbmd-bmd-estimate" -q "$WORK/run/ph/roi.json" -o "$WORK/bmd1.json" --bmd-method mosaic-cnn --bmd-model "$WORK/mcnn" --device cpu
expect_rc 1 "$CTBMD_BIN/ctbmd-run" -q "$WORK/ph.nii.gz" -o "$WORK/run2" --bmd-method mosaic-cnn --bmd-model "$WORK/mcnn"
py - "$WORK" <<'PY'
import csv, json, sys
w = sys.argv[1]
b = json.load(open(f"{w}/run/ph/bmd.json")); s = json.load(open(f"{w}/bmd1.json"))
card = json.load(open(f"{w}/mcnn/model.json"))
assert b["status"] == "learned" and b["method"] == "mosaic-cnn"
assert b["provenance"]["models"][0]["weights_sha256"] == card["weights"]["sha256"]
for L in ("L1", "L2", "L3"):
    assert b["levels"][L]["bmd_mg_cm3"] == s["levels"][L]["bmd_mg_cm3"], L
assert next(csv.DictReader(open(f"{w}/run/results.csv")))["calibration"] == "learned"
PY
echo "ok"
