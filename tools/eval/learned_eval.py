#!/usr/bin/env python3
"""Scores a ctbmd-run output folder against ctbmd-phantom truth (files layout).

Usage: learned_eval.py RUN_DIR PHANTOM_DIR [--json OUT]
Per case: level-centre error (mm and slices, levels the run found), body Dice per level
(levels in both), per-level BMD error (usable levels), and the L1-L2 category against the
truth's category. Prints a summary and optionally writes it as JSON.
"""
import json, os, sys
import numpy as np
import nibabel as nib

run, ph = sys.argv[1], sys.argv[2]
out_json = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
names = {19: "T12", 20: "L1", 21: "L2", 22: "L3", 23: "L4", 24: "L5"}
cerr_mm, cerr_sl, dice, berr, cls_ok, cls_n, per_case = [], [], [], [], 0, 0, {}
for case in sorted(d for d in os.listdir(run) if os.path.isdir(f"{run}/{d}")):
    tp = f"{ph}/{case}_truth.json"
    if not os.path.exists(tp):
        continue
    t = json.load(open(tp))
    rec = {}
    ct = nib.load(f"{ph}/{case}.nii.gz")
    # slice thickness: the spacing along the axis closest to superior-inferior
    ax = int(np.argmax(np.abs(ct.affine[2, :3])))
    slice_mm = float(ct.header.get_zooms()[ax])
    lp = f"{run}/{case}/localize.json"
    if os.path.exists(lp):
        loc = json.load(open(lp))
        for L, v in loc["levels"].items():
            if v["status"] == "found" and L in t["levels"] and "centroid_mm" in t["levels"][L]:
                e = np.linalg.norm(np.array(v["center_mm"]) - np.array(t["levels"][L]["centroid_mm"]))
                ez = abs(v["center_mm"][2] - t["levels"][L]["centroid_mm"][2])
                cerr_mm.append(e)
                cerr_sl.append(ez / slice_mm)
                rec[f"{L}_centre_mm"] = round(float(e), 2)
    sp = f"{run}/{case}/segmentation.nii.gz"
    if os.path.exists(sp):
        s = np.asarray(nib.load(sp).dataobj)
        g = np.asarray(nib.load(f"{ph}/{case}_seg.nii.gz").dataobj)
        for lab, L in names.items():
            a, b = g == lab, s == lab
            if a.sum() and b.sum() and t["levels"].get(L, {}).get("coverage") == "complete":
                d = 2 * (a & b).sum() / (a.sum() + b.sum())
                dice.append(d)
                rec[f"{L}_dice"] = round(float(d), 4)
    bp = f"{run}/{case}/bmd.json"
    if os.path.exists(bp):
        b = json.load(open(bp))
        for L, v in b["levels"].items():
            if v.get("usable") and L in t["levels"] and "bmd_mg_cm3" in v:
                berr.append(v["bmd_mg_cm3"] - t["levels"][L]["bmd_mg_cm3"])
    cp = f"{run}/{case}/classification.json"
    if os.path.exists(cp):
        c = json.load(open(cp))
        if c["category"] not in ("unavailable",):
            cls_n += 1
            cls_ok += c["category"] == t["category"]
            rec["category"] = [c["category"], t["category"]]
    per_case[case] = rec
summ = {
    "cases": len(per_case),
    "centre_error_mm_median": float(np.median(cerr_mm)) if cerr_mm else None,
    "centre_error_slices_median": float(np.median(cerr_sl)) if cerr_sl else None,
    "centre_error_slices_max": float(np.max(cerr_sl)) if cerr_sl else None,
    "levels_located": len(cerr_mm),
    "dice_median": float(np.median(dice)) if dice else None,
    "dice_min": float(np.min(dice)) if dice else None,
    "levels_segmented": len(dice),
    "bmd_mae": float(np.mean(np.abs(berr))) if berr else None,
    "bmd_bias": float(np.mean(berr)) if berr else None,
    "bmd_levels": len(berr),
    "category_accuracy": cls_ok / cls_n if cls_n else None,
    "categorised": cls_n,
    "per_case": per_case,
}
print(json.dumps({k: v for k, v in summ.items() if k != "per_case"}, indent=1))
if out_json:
    json.dump(summ, open(out_json, "w"), indent=1)
