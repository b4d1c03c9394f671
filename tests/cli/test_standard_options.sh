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
