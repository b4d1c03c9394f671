#!/usr/bin/env bash
# Radiomics speed: the hip seed's feature set (tools/radiomics/seed_hip.json: 1 mm B-spline,
# original + 3 LoG + 8 coif1 sub-bands, 1,189 features) of a real proximal femur (example_ct's
# right femur, TotalSegmentator label 76: 118 ml at 1 mm) against a baseline measured in the
# same run: the same command reading and resampling the ROI and computing its 18 first-order
# statistics only. Median of N interleaved runs; wall and CPU time, peak RSS and instructions
# (perf stat, when perf is installed) for each, with --threads 1 and 2.
# Usage: tools/bench/radiomics.sh [BUILD_DIR] [N] [REFERENCE_DIR]
set -euo pipefail
build=${1:-build}
n=${2:-5}
ref=${3:-$(dirname "$0")/../../../shared/data/reference}
ct="$ref/totalsegmentator/example_ct.nii.gz"
lab="$ref/totalsegmentator/ts_example_ct_total.nii.gz"
[[ -f $ct && -f $lab ]] || { echo "radiomics bench: reference scans not found under $ref" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/ctbmd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat > "$work/baseline.json" <<'JSON'
{"schema": "ctbmd.radiomics-config", "name": "read-resample-stats",
 "interpolation": {"voxel_mm": [1, 1, 1], "image": "bspline"},
 "resegmentation": {"min_hu": -1000}, "images": [{"type": "original"}], "families": ["stat"]}
JSON
seed="$(dirname "$0")/../radiomics/seed_hip.json"
/usr/bin/python3 - "$build/src/ctbmd-radiomics" "$n" "$work" "$ct" "$lab" "$seed" <<'PY'
import os, re, shutil, statistics, subprocess, sys
exe, n, work, ct, lab, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
perf = shutil.which("perf")
def once(cfg, threads):
    cmd = [exe, ct, "-m", lab, "-l", "76", "--config", cfg, "-o", f"{work}/f.csv", "--force", "-q", "--threads", str(threads)]
    pre = ["/usr/bin/time", "-f", "TIME %e %U %S %M"]
    if perf:
        pre = [perf, "stat", "-x", ",", "-e", "instructions"] + pre
    p = subprocess.run(pre + cmd, capture_output=True, text=True, check=True)
    m = re.search(r"TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", p.stderr)
    ins = re.search(r"^(\d+),,instructions", p.stderr, re.M)
    return dict(wall=float(m[1]), cpu=float(m[2]) + float(m[3]), rss=int(m[4]) / 1024, ins=int(ins[1]) if ins else None)
cols = sum(1 for _ in open(seed))  # touch the file: it must exist
for threads in (1, 2):
    runs = {"baseline": [], "seed": []}
    for _ in range(n):
        runs["baseline"].append(once(f"{work}/baseline.json", threads))
        runs["seed"].append(once(seed, threads))
    med = {k: {f: statistics.median(r[f] for r in v) if v[0][f] is not None else None for f in v[0]} for k, v in runs.items()}
    b, s = med["baseline"], med["seed"]
    print(f"--threads {threads}: median of {n}")
    for f, unit in (("wall", "s"), ("cpu", "s"), ("rss", "MiB"), ("ins", "")):
        if b[f] is None:
            continue
        fmt = (lambda v: f"{v/1e9:8.2f} G") if f == "ins" else (lambda v: f"{v:8.2f} {unit}")
        print(f"  {f:5s} baseline {fmt(b[f])}   seed set {fmt(s[f])}   ratio {s[f]/b[f]:6.2f}")
    if threads == 2:
        print(f"  features of 118 ml at 1 mm with the full filter set: {s['wall']:.2f} s wall")
PY
