# Shared by the command-line tests. Expects CTBMD_BIN (built executables) and CTBMD_REF.
set -euo pipefail
: "${CTBMD_BIN:?set CTBMD_BIN to the folder with the ctbmd executables}"
: "${CTBMD_REF:=}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ctbmd-cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_rc() {  # expect_rc CODE command...
  local want=$1; shift
  set +e; "$@" >"$WORK/last.out" 2>&1; local rc=$?; set -e
  [[ $rc == "$want" ]] || { cat "$WORK/last.out" >&2; fail "expected exit $want, got $rc: $*"; }
}
# The shared reference scans are there; with CTBMD_REQUIRE_REF=1 their absence fails the test
# (CI that must cover the real scans) instead of letting it skip.
have_ref() {
  [[ -n "$CTBMD_REF" && -f "$CTBMD_REF/README.md" ]] && return 0
  [[ ${CTBMD_REQUIRE_REF:-0} == 1 ]] && fail "the shared reference scans are required (CTBMD_REQUIRE_REF=1) but '$CTBMD_REF' holds no README.md"
  return 1
}
py() { /usr/bin/python3 "$@"; }
