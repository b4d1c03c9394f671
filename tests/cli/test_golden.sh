#!/usr/bin/env bash
# [tier: real] Golden outputs (ITK's --compare style): ctbmd-run on five real reference scans
# (tests/golden/cases.sh) gives the JSON values, results.csv/levels.csv rows and label maps of
# tests/golden/reference, numbers within 1e-6 (relative) and label maps with Dice >= 0.999999
# per label. The outputs are deterministic (identical run to run and for --threads 1, 2, 8), so
# any difference is a change of behaviour: if it is meant, regenerate with
# tests/golden/make_goldens.sh and say why in the commit.
source "$(dirname "$0")/common.sh"
have_ref || { echo "reference data missing: skipped"; exit 0; }
: "${CTBMD_SRC:?}"
source "$CTBMD_SRC/tests/golden/cases.sh"
expect_rc 0 "$CTBMD_BIN/ctbmd-run" -q --threads 2 "${golden_args[@]}" -o "$WORK/out" $(golden_inputs "$CTBMD_REF")
ref=$(cd "$CTBMD_REF" && pwd)
py "$CTBMD_SRC/tests/golden/compare_outputs.py" "$CTBMD_SRC/tests/golden/reference" "$WORK/out" \
  --rtol 1e-6 --atol 1e-6 --ref "$ref" || fail "outputs differ from tests/golden/reference (above)"
# the comparison itself can fail: one changed value in a copy is found
cp -r "$CTBMD_SRC/tests/golden/reference" "$WORK/altered"
py - "$WORK/altered/example_ct/bmd.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); j["bmd_l1l2"] *= 1.00001; json.dump(j, open(sys.argv[1], "w"))
PY
if py "$CTBMD_SRC/tests/golden/compare_outputs.py" "$WORK/altered" "$WORK/out" --rtol 1e-6 --atol 1e-6 \
  --ref "$ref" >"$WORK/cmp.out"; then
  fail "compare_outputs.py missed a 1e-5 change of bmd_l1l2"
fi
grep -q "example_ct/bmd.json.bmd_l1l2" "$WORK/cmp.out" || fail "the difference was not named: $(cat "$WORK/cmp.out")"
echo "golden outputs: identical within tolerance"
