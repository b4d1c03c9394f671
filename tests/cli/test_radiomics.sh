#!/usr/bin/env bash
# ctbmd-radiomics as a user runs it: the IBSI digital phantom through the executable (CSV and
# JSON contract), the preprocessing against SciPy (tests/oracle/radiomics_oracle.py: IBSI's
# centre-aligned grid, trilinear and cubic B-spline interpolation, mask >= 0.5), a real CT's
# vertebral bodies against NumPy, and refusals of bad values before any work.
source "$(dirname "$0")/common.sh"
oracle="$CTBMD_SRC/tests/oracle/radiomics_oracle.py"
rad="$CTBMD_BIN/ctbmd-radiomics"

# 1. Preprocessing oracle: small and big volumes (the big one prefilters a block of the image),
#    two voxel sizes, both interpolators.
for size in small big; do
  d="$WORK/interp_$size"
  py "$oracle" make "$d" 3 "$size"
  for kind in trilinear bspline; do
    for vox in 1 1.7; do
      rm -rf "$d/out" && mkdir "$d/out"
      "$rad" -q "$d/ct.nii.gz" -m "$d/mask.nii.gz" --voxel-size "$vox" --interpolation "$kind" --no-round \
        --write-roi-images "$d/out/" -o "$d/out/f.csv"
      py "$oracle" interp "$d" "$kind" "$vox"
    done
  done
done

# 2. Bad values are refused at parse time (exit 1), before the CT is read.
d="$WORK/interp_small"
expect_rc 1 "$rad" "$d/ct.nii.gz" -m "$d/mask.nii.gz" -o "$WORK/x.csv" --discretisation fixed-bin-sise
grep -q "did you mean 'fixed-bin-size'" "$WORK/last.out" || fail "no suggestion: $(cat "$WORK/last.out")"
expect_rc 1 "$rad" "$d/ct.nii.gz" -m "$d/mask.nii.gz" -o "$WORK/x.csv" --bin-width -5
expect_rc 1 "$rad" "$d/ct.nii.gz" -m "$d/mask.nii.gz" -o "$WORK/x.csv" --reseg-min 400 --reseg-max -1000
expect_rc 1 "$rad" "$d/ct.nii.gz" -m "$d/mask.nii.gz" -o "$WORK/x.csv" --voxel-size 1,1
expect_rc 1 "$rad" "$d/ct.nii.gz" -m "$d/mask.nii.gz" -o "$WORK/x.csv" --interpolation cubik
[[ ! -e "$WORK/x.csv" ]] || fail "a refused run wrote its output"
# Unsuitable input (exit 2), with the files named and what to do.
expect_rc 2 "$rad" "$d/ct.nii.gz" -m "$d/mask.nii.gz" -o "$WORK/x.csv" -l 7
grep -q "none of the requested labels" "$WORK/last.out" || fail "unclear: $(cat "$WORK/last.out")"
grep -q "mask.nii.gz" "$WORK/last.out" || fail "the label file is not named: $(cat "$WORK/last.out")"
# An existing output is kept without --force.
"$rad" -q "$d/ct.nii.gz" -m "$d/mask.nii.gz" -o "$WORK/x.csv"
expect_rc 1 "$rad" "$d/ct.nii.gz" -m "$d/mask.nii.gz" -o "$WORK/x.csv"

have_ref || { echo "ok (reference scans absent: phantom and real-scan parts skipped)"; exit 0; }

# 3. The IBSI digital phantom through the executable: every standardised value in the CSV
#    matches IBSI's (3 significant digits, or the morphology tolerance); JSON has the contract.
p="$CTBMD_REF/ibsi_digital_phantom"
"$rad" -q "$p/image_phantom.nii.gz" -m "$p/mask_mask.nii.gz" --discretisation none -o "$WORK/ibsi/features.csv"
py - "$WORK/ibsi/features.csv" "$p/reference_values.csv" "$WORK/ibsi/features.json" <<'PY'
import csv, json, math, sys
row = list(csv.DictReader(open(sys.argv[1])))
assert len(row) == 1, f"{len(row)} rows for one ROI"
row = row[0]
n = bad = 0
for r in csv.DictReader(open(sys.argv[2], encoding="utf-8-sig")):
    if not r["reference value"] or r["consensus"] == "not standardized":
        continue
    ref = float(r["reference value"]); tol = float(r["tolerance"] or 0)
    half = 5e-4 if ref == 0 else 0.5 * 10 ** (math.floor(math.log10(abs(ref))) - 2)
    got = float(row[r["tag"]])
    n += 1
    if abs(got - ref) > max(tol, half) * (1 + 1e-9):
        bad += 1; print("miss", r["tag"], got, ref)
assert n >= 400 and bad == 0, f"{bad} of {n} outside tolerance"
j = json.load(open(sys.argv[3]))
assert j["schema"]["name"] == "ctbmd.radiomics", j["schema"]
assert len(j["provenance"]["inputs"]["labels"]["sha256"]) == 64
assert j["settings"]["discretisation"] == "none"
assert j["rois"][0]["voxels"] == 74, j["rois"]
print(f"IBSI digital phantom via CLI: {n} features, 0 outside tolerance")
PY

# 4. A real CT (example_ct, 3 mm) with TotalSegmentator's vertebral bodies: one row per level,
#    VerSe names, voxel counts, volumes and first-order statistics against NumPy on the same
#    voxels; bone's texture differs from level to level.
t="$CTBMD_REF/totalsegmentator"
"$rad" -q "$t/example_ct.nii.gz" -m "$t/ts_vertebral_bodies.nii.gz" --verse-names --reseg-min -1000 \
  -o "$WORK/bodies/features.csv"
py - "$WORK/bodies/features.csv" "$t/example_ct.nii.gz" "$t/ts_vertebral_bodies.nii.gz" <<'PY'
import csv, sys
import nibabel as nib, numpy as np
rows = list(csv.DictReader(open(sys.argv[1])))
ct = np.asarray(nib.load(sys.argv[2]).dataobj).astype(float)
lab = np.asarray(nib.load(sys.argv[3]).dataobj)
names = {19: "T12", 20: "L1", 21: "L2", 22: "L3", 23: "L4", 24: "L5"}
assert [r["roi"] for r in rows] == list(names.values()), [r["roi"] for r in rows]
for r in rows:
    v = ct[lab == int(r["label"])]
    assert int(r["voxels"]) == v.size, (r["roi"], r["voxels"], v.size)
    assert abs(float(r["morph_vol_approx"]) - v.size * 27.0) < 1e-6
    # the mesh volume of a blob of 3 mm voxels lies within 15 % below the voxel count's
    assert 0.85 * v.size * 27 < float(r["morph_volume"]) < v.size * 27, r["morph_volume"]
    for tag, want in [("stat_mean", v.mean()), ("stat_var", v.var()), ("stat_median", np.median(v)),
                      ("stat_p10", np.percentile(v, 10)), ("stat_p90", np.percentile(v, 90)),
                      ("stat_max", v.max()), ("stat_energy", (v ** 2).sum())]:
        got = float(r[tag])
        assert abs(got - want) <= 1e-6 * max(1, abs(want)), (r["roi"], tag, got, want)
    # discretised mean: bins of 25 HU from -1000 HU
    ih = np.floor((v + 1000) / 25) + 1
    assert abs(float(r["ih_mean"]) - ih.mean()) < 1e-6, (r["roi"], r["ih_mean"], ih.mean())
    assert 0 < float(r["cm_joint_entr_3D_comb"]) < 12 and 0 <= float(r["szm_z_perc_3D"]) <= 1
print(f"example_ct: {len(rows)} vertebral bodies, statistics equal NumPy's")
PY
# 'none' is for images of grey levels (the phantom), not HU: refused with advice.
expect_rc 2 "$rad" "$t/example_ct.nii.gz" -m "$t/ts_vertebral_bodies.nii.gz" -o "$WORK/y.csv" --discretisation none
grep -q "use fixed-bin-size" "$WORK/last.out" || fail "no advice: $(cat "$WORK/last.out")"
echo "ok"
