#!/usr/bin/env bash
# Configure and build ctbmd into ./build (Release; warnings on; CTBMD_WERROR=1 in the
# environment makes every warning an error, as .ci/run does). Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
werror=()
[[ ${CTBMD_WERROR:-0} == 1 ]] && werror=(-DCTBMD_WARNINGS_AS_ERRORS=ON)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${werror[@]}" "$@" >/dev/null
cmake --build build -j "$jobs"
