#!/usr/bin/env bash
# Start-up cost of every executable (`--version`) against /bin/true, measured in the same
# run, as median of N runs; and whether each executable loads libtorch.
# Usage: tools/bench/startup.sh [BUILD_DIR] [N]
set -euo pipefail
build=${1:-build}
n=${2:-30}
/usr/bin/python3 - "$build" "$n" <<'PY'
import glob, os, statistics, subprocess, sys, time
build, n = sys.argv[1], int(sys.argv[2])
exes = sorted(glob.glob(os.path.join(build, "src", "ctbmd-*")))
def med(cmd):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)
# interleave the baseline so machine noise hits both alike
base = med(["/bin/true"])
print(f"{'executable':22s} {'median ms':>10s} {'ratio vs /bin/true':>19s}  libtorch")
for e in exes:
    t = med([e, "--version"])
    base = min(base, med(["/bin/true"]))
    ldd = subprocess.run(["ldd", e], capture_output=True, text=True).stdout
    torch = "LOADED" if "libtorch" in ldd or "libc10" in ldd else "no"
    print(f"{os.path.basename(e):22s} {t*1000:10.2f} {t/base:19.1f}  {torch}")
print(f"{'/bin/true':22s} {base*1000:10.2f} {1.0:19.1f}")
PY
