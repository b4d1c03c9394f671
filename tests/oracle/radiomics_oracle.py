#!/usr/bin/env python3
"""Independent checks of ctbmd-radiomics' preprocessing (IBSI 1 section 2.3) with SciPy.

make DIR SEED [big]   a random int16 CT (RAS-stored, anisotropic voxels) and a blob label map;
                "big": a 90x80x40 CT with the blob near one corner, so that the B-spline
                prefilter runs on a block of the image, not all of it
interp DIR KIND VOX   check DIR/out/<roi>_image.nii.gz / _mask.nii.gz written by
                ctbmd-radiomics --voxel-size VOX --interpolation KIND --no-round --write-roi-images:
                  * the patch's voxel centres lie on IBSI's centre-aligned grid of the whole image
                    (n_new = ceil(n s / s_new), centres of old and new grid coincide)
                  * intensities equal scipy.ndimage.map_coordinates (order 1 / 3 with its spline
                    prefilter, whole-sample mirror boundaries) at the clamped coordinates, to 2e-4 HU (float32 output)
                  * the morphological mask equals the trilinear mask >= 0.5 (ties excluded)
"""
import math
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage


def make(d, seed, size="small"):
    import os
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(int(seed))
    shape = (90, 80, 40) if size == "big" else (23, 19, 11)
    img = rng.integers(-200, 900, size=shape).astype(np.int16)
    img = ndimage.gaussian_filter(img.astype(float), 0.7).round().astype(np.int16)
    aff = np.diag([0.83, 0.91, 2.5, 1.0])
    aff[:3, 3] = [-10.0, 5.0, 30.0]
    nib.save(nib.Nifti1Image(img, aff), f"{d}/ct.nii.gz")
    x, y, z = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    c = np.array([23, 19, 11]) / 2.0 + (np.array([50, 12, 20]) if size == "big" else 0)
    r = ((x - c[0]) * 0.83) ** 2 / 36 + ((y - c[1]) * 0.91) ** 2 / 25 + ((z - c[2]) * 2.5) ** 2 / 81
    lab = (r <= 1.0).astype(np.uint8)
    lab[0:3, :, :] = 0
    lab[(x - (c[0] - 11.5)) + (y - (c[1] - 9.5)) < 14] = 0
    nib.save(nib.Nifti1Image(lab, aff), f"{d}/mask.nii.gz")


def interp(d, kind, vox):
    vox = float(vox)
    ct = nib.load(f"{d}/ct.nii.gz")
    mask = nib.load(f"{d}/mask.nii.gz")
    data = np.asarray(ct.dataobj).astype(float)
    m = np.asarray(mask.dataobj).astype(float)
    out_i = nib.load(f"{d}/out/1_image.nii.gz")
    out_m = nib.load(f"{d}/out/1_mask.nii.gz")
    got = np.asarray(out_i.dataobj).astype(float)
    got_m = np.asarray(out_m.dataobj) > 0
    # every patch voxel centre in the input's voxel coordinates
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in got.shape], indexing="ij"), -1).reshape(-1, 3)
    world = ijk @ out_i.affine[:3, :3].T + out_i.affine[:3, 3]
    src = (world - ct.affine[:3, 3]) @ np.linalg.inv(ct.affine[:3, :3]).T
    shape = np.array(data.shape)
    spacing = np.sqrt((ct.affine[:3, :3] ** 2).sum(0))
    step = vox / spacing
    n_new = np.ceil(shape * spacing / vox - 1e-9)
    offset = (shape - 1) / 2.0 - step * (n_new - 1) / 2.0
    k = (src - offset) / step
    off_lattice = np.abs(k - np.round(k)).max()
    assert off_lattice < 1e-4, f"patch voxels off IBSI's aligned grid by {off_lattice} steps"
    assert np.all(np.round(k) >= -1e-6) and np.all(np.round(k) <= n_new - 1 + 1e-6), "patch outside the new grid"
    # positions from the lattice itself: the NIfTI header's float32 affine alone moves them by
    # ~1e-5 voxel, i.e. up to ~1e-3 HU on this image's gradients
    src = offset + np.round(k) * step
    clamped = np.clip(src, 0, shape - 1).T
    order = {"trilinear": 1, "bspline": 3}[kind]
    want = ndimage.map_coordinates(data, clamped, order=order, mode="mirror", prefilter=True)
    err = np.abs(want - got.reshape(-1)).max()
    # the patch is written as float32: 6e-5 HU resolution at 1000 HU
    assert err < 2e-4, f"{kind}: max |ctbmd - scipy| = {err} HU"
    mt = ndimage.map_coordinates(m, clamped, order=1, mode="mirror")
    decided = np.abs(mt - 0.5) > 1e-6
    mism = int(((mt >= 0.5) != got_m.reshape(-1))[decided].sum())
    assert mism == 0, f"{mism} mask voxels differ from trilinear >= 0.5"
    assert got_m.sum() > 50, "mask nearly empty"
    print(f"{kind} {vox} mm: {got.size} voxels, max |diff| {err:.2e} HU, mask {int(got_m.sum())} voxels, 0 differ")


if __name__ == "__main__":
    {"make": make, "interp": interp}[sys.argv[1]](*sys.argv[2:])
