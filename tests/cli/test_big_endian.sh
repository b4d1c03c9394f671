#!/usr/bin/env bash
# A big-endian int16 .nii.gz (as some scanners' converters write) is read like its
# little-endian twin: localize gives the same levels from both.
source "$(dirname "$0")/common.sh"
"$CTBMD_BIN/ctbmd-phantom" -q -o "$WORK/le.nii.gz" --size 256x256 --pixel 1.5 --slice 3.0 --seed 6
py - "$WORK/le.nii.gz" "$WORK/be.nii.gz" <<'PY'
import sys, numpy as np, nibabel as nib
img = nib.load(sys.argv[1])
data = np.asarray(img.dataobj).astype(">i2")
hdr = nib.Nifti1Header(endianness=">")
hdr.set_data_dtype(">i2")
hdr.set_xyzt_units("mm")
be = nib.Nifti1Image(data, None, hdr)
be.set_sform(img.affine, int(img.header["sform_code"]))
be.set_qform(img.affine, int(img.header["qform_code"]))
nib.save(be, sys.argv[2])
assert nib.load(sys.argv[2]).header.endianness == ">", "not big-endian"
PY
for e in le be; do
  "$CTBMD_BIN/ctbmd-localize" -vv --no-qc -o "$WORK/$e.json" "$WORK/$e.nii.gz" 2>"$WORK/$e.log"
done
# Both byte orders take the one-piece inflate path (the big-endian one swaps in place).
grep -q "inflated in one piece (big-endian)" "$WORK/be.log" || fail "big-endian file not read by the fast path"
grep -q "inflated in one piece (little-endian)" "$WORK/le.log" || fail "little-endian file not read by the fast path"
py - "$WORK/le.json" "$WORK/be.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
assert a["levels"] == b["levels"], "big-endian input localized differently"
assert sum(l["status"] == "found" for l in a["levels"].values()) >= 5
PY
echo "ok"
