#!/usr/bin/env bash
# Formats (or with --check, verifies) every C++ source with the repository's .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.cpp' '*.hpp')
if [[ "${1:-}" == --check ]]; then
  clang-format --dry-run --Werror $files
else
  clang-format -i $files
fi
