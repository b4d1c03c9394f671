#!/usr/bin/env bash
# ctbmd-run on a 512x512x400 phantom (.nii.gz) against `gzip -dc` of the same file, both
# measured in the same run (median of N); prints the ratio and ctbmd-run's per-stage times.
# Usage: tools/bench/pipeline.sh [BUILD_DIR] [N] [ORIENTATION]
# ORIENTATION (default LPS, ITK's and DICOM's storage order, which needs no reordering): e.g.
# LAS or RAS (dcm2niix / nibabel files) measures the cost of reordering the voxels too.
set -euo pipefail
build=${1:-build}
n=${2:-5}
orient=${3:-LPS}
work=$(mktemp -d "${TMPDIR:-/tmp}/ctbmd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$build/src/ctbmd-phantom" -q -o "$work/ct.nii.gz" --size 512x512x400 --pixel 0.78 --slice 1.0 --levels T11-S1 --seed 1 --orientation "$orient"
/usr/bin/python3 - "$build" "$n" "$work" <<'PY'
import json, os, statistics, subprocess, sys, time
build, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ct = os.path.join(work, "ct.nii.gz")
def once(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t
gz, run = [], []
for i in range(n):  # interleaved
    gz.append(once(["sh", "-c", f"gzip -dc {ct} > /dev/null"]))
    run.append(once([os.path.join(build, "src", "ctbmd-run"), ct, "-o", os.path.join(work, "out"), "--force", "-q"]))
g, r = statistics.median(gz), statistics.median(run)
print(f"gzip -dc   median {g:6.2f} s")
print(f"ctbmd-run  median {r:6.2f} s")
print(f"ratio ctbmd-run / gzip -dc = {r/g:.2f}  (target <= 2.0)")
PY
# per-stage times from a verbose run
"$build/src/ctbmd-run" "$work/ct.nii.gz" -o "$work/out" --force -v 2>&1 | grep -i "stage" || true
