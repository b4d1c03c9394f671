#!/usr/bin/env bash
# Formats (or with --check, verifies) every C++ source with the repository's .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.cpp' '*.hpp')
if [[ "${1:-}" == --check ]]; then
  clang-format --dry-run --Werror $files
else
  # only the files whose formatting changes: clang-format -i rewrites (and re-timestamps) every
  # file it is given, which makes the next build recompile everything
  for f in $files; do
    clang-format --dry-run --Werror "$f" 2>/dev/null || clang-format -i "$f"
  done
fi
