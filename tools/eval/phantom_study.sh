#!/usr/bin/env bash
# Phantom study of the weight-free stages: N seeds spanning slice thickness 0.625-3 mm,
# in-plane pixels 0.7-1.0 mm, orientations, noise 10-40 HU, and the hard cases; prints per-case label correctness,
# body Dice and ROI error against the phantom truth, then a summary.
# Usage: tools/eval/phantom_study.sh [BUILD_DIR] [N] [OUT_DIR]
# Environment: NOISE_LO (default 10) and NOISE_SPAN (31) set the noise range NOISE_LO ..
# NOISE_LO + NOISE_SPAN - 1 HU; e.g. NOISE_LO=60 NOISE_SPAN=41 for a low-dose study.
# SLICES (default "0.625 1.0 1.5 2.0 3.0") lists the slice thicknesses cycled over; e.g.
# SLICES="4.0 4.5 5.0" for a thick-slice study. REUSE=1 keeps phantoms already in OUT_DIR (to
# compare two builds on the same cases); RESULTS (default "results") names the results folder.
# SEED0 (default 0): case s uses phantom seed SEED0 + s (another set of cases, same parameters).
set -euo pipefail
build=${1:-build}
n=${2:-30}
out=${3:-$(mktemp -d "${TMPDIR:-/tmp}/ctbmd-study.XXXXXX")}
mkdir -p "$out"
orients=(LPS RAS PIR LAS)
read -r -a slices <<<"${SLICES:-0.625 1.0 1.5 2.0 3.0}"
# 13 rib pairs (a T13) can only be told from 12 when the first rib pair is in view, so those
# cases cover C6-S1 (neck to pelvis); in a T11-S1 view they look normal (see the README).
hard=("" "" "" "" "--ribs 13 --levels C6-S1" "--lstv" "--fracture L2" "--metal L4" "--contrast portal-venous" "")
for ((s = 1; s <= n; s++)); do
  o=${orients[$((s % 4))]}
  t=${slices[$((s % ${#slices[@]}))]}
  noise=$((${NOISE_LO:-10} + (s * 7) % ${NOISE_SPAN:-31}))
  h=${hard[$((s % 10))]}
  # in-plane pixels of clinical 512x512 grids (0.7-0.85 mm, which the localizer bins) and of
  # coarser ones (1.0 mm), over the same 400 mm field of view
  pixels=(1.0 0.7 0.85)
  px=${pixels[$((s % 3))]}
  nxy=$(/usr/bin/python3 -c "print(round(400 / $px))")
  size=${nxy}x${nxy}
  [[ ${REUSE:-0} == 1 && -f $out/case$s.nii.gz ]] && continue
  "$build/src/ctbmd-phantom" -q --force -o "$out/case$s.nii.gz" --size $size --pixel $px --slice $t \
    --orientation $o --noise $noise --seed $((s + ${SEED0:-0})) $h
  echo "case$s orientation=$o slice=$t pixel=$px noise=$noise $h" > "$out/case$s.params"
done
res=${RESULTS:-results}
"$build/src/ctbmd-run" -q --force "$out" -o "$out/$res" -p ellipse-s1 || true
/usr/bin/python3 - "$out" "$n" "$res" <<'PY'
import json, math, sys, numpy as np, nibabel as nib
out, n, res = sys.argv[1], int(sys.argv[2]), sys.argv[3]
levels = ["T12", "L1", "L2", "L3", "L4", "L5"]
lab = {"T12": 19, "L1": 20, "L2": 21, "L3": 22, "L4": 23, "L5": 24}
rows, dices, roi_err, centre_err = [], [], [], []
ordinary_ok = ordinary = hard_ok_or_flagged = hard = 0
for s in range(1, n + 1):
    c = f"case{s}"
    params = open(f"{out}/{c}.params").read().split(maxsplit=1)[1].strip()
    truth = json.load(open(f"{out}/{c}_truth.json"))
    try:
        loc = json.load(open(f"{out}/{res}/{c}/localize.json"))
        roi = json.load(open(f"{out}/{res}/{c}/roi.json"))
    except FileNotFoundError:
        rows.append((c, params, "ERROR", "", "")); continue
    seg = np.asarray(nib.load(f"{out}/{res}/{c}/segmentation.nii.gz").dataobj)
    ref = np.asarray(nib.load(f"{out}/{c}_seg.nii.gz").dataobj)
    wrong = []
    for L in levels:
        t = truth["levels"].get(L)
        v = loc["levels"][L]
        if t is None or t["coverage"] != "complete":
            continue
        if v["status"] == "missing":
            wrong.append(L + ":missing"); continue
        d = math.dist(t["centroid_mm"], v["center_mm"])
        centre_err.append(d)
        if d > 6: wrong.append(f"{L}:{d:.0f}mm"); continue
        a, b = seg == lab[L], ref == lab[L]
        dices.append(2 * (a & b).sum() / max(1, a.sum() + b.sum()))
        r = roi["levels"][L]
        if r["voxels"] > 0 and not t["fractured"] and not t["metal"]:
            roi_err.append(r["mean_hu"] - t["hu_trabecular"])
    is_hard = any(k in params for k in ["ribs", "lstv", "fracture", "metal", "contrast"])
    flagged = bool(loc["flags"])
    if is_hard:
        hard += 1; hard_ok_or_flagged += (not wrong) or flagged
    else:
        ordinary += 1; ordinary_ok += not wrong
    rows.append((c, params, "ok" if not wrong else ("FLAGGED" if flagged else "WRONG"), " ".join(wrong), ",".join(loc["flags"])))
for r in rows: print(f"{r[0]:8s} {r[1]:60s} {r[2]:8s} {r[3]} {r[4]}")
d, e, ce = np.array(dices), np.array(roi_err), np.array(centre_err)
print(f"\nordinary cases labelled right: {ordinary_ok}/{ordinary}; hard cases right or flagged: {hard_ok_or_flagged}/{hard}")
print(f"centre error: median {np.median(ce):.1f} mm, max {ce.max():.1f} mm")
print(f"body Dice (levels named right): median {np.median(d):.3f}, min {d.min():.3f}, share >= 0.92: {np.mean(d >= 0.92):.2f}")
print(f"ellipse-s1 ROI mean - true trabecular HU: mean {e.mean():+.2f}, MAE {np.abs(e).mean():.2f}, max |err| {np.abs(e).max():.2f}, share within 3 HU: {np.mean(np.abs(e) <= 3):.2f}")
PY
