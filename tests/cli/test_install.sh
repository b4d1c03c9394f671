#!/usr/bin/env bash
# cmake --install gives executables, library, headers and a package another project can
# find_package(ctbmd) and link.
source "$(dirname "$0")/common.sh"
: "${CTBMD_BUILD:?}" "${CTBMD_SRC:?}"
if [[ "${CTBMD_SANITIZE:-OFF}" == ON ]]; then echo "sanitizer build: the installed static library needs the sanitizer runtime; skipped"; exit 0; fi
cmake --install "$CTBMD_BUILD" --prefix "$WORK/prefix" >/dev/null
for f in bin/ctbmd-run bin/ctbmd-phantom include/ctbmd/stages.hpp include/ctbmd/version.hpp \
         lib/libctbmd.a lib/cmake/ctbmd/ctbmdConfig.cmake; do
  [[ -e "$WORK/prefix/$f" ]] || fail "not installed: $f"
done
"$WORK/prefix/bin/ctbmd-run" --version >/dev/null
cmake -S "$CTBMD_SRC/tests/consumer" -B "$WORK/consumer" -DCMAKE_PREFIX_PATH="$WORK/prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$WORK/cfg.log" 2>&1 || { cat "$WORK/cfg.log"; fail "consumer configure"; }
cmake --build "$WORK/consumer" -j2 >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; fail "consumer build"; }
"$WORK/consumer/consumer" | grep -q "L1 found" || fail "consumer did not run"
echo "install + find_package: ok"
