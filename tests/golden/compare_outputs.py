#!/usr/bin/python3
"""Compare two ctbmd output folders (ITK's --compare style): every JSON and CSV value, and
every label map, of EXPECTED against ACTUAL.

  compare_outputs.py EXPECTED ACTUAL [--rtol R] [--atol A] [--exact] [--ref DIR]...

Numbers agree when |a - e| <= atol + rtol * |e|; strings, booleans and list lengths must be
equal. What a run cannot reproduce is left out: each JSON's "provenance" (time, host, command
line, commit), case.json's "timing", results.csv's seconds, ctbmd_version and input columns;
report.html is compared by the data it embeds (less its time and the wall times). A --ref DIR prefix in a
path is replaced by <REF> on both sides, so goldens made on one machine hold on another. Label
maps (*.nii.gz) must hold the same labels with Dice >= 1 - rtol each (--exact: identical
voxels). PNG pictures are compared byte for byte with --exact only. Exit 1 and one line per
difference when they differ; a file in EXPECTED missing from ACTUAL is a difference.
"""
import argparse
import csv
import io
import json
import math
import os
import sys

SKIP_KEYS = {"provenance", "timing"}  # timing: case.json's wall times
SKIP_COLUMNS = {"seconds", "ctbmd_version", "input"}


def norm_str(s, refs):
    for r in refs:
        s = s.replace(r, "<REF>")
    return s


def report_data(path):
    """The data a report.html shows, less what a run cannot reproduce (its time, wall times)."""
    import re
    html = open(path, encoding="utf-8").read()
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    d = json.loads(m.group(1)) if m else {"unreadable": True}
    d.pop("generated", None)
    for c in d.get("cases", []):
        c.pop("seconds", None)
    return d


def cmp_value(e, a, where, opt, out):
    if isinstance(e, bool) or isinstance(a, bool):
        if e != a:
            out.append(f"{where}: {a!r} != expected {e!r}")
        return
    if isinstance(e, (int, float)) and isinstance(a, (int, float)):
        if math.isnan(e) and math.isnan(a):
            return
        if not abs(a - e) <= opt.atol + opt.rtol * abs(e):
            out.append(f"{where}: {a!r} != expected {e!r}")
        return
    if isinstance(e, str) and isinstance(a, str):
        if norm_str(e, opt.ref) != norm_str(a, opt.ref):
            out.append(f"{where}: {a!r} != expected {e!r}")
        return
    if isinstance(e, dict) and isinstance(a, dict):
        for k in sorted(set(e) | set(a)):
            if k in SKIP_KEYS:
                continue
            if k not in a:
                out.append(f"{where}.{k}: missing")
            elif k not in e:
                out.append(f"{where}.{k}: not expected")
            else:
                cmp_value(e[k], a[k], f"{where}.{k}", opt, out)
        return
    if isinstance(e, list) and isinstance(a, list):
        if len(e) != len(a):
            out.append(f"{where}: {len(a)} items != expected {len(e)}")
            return
        for i, (x, y) in enumerate(zip(e, a)):
            cmp_value(x, y, f"{where}[{i}]", opt, out)
        return
    if e != a:
        out.append(f"{where}: {a!r} != expected {e!r}")


def as_number(s):
    try:
        v = float(s)
    except ValueError:
        return None
    return v


def cmp_csv(ep, ap, name, opt, out):
    er = list(csv.DictReader(open(ep, newline="")))
    ar = list(csv.DictReader(open(ap, newline="")))
    if len(er) != len(ar):
        out.append(f"{name}: {len(ar)} rows != expected {len(er)}")
        return
    for i, (e, a) in enumerate(zip(er, ar)):
        if set(e) != set(a):
            out.append(f"{name}: columns differ: {sorted(set(e) ^ set(a))}")
            return
        for k in e:
            if k in SKIP_COLUMNS:
                continue
            ev, av = e[k], a[k]
            en, an = as_number(ev), as_number(av)
            if en is not None and an is not None:
                cmp_value(en, an, f"{name} row {i + 1} {k}", opt, out)
            elif norm_str(ev, opt.ref) != norm_str(av, opt.ref):
                out.append(f"{name} row {i + 1} {k}: {av!r} != expected {ev!r}")


def cmp_labels(ep, ap, name, opt, out):
    import nibabel as nib
    import numpy as np

    e, a = nib.load(ep), nib.load(ap)
    if e.shape != a.shape or not np.allclose(e.affine, a.affine, atol=1e-4):
        out.append(f"{name}: grid {a.shape} differs from expected {e.shape} (or its affine)")
        return
    ed, ad = np.asarray(e.dataobj), np.asarray(a.dataobj)
    if opt.exact:
        n = int((ed != ad).sum())
        if n:
            out.append(f"{name}: {n} voxels differ")
        return
    labels = sorted(set(np.unique(ed)) | set(np.unique(ad)) - {0})
    for lab in labels:
        if lab == 0:
            continue
        x, y = ed == lab, ad == lab
        s = int(x.sum()) + int(y.sum())
        dice = 2.0 * int((x & y).sum()) / s if s else 1.0
        if dice < 1 - opt.rtol:
            out.append(f"{name}: label {int(lab)} Dice {dice:.6f} < {1 - opt.rtol}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("expected")
    ap.add_argument("actual")
    ap.add_argument("--rtol", type=float, default=1e-9)
    ap.add_argument("--atol", type=float, default=1e-9)
    ap.add_argument("--exact", action="store_true")
    ap.add_argument("--ref", action="append", default=[])
    opt = ap.parse_args()
    out, n = [], 0
    for root, _, files in os.walk(opt.expected):
        for f in sorted(files):
            ep = os.path.join(root, f)
            rel = os.path.relpath(ep, opt.expected)
            apath = os.path.join(opt.actual, rel)
            if not os.path.exists(apath):
                out.append(f"{rel}: missing")
                continue
            n += 1
            if f.endswith(".json"):
                cmp_value(json.load(open(ep)), json.load(open(apath)), rel, opt, out)
            elif f.endswith(".csv"):
                cmp_csv(ep, apath, rel, opt, out)
            elif f.endswith(".nii.gz") or f.endswith(".nii"):
                cmp_labels(ep, apath, rel, opt, out)
            elif f == "report.html":
                cmp_value(report_data(ep), report_data(apath), rel, opt, out)
            elif opt.exact and open(ep, "rb").read() != open(apath, "rb").read():
                out.append(f"{rel}: bytes differ")
    for line in out:
        print(line)
    print(f"compare_outputs: {n} files compared, {len(out)} difference(s)")
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main())
