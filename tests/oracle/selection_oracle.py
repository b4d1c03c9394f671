#!/usr/bin/env python3
"""ctbmd-train radiomics against scikit-learn and a direct mRMR, on the same split.

check MODEL_DIR   reads model.json (its training.features CSVs in order, reference, split) and
                  recomputes every step on the training rows:
  duplicates    a feature equal (1e-9 relative) on every training row to an earlier one is dropped
  z-score       StandardScaler (population SD)                     -> card's scaler, 1e-9 relative
  RFE           sklearn RFE(RidgeClassifier(alpha), step, keep)    -> the same kept set
  mRMR          a direct implementation of the card's definition   -> the same features, same order
  LASSO         sklearn LassoCV(alphas = the card's grid, KFold)   -> alpha 1e-9 relative; coefficients 1e-6
  forest        sklearn RandomForestClassifier on the kept features (same trees, depth, sqrt features)
                with 20 seeds -> OpenCV's held-out accuracy within the range scikit-learn's own
                seeds give, widened by one case (the two libraries draw differently; on a few
                held-out cases one library's seeds alone span tens of percent)
"""
import csv, json, math, sys

import numpy as np
from sklearn.feature_selection import RFE
from sklearn.linear_model import LassoCV, RidgeClassifier
from sklearn.model_selection import KFold
from sklearn.ensemble import RandomForestClassifier


def load(model):
    card = json.load(open(f"{model}/model.json"))
    tr = card["training"]
    rows = []
    names = None
    for f in tr["features"]:
        with open(f["path"]) as fh:
            rd = csv.reader(fh)
            head = next(rd)
            first = head.index("moran_stride") + 1
            names = head[first:]
            for r in rd:
                rows.append((r[0], r[1], [float(v) if v != "" else math.nan for v in r[first:]]))
    ref = {r["case_id"]: r[tr["label_column"]] for r in csv.DictReader(open(tr["reference"]["path"]))}
    return card, names, rows, ref


def mrmr(x, y, classes, keep, bins):
    def binned(v):
        lo, hi = v.min(), v.max()
        if hi <= lo:
            return np.zeros(len(v), int)
        return np.minimum(bins - 1, np.floor((v - lo) / (hi - lo) * bins).astype(int))
    def mi(a, na, b, nb):
        j = np.zeros((na, nb))
        np.add.at(j, (a, b), 1.0)
        j /= len(a)
        pa, pb = j.sum(1), j.sum(0)
        nz = j > 0
        return float((j[nz] * np.log(j[nz] / np.outer(pa, pb)[nz])).sum())
    b = [binned(x[:, k]) for k in range(x.shape[1])]
    rel = [mi(b[k], bins, y, classes) for k in range(x.shape[1])]
    chosen = []
    while len(chosen) < min(keep, x.shape[1]):
        best, best_s = None, -math.inf
        for k in range(x.shape[1]):
            if k in chosen:
                continue
            s = rel[k] - (np.mean([mi(b[k], bins, b[c], bins) for c in chosen]) if chosen else 0.0)
            if s > best_s + 1e-12:
                best, best_s = k, s
        chosen.append(best)
    return chosen


def check(model):
    card, names, rows, ref = load(model)
    classes = card["labels"]
    sel = card["selection"]
    split = card["training"]["split"]
    train_cases = set(split["train_cases"])
    train = [(c, x) for c, roi, x in rows if c in train_cases and c in ref]
    xall = np.array([x for _, x in train])
    usable = []
    dup = []
    for i, n in enumerate(names):
        if n in sel["dropped_undefined"] or n in sel["dropped_constant"]:
            continue
        if any(np.all(np.abs(xall[:, i] - xall[:, d]) <= 1e-9 * (np.abs(xall[:, d]) + 1)) for d in usable):
            dup.append(n)
            continue
        usable.append(i)
    assert dup == sel["dropped_duplicate"], f"duplicates differ: {set(dup) ^ set(sel['dropped_duplicate'])}"
    x = np.array([[x[i] for i in usable] for _, x in train])
    y = np.array([classes.index(ref[c]) for c, _ in train])
    unames = [names[i] for i in usable]
    mu, sd = x.mean(0), x.std(0)
    sd[sd == 0] = 1
    xs = (x - mu) / sd
    final = card["input"]["features"]
    for f, m, s in zip(final, card["input"]["scaler"]["mean"], card["input"]["scaler"]["sd"]):
        k = unames.index(f)
        assert abs(m - mu[k]) <= 1e-9 * max(1, abs(mu[k])) and abs(s - sd[k]) <= 1e-9 * max(1, sd[k]), f
    rfe_cfg = sel["rfe"]
    rfe = RFE(RidgeClassifier(alpha=rfe_cfg["alpha"]), n_features_to_select=len(rfe_cfg["kept"]),
              step=rfe_cfg["step"]).fit(xs, y)
    sk_kept = [unames[i] for i in np.flatnonzero(rfe.support_)]
    assert sorted(sk_kept) == sorted(rfe_cfg["kept"]), f"RFE differs: {set(sk_kept) ^ set(rfe_cfg['kept'])}"
    ri = [unames.index(n) for n in rfe_cfg["kept"]]
    xr = xs[:, ri]
    mr = mrmr(xr, y, len(classes), len(sel["mrmr"]["kept_in_order"]), sel["mrmr"]["bins"])
    mr_names = [rfe_cfg["kept"][k] for k in mr]
    assert mr_names == sel["mrmr"]["kept_in_order"], f"mRMR differs:\n{mr_names}\n{sel['mrmr']['kept_in_order']}"
    xm = xr[:, mr]
    la = sel["lasso"]
    cv = LassoCV(alphas=la["alphas"], cv=KFold(n_splits=la["folds"]), tol=1e-12, max_iter=1000000).fit(xm, y.astype(float))
    assert abs(cv.alpha_ - la["alpha"]) <= 1e-9 * la["alpha"], (cv.alpha_, la["alpha"])
    coef = np.array([la["coefficients"][n] for n in mr_names])
    err = np.abs(cv.coef_ - coef).max()
    assert err <= 1e-6, f"LASSO coefficients differ by {err}"
    mse = cv.mse_path_.mean(axis=1)
    assert np.allclose(mse, la["cv_mse"], rtol=1e-6, atol=1e-9), "LASSO CV errors differ"
    assert [n for n in mr_names if la["coefficients"][n] != 0] == sorted(final, key=mr_names.index)
    msg = f"RFE {len(sk_kept)}, mRMR {len(mr_names)}, LASSO alpha {cv.alpha_:.4g} ({len(final)} kept, max |coef diff| {err:.1e})"
    test = [(c, x) for c, roi, x in rows if c in set(split["test_cases"]) and c in ref]
    if test and "test" in card["metrics"]:
        fi = [unames.index(n) for n in final]
        xt = ((np.array([[x[i] for i in usable] for _, x in test]) - mu) / sd)[:, fi]
        yt = np.array([classes.index(ref[c]) for c, _ in test])
        hp = card["architecture"]["hyper_parameters"]
        accs = []
        for seed in range(20):
            rf = RandomForestClassifier(n_estimators=hp["trees"], max_depth=hp["max_depth"], max_features="sqrt",
                                        random_state=seed).fit(xs[:, fi], y)
            accs.append(float((rf.predict(xt) == yt).mean()))
        acc_cv = card["metrics"]["test"]["accuracy"]
        lo, hi = min(accs) - 1.0 / len(yt), max(accs) + 1.0 / len(yt)
        assert lo - 1e-9 <= acc_cv <= hi + 1e-9, f"forest accuracy {acc_cv} outside scikit-learn's seed range {min(accs)}-{max(accs)}"
        msg += (f"; held-out accuracy OpenCV {acc_cv:.3f}, scikit-learn {np.mean(accs):.3f} "
                f"(seeds {min(accs):.3f}-{max(accs):.3f}, n = {len(yt)})")
    print(msg)


if __name__ == "__main__":
    {"check": check}[sys.argv[1]](*sys.argv[2:])
