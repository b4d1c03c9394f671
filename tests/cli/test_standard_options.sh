#!/usr/bin/env bash
# Every executable answers --help and --version, rejects unknown options with exit 1,
# and carries the standard options.
source "$(dirname "$0")/common.sh"
for exe in "$CTBMD_BIN"/ctbmd-*; do
  name=$(basename "$exe")
  expect_rc 0 "$exe" --help
  for opt in --version -v --verbose -q --quiet --threads --force; do
    grep -q -- "$opt" "$WORK/last.out" || fail "$name --help does not list $opt"
  done
  grep -q "Exit codes" "$WORK/last.out" || fail "$name --help does not document exit codes"
  expect_rc 0 "$exe" --version
  grep -q "^$name (ctbmd) [0-9]" "$WORK/last.out" || fail "$name --version: $(cat "$WORK/last.out")"
  expect_rc 1 "$exe" --no-such-option
done
echo "standard options: ok"

# Option values are validated at parse time (before any case is read), with the value meant.
for spec in "ctbmd-run|-p erode4mm|erode-4mm" "ctbmd-run|--statistic mode|mean" "ctbmd-run|--rule acr|acr-qct" \
  "ctbmd-classify|--contrast-phase portal|portal-venous" "ctbmd-roi-extract|-p ellipse_s1|ellipse-s1" \
  "ctbmd-bmd-estimate|--statistic medain|median"; do
  IFS='|' read -r tool opt meant <<<"$spec"
  # shellcheck disable=SC2086
  expect_rc 1 "$CTBMD_BIN/$tool" $opt /nonexistent -o "$WORK/never/x.json"
  grep -qF "did you mean '$meant'" "$WORK/last.out" || fail "$tool $opt: no suggestion: $(cat "$WORK/last.out")"
  [[ ! -e "$WORK/never" ]] || fail "$tool $opt wrote something"
done
