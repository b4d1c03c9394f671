#!/usr/bin/env bash
# IBSI 2 filters (ctbmd-filter, and the response-map features of ctbmd-radiomics --config)
# against SciPy and PyWavelets: tests/oracle/filter_oracle.py. Bound: 1e-6 of each map's range.
source "$(dirname "$0")/common.sh"
oracle="$CTBMD_SRC/tests/oracle/filter_oracle.py"
filt="$CTBMD_BIN/ctbmd-filter"
py -c "import pywt, scipy" 2>/dev/null || fail "python3-pywt / python3-scipy missing (tools/install-deps.sh installs them)"

# Random anisotropic volumes; sizes divisible by 4 for pywt.swtn's level 2 (periodic).
d="$WORK/v1"
py "$oracle" make "$d" 1 24 20 16 0.8 0.9 2.0
for b in mirror nearest zero periodic; do
  "$filt" -q "$d/in.nii.gz" --log 1.5 --boundary "$b" -o "$d/log.nii.gz" --force
  py "$oracle" log "$d" 1.5 "$b"
done
"$filt" -q "$d/in.nii.gz" --log 0.6 -o "$d/log.nii.gz" --force
py "$oracle" log "$d" 0.6 mirror
for w in haar db3 coif1 sym4; do
  for level in 1 2; do
    for b in periodic mirror; do
      "$filt" -q "$d/in.nii.gz" --wavelet "$w" --level "$level" --boundary "$b" -o "$d/w.nii.gz" --force
      py "$oracle" wavelet "$d" "$w" "$level" "$b" | tail -1
    done
  done
done
# A single sub-band is the same map as in the full set.
"$filt" -q "$d/in.nii.gz" --wavelet coif1 -o "$d/w.nii.gz" --force
"$filt" -q "$d/in.nii.gz" --wavelet coif1 --subband LHL -o "$d/one.nii.gz"
py - "$d/one.nii.gz" "$d/w_LHL.nii.gz" <<'PY' || fail "--subband LHL differs from the full set's"
import sys, nibabel as nib, numpy as np
a, b = (np.asarray(nib.load(p).dataobj) for p in sys.argv[1:3])
sys.exit(0 if np.array_equal(a, b) else 1)
PY
expect_rc 1 "$filt" "$d/in.nii.gz" --log 1 --wavelet haar -o "$WORK/x.nii.gz"
expect_rc 1 "$filt" "$d/in.nii.gz" --wavelet db7 -o "$WORK/x.nii.gz"
expect_rc 1 "$filt" "$d/in.nii.gz" -o "$WORK/x.nii.gz"

have_ref || { echo "ok (reference scans absent: real-scan part skipped)"; exit 0; }
# Response-map features on a real CT: example_ct's vertebral bodies, LoG 3 mm and the coif1
# LLH sub-band; the first-order statistics of each map inside each body equal those of
# SciPy's / PyWavelets' map of the whole scan (the patch's margin covers the filters' support).
t="$CTBMD_REF/totalsegmentator"
cat > "$WORK/cfg.json" <<'JSON'
{"schema": "ctbmd.radiomics-config", "name": "filters-check",
 "images": [{"type": "log", "sigma_mm": 3}, {"type": "wavelet", "wavelet": "coif1", "subbands": ["LLH", "HHH"]}],
 "families": ["stat"]}
JSON
"$CTBMD_BIN/ctbmd-radiomics" -q "$t/example_ct.nii.gz" -m "$t/ts_vertebral_bodies.nii.gz" --config "$WORK/cfg.json" \
  -o "$WORK/resp/features.csv"
py - "$WORK/resp/features.csv" "$t/example_ct.nii.gz" "$t/ts_vertebral_bodies.nii.gz" <<'PY'
import csv, sys
import nibabel as nib, numpy as np, pywt
from scipy import ndimage
rows = list(csv.DictReader(open(sys.argv[1])))
img = nib.load(sys.argv[2])
ct = np.asarray(img.dataobj).astype(float)
lab = np.asarray(nib.load(sys.argv[3]).dataobj)
# ctbmd works in LPS order: flip the stored axes that run the other way (this scan's axes are
# not permuted)
codes = nib.aff2axcodes(img.affine)
assert codes[0] in "LR" and codes[1] in "PA" and codes[2] in "SI", codes
flip = [c != w for c, w in zip(codes, ("L", "P", "S"))]
sl = tuple(slice(None, None, -1) if f else slice(None) for f in flip)
ct, lab = ct[sl], lab[sl]
sp = np.sqrt((img.affine[:3, :3] ** 2).sum(0))
log = sum(ndimage.gaussian_filter(ct, 3.0 / sp, order=[2 if a == k else 0 for a in range(3)], mode="reflect",
                                  truncate=4.0) / sp[k] ** 2 for k in range(3))
pad = 8
padded = np.pad(ct, [(pad, pad + (-(n + 2 * pad)) % 2) for n in ct.shape], mode="symmetric")
bands = pywt.swtn(padded, "coif1", level=1, trim_approx=False, norm=False)[0]
crop = tuple(slice(pad, pad + n) for n in ct.shape)
maps = {"log_s3_": log, "wav_coif1_l1_LLH_": bands["aad"][crop], "wav_coif1_l1_HHH_": bands["ddd"][crop]}
for r in rows:
    m = lab == int(r["label"])
    for prefix, resp in maps.items():
        v = resp[m]
        for tag, want in (("stat_mean", v.mean()), ("stat_var", v.var()), ("stat_max", v.max()), ("stat_p10", np.percentile(v, 10))):
            got = float(r[prefix + tag])
            scale = np.abs(resp).max()
            assert abs(got - want) <= 1e-6 * scale, (r["roi"], prefix + tag, got, want)
print(f"response-map statistics of {len(rows)} bodies equal SciPy's / PyWavelets' (LoG 3 mm, coif1 LLH, HHH)")
PY
echo "ok"
