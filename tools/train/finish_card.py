#!/usr/bin/env python3
"""Completes a model card written by ctbmd-train for shipping: what the data were, how to
reproduce it, what it reached on held-out phantoms, and what it must not be used for.

Usage: finish_card.py MODEL_DIR DESCRIPTION HELDOUT_JSON
HELDOUT_JSON: a JSON object merged into metrics.heldout. Drops checkpoint.pt (training state)
and the machine-specific absolute paths of the training data."""
import json, os, sys
d, desc, held = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
p = os.path.join(d, "model.json")
c = json.load(open(p))
c["intended_use"] = ("Demonstration only: trained on synthetic ctbmd-phantom scans (no real CT). Not for clinical "
                     "use or for measurements on real scans; retrain on labelled real data with ctbmd-train.")
data = c["training"]["data"]
for k in ("dataset", "csv"):
    if k in data:
        data[k] = os.path.basename(data[k].rstrip("/"))
data["description"] = desc
c["training"]["reproduce"] = "tools/train/learned_phantom.sh BUILD_DIR WORK_DIR OUT_DIR"
c["metrics"]["heldout"] = held
json.dump(c, open(p, "w"), indent=2, sort_keys=True)
open(p, "a").write("\n")
ck = os.path.join(d, "checkpoint.pt")
if os.path.exists(ck):
    os.remove(ck)
