#!/usr/bin/python3
"""Independent check of ctbmd-evaluate's statistics with SciPy (Debian's python3-scipy).

Usage: evaluate_oracle.py make DIR SEED      -> writes DIR/pred/results.csv and DIR/reference.csv
       evaluate_oracle.py check DIR          -> compares DIR/eval/evaluation.json with SciPy

Every number is recomputed here with library routines (scipy.stats.linregress, pearsonr and its
confidence interval, mannwhitneyu, binomtest(...).proportion_ci('wilson'), t.ppf) or, for
DeLong's variance, with the fast midrank algorithm of Sun & Xu (IEEE SPL 2014) - a different
algorithm from ctbmd's direct structural components.
"""
import csv
import json
import os
import sys

import numpy as np
from scipy import stats

CLASSES = ["normal", "osteopenia", "osteoporosis"]


def acr(b):
    return "normal" if b > 120 else ("osteopenia" if b >= 80 else "osteoporosis")


def make(d, seed):
    rng = np.random.default_rng(seed)
    n = 57
    ref = np.round(rng.uniform(30, 210, n), 1)
    pred = np.round(ref * 0.93 + 6 + rng.normal(0, 12, n), 1)
    pred[5] = pred[6]  # a tie in the scores
    os.makedirs(f"{d}/pred", exist_ok=True)
    with open(f"{d}/pred/results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "input", "status", "error", "bmd_l1l2", "category", "calibration"])
        for i in range(n):
            w.writerow([f"c{i:03d}", f"c{i:03d}.nii.gz", "ok", "", pred[i], acr(pred[i]), "calibrated"])
        w.writerow(["c999", "x.nii.gz", "error", "input: not CT", "", "", ""])  # a failed case
    with open(f"{d}/reference.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "bmd", "category"])
        for i in range(n):
            w.writerow([f"c{i:03d}", ref[i], acr(ref[i])])
        w.writerow(["c999", 100.0, "osteopenia"])


def midrank(x):
    return stats.rankdata(x, method="average")


def delong_fast(pos, neg):
    """Sun & Xu 2014: AUC and its DeLong variance from midranks."""
    m, n = len(pos), len(neg)
    z = np.concatenate([pos, neg])
    tz = midrank(z)
    tx = midrank(pos)
    ty = midrank(neg)
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v01 = (tz[:m] - tx) / n
    v10 = 1 - (tz[m:] - ty) / m
    var = np.var(v01, ddof=1) / m + np.var(v10, ddof=1) / n
    return auc, np.sqrt(var)


def close(a, b, what, tol=1e-9):
    if b is None or a is None:
        assert a is None and b is None, f"{what}: {a} vs {b}"
        return
    if not np.isclose(a, b, rtol=tol, atol=tol):
        raise AssertionError(f"{what}: ctbmd {a!r} vs scipy {b!r}")


def check(d):
    ev = json.load(open(f"{d}/eval/evaluation.json"))
    rows = {r["case_id"]: r for r in csv.DictReader(open(f"{d}/pred/results.csv"))}
    refs = {r["case_id"]: r for r in csv.DictReader(open(f"{d}/reference.csv"))}
    ids = sorted(i for i in refs if rows[i]["status"] == "ok")
    pred = np.array([float(rows[i]["bmd_l1l2"]) for i in ids])
    ref = np.array([float(refs[i]["bmd"]) for i in ids])
    n = len(ids)
    assert ev["cases"]["matched"] == n + 1 and ev["cases"]["failed"] == 1, ev["cases"]

    b = ev["bmd_l1l2"]
    assert b["n"] == n
    diff = pred - ref
    a = b["agreement"]
    close(a["mae"], np.mean(np.abs(diff)), "MAE")
    close(a["bias"], np.mean(diff), "bias")
    close(a["sd_diff"], np.std(diff, ddof=1), "SD of differences")
    close(a["rmse"], np.sqrt(np.mean(diff**2)), "RMSE")
    tq = stats.t.ppf(0.975, n - 1)
    se = np.std(diff, ddof=1) / np.sqrt(n)
    close(a["bias_ci95"][0], np.mean(diff) - tq * se, "bias CI low")
    close(a["loa_low"], np.mean(diff) - 1.96 * np.std(diff, ddof=1), "LoA low")
    close(a["loa_high"], np.mean(diff) + 1.96 * np.std(diff, ddof=1), "LoA high")

    pr = stats.pearsonr(ref, pred)
    close(b["pearson"]["r"], pr.statistic, "Pearson r")
    close(b["pearson"]["p"], pr.pvalue, "Pearson p", tol=1e-6)
    ci = pr.confidence_interval(0.95)
    close(b["pearson"]["ci95"][0], ci.low, "Pearson CI low", tol=1e-7)
    close(b["pearson"]["ci95"][1], ci.high, "Pearson CI high", tol=1e-7)
    close(b["r2"], pr.statistic**2, "R^2")

    lr = stats.linregress(ref, pred)
    r = b["regression"]
    close(r["slope"], lr.slope, "slope")
    close(r["intercept"], lr.intercept, "intercept")
    close(r["slope_se"], lr.stderr, "slope SE")
    close(r["intercept_se"], lr.intercept_stderr, "intercept SE")
    t2 = stats.t.ppf(0.975, n - 2)
    close(r["slope_ci95"][0], lr.slope - t2 * lr.stderr, "slope CI low")
    close(r["intercept_ci95"][1], lr.intercept + t2 * lr.intercept_stderr, "intercept CI high")

    rc = [refs[i]["category"] for i in ids]
    pc = [rows[i]["category"] for i in ids]
    for target, pos in (("osteoporosis", {"osteoporosis"}), ("low_bmd", {"osteoporosis", "osteopenia"})):
        dj = ev["diagnosis"][target]
        truth = np.array([c in pos for c in rc])
        called = np.array([c in pos for c in pc])
        tp = int(np.sum(truth & called)); fn = int(np.sum(truth & ~called))
        fp = int(np.sum(~truth & called)); tn = int(np.sum(~truth & ~called))
        assert (dj["tp"], dj["fn"], dj["fp"], dj["tn"]) == (tp, fn, fp, tn), (target, dj)
        for key, k, m in (("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp),
                          ("ppv", tp, tp + fp), ("npv", tn, tn + fn)):
            assert dj[key]["k"] == k and dj[key]["n"] == m, (target, key)
            w = stats.binomtest(k, m).proportion_ci(0.95, method="wilson")
            close(dj[key]["value"], k / m, f"{target} {key}")
            close(dj[key]["ci95"][0], w.low, f"{target} {key} Wilson low", tol=1e-9)
            close(dj[key]["ci95"][1], w.high, f"{target} {key} Wilson high", tol=1e-9)
        score = -pred  # lower BMD = more likely positive
        u = stats.mannwhitneyu(score[truth], score[~truth]).statistic
        auc_mw = u / (truth.sum() * (~truth).sum())
        auc, se = delong_fast(score[truth], score[~truth])
        close(dj["roc"]["auc"], auc_mw, f"{target} AUC vs Mann-Whitney U")
        close(dj["roc"]["auc"], auc, f"{target} AUC vs fast DeLong")
        close(dj["roc"]["auc_se"], se, f"{target} DeLong SE")
        zq = stats.norm.ppf(0.975)
        close(dj["roc"]["auc_ci95"][0], max(0.0, auc - zq * se), f"{target} AUC CI low")

    m = np.zeros((3, 3), dtype=int)
    for r_, p_ in zip(rc, pc):
        m[CLASSES.index(r_), CLASSES.index(p_)] += 1
    assert ev["confusion"]["matrix"] == m.tolist(), (ev["confusion"]["matrix"], m)
    assert ev["confusion"]["accuracy"]["k"] == int(np.trace(m))
    print(f"oracle: {n} cases; every statistic agrees with SciPy")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    else:
        check(sys.argv[2])
