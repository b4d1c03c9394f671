#!/usr/bin/env bash
# Quick start 1: install what is missing, build, make a digital phantom scan and run the
# whole pipeline on it, printing the per-level table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh
out=${CTBMD_DEMO_DIR:-demo}
mkdir -p "$out"
./build/src/ctbmd-phantom -o "$out/phantom.nii.gz" --seed 1 --population osteopenia --force
./build/src/ctbmd-run "$out/phantom.nii.gz" -o "$out/results" --force --table
echo "truth (phantom):"
/usr/bin/python3 - "$out/phantom_truth.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
for k in ["T12", "L1", "L2", "L3", "L4", "L5"]:
    l = t["levels"].get(k)
    if l: print(f"{k:4s} true BMD {l['bmd_mg_cm3']:6.1f} mg/cm3, true trabecular HU {l['hu_trabecular']:6.1f}")
print(f"L1-L2 true BMD {t['bmd_l1l2']:.1f} mg/cm3 -> {t['category']}")
PY
