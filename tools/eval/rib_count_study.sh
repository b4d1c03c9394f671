#!/usr/bin/env bash
# Rib counting from T1 on neck-to-pelvis phantoms: N seeds cycling through 12 and 13 rib
# pairs, 11 pairs, six lumbar vertebrae and a rib on L1, with (C6-S1) and without (C6-L3)
# the sacrum in view, over slice thicknesses 0.625-3 mm, pixels 0.7-1.0 mm, four storage
# orientations and noise 10-40 HU. Runs ctbmd-localize; prints per case the rib pairs
# counted, the vertebrae from T1 to the sacrum, the flags and whether T12-L5 are named right
# (centre within 6 mm of the truth's), then a summary.
# Usage: tools/eval/rib_count_study.sh [BUILD_DIR] [N] [OUT_DIR]
# Environment: SEED0 (default 300): case s uses phantom seed SEED0 + s.
set -euo pipefail
build=${1:-build}
n=${2:-24}
out=${3:-$(mktemp -d "${TMPDIR:-/tmp}/ctbmd-ribs.XXXXXX")}
mkdir -p "$out"
orients=(LPS RAS PIR LAS)
slices=(0.625 1.0 1.5 2.0 3.0)
pixels=(1.0 0.7 0.85)
variants=("--ribs 12" "--ribs 13" "--ribs 11" "--lstv" "--lumbar-rib 95" "--ribs 13")
fovs=(C6-S1 C6-L3)
for ((s = 1; s <= n; s++)); do
  o=${orients[$((s % 4))]}
  t=${slices[$((s % 5))]}
  px=${pixels[$((s % 3))]}
  noise=$((10 + (s * 7) % 31))
  v=${variants[$((s % 6))]}
  fov=${fovs[$(((s / 6) % 2))]}
  nxy=$(/usr/bin/python3 -c "print(round(400 / $px))")
  # shellcheck disable=SC2086
  "$build/src/ctbmd-phantom" -q --force -o "$out/r$s.nii.gz" --size "${nxy}x${nxy}" --pixel "$px" --slice "$t" \
    --orientation "$o" --noise "$noise" --seed $((s + ${SEED0:-300})) --levels "$fov" $v
  "$build/src/ctbmd-localize" -q --force "$out/r$s.nii.gz" -o "$out/r${s}_localize.json" 2>/dev/null || true
  echo "r$s $fov $o slice=$t pixel=$px noise=$noise $v" > "$out/r$s.params"
done
/usr/bin/python3 - "$out" "$n" <<'PY'
import json, math, sys
out, n = sys.argv[1], int(sys.argv[2])
right = flagged = wrong = counted = 0
for s in range(1, n + 1):
    b = f"{out}/r{s}"
    params = open(b + ".params").read().strip()
    t = json.load(open(b + "_truth.json"))
    try:
        j = json.load(open(b + "_localize.json"))
    except FileNotFoundError:
        print(f"{params:60s} ERROR"); wrong += 1; continue
    bad = []
    for L in ["T12", "L1", "L2", "L3", "L4", "L5"]:
        tt, v = t["levels"].get(L), j["levels"][L]
        if tt is None or tt["coverage"] != "complete":
            if v["status"] == "found": bad.append(L + ":invented")
            continue
        if v["status"] == "missing": bad.append(L + ":missing"); continue
        d = math.dist(tt["centroid_mm"], v["center_mm"])
        if d > 6: bad.append(f"{L}:{d:.0f}mm")
    a = j["anchors"]
    counted += a.get("rib_pairs_counted") is not None
    verdict = "ok" if not bad else ("FLAGGED" if j["flags"] else "WRONG")
    right += verdict == "ok"; flagged += verdict == "FLAGGED"; wrong += verdict == "WRONG"
    print(f"{params:60s} counted={a.get('rib_pairs_counted')} t1_to_sacrum={a.get('vertebrae_t1_to_sacrum')} "
          f"flags={','.join(j['flags']) or '-'} {verdict} {' '.join(bad)}")
print(f"\nnamed right {right}/{n}, wrong but flagged {flagged}, silently wrong {wrong}; rib pairs counted in {counted}/{n}")
PY
