#!/usr/bin/env bash
# The LibTorch plugin: a TorchScript model exported by python3-torch gives the same output in
# C++ (ctbmd-model infer) within 1e-5; a model whose weights do not match the card's sha256, or
# a card for another task, is refused; executables never link LibTorch themselves.
source "$(dirname "$0")/common.sh"
[[ -f "$CTBMD_BIN/libctbmd-torch.so" ]] || { echo "built without LibTorch (CTBMD_WITH_TORCH=OFF): skipped"; exit 0; }
[[ "${CTBMD_SANITIZE:-OFF}" == ON ]] && { echo "LibTorch is not sanitizer-instrumented: skipped"; exit 0; }
py -c "import torch" 2>/dev/null || fail "python3-torch is missing (tools/install-deps.sh installs it)"
oracle="$CTBMD_SRC/tests/oracle/torchscript_parity.py"
for exe in "$CTBMD_BIN"/ctbmd-*; do
  [[ -x $exe && ! -d $exe ]] || continue
  ldd "$exe" | grep -q "libtorch" && fail "$(basename "$exe") links LibTorch"
done
"$CTBMD_BIN/ctbmd-model" -q runtime > "$WORK/rt.json"
py -c "import json; j=json.load(open('$WORK/rt.json')); assert j['torch_version'].startswith('1.13'), j"
# Every shipped model folder passes its card and sha256 checks.
n=0
while IFS= read -r card; do
  m=$(dirname "$card"); n=$((n + 1))
  "$CTBMD_BIN/ctbmd-model" -q check "$m" > /dev/null || fail "shipped model $m fails its check"
done < <(find "$CTBMD_SRC/models" -name model.json)
(( n >= 7 )) || fail "expected at least 7 shipped model folders, found $n"
for seed in 1 2; do
  d="$WORK/s$seed"
  py "$oracle" make "$d" "$seed"
  "$CTBMD_BIN/ctbmd-model" -q check "$d/model" --task classify > /dev/null
  "$CTBMD_BIN/ctbmd-model" -q infer "$d/model" -i "$d/in.bin" --shape 2,1,48,48 -o "$d/cpp.bin" --device cpu
  py "$oracle" check "$d"
done
d="$WORK/s1"
expect_rc 2 "$CTBMD_BIN/ctbmd-model" -q check "$d/model" --task segment
grep -q "is a classify model" "$WORK/last.out" || fail "task mismatch not explained"
printf 'x' >> "$d/model/model.pt"   # the weights no longer match the card
expect_rc 2 "$CTBMD_BIN/ctbmd-model" -q infer "$d/model" -i "$d/in.bin" --shape 2,1,48,48 -o "$WORK/x.bin"
grep -q "sha256" "$WORK/last.out" || fail "sha256 mismatch not explained: $(cat "$WORK/last.out")"
[[ ! -e "$WORK/x.bin" ]] || fail "output written for a refused model"
expect_rc 2 "$CTBMD_BIN/ctbmd-model" -q infer "$WORK/s2/model" -i "$WORK/s2/in.bin" --shape 2,1,48,47 -o "$WORK/y.bin"
# --device cuda: runs where CUDA is available, else a readable refusal (exit 3).
if py -c "import json,sys; sys.exit(0 if json.load(open('$WORK/rt.json'))['cuda_available'] else 1)"; then
  "$CTBMD_BIN/ctbmd-model" -q infer "$WORK/s2/model" -i "$WORK/s2/in.bin" --shape 2,1,48,48 -o "$WORK/s2/cpp.bin" --device cuda --force
  py "$oracle" check "$WORK/s2"
else
  expect_rc 3 "$CTBMD_BIN/ctbmd-model" -q infer "$WORK/s2/model" -i "$WORK/s2/in.bin" --shape 2,1,48,48 -o "$WORK/z.bin" --device cuda
  grep -q "CUDA" "$WORK/last.out" || fail "no CUDA message"
fi
# ctbmd architectures: seeded untrained folders (ctbmd-state) load and run; the same seed gives
# the same network; a card whose hyper-parameters do not fit the weights is refused.
M="$CTBMD_BIN/ctbmd-model"
"$M" -q init bccnet -o "$WORK/bcc1" --seed 3
"$M" -q init bccnet -o "$WORK/bcc2" --seed 3
"$M" -q init bccnet -o "$WORK/bcc3" --seed 4
"$M" -q check "$WORK/bcc1" --task classify > /dev/null
py -c "import numpy as np; np.random.default_rng(0).normal(0, 1, (2, 1, 392, 392)).astype(np.float32).tofile('$WORK/m.bin')"
for k in 1 2 3; do "$M" -q infer "$WORK/bcc$k" -i "$WORK/m.bin" --shape 2,1,392,392 -o "$WORK/o$k.bin" --device cpu; done
py - "$WORK" <<'PY'
import json, sys, numpy as np
w = sys.argv[1]
o = [np.fromfile(f"{w}/o{k}.bin", dtype=np.float32) for k in (1, 2, 3)]
assert json.load(open(f"{w}/o1.bin.json"))["shape"] == [2, 3]
assert np.array_equal(o[0], o[1]), "same seed, different network"
assert not np.array_equal(o[0], o[2]), "different seeds, same network"
card = json.load(open(f"{w}/bcc1/model.json"))
assert card["training"]["state"].startswith("untrained") and card["parameters"] > 10000
card["architecture"]["hyper_parameters"] = {"growth": 16}
json.dump(card, open(f"{w}/bcc1/model.json", "w"))
PY
expect_rc 3 "$M" -q infer "$WORK/bcc1" -i "$WORK/m.bin" --shape 2,1,392,392 -o "$WORK/o4.bin"
grep -q "do not fit" "$WORK/last.out" || fail "a card that does not fit its weights is not explained: $(cat "$WORK/last.out")"
echo "ok"
