#!/usr/bin/env bash
# A radiomics cohort from the digital phantom and the radiomics random forest trained on it
# (issue 19): N phantoms whose population cycles normal / osteopenia / osteoporosis with scanner
# calibration, noise, texture amplitude and slice thickness varied per case and a trabecular
# texture that coarsens as density falls (ctbmd-phantom --texture-model density); features of the L1+L2 bodies
# (truth masks, one ROI per case) with a feature set; the reference class is the phantom's own
# ACR category of its true L1-L2 BMD; then ctbmd-train radiomics.
# Usage: tools/train/radiomics_phantom.sh BIN_DIR OUT_DIR [N] [CONFIG] [TRAIN OPTIONS...]
# The phantom's trabecular texture is not bone's: a model trained here demonstrates the pipeline,
# it says nothing about patients.
set -euo pipefail
bin=${1:?BIN_DIR}
out=${2:?OUT_DIR}
n=${3:-60}
config=${4:-$(dirname "$0")/../radiomics/seed_hip.json}
shift $(( $# < 4 ? $# : 4 ))
mkdir -p "$out/cases" "$out/features"
pops=(normal osteopenia osteoporosis)
echo "case_id,category" > "$out/reference.csv"
for ((i = 1; i <= n; i++)); do
  id=$(printf 'ph%03d' "$i")
  pop=${pops[$(( (i - 1) % 3 ))]}
  # deterministic per-case scanner variation
  read -r slope icpt noise tex slice < <(/usr/bin/python3 -c "
import random; r = random.Random($i)
print(round(r.uniform(1.1, 1.4), 3), round(r.uniform(-15, 5), 1), round(r.uniform(10, 30), 1),
      round(r.uniform(10, 30), 1), r.choice([1.0, 1.5, 2.0, 2.5]))")
  ct="$out/cases/$id.nii.gz"
  [[ -f $ct ]] || "$bin/ctbmd-phantom" -q -o "$ct" --size 256x256 --pixel 1.2 --slice "$slice" --levels T12-L3 \
    --seed "$i" --population "$pop" --cal-slope "$slope" --cal-intercept "$icpt" --noise "$noise" --texture "$tex" \
    --texture-model density
  cat=$(/usr/bin/python3 -c "import json; print(json.load(open('$out/cases/${id}_truth.json'))['category'])")
  echo "$id,$cat" >> "$out/reference.csv"
  [[ -f $out/features/$id.csv ]] || "$bin/ctbmd-radiomics" -q "$ct" -m "$out/cases/${id}_seg.nii.gz" -l 20,21 --merge \
    --verse-names --case-id "$id" --config "$config" -o "$out/features/$id.csv"
done
"$bin/ctbmd-train" radiomics --features "$out"/features/ph*.csv --reference "$out/reference.csv" \
  -o "$out/model" --force "$@"
