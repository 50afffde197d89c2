"""Write the ONNX models that `cargo xtask bench --only check` times
`netport check --shapes` and `onnx.checker.check_model(path, full_check=True)` on.

Run by `cargo xtask bench` in the peer venv, into a cache folder outside the
repo (`<cache>/bench-onnx-<hash>`; the hash covers every file in
testdata/onnx/bench/ and the venv). Never committed (~1.1 GB).

    python make_bench_vgg16.py --out DIR

    vgg16.onnx                torchvision vgg16 (weights=None, seeded),
                              torch.onnx.export(dynamo=False), input
                              [batch, 3, 224, 224]: ~528 MB, weights inside
    vgg16_external/vgg16.onnx the same model saved by onnx with every
    vgg16_external/vgg16.data initializer in one external data file

Both are checked with onnx.checker.check_model(full_check=True) before the
script exits.
"""

import argparse
import time
from pathlib import Path

import onnx
import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.vgg16(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    t = time.time()
    path = out / "vgg16.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    print(f"[make_bench_vgg16] exported in {time.time() - t:.1f}s", flush=True)
    ext = out / "vgg16_external"
    ext.mkdir(exist_ok=True)
    m = onnx.load(str(path))
    onnx.save_model(m, str(ext / "vgg16.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="vgg16.data", size_threshold=0)
    for p in (path, ext / "vgg16.onnx"):
        onnx.checker.check_model(str(p), full_check=True)
    print("[make_bench_vgg16] both files pass onnx.checker full_check", flush=True)


if __name__ == "__main__":
    main()
