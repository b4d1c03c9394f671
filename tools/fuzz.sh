#!/usr/bin/env bash
# Fuzzing ctbmd's parsers (docs/validation.md "Fuzzing"). Targets: nifti nrrd mha dicom json csv.
#
#   tools/fuzz.sh build                 build-fuzz/: the library and targets compiled by clang 14
#                                       with libFuzzer's instrumentation, ASan and UBSan
#   tools/fuzz.sh replay                every target once over its seeds (tests/fuzz/seeds), the
#                                       regression inputs (tests/fuzz/regressions) and the
#                                       reproducers in ../shared/data/bad_inputs when present
#   tools/fuzz.sh run SECONDS [T...]    libFuzzer on each target (default: all) for SECONDS, one
#                                       after another; corpus and findings under
#                                       build-fuzz/findings/<T>; prints executions, coverage
#   tools/fuzz.sh ci                    build, replay, then 1500 executions per target with a
#                                       fixed seed (deterministic: the same inputs every run)
#
# Exit status 1 when a replay crashes or a campaign saves a crash or hang.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bdir=$root/build-fuzz
all_targets=(nifti nrrd mha dicom json csv)
jobs=$(nproc 2>/dev/null || echo 2)
bad=${CTBMD_BAD_INPUTS:-$root/../shared/data/bad_inputs}
# ASan: no leak reports (ITK keeps caches to exit); UBSan: stop at the first report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# Memory: a header that makes a reader allocate gigabytes is a finding, not a slow machine.
limits=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=20)

build() {
  command -v clang++-14 >/dev/null || { echo "fuzz: clang++-14 missing (Debian: clang-14, libclang-rt-14-dev; tools/install-deps.sh)" >&2; exit 2; }
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCTBMD_SANITIZE=ON -DCTBMD_FUZZ=ON -DCTBMD_WITH_TORCH=OFF -DBUILD_TESTING=OFF >/dev/null
  cmake --build "$bdir" --target fuzz-all -j "$jobs"
}

# The reproducers in bad_inputs that belong to a target (by format).
reproducers() {
  local t=$1
  [[ -d $bad ]] || return 0
  case $t in
    nifti) find "$bad" -type f \( -name '*.nii' -o -name '*.nii.gz' \) ;;
    mha) find "$bad" -type f \( -name '*.mha' -o -name '*.mhd' \) ;;
    nrrd) find "$bad" -type f \( -name '*.nrrd' -o -name '*.nhdr' \) ;;
    dicom) find "$bad" -type f -name '*.dcm' ;;
  esac
}

replay() {
  local t inputs
  for t in "${all_targets[@]}"; do
    inputs=("tests/fuzz/seeds/$t")
    [[ -d tests/fuzz/regressions/$t ]] && inputs+=("tests/fuzz/regressions/$t")
    mapfile -t -O "${#inputs[@]}" inputs < <(reproducers "$t" | sort)
    if ! "$bdir/tests/fuzz/ctbmd-replay-$t" "${inputs[@]}" 2>"$bdir/replay-$t.log"; then
      echo "fuzz: replay of $t crashed; the last input and the report:" >&2
      tail -n 30 "$bdir/replay-$t.log" >&2
      exit 1
    fi
    echo "fuzz: replay $t: $(tail -n 1 "$bdir/replay-$t.log" | sed 's/^replay: //')"
  done
}

run() {
  local secs=$1; shift
  local targets=("$@") t out log failed=0
  ((${#targets[@]})) || targets=("${all_targets[@]}")
  for t in "${targets[@]}"; do
    out=${FUZZ_FINDINGS:-$bdir/findings}/$t
    mkdir -p "$out/corpus" "$out/artifacts"
    log=$out/fuzz.log
    # the corpus grows across runs (delete build-fuzz/findings to start afresh); seeds and
    # regression inputs are read
    local extra=()
    [[ -d tests/fuzz/regressions/$t ]] && extra+=("tests/fuzz/regressions/$t")
    local budget=(-max_total_time="$secs")
    [[ -n ${FUZZ_RUNS:-} ]] && budget=(-runs="$FUZZ_RUNS" -seed=1)
    if ! "$bdir/tests/fuzz/ctbmd-fuzz-$t" "${limits[@]}" "${budget[@]}" -print_final_stats=1 \
      -artifact_prefix="$out/artifacts/" "$out/corpus" "tests/fuzz/seeds/$t" "${extra[@]}" >"$log" 2>&1; then
      failed=1
      echo "fuzz: $t FOUND A CRASH (or leak, timeout, out-of-memory): $(ls "$out/artifacts" | tr '\n' ' ')" >&2
      grep -m 3 -E "ERROR|SUMMARY|==[0-9]+==" "$log" >&2 || tail -n 20 "$log" >&2
      echo "fuzz: reproduce with $bdir/tests/fuzz/ctbmd-replay-$t FILE" >&2
    fi
    local execs cov ft rss corpus
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
    corpus=$(find "$out/corpus" -type f | wc -l)
    echo "fuzz: $t: ${FUZZ_RUNS:+$FUZZ_RUNS runs, seed 1, }${secs} s at most, ${execs:-?} executions, ${cov:-?} edges covered, ${ft:-?} features, corpus $corpus, peak RSS ${rss:-?} MB"
  done
  return $failed
}

case ${1:-} in
  build) build ;;
  replay) replay ;;
  run) shift; [[ ${1:-} =~ ^[0-9]+$ ]] || { echo "usage: tools/fuzz.sh run SECONDS [targets]" >&2; exit 2; }; run "$@" ;;
  ci) build; replay; rm -rf "$bdir/findings-ci"; FUZZ_FINDINGS=$bdir/findings-ci FUZZ_RUNS=1500 run 600 ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
