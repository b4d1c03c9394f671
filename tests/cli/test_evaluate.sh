#!/usr/bin/env bash
# ctbmd-evaluate against an independent implementation: SciPy recomputes every statistic on
# the same synthetic predictions/references (tests/oracle/evaluate_oracle.py); the plots are
# real PNG and SVG files; bad input is refused with a readable message.
source "$(dirname "$0")/common.sh"
oracle="$CTBMD_SRC/tests/oracle/evaluate_oracle.py"
py -c "import scipy" 2>/dev/null || fail "python3-scipy is missing (tools/install-deps.sh installs it)"
for seed in 1 2 3; do
  d="$WORK/s$seed"
  py "$oracle" make "$d" "$seed"
  "$CTBMD_BIN/ctbmd-evaluate" -q -p "$d/pred" -r "$d/reference.csv" -o "$d/eval" --no-dice
  py "$oracle" check "$d"
done
d="$WORK/s1"
for f in regression bland_altman roc; do
  head -c 8 "$d/eval/$f.png" | od -An -tx1 | grep -q "89 50 4e 47 0d 0a 1a 0a" || fail "$f.png is not a PNG"
  [[ $(stat -c %s "$d/eval/$f.png") -gt 10000 ]] || fail "$f.png is nearly empty"
  grep -q "<svg" "$d/eval/$f.svg" || fail "$f.svg is not SVG"
done
grep -q "Bland-Altman 95 % limits of agreement" "$d/eval/evaluation.md" || fail "Markdown table missing"
grep -q "Sensitivity" "$d/eval/evaluation.md" || fail "diagnosis table missing"
[[ -f "$d/eval/plots.gp" ]] || fail "gnuplot script not kept"
ls "$d/eval" | grep -q "tmp\|plots\.[A-Za-z0-9]\{6\}" && fail "temporary files left: $(ls "$d/eval")"
# A case with no level named is listed among the failures with its status and reason (not an
# empty error): results.csv's reason column.
py - "$d/pred/results.csv" "$WORK/named/pred" <<'PY'
import csv, os, sys
rows = list(csv.reader(open(sys.argv[1])))
head = rows[0] + ["reason"]
out = [head] + [r + [""] for r in rows[1:]]
out[1][head.index("status")] = "no_spine"
out[1][head.index("bmd_l1l2")] = ""
out[1][head.index("category")] = ""
out[1][-1] = "no spinal canal closed by a neural arch"
os.makedirs(sys.argv[2], exist_ok=True)
csv.writer(open(os.path.join(sys.argv[2], "results.csv"), "w", newline="")).writerows(out)
PY
"$CTBMD_BIN/ctbmd-evaluate" -q -p "$WORK/named/pred" -r "$d/reference.csv" -o "$WORK/named/eval" --no-dice
grep -q "^- c[0-9]*: no_spine: no spinal canal closed by a neural arch$" "$WORK/named/eval/evaluation.md" ||
  fail "a no_spine case's reason is missing from the failures: $(grep -A3 'Failed cases' "$WORK/named/eval/evaluation.md")"
# Refuses to overwrite without --force; a reference without the needed columns is explained.
expect_rc 1 "$CTBMD_BIN/ctbmd-evaluate" -q -p "$d/pred" -r "$d/reference.csv" -o "$d/eval" --no-dice
printf 'id,value\nc000,1\n' > "$WORK/bad.csv"
expect_rc 2 "$CTBMD_BIN/ctbmd-evaluate" -q -p "$d/pred" -r "$WORK/bad.csv" -o "$WORK/e2"
grep -q "needs columns case_id" "$WORK/last.out" || fail "unclear message: $(cat "$WORK/last.out")"
echo "ok"
