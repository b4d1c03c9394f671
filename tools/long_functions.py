#!/usr/bin/env python3
"""Top-level C++ functions longer than a limit (issue 17: phases of at most ~80 lines).

Counts lines from a definition that starts in column 0 and ends with '{' to the first '}' in
column 0 after it (clang-format puts both there), for src/**/*.cpp.
Usage: tools/long_functions.py [LIMIT=80]
"""
import glob
import re
import sys

limit = int(sys.argv[1]) if len(sys.argv) > 1 else 80
rows = []
for path in sorted(glob.glob("src/**/*.cpp", recursive=True)):
    lines = open(path, encoding="utf-8").read().split("\n")
    start = None
    for i, line in enumerate(lines):
        if start is None and re.match(r"^[A-Za-z].*\)\s*(const)?\s*\{\s*$", line) and not line.startswith(
            ("namespace", "struct", "class", "enum")
        ):
            start, name = i, line.rstrip(" {")
        elif start is not None and line == "}":
            if i - start > limit:
                rows.append((i - start, path, name))
            start = None
for n, path, name in sorted(rows, reverse=True):
    print(f"{n:5d}  {path}  {name[:100]}")
print(f"{len(rows)} function(s) over {limit} lines")
