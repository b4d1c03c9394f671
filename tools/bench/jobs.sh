#!/usr/bin/env bash
# A batch's wall time with one worker at a time against two at once, on the same 8 phantoms in
# the same run (median of R, interleaved): ctbmd-run --threads 2 --jobs 1 (the baseline), --threads
# 2 --jobs 2, and --threads 1 --jobs 1. Wall, CPU (user+sys of all workers) and the largest
# process's peak RSS (GNU time).
# Usage: tools/bench/jobs.sh [BUILD_DIR] [R] [SIZE]   (SIZE default 384x384x200)
set -euo pipefail
build=${1:-build}
reps=${2:-3}
size=${3:-384x384x200}
work=$(mktemp -d "${TMPDIR:-/tmp}/ctbmd-bench-jobs.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in"
for s in 1 2 3 4 5 6 7 8; do
  "$build/src/ctbmd-phantom" -q -o "$work/ph/p$s.nii.gz" --size "$size" --pixel 0.9 --slice 1.5 --seed $s
  cp "$work/ph/p$s.nii.gz" "$work/in/"
done
/usr/bin/python3 - "$build" "$work" "$reps" <<'PY'
import statistics, subprocess, sys
build, work, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
configs = [("--threads 2 --jobs 1", ["--threads", "2", "--jobs", "1"]),
           ("--threads 2 --jobs 2", ["--threads", "2", "--jobs", "2"]),
           ("--threads 1 --jobs 1", ["--threads", "1", "--jobs", "1"])]
res = {name: [] for name, _ in configs}
for _ in range(reps):
    for name, args in configs:
        p = subprocess.run(["/usr/bin/time", "-f", "TIME %e %U %S %M", f"{build}/src/ctbmd-run", "-q", "--force",
                            *args, f"{work}/in", "-o", f"{work}/out"], capture_output=True, text=True, check=True)
        t = [l for l in p.stderr.splitlines() if l.startswith("TIME ")][-1].split()
        res[name].append((float(t[1]), float(t[2]) + float(t[3]), int(t[4]) / 1024))
base = statistics.median(x[0] for x in res[configs[0][0]])
print(f"{'8 cases':22s} {'wall s':>8s} {'cpu s':>8s} {'peak MiB':>9s} {'wall / baseline':>16s}")
for name, _ in configs:
    w = statistics.median(x[0] for x in res[name])
    c = statistics.median(x[1] for x in res[name])
    m = statistics.median(x[2] for x in res[name])
    print(f"{name:22s} {w:8.2f} {c:8.2f} {m:9.0f} {w / base:16.2f}")
PY
