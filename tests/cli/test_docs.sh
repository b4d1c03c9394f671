#!/usr/bin/env bash
# [tier: cli] The generated reference documentation matches the executables: docs/options.md is
# every executable's --help, and docs/methods.md's rules table is ctbmd-classify --list-rules (read
# from ctbmd/clinical_rules.hpp). On a failure, run tools/gen_docs.sh and commit the result.
source "$(dirname "$0")/common.sh"
: "${CTBMD_SRC:?}"
bash "$CTBMD_SRC/tools/gen_docs.sh" --check "$CTBMD_BIN" >"$WORK/diff.txt" 2>&1 || {
  head -40 "$WORK/diff.txt" >&2
  fail "generated documentation out of date (tools/gen_docs.sh)"
}
# the check can fail: a methods page whose table lost a threshold is found
cp -r "$CTBMD_SRC/docs" "$CTBMD_SRC/tools" "$WORK/"
sed -i 's/osteoporosis < 80 |/osteoporosis < 75 |/' "$WORK/docs/methods.md"
grep -q "osteoporosis < 75" "$WORK/docs/methods.md" || fail "test set-up: the rules table row was not found"
if bash "$WORK/tools/gen_docs.sh" --check "$CTBMD_BIN" >"$WORK/diff2.txt" 2>&1; then
  fail "gen_docs.sh --check passed a methods page whose ACR threshold was edited"
fi
echo "docs: generated parts up to date"
