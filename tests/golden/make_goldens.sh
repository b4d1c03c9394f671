#!/usr/bin/env bash
# Regenerates tests/golden/reference: ctbmd-run's outputs on the real reference scans (every
# JSON without its provenance, results.csv and levels.csv, the label maps; no pictures), which
# tests/cli/test_golden.sh compares each build against. Run it only when an output changes on
# purpose, and say in the commit which outputs changed and why.
# Usage: tests/golden/make_goldens.sh [BIN_DIR] [REFERENCE_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/src}
ref=${2:-../shared/data/reference}
ref=$(cd "$ref" && pwd)
out=tests/golden/reference
source tests/golden/cases.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin/ctbmd-run" -q --threads 2 "${golden_args[@]}" -o "$tmp/out" $(golden_inputs "$ref")
find "$tmp/out" -name '*.png' -delete
/usr/bin/python3 - "$tmp/out" "$ref" <<'PY'
import json, os, sys
out, ref = sys.argv[1], sys.argv[2]
for root, _, files in os.walk(out):
    for f in files:
        p = os.path.join(root, f)
        if f.endswith(".json"):
            j = json.load(open(p))
            j.pop("provenance", None)
            open(p, "w").write(json.dumps(j, indent=1, sort_keys=True).replace(ref, "<REF>") + "\n")
        elif f.endswith(".csv"):
            s = open(p).read().replace(ref, "<REF>")
            open(p, "w").write(s)
PY
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "$tmp/out" "$out"
echo "make_goldens: $(find "$out" -type f | wc -l) files in $out ($(du -sh "$out" | cut -f1))"
