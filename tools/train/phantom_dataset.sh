#!/usr/bin/env bash
# Writes N digital phantoms in the VerSe layout (ctbmd-phantom --layout verse) for ctbmd-train
# segment/localize: varied pixel size (0.7-1.0 mm), slice thickness (1-3 mm), storage
# orientation, population, noise (10-40 HU) and covered levels; every seventh with a fracture.
# Usage: tools/train/phantom_dataset.sh BUILD_DIR N OUT_DIR [FIRST_SEED]   (~2 s per case)
set -euo pipefail
build=${1:?build dir}
n=${2:?number of cases}
out=${3:?output dataset root}
first=${4:-7000}
B="$build/src"
pops=(normal osteopenia osteoporosis)
orients=(LPS RAS PIR LAS)
pixels=(0.7 0.8 0.9 1.0)
slices=(1.0 1.5 2.0 2.5 3.0)
tops=(T10 T11 T11 T12)
bottoms=(S1 S1 L5 S1)
mkdir -p "$out"
for i in $(seq 0 $((n - 1))); do
  s=$((first + i))
  extra=()
  if (( i % 7 == 6 )); then extra+=(--fracture L$((1 + i % 4))); fi
  px=${pixels[$((i % 4))]}
  nxy=$(/usr/bin/python3 -c "print(int(round(330 / $px)))")
  "$B/ctbmd-phantom" -q --force -o "$out" --layout verse --subject "ph$s" --seed "$s" \
    --size "${nxy}x${nxy}" --pixel "$px" --slice "${slices[$((i % 5))]}" \
    --orientation "${orients[$((i % 4))]}" --population "${pops[$((i % 3))]}" --noise $((10 + (i * 7) % 31)) \
    --levels "${tops[$(((i / 4) % 4))]}-${bottoms[$(((i / 3) % 4))]}" "${extra[@]}"
done
