"""Write the ONNX model that `cargo xtask bench --only caffe2` converts to
Caffe2 with netport and with Caffe2's own ONNX backend.

Run by `cargo xtask bench` in the Caffe2 venv (Python 3.7, torch 1.4.0,
torchvision 0.5.0, onnx 1.7.0; `cargo xtask caffe2-venv`), into a cache
folder outside the repo (`<cache>/bench-caffe2-<hash>`; the hash covers
every file in testdata/caffe2/bench/ and the venv). Never committed.

    python make_bench_vgg16_opset9.py --out DIR

    vgg16.onnx   torchvision vgg16 (seeded weights, eval), exported by
                 torch 1.4 at opset 9 with keep_initializers_as_inputs=True
                 (what Caffe2Backend's old onnx optimizer needs), input
                 "input" [1, 3, 224, 224]: ~528 MB, weights inside

The model is checked with onnx.checker before the script exits.
"""

import argparse
import os
import time

import onnx  # before torch: two protobuf copies otherwise (see docs/formats/caffe2.md, "The real Caffe2 as an oracle")
import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.vgg16().eval()
    x = torch.randn(1, 3, 224, 224)
    t = time.time()
    path = os.path.join(out, "vgg16.onnx")
    torch.onnx.export(model, x, path, opset_version=9, keep_initializers_as_inputs=True,
                      input_names=["input"], output_names=["output"])
    print("[make_bench_vgg16_opset9] exported in %.1fs" % (time.time() - t), flush=True)
    onnx.checker.check_model(onnx.load(path))
    print("[make_bench_vgg16_opset9] passes onnx.checker", flush=True)


if __name__ == "__main__":
    main()
