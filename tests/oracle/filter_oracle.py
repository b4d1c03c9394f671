#!/usr/bin/env python3
"""ctbmd-filter against SciPy and PyWavelets on random volumes (IBSI 2 filters).

make DIR SEED NX NY NZ SX SY SZ   random float32 volume, stored LPS (canonical = storage order)
log DIR SIGMA BOUNDARY            DIR/log.nii.gz vs sum over axes of scipy.ndimage.gaussian_filter
                                  (2nd order along the axis, sigma/spacing voxels, truncate 4) / h^2
wavelet DIR NAME LEVEL BOUNDARY   DIR/w_<band>.nii.gz vs pywt.swtn (periodic: on the volume itself;
                                  mirror: on the volume padded symmetrically by 64, then cropped)
Bound: 1e-6 of the reference map's largest magnitude (the maps are written as float32, 6e-8).
"""
import sys

import nibabel as nib
import numpy as np
import pywt
from scipy import ndimage

MODES = {"mirror": "reflect", "nearest": "nearest", "zero": "constant", "periodic": "wrap"}


def make(d, seed, nx, ny, nz, sx, sy, sz):
    import os
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(int(seed))
    v = rng.normal(0, 100, size=(int(nx), int(ny), int(nz))).astype(np.float32)
    aff = np.diag([-float(sx), -float(sy), float(sz), 1.0])  # LPS storage in RAS terms
    nib.save(nib.Nifti1Image(v, aff), f"{d}/in.nii.gz")


def load(p):
    img = nib.load(p)
    return np.asarray(img.dataobj).astype(np.float64), np.sqrt((img.affine[:3, :3] ** 2).sum(0))


def check(name, got, want):
    scale = np.abs(want).max()
    err = np.abs(got - want).max()
    assert err <= 1e-6 * scale, f"{name}: max |ctbmd - oracle| = {err:.3e} (bound {1e-6 * scale:.3e})"
    print(f"{name}: max |diff| {err:.2e} = {err / scale:.1e} of the map's range")


def log(d, sigma, boundary):
    v, sp = load(f"{d}/in.nii.gz")
    sigma = float(sigma)
    want = np.zeros_like(v)
    for axis in range(3):
        order = [0, 0, 0]
        order[axis] = 2
        want += ndimage.gaussian_filter(v, sigma / sp, order=order, mode=MODES[boundary], truncate=4.0) / sp[axis] ** 2
    got, _ = load(f"{d}/log.nii.gz")
    check(f"LoG sigma {sigma} mm {boundary}", got, want)


def wavelet(d, name, level, boundary):
    v, _ = load(f"{d}/in.nii.gz")
    level = int(level)
    if boundary == "periodic":
        coefs = pywt.swtn(v, name, level=level, trim_approx=False, norm=False)[0]
    else:
        assert boundary == "mirror"
        pad = 64
        padded = np.pad(v, [(pad, pad + (-(n + 2 * pad)) % (1 << level)) for n in v.shape], mode="symmetric")
        full = pywt.swtn(padded, name, level=level, trim_approx=False, norm=False)[0]
        sl = tuple(slice(pad, pad + n) for n in v.shape)
        coefs = {k: c[sl] for k, c in full.items()}
    for key, want in coefs.items():
        band = key.replace("a", "L").replace("d", "H")
        got, _ = load(f"{d}/w_{band}.nii.gz")
        check(f"{name} level {level} {band} {boundary}", got, want)


if __name__ == "__main__":
    {"make": make, "log": log, "wavelet": wavelet}[sys.argv[1]](*sys.argv[2:])
