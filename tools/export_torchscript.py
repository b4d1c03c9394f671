#!/usr/bin/python3
"""Export a PyTorch model as a ctbmd model folder (TorchScript + model card).

Recipe (Debian 12: apt-get install python3-torch):

    /usr/bin/python3 tools/export_torchscript.py --module mynets.py:UNet --init '{"channels": 16}' \\
        --state-dict unet.pt --task segment --architecture unet2d --out models/my-unet \\
        --input '{"spacing_mm": [1.0, 1.0, null], "hu_window": [400, 1800], "normalisation": "minmax", "patch": [256, 256]}' \\
        --labels T12,L1,L2,L3,L4,L5 --training '{"data": "...", "command": "..."}' [--trace 1,1,256,256]

The module is scripted with torch.jit.script (or traced with an example input of the given
shape when --trace is given), saved as model.pt, and model.json is written with the weights'
sha256, so ctbmd refuses the folder if the weights are ever changed. Check the result with
`ctbmd-model check models/my-unet` and compare outputs with `ctbmd-model infer`.
"""
import argparse
import hashlib
import importlib.util
import json
import os

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--module", required=True, help="FILE.py:ClassName of the torch.nn.Module")
    ap.add_argument("--init", default="{}", help="JSON keyword arguments for the class")
    ap.add_argument("--state-dict", help="weights saved with torch.save(model.state_dict())")
    ap.add_argument("--task", required=True, choices=["localize", "segment", "bmd-regress", "classify"])
    ap.add_argument("--architecture", required=True)
    ap.add_argument("--out", required=True, help="model folder to create")
    ap.add_argument("--input", default="{}", help="JSON input contract (spacing_mm, hu_window, normalisation, patch)")
    ap.add_argument("--labels", default="", help="comma-separated output names")
    ap.add_argument("--training", default="{}", help="JSON: data, command, seed, ...")
    ap.add_argument("--metrics", default="{}", help="JSON: measured metrics")
    ap.add_argument("--intended-use", default="research; not for clinical use")
    ap.add_argument("--trace", help="trace instead of script, with an input of this shape (e.g. 1,1,256,256)")
    a = ap.parse_args()
    path, cls = a.module.rsplit(":", 1)
    spec = importlib.util.spec_from_file_location("user_module", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    init = json.loads(a.init)
    net = getattr(mod, cls)(**init)
    if a.state_dict:
        net.load_state_dict(torch.load(a.state_dict, map_location="cpu"))
    net.eval()
    if a.trace:
        shape = [int(s) for s in a.trace.split(",")]
        ts = torch.jit.trace(net, torch.zeros(shape))
    else:
        ts = torch.jit.script(net)
    os.makedirs(a.out, exist_ok=True)
    weights = os.path.join(a.out, "model.pt")
    ts.save(weights)
    sha = hashlib.sha256(open(weights, "rb").read()).hexdigest()
    card = {
        "name": os.path.basename(os.path.normpath(a.out)),
        "task": a.task,
        "architecture": {"name": a.architecture, "hyper_parameters": init},
        "weights": {"format": "torchscript", "file": "model.pt", "sha256": sha},
        "input": json.loads(a.input),
        "labels": [s for s in a.labels.split(",") if s],
        "training": json.loads(a.training),
        "metrics": json.loads(a.metrics),
        "intended_use": a.intended_use,
        "exported_with": f"torch {torch.__version__}, tools/export_torchscript.py",
    }
    with open(os.path.join(a.out, "model.json"), "w") as f:
        json.dump(card, f, indent=2)
    print(f"wrote {a.out}/model.pt (sha256 {sha}) and model.json")


if __name__ == "__main__":
    main()
