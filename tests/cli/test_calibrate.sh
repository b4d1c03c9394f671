#!/usr/bin/env bash
# ctbmd-calibrate from the command line: rods (built-in and edited definitions), internal
# (phantom, real CT, refusal of MR), paired data (checked against scipy.stats.linregress),
# then bmd-estimate / ctbmd-run using the calibration and the classification rules.
source "$(dirname "$0")/common.sh"
B=$CTBMD_BIN
ph="$WORK/ph.nii.gz"
# Scanner calibration HU = -12 + 1.22 * BMD  ->  BMD = 9.836 + 0.81967 * HU.
"$B/ctbmd-phantom" -q -o "$ph" --size 336x336 --pixel 1.15 --slice 2.5 --levels T12-L3 --seed 31 \
  --cal-intercept -12 --cal-slope 1.22 --rods 50,100,200 --population osteopenia

"$B/ctbmd-calibrate" -q rods "$ph" -o "$WORK/rods.json"
"$B/ctbmd-calibrate" -q internal "$ph" -o "$WORK/internal.json"
py - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
# Internal calibration against the scanner's own line: its tissue table holds fixed
# HA-equivalent densities (made for 1.25 HU per mg/cm3), while the phantom's tissues follow
# their attenuation at this scanner's energy (74 keV for 1.22), so the table's model error
# (-2.8 % here) is part of the result: 5 % bounds it over the cohort's 1.15-1.35 scanners.
for name, tol_slope, tol_icpt in (("rods", 0.01, 1.5), ("internal", 0.05, 6.0)):
    c = json.load(open(f"{w}/{name}.json"))
    assert c["schema"]["name"] == "ctbmd.calibration" and c["provenance"]["inputs"]["ct"]["sha256"], name
    slope, icpt = 1 / 1.22, 12 / 1.22
    assert abs(c["slope"] - slope) < tol_slope * slope, (name, c["slope"], slope)
    assert abs(c["intercept"] - icpt) < tol_icpt, (name, c["intercept"], icpt)
    for k in ("slope_ci95", "intercept_ci95", "r2", "residual_sd_mg_cm3", "points", "valid_for"):
        assert k in c, (name, k)
    assert c["slope_ci95"][0] < c["slope"] < c["slope_ci95"][1]
c = json.load(open(f"{w}/internal.json"))
assert [p["name"] for p in c["points"] if p["used"]] == ["air", "fat", "muscle", "blood"], c["points"]
# The measurement itself is exact: the fit equals the least-squares line through the phantom's
# true tissue HU (truth tissues_hu) and the table's densities, to 0.5 % (noise on the medians).
import numpy as np
t = json.load(open(f"{w}/ph_truth.json"))["tissues_hu"]
table = {p["name"]: p["density_mg_cm3"] for p in c["points"]}
names = ["air", "fat", "muscle", "blood"]
want = np.polyfit([t[n] for n in names], [table[n] for n in names], 1)
assert abs(c["slope"] - want[0]) < 0.005 * want[0], (c["slope"], want)
assert abs(c["intercept"] - want[1]) < 1.0, (c["intercept"], want)
PY

# An edited copy of a built-in definition is read from a file; a wrong rod count is refused.
"$B/ctbmd-calibrate" --print-definition esp-ha > "$WORK/def.json"
py - "$WORK/def.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["name"] = "my-phantom"
d["rods"][2]["density_mg_cm3"] = 210.0  # certificate value
json.dump(d, open(sys.argv[1], "w"))
PY
"$B/ctbmd-calibrate" -q rods "$ph" -p "$WORK/def.json" -o "$WORK/rods2.json"
py -c "import json; c=json.load(open('$WORK/rods2.json')); assert c['details']['phantom']['name']=='my-phantom'; assert c['points'][2]['density_mg_cm3']==210.0"
expect_rc 3 "$B/ctbmd-calibrate" -q rods "$ph" -p k2hpo4-5rod -o "$WORK/bad.json"
grep -q "rods" "$WORK/last.out" || fail "unclear rod message"
[[ ! -e "$WORK/bad.json" ]] || fail "a refused calibration left a file"

# Paired data: least squares equals scipy.stats.linregress; Huber is accepted.
py - "$WORK/pairs.csv" <<'PY'
import numpy as np, sys
rng = np.random.default_rng(4)
with open(sys.argv[1], "w") as f:
    f.write("case,level,hu,bmd\n")
    for i in range(30):
        hu = rng.uniform(40, 260); f.write(f"c{i},L{1 + i % 2},{hu:.3f},{3 + 0.79 * hu + rng.normal(0, 5):.3f}\n")
PY
"$B/ctbmd-calibrate" -q paired "$WORK/pairs.csv" -o "$WORK/paired.json"
"$B/ctbmd-calibrate" -q paired "$WORK/pairs.csv" --fit huber -o "$WORK/huber.json"
py - "$WORK" <<'PY'
import csv, json, sys
from scipy import stats
w = sys.argv[1]
rows = list(csv.DictReader(open(f"{w}/pairs.csv")))
lr = stats.linregress([float(r["hu"]) for r in rows], [float(r["bmd"]) for r in rows])
c = json.load(open(f"{w}/paired.json"))
t = stats.t.ppf(0.975, len(rows) - 2)
for a, b in ((c["slope"], lr.slope), (c["intercept"], lr.intercept), (c["slope_se"], lr.stderr),
             (c["intercept_se"], lr.intercept_stderr), (c["r2"], lr.rvalue ** 2),
             (c["slope_ci95"][1], lr.slope + t * lr.stderr)):
    assert abs(a - b) < 1e-9 * max(1, abs(b)), (a, b)
h = json.load(open(f"{w}/huber.json"))
assert h["fit"]["method"] == "huber" and abs(h["slope"] - c["slope"]) < 0.02, (h["slope"], c["slope"])  # no outliers: near OLS
PY

# The calibration in use: ctbmd-run --calibrate rods, and bmd-estimate -c with a file.
"$B/ctbmd-run" -q "$ph" -o "$WORK/run" --calibrate rods
"$B/ctbmd-run" -q "$ph" -o "$WORK/run_uncal"
py - "$WORK" <<'PY'
import csv, json, sys
w = sys.argv[1]
t = json.load(open(f"{w}/ph_truth.json"))
r = next(csv.DictReader(open(f"{w}/run/results.csv")))
assert r["calibration"] == "calibrated", r
assert abs(float(r["L2_bmd"]) - t["levels"]["L2"]["bmd_mg_cm3"]) < 3.0, (r["L2_bmd"], t["levels"]["L2"])
b = json.load(open(f"{w}/run/ph/bmd.json"))
assert b["status"] == "calibrated" and b["calibration"]["source_kind"] == "rods"
assert b["levels"]["L2"]["bmd_ci95"][0] < b["levels"]["L2"]["bmd_mg_cm3"] < b["levels"]["L2"]["bmd_ci95"][1]
u = next(csv.DictReader(open(f"{w}/run_uncal/results.csv")))
assert u["calibration"] == "uncalibrated"
bu = json.load(open(f"{w}/run_uncal/ph/bmd.json"))
assert bu["status"] == "uncalibrated" and "uncalibrated" in bu["levels"]["L2"]["flags"]
PY
"$B/ctbmd-bmd-estimate" -q "$WORK/run_uncal/ph/roi.json" -c "$WORK/rods.json" -o "$WORK/bmd.json"
py -c "import json; b=json.load(open('$WORK/bmd.json')); assert b['status']=='calibrated', b['status']"

# Classification rules on that result.
C="$B/ctbmd-classify"
expect_rc 1 "$C" -q "$WORK/bmd.json" -r who-tscore -o "$WORK/c1.json"
grep -q "ref-mean" "$WORK/last.out" || fail "who-tscore without a reference is not explained"
"$C" -q "$WORK/bmd.json" -r who-tscore --ref-mean 170 --ref-sd 28 -o "$WORK/c1.json"
"$C" -q "$WORK/bmd.json" -r l1-hu -o "$WORK/c2.json"
"$C" -q "$WORK/bmd.json" -r ts-median --contrast-phase portal-venous -o "$WORK/c3.json"
py - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
b = json.load(open(f"{w}/bmd.json"))
c1 = json.load(open(f"{w}/c1.json"))
assert abs(c1["inputs"]["t_score"] - (b["bmd_l1l2"] - 170) / 28) < 1e-9
assert c1["provenance"]["parameters"]["ref_sd"] == 28
c2 = json.load(open(f"{w}/c2.json")); hu = b["levels"]["L1"]["hu_mean"]
assert c2["category"] == ("osteoporosis" if hu <= 110 else "normal" if hu >= 160 else "indeterminate")
c3 = json.load(open(f"{w}/c3.json"))
assert c3["inputs"]["threshold_hu"] == 105.0 and c3["inputs"]["contrast_phase"] == "portal-venous"
PY

if have_ref; then
  # Real CT: internal calibration runs and finds plausible tissues; MR is refused.
  "$B/ctbmd-calibrate" -q internal "$CTBMD_REF/totalsegmentator/example_ct.nii.gz" -o "$WORK/ex.json"
  py - "$WORK/ex.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
used = {p["name"]: p["hu"] for p in c["points"] if p["used"]}
assert {"air", "fat", "muscle"} <= set(used), c["points"]
assert -1050 < used["air"] < -950 and -130 < used["fat"] < -70, used
assert 0.7 < c["slope"] < 0.95, c["slope"]
PY
  expect_rc 2 "$B/ctbmd-calibrate" -q internal "$CTBMD_REF/totalsegmentator/example_mr_small.nii.gz" -o "$WORK/mr.json"
fi
echo "ok"
