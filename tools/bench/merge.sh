#!/usr/bin/env bash
# ctbmd-merge over N generated case folders (default 10,000; the record of a real phantom case,
# copied under N ids) against `cat` of the same case.json files, both measured in the same run
# (median of R, interleaved): wall, CPU time and peak RSS (GNU time), instructions (perf stat,
# where the kernel lets us count). Target: 10,000 cases in under 10 s. Then the report.html the
# merge wrote: its size, and headless Chromium's time to open and render it (the page's own
# render time, data-render-ms, and the whole browser run).
# Usage: tools/bench/merge.sh [BUILD_DIR] [N] [R]
set -euo pipefail
build=${1:-build}
n=${2:-10000}
reps=${3:-5}
work=$(mktemp -d "${TMPDIR:-/tmp}/ctbmd-bench-merge.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$build/src/ctbmd-phantom" -q -o "$work/ph.nii.gz" --size 200x200 --pixel 1.2 --slice 2.5 --seed 3
"$build/src/ctbmd-run" -q "$work/ph.nii.gz" -o "$work/one"
/usr/bin/python3 - "$work" "$n" <<'PY'
import json, os, sys
work, n = sys.argv[1], int(sys.argv[2])
rec = json.load(open(f"{work}/one/ph/case.json"))
out = f"{work}/cohort"
os.makedirs(out)
for i in range(n):
    cid = f"site{i % 7}__case{i:06d}"
    rec["case_id"] = cid
    rec["results"]["case_id"] = cid
    for l in rec["levels"]:
        l["case_id"] = cid
    os.makedirs(f"{out}/{cid}")
    with open(f"{out}/{cid}/case.json", "w") as f:
        json.dump(rec, f, indent=2)
PY
echo "$n case folders, $(du -sh "$work/cohort" | cut -f1) of records"
/usr/bin/python3 - "$build" "$work" "$reps" "$n" <<'PY'
import os, re, shutil, statistics, subprocess, sys
build, work, reps, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cohort = f"{work}/cohort"
perf = shutil.which("perf")
def measure(cmd):
    """wall s, cpu s, peak RSS MiB, instructions (or None), from GNU time and perf stat"""
    full = ["/usr/bin/time", "-f", "TIME %e %U %S %M"]
    if perf:
        full += [perf, "stat", "-x", ",", "-e", "instructions:u"]
    p = subprocess.run(full + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    t = [l for l in p.stderr.splitlines() if l.startswith("TIME ")][-1].split()
    ins = None
    for l in p.stderr.splitlines():
        f = l.split(",")
        if len(f) > 2 and f[2].startswith("instructions") and f[0].isdigit():
            ins = int(f[0])
    return float(t[1]), float(t[2]) + float(t[3]), int(t[4]) / 1024, ins
base_cmd = ["sh", "-c", f"find {cohort} -name case.json -print0 | xargs -0 cat > /dev/null"]
merge_cmd = [f"{build}/src/ctbmd-merge", "-q", "--force", "-o", f"{work}/merged", cohort]
measure(base_cmd)  # warm the page cache for both
b, m = [], []
for _ in range(reps):
    b.append(measure(base_cmd))
    m.append(measure(merge_cmd))
def med(xs, k):
    v = [x[k] for x in xs if x[k] is not None]
    return statistics.median(v) if v else None
rows = sum(1 for _ in open(f"{work}/merged/results.csv")) - 1
assert rows == n, (rows, n)
print(f"{'':12s} {'wall s':>8s} {'cpu s':>8s} {'peak MiB':>9s} {'instructions':>14s}")
for name, xs in (("cat records", b), ("ctbmd-merge", m)):
    ins = med(xs, 3)
    print(f"{name:12s} {med(xs,0):8.3f} {med(xs,1):8.3f} {med(xs,2):9.1f} {ins if ins is not None else 'n/a':>14}")
print(f"ratio ctbmd-merge / cat: wall {med(m,0)/med(b,0):.2f}, cpu {med(m,1)/max(med(b,1),1e-3):.2f}")
print(f"{n} cases merged in {med(m,0):.2f} s (target < 10 s): {'met' if med(m,0) < 10 else 'NOT met'}")
PY
if command -v chromium >/dev/null; then
  /usr/bin/python3 - "$work" <<'PY'
import os, re, statistics, subprocess, sys, time
work = sys.argv[1]
report = f"{work}/merged/report.html"
walls, renders = [], []
for _ in range(3):
    t = time.perf_counter()
    p = subprocess.run(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={work}/chrome",
                        "--dump-dom", "file://" + report], capture_output=True, text=True, timeout=120)
    walls.append(time.perf_counter() - t)
    body = re.search(r"<body[^>]*>", p.stdout).group(0)
    assert 'data-render="ok"' in body and "data-errors" not in body, body
    renders.append(int(re.search(r'data-render-ms="(\d+)"', body).group(1)))
print(f"report.html {os.path.getsize(report) / 2**20:.1f} MiB; page render {statistics.median(renders)} ms "
      f"(median of 3), whole headless Chromium run {statistics.median(walls):.2f} s")
PY
fi
