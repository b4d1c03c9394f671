#!/usr/bin/env bash
# Reproduces models/mosaic-cnn-phantom: 50 phantom subjects (40 to train, 10 held out),
# ctbmd-run --protocol mosaic-392, ctbmd-train regress on the usable levels' mosaics, then
# the held-out per-level BMD error through ctbmd-bmd-estimate --bmd-method mosaic-cnn.
# Usage: tools/train/mosaic_cnn_phantom.sh [BUILD_DIR] [WORK_DIR] [OUT_MODEL]   (~12 min on 2 cores)
set -euo pipefail
build=${1:-build}
work=${2:-$(mktemp -d "${TMPDIR:-/tmp}/ctbmd-train.XXXXXX")}
model=${3:-$work/mosaic-cnn-phantom}
B="$build/src"
mkdir -p "$work/ph"
pops=(normal osteopenia osteoporosis)
for s in $(seq 1 50); do
  "$B/ctbmd-phantom" -q --force -o "$work/ph/c$s.nii.gz" --size 384x384 --pixel 1.0 --slice 2.0 \
    --seed $((5000 + s)) --population "${pops[$((s % 3))]}" --noise $((10 + (s * 7) % 31))
done
"$B/ctbmd-run" -q --force "$work/ph" -o "$work/run" -p mosaic-392
/usr/bin/python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
tr, te = ["image,target"], ["image,target"]
for s in range(1, 51):
    c = f"c{s}"
    t = json.load(open(f"{w}/ph/{c}_truth.json"))
    roi = json.load(open(f"{w}/run/{c}/roi.json"))
    for m in roi.get("mosaic_files", []):
        L = m["level"]
        if roi["levels"][L]["usable"] and L in t["levels"]:
            (tr if s <= 40 else te).append(f"{w}/run/{c}/{m['nifti']},{t['levels'][L]['bmd_mg_cm3']:.2f}")
open(f"{w}/train.csv", "w").write("\n".join(tr) + "\n")
open(f"{w}/test.csv", "w").write("\n".join(te) + "\n")
PY
"$B/ctbmd-train" regress --csv "$work/train.csv" -o "$model" --arch mosaic-cnn --hyper '{"channels": [8, 16, 32, 64]}' \
  --epochs 30 --milestones 20 --batch 8 --lr 2e-3 --hu-window 150,700 --augment-rotate 5 --augment-translate 0.03 \
  --seed 1 --force
/usr/bin/python3 - "$work" "$B" "$model" <<'PY'
import json, subprocess, sys
import numpy as np
w, B, model = sys.argv[1:4]
errs = []
for s in range(41, 51):
    c = f"c{s}"
    subprocess.run([f"{B}/ctbmd-bmd-estimate", "-q", "--force", f"{w}/run/{c}/roi.json", "-o", f"{w}/run/{c}/bmd_cnn.json",
                    "--bmd-method", "mosaic-cnn", "--bmd-model", model, "--device", "cpu"], check=True)
    b = json.load(open(f"{w}/run/{c}/bmd_cnn.json"))
    t = json.load(open(f"{w}/ph/{c}_truth.json"))
    for L, v in b["levels"].items():
        if v["usable"] and L in t["levels"] and "bmd_mg_cm3" in v:
            errs.append(v["bmd_mg_cm3"] - t["levels"][L]["bmd_mg_cm3"])
e = np.array(errs)
print(f"held-out (10 subjects, {len(e)} levels): MAE {np.abs(e).mean():.1f}, bias {e.mean():+.1f}, max |error| {np.abs(e).max():.1f} mg/cm3")
PY
