#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus (tests/fuzz/seeds/<target>/): small valid inputs of every
format ctbmd reads, so that coverage-guided fuzzing starts inside each parser rather than at
its magic bytes. Deterministic; rerun after changing a seed's shape and commit the result.
Needs numpy and nibabel (Debian: python3-numpy, python3-nibabel)."""
import gzip
import json
import os
import struct
import sys

import nibabel as nib
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "seeds")
rng = np.random.default_rng(7)


def volume(shape=(6, 5, 4)):
    v = rng.integers(-1000, 1500, size=shape).astype(np.int16)
    return v


def put(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)


# NIfTI-1: int16, scaled uint16 (the commonest CT export), float32; plain and gzip.
aff = np.diag([0.8, 0.8, 2.5, 1.0])
aff[:3, 3] = [-100, -120, 40]
for name, arr, slope, inter in [
    ("int16", volume(), None, None),
    ("uint16_scaled", (volume() + 1024).astype(np.uint16), 1.0, -1024.0),
    ("float32", volume().astype(np.float32), None, None),
]:
    img = nib.Nifti1Image(arr, aff)
    img.header.set_qform(aff, 1)
    img.header.set_sform(aff, 1)
    if slope is not None:
        img.header.set_slope_inter(slope, inter)
    raw = img.to_bytes()
    put("nifti", name + ".nii", raw)
    put("nifti", name + ".nii.gz", gzip.compress(raw, mtime=0))


def meta_header(shape, extra):
    lines = ["ObjectType = Image", "NDims = 3", "BinaryData = True", "BinaryDataByteOrderMSB = False",
             "CompressedData = False", "TransformMatrix = 1 0 0 0 1 0 0 0 1", "Offset = -100 -120 40",
             "CenterOfRotation = 0 0 0", "AnatomicalOrientation = RAI", "ElementSpacing = 0.8 0.8 2.5",
             "DimSize = %d %d %d" % shape] + extra + ["ElementDataFile = LOCAL"]
    return ("\n".join(lines) + "\n").encode()


v = volume()
data = v.transpose(2, 1, 0).tobytes()  # x fastest
put("mha", "int16.mha", meta_header(v.shape, ["ElementType = MET_SHORT"]) + data)
vf = v.astype(np.float32)
put("mha", "float32.mha", meta_header(v.shape, ["ElementType = MET_FLOAT"]) + vf.transpose(2, 1, 0).tobytes())


def nrrd(encoding, payload, typ="short"):
    hdr = ("NRRD0004\n# ctbmd fuzz seed\ntype: %s\ndimension: 3\nspace: left-posterior-superior\n"
           "sizes: %d %d %d\nspace directions: (0.8,0,0) (0,0.8,0) (0,0,2.5)\nkinds: domain domain domain\n"
           "endian: little\nencoding: %s\nspace origin: (-100,-120,40)\n\n") % ((typ,) + v.shape + (encoding,))
    return hdr.encode() + payload


put("nrrd", "raw.nrrd", nrrd("raw", data))
put("nrrd", "gzip.nrrd", nrrd("gzip", gzip.compress(data, mtime=0)))
put("nrrd", "float.nrrd", nrrd("raw", vf.transpose(2, 1, 0).tobytes(), "float"))


# DICOM part 10, explicit VR little endian, one CT slice.
def el(group, elem, vr, value):
    if isinstance(value, str):
        value = value.encode()
        if len(value) % 2:
            value += b"\0" if vr == "UI" else b" "
    if vr in ("OB", "OW", "SQ", "UN", "UT"):
        return struct.pack("<HH2sHI", group, elem, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr.encode(), len(value)) + value


def us(x):
    return struct.pack("<H", x)


def dicom_slice(z, instance, pixels):
    sop = "1.2.826.0.1.3680043.8.498.%d" % (1000 + instance)
    meta = (el(0x0002, 0x0001, "OB", b"\0\1") + el(0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.2") +
            el(0x0002, 0x0003, "UI", sop) + el(0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1"))
    meta = el(0x0002, 0x0000, "UL", struct.pack("<I", len(meta))) + meta
    ds = b"".join([
        el(0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.2"), el(0x0008, 0x0018, "UI", sop),
        el(0x0008, 0x0060, "CS", "CT"), el(0x0018, 0x0050, "DS", "2.5"), el(0x0018, 0x0060, "DS", "120"),
        el(0x0020, 0x000D, "UI", "1.2.826.0.1.3680043.8.498.1"),
        el(0x0020, 0x000E, "UI", "1.2.826.0.1.3680043.8.498.2"),
        el(0x0020, 0x0013, "IS", str(instance)),
        el(0x0020, 0x0032, "DS", "-100\\-120\\%g" % z), el(0x0020, 0x0037, "DS", "1\\0\\0\\0\\1\\0"),
        el(0x0028, 0x0002, "US", us(1)), el(0x0028, 0x0004, "CS", "MONOCHROME2"),
        el(0x0028, 0x0010, "US", us(pixels.shape[0])), el(0x0028, 0x0011, "US", us(pixels.shape[1])),
        el(0x0028, 0x0030, "DS", "0.8\\0.8"), el(0x0028, 0x0100, "US", us(16)),
        el(0x0028, 0x0101, "US", us(16)), el(0x0028, 0x0102, "US", us(15)), el(0x0028, 0x0103, "US", us(1)),
        el(0x0028, 0x1052, "DS", "-1024"), el(0x0028, 0x1053, "DS", "1"),
        el(0x7FE0, 0x0010, "OW", (pixels + 1024).astype("<i2").tobytes()),
    ])
    return b"\0" * 128 + b"DICM" + meta + ds


put("dicom", "slice.dcm", dicom_slice(40.0, 1, v[:, :, 0].T.copy()))
# The DICOM target writes its input beside this second slice of the same series (a series
# needs >= 2 slices), so the fuzzed file goes through sorting and the geometry checks too.
companion = os.path.join(os.path.dirname(out.rstrip("/")), "dicom_companion")
os.makedirs(companion, exist_ok=True)
with open(os.path.join(companion, "slice2.dcm"), "wb") as f:
    f.write(dicom_slice(42.5, 2, v[:, :, 1].T.copy()))

# Stage JSON: one seed per loader; the first byte picks the loader (see fuzz_json.cpp).
loaders = ["localize", "roi", "calibration", "bmd", "classify", "phantom", "tissues", "segment"]
here = os.path.dirname(os.path.abspath(__file__))
for i, name in enumerate(loaders):
    path = os.path.join(here, "json_examples", name + ".json")
    if os.path.exists(path):
        with open(path, "rb") as f:
            put("json", name + ".json", bytes([i]) + f.read())

# CSV: a results table, a reference table, and the two as one input (predictions, NUL,
# references: ctbmd-evaluate's loaders).
results = (b"case_id,status,L1_bmd,L2_bmd,bmd_l1l2,category\n"
           b"a,ok,101.5,99.25,100.4,osteopenia\n\"b,1\",error,,,,\n")
reference = b"# reference\ncase_id,bmd,category\na,100,osteopenia\nb,130,normal\n"
put("csv", "results.csv", results)
put("csv", "reference.csv", reference)
put("csv", "pair.csv", results + b"\0" + reference)
