"""Write the checkpoint that `cargo xtask bench --only export` times
`netport export` and the Python peer (import torch and torchvision,
load_state_dict, torch.onnx.export) on.

Run by `cargo xtask bench` in the peer venv, into a cache folder outside the
repo (`<cache>/bench-export-<hash>`; the hash covers every file in
testdata/export/bench/ and the venv). Never committed (~100 MB).

    python make_bench_resnet50.py --out DIR

    resnet50.pt   torchvision resnet50 (weights=None, seeded, 1000 classes),
                  BatchNorm running statistics randomised, its state_dict
                  saved by torch.save in the default zip format

The script loads the file back into a fresh resnet50 with
load_state_dict(strict=True) before it exits.
"""

import argparse
from pathlib import Path

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    path = out / "resnet50.pt"
    torch.save(model.state_dict(), path)
    again = torchvision.models.resnet50(weights=None)
    again.load_state_dict(torch.load(path, weights_only=True), strict=True)
    print(f"[make_bench_resnet50] wrote {path} ({path.stat().st_size} bytes)", flush=True)


if __name__ == "__main__":
    main()
