#!/usr/bin/env bash
# [tier: cli] The cohort report (OUT/report.html) of a batch of phantoms, a real hip CT with no
# spine and a truncated file: one self-contained file (nothing fetched from a network) that
# headless Chromium renders without a script error or console error, with a row per case,
# filters that work from the address (#status=...), QC pictures that resolve beside it, and
# the same for ctbmd-merge's report of shard folders.
source "$(dirname "$0")/common.sh"
command -v chromium >/dev/null || fail "chromium is not installed (tools/install-deps.sh installs it)"
mkdir -p "$WORK/in"
for s in 1 2 3 4; do
  "$CTBMD_BIN/ctbmd-phantom" -q -o "$WORK/ph/p$s.nii.gz" --size 200x200 --pixel 1.2 --slice 2.5 --seed $s
  cp "$WORK/ph/p$s.nii.gz" "$WORK/in/"
done
n=4
if have_ref; then
  cp "$CTBMD_REF/sts_hip_ct/STS_026_CT_image.nii.gz" "$WORK/in/"
  head -c 300000 "$CTBMD_REF/totalsegmentator/example_ct.nii.gz" >"$WORK/in/truncated.nii.gz"
  n=6
fi
set +e; "$CTBMD_BIN/ctbmd-run" -q "$WORK/in" -o "$WORK/out" 2>"$WORK/run.err"; set -e
report=$WORK/out/report.html
[[ -s $report ]] || { cat "$WORK/run.err"; fail "no report.html"; }
# self-contained: no stylesheet, script or picture from anywhere but beside it
if grep -Eo '(src|href)="[a-z]+://[^"]*"' "$report" | grep -q .; then fail "the report loads something from a network"; fi
if grep -q '<link\|<script src' "$report"; then fail "the report has external stylesheets or scripts"; fi

chrome() {  # chrome URL ARGS...: headless Chromium with its own profile, logging to $WORK/console.log
  local url=$1; shift
  timeout 60 chromium --headless=new --no-sandbox --disable-gpu --user-data-dir="$WORK/chrome" \
    --enable-logging=stderr --v=0 "$@" "$url" 2>"$WORK/console.log"
}
body() { chrome "file://$1" --dump-dom | grep -o '<body[^>]*>' | head -1; }
b=$(body "$report")
[[ $b == *'data-render="ok"'* ]] || fail "the report did not finish rendering: $b $(grep -i console "$WORK/console.log" | head -3)"
[[ $b != *data-errors* ]] || fail "script errors: $b"
[[ $b == *"data-rows=\"$n\""* ]] || fail "expected $n rows: $b"
if grep 'CONSOLE' "$WORK/console.log" | grep -qi 'error\|uncaught'; then
  fail "console errors: $(grep CONSOLE "$WORK/console.log" | head -3)"
fi
ms=$(sed -n 's/.*data-render-ms="\([0-9]*\)".*/\1/p' <<<"$b")
echo "report: $(stat -c %s "$report") bytes, rendered in $ms ms"
# filters from the address
b=$(body "$report#status=ok")
[[ $b == *'data-rows="4"'* ]] || fail "#status=ok shows the wrong rows: $b"
if have_ref; then
  b=$(body "$report#status=error")
  [[ $b == *'data-rows="1"'* ]] || fail "#status=error shows the wrong rows: $b"
fi
# every QC picture it links is there
py - "$report" "$n" <<'PY'
import json, os, re, sys
html = open(sys.argv[1]).read()
data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))
cases = data["cases"]
assert len(cases) == int(sys.argv[2]), len(cases)
base = os.path.dirname(sys.argv[1])
for c in cases:
    for k in ("qc", "localize_qc"):
        if c[k]:
            assert os.path.isfile(os.path.join(base, c[k])), (c["id"], c[k])
    if c["status"] == "ok":
        assert c["qc"] and c["bmd"] > 0 and c["category"], c
ok = [c for c in cases if c["status"] == "ok"]
assert len(ok) == 4, [c["status"] for c in cases]
PY
# a screenshot (docs/report_example.png is one)
chrome "file://$report" --window-size=1400,1800 --screenshot="$WORK/shot.png" >/dev/null
[[ $(stat -c %s "$WORK/shot.png") -gt 50000 ]] || fail "the screenshot is (nearly) empty"

# ctbmd-merge's report of two shard folders links the pictures in both
for i in 0 1; do "$CTBMD_BIN/ctbmd-run" -q --shard $i/2 "$WORK/in" -o "$WORK/sh$i" 2>/dev/null || true; done
expect_rc 0 "$CTBMD_BIN/ctbmd-merge" -q -o "$WORK/merged" "$WORK/sh0" "$WORK/sh1"
b=$(body "$WORK/merged/report.html")
[[ $b == *'data-render="ok"'* && $b == *"data-rows=\"$n\""* && $b != *data-errors* ]] || fail "merged report: $b"
py - "$WORK/merged/report.html" <<'PY'
import json, os, re, sys
html = open(sys.argv[1]).read()
data = json.loads(re.search(r'id="data">(.*?)</script>', html, re.S).group(1))
base = os.path.dirname(sys.argv[1])
linked = [c["qc"] for c in data["cases"] if c["qc"]]
assert len(linked) == 4 and all(os.path.isfile(os.path.join(base, q)) for q in linked), linked
assert {q.split("/")[1] for q in linked} == {"sh0", "sh1"}, linked
PY
# the evaluation report: the tables, the plots inline (SVG), every case in a sortable table
expect_rc 0 "$CTBMD_BIN/ctbmd-evaluate" -q -p "$WORK/out" -r "$WORK/ph" -o "$WORK/eval"
ev=$WORK/eval/evaluation.html
[[ $(grep -c '<svg' "$ev") -ge 3 ]] || fail "evaluation.html does not hold the three plots inline"
grep -q '!\[regression\](regression.png)' "$WORK/eval/evaluation.md" || fail "evaluation.md does not show its plots"
b=$(body "$ev")
[[ $b == *'data-render="ok"'* && $b == *'data-rows="4"'* && $b != *data-errors* ]] || fail "evaluation.html: $b"
if grep 'CONSOLE' "$WORK/console.log" | grep -qi 'error\|uncaught'; then fail "evaluation.html console errors"; fi
echo "report: all passed"
