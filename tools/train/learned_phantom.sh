#!/usr/bin/env bash
# Reproduces the phantom-trained models shipped in models/ (unet2d-phantom, dense-unet3d-phantom,
# mip-localizer-phantom/{stage1,stage2}, densenet3d-phantom, bccnet-phantom) and their held-out
# figures. CPU only; about 45 minutes on 2 cores.
#   1. 48 training phantoms in the VerSe layout (seeds 7000-7047; tools/train/phantom_dataset.sh)
#   2. segmenters and localizer from the VerSe layout (ctbmd-train segment / localize)
#   3. ctbmd-run (classical stages, -p mosaic-392 --crop3d) on the training CTs, then the BMD
#      regressor on the 3-D body crops and BCC-Net on the mosaics (per-level class from the
#      phantom's true BMD: > 120 normal, 80-120 osteopenia, < 80 osteoporosis)
#   4. 10 held-out phantoms (seeds 9100-9109), each learned stage inside ctbmd-run, scored by
#      tools/eval/learned_eval.py
# Usage: tools/train/learned_phantom.sh BUILD_DIR WORK_DIR OUT_DIR
#        EVAL_ONLY=1 tools/train/learned_phantom.sh BUILD_DIR WORK_DIR models   (held-out figures only)
set -euo pipefail
build=${1:?build dir}
work=${2:?work dir}
out=${3:?output folder for the model folders}
here=$(cd "$(dirname "$0")" && pwd)
B="$build/src"
mkdir -p "$work" "$out"
aug=(--augment-rotate 10 --augment-scale 0.1 --augment-translate 0.05 --seed 1 --force)
if [[ "${EVAL_ONLY:-0}" != 1 ]]; then
[[ -d "$work/ds/rawdata" ]] || bash "$here/phantom_dataset.sh" "$build" 48 "$work/ds" 7000
"$B/ctbmd-train" segment --dataset "$work/ds" -o "$out/unet2d-phantom" --arch unet2d \
  --hyper '{"base_channels":12,"depth":3}' --patch 64x64 --spacing 1.25 --epochs 5 --milestones 4 --lr 2e-3 \
  --batch 32 --loss dice-ce "${aug[@]}"
"$B/ctbmd-train" segment --dataset "$work/ds" -o "$out/dense-unet3d-phantom" --arch dense-unet3d \
  --hyper '{"base_channels":8,"depth":2,"layers":3,"growth":8}' --patch 32x32x32 --spacing 2 --per-body 2 \
  --epochs 4 --milestones 3 --lr 2e-3 --batch 8 --loss dice-ce "${aug[@]}"
"$B/ctbmd-train" localize --stage 1 --dataset "$work/ds" -o "$out/mip-localizer-phantom/stage1" \
  --hyper '{"channels":[8,16,32,64,64]}' --per-body 8 --epochs 40 --milestones 30 --lr 2e-3 --batch 16 \
  --loss l1 --seed 1 --force
"$B/ctbmd-train" localize --stage 2 --dataset "$work/ds" -o "$out/mip-localizer-phantom/stage2" \
  --hyper '{"channels":[8,16,32,64,64]}' --per-body 8 --epochs 40 --milestones 30 --lr 2e-3 --batch 16 \
  --loss l1 --seed 1 --force
mkdir -p "$work/ct"
for f in "$work"/ds/rawdata/*/*_ct.nii.gz; do ln -sf "$f" "$work/ct/$(basename "$f" _ct.nii.gz).nii.gz"; done
"$B/ctbmd-run" -q --force "$work/ct" -o "$work/run" -p mosaic-392 --crop3d
/usr/bin/python3 - "$work" <<'PY'
import json, os, sys
w = sys.argv[1]
c3, mo = ["image,target"], ["image,target"]
for case in sorted(os.listdir(f"{w}/run")):
    rj = f"{w}/run/{case}/roi.json"
    if not os.path.exists(rj):
        continue
    t = json.load(open(f"{w}/ds/derivatives/{case}/{case}_truth.json"))
    roi = json.load(open(rj))
    for key, rows in (("crop3d_files", c3), ("mosaic_files", mo)):
        for m in roi.get(key, []):
            L = m["level"]
            if not (roi["levels"][L]["usable"] and L in t["levels"]):
                continue
            b = t["levels"][L]["bmd_mg_cm3"]
            y = f"{b:.2f}" if key == "crop3d_files" else ("normal" if b > 120 else "osteopenia" if b >= 80 else "osteoporosis")
            rows.append(f"{w}/run/{case}/{m['nifti']},{y}")
open(f"{w}/crop3d.csv", "w").write("\n".join(c3) + "\n")
open(f"{w}/mosaic_class.csv", "w").write("\n".join(mo) + "\n")
PY
"$B/ctbmd-train" regress --csv "$work/crop3d.csv" -o "$out/densenet3d-phantom" --arch densenet121bc-3d \
  --hyper '{"growth":8,"blocks":[2,2,2,2],"stem_channels":16}' --hu-window 0,400 --epochs 40 --milestones 30 \
  --lr 2e-3 --batch 8 --loss l1 --augment-rotate 5 --augment-translate 0.03 --seed 1 --force
"$B/ctbmd-train" classify --csv "$work/mosaic_class.csv" -o "$out/bccnet-phantom" --arch bccnet \
  --hu-window 150,700 --epochs 30 --milestones 20 --lr 2e-3 --batch 8 --loss ce --augment-rotate 5 \
  --augment-translate 0.03 --seed 1 --force
fi
# Held-out evaluation.
mkdir -p "$work/ho"
sl=(1.0 1.5 2.0 2.5 3.0 1.25 2.0 3.0 1.0 2.5)
or=(LPS RAS PIR LAS LPS RAS PIR LAS LPS RAS)
po=(normal osteopenia osteoporosis)
for i in $(seq 0 9); do
  "$B/ctbmd-phantom" -q --force -o "$work/ho/h$i.nii.gz" --seed $((9100 + i)) --size 400x400 --pixel 0.8 \
    --slice "${sl[$i]}" --orientation "${or[$i]}" --noise $((10 + i * 3)) --population "${po[$((i % 3))]}"
done
E="$here/../eval/learned_eval.py"
R=("$B/ctbmd-run" -q --force "$work/ho" --device cpu)
"${R[@]}" -o "$work/e_classical"
"${R[@]}" -o "$work/e_unet2d" --segment-method unet2d --segment-model "$out/unet2d-phantom"
"${R[@]}" -o "$work/e_dunet" --segment-method dense-unet3d --segment-model "$out/dense-unet3d-phantom"
"${R[@]}" -o "$work/e_mip" --localize-method mip-localizer --localize-model "$out/mip-localizer-phantom" \
  --segment-method unet2d --segment-model "$out/unet2d-phantom"
"${R[@]}" -o "$work/e_bmd" -p mosaic-392 --bmd-method densenet3d --bmd-model "$out/densenet3d-phantom" \
  --rule bccnet --classify-model "$out/bccnet-phantom"
for e in classical unet2d dunet mip bmd; do
  echo "== $e"; /usr/bin/python3 "$E" "$work/e_$e" "$work/ho" --json "$work/e_$e.json"
done
