#!/usr/bin/env bash
# C++ inference (ctbmd-model infer, LibTorch plugin) against python3-torch on the same
# TorchScript model and input, same thread count, measured in the same run; prints the ratio
# (ctbmd's path, which freezes the module on load, and the module as loaded).
# Usage: tools/bench/torch_infer.sh [BUILD_DIR] [REPEAT] [THREADS]
set -euo pipefail
build=${1:-build}
repeat=${2:-20}
threads=${3:-$(nproc)}
work=$(mktemp -d "${TMPDIR:-/tmp}/ctbmd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$(cd "$(dirname "$0")/../.." && pwd)
/usr/bin/python3 "$src/tests/oracle/torchscript_parity.py" make "$work" 7
# A larger input for timing: 8 x 1 x 256 x 256. Three interleaved rounds of each side.
for round in 1 2 3; do
/usr/bin/python3 - "$work" "$repeat" "$threads" <<'PY'
import statistics, sys, time
import numpy as np, torch
work, repeat, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
x = np.random.default_rng(1).normal(0, 1, (8, 1, 256, 256)).astype(np.float32)
x.tofile(f"{work}/big.bin")
m = torch.jit.load(f"{work}/model/model.pt")
t = torch.from_numpy(x)
ms = []
with torch.inference_mode():
    for _ in range(3):  # warm-up: the TorchScript executor optimises on its first runs (C++ does the same)
        m(t)
    for _ in range(repeat):
        t0 = time.perf_counter(); m(t); ms.append(1000 * (time.perf_counter() - t0))
open(f"{work}/py_ms", "a").write(f"{statistics.median(ms)}\n")
PY
"$build/src/ctbmd-model" -q --force --threads "$threads" infer "$work/model" -i "$work/big.bin" --shape 8,1,256,256 \
  -o "$work/out.bin" --device cpu --repeat "$repeat"
python3 -c "import json; print(json.load(open('$work/out.bin.json'))['median_ms'])" >> "$work/cpp_ms"
CTBMD_NO_FREEZE=1 "$build/src/ctbmd-model" -q --force --threads "$threads" infer "$work/model" -i "$work/big.bin" \
  --shape 8,1,256,256 -o "$work/out.bin" --device cpu --repeat "$repeat"
python3 -c "import json; print(json.load(open('$work/out.bin.json'))['median_ms'])" >> "$work/cpp_unfrozen_ms"
done
/usr/bin/python3 - "$work" "$threads" <<'PY'
import statistics, sys
work, threads = sys.argv[1], sys.argv[2]
py = statistics.median(float(v) for v in open(f"{work}/py_ms"))
cpp = statistics.median(float(v) for v in open(f"{work}/cpp_ms"))
raw = statistics.median(float(v) for v in open(f"{work}/cpp_unfrozen_ms"))
print(f"TorchScript forward, 8x1x256x256, {threads} thread(s), median of 3 interleaved rounds: python3-torch {py:.2f} ms, C++ {cpp:.2f} ms")
print(f"ratio C++ / python = {cpp / py:.2f}  (target <= 1.0; ctbmd freezes TorchScript modules on load)")
print(f"ratio C++ as loaded (CTBMD_NO_FREEZE=1, {raw:.2f} ms) / python = {raw / py:.2f}")
PY
