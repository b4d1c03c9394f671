#!/usr/bin/python3
"""C++ (ctbmd-model infer, LibTorch plugin) against Debian's python3-torch on the same
TorchScript model and input. Also the export recipe documented in tools/export_torchscript.py.

Usage: torchscript_parity.py make DIR SEED   -> DIR/model/{model.pt,model.json}, DIR/in.bin, DIR/py.bin
       torchscript_parity.py check DIR        -> compares DIR/cpp.bin with DIR/py.bin (max |diff| <= 1e-5)
"""
import hashlib
import json
import os
import sys

import numpy as np
import torch


class SmallNet(torch.nn.Module):
    """Conv-BN-ReLU-pool, a dense-style concatenation, global pooling and a softmax head:
    the operations ctbmd's networks use."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.b1 = torch.nn.BatchNorm2d(8)
        self.c2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.b2 = torch.nn.BatchNorm2d(16)
        self.fc = torch.nn.Linear(16, 3)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.b1(self.c1(x))), 2)
        x = torch.cat([x, torch.relu(self.c2(x))], 1)
        x = torch.relu(self.b2(x))
        x = torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return torch.softmax(self.fc(x), 1)


def make(d, seed):
    torch.manual_seed(seed)
    net = SmallNet()
    with torch.no_grad():  # non-trivial running statistics
        for bn in (net.b1, net.b2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    net.eval()
    scripted = torch.jit.script(net)
    os.makedirs(f"{d}/model", exist_ok=True)
    scripted.save(f"{d}/model/model.pt")
    sha = hashlib.sha256(open(f"{d}/model/model.pt", "rb").read()).hexdigest()
    card = {
        "name": "parity-smallnet",
        "task": "classify",
        "architecture": {"name": "test-smallnet", "hyper_parameters": {"channels": 8}},
        "weights": {"format": "torchscript", "file": "model.pt", "sha256": sha},
        "input": {"spacing_mm": None, "hu_window": [0, 0], "normalisation": "none", "patch": [48, 48]},
        "labels": ["normal", "low_bone_mass", "osteoporosis"],
        "training": {"data": "random initialisation (parity test only)", "command": "torchscript_parity.py make"},
        "metrics": {},
        "intended_use": "test fixture; not a trained model",
    }
    json.dump(card, open(f"{d}/model/model.json", "w"), indent=2)
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (2, 1, 48, 48)).astype(np.float32)
    x.tofile(f"{d}/in.bin")
    with torch.no_grad():
        y = scripted(torch.from_numpy(x)).numpy().astype(np.float32)
    y.tofile(f"{d}/py.bin")


def check(d):
    py = np.fromfile(f"{d}/py.bin", dtype=np.float32)
    cpp = np.fromfile(f"{d}/cpp.bin", dtype=np.float32)
    meta = json.load(open(f"{d}/cpp.bin.json"))
    assert meta["shape"] == [2, 3], meta["shape"]
    assert py.shape == cpp.shape, (py.shape, cpp.shape)
    diff = float(np.max(np.abs(py - cpp)))
    assert diff <= 1e-5, f"C++ and python3-torch differ by {diff}"
    assert np.allclose(cpp.reshape(2, 3).sum(1), 1, atol=1e-5)
    print(f"parity: max |C++ - python| = {diff:.2e}")


if __name__ == "__main__":
    make(sys.argv[2], int(sys.argv[3])) if sys.argv[1] == "make" else check(sys.argv[2])
