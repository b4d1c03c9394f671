#!/usr/bin/python3
"""Toy 2-D training data for ctbmd-train tests: a noisy disk whose HU encodes the target
(HU = 1.25 x BMD), written as 2-D NIfTI, and a CSV image,target.
Usage: train_data.py DIR N SEED [regress|classify]"""
import os
import sys

import nibabel as nib
import numpy as np

d, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
task = sys.argv[4] if len(sys.argv) > 4 else "regress"
rng = np.random.default_rng(seed)
os.makedirs(d, exist_ok=True)
yy, xx = np.mgrid[0:48, 0:48]
rows = ["image,target"]
for i in range(n):
    bmd = rng.uniform(30, 200)
    cx, cy = rng.uniform(18, 30, 2)
    img = rng.normal(40, 15, (48, 48))
    img[(xx - cx) ** 2 + (yy - cy) ** 2 < 100] = 1.25 * bmd + rng.normal(0, 10, ((xx - cx) ** 2 + (yy - cy) ** 2 < 100).sum())
    nib.save(nib.Nifti1Image(img.astype(np.float32).T, np.eye(4)), f"{d}/img{i:03d}.nii.gz")
    target = f"{bmd:.2f}" if task == "regress" else ("normal" if bmd > 120 else "osteopenia" if bmd >= 80 else "osteoporosis")
    rows.append(f"img{i:03d}.nii.gz,{target}")
open(f"{d}/data.csv", "w").write("\n".join(rows) + "\n")
