"""Export a few small torchvision models with both torch exporters, for the
interop test that compares `netport check --shapes` with onnx.checker.

Run by `crates/onnx/tests/it/peer_torchvision.rs` with the peer venv:

    python testdata/onnx/make_torchvision_exports.py OUT_DIR

Writes OUT_DIR/<model>/<exporter>/<model>.onnx for mobilenet_v2, squeezenet1_0,
densenet121 and a reduced VisionTransformer (the vit_b_16 class with 32x32
images, 2 layers, 2 heads, hidden 64: vit_b_16 itself is 330 MB), each from
`torch.onnx.export(dynamo=False)` (TorchScript) and `dynamo=True` (the dynamo
exports keep their weights in an external .data file). Weights are random
(seeded, no download), the batch dim is dynamic in both exporters, then
OUT_DIR/manifest.json lists every file with `onnx.checker.check_model(path,
full_check=True)`'s verdict and message. The test writes the folder under
the cache (never the repo) and reuses it while this script is unchanged.
"""

import json
import sys
import time
from pathlib import Path

import onnx
import torch
import torchvision

SEED = 0


def models():
    from torchvision.models.vision_transformer import VisionTransformer

    yield "mobilenet_v2", torchvision.models.mobilenet_v2(weights=None), 64
    yield "squeezenet1_0", torchvision.models.squeezenet1_0(weights=None), 64
    yield "densenet121", torchvision.models.densenet121(weights=None), 64
    vit = VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2,
                            hidden_dim=64, mlp_dim=128, num_classes=10)
    yield "vit_small", vit, 32


def verdict(path):
    try:
        onnx.checker.check_model(str(path), full_check=True)
        return True, None
    except Exception as e:
        return False, str(e).split("\n\n==> Context")[0].strip()[:500]


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    files = []
    for name, model, size in models():
        model.eval()
        x = torch.randn(2, 3, size, size)
        for exporter, dynamo in (("torchscript", False), ("dynamo", True)):
            d = out / name / exporter
            d.mkdir(parents=True, exist_ok=True)
            path = d / f"{name}.onnx"
            t = time.time()
            if dynamo:
                batch = torch.export.Dim("batch", min=1, max=64)
                torch.onnx.export(model, (x,), str(path), dynamo=True, external_data=True,
                                  dynamic_shapes=({0: batch},))
            else:
                torch.onnx.export(model, (x,), str(path), dynamo=False,
                                  input_names=["x"], output_names=["y"],
                                  dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
            valid, message = verdict(path)
            files.append({"file": str(path.relative_to(out)), "model": name, "exporter": exporter,
                          "onnx_full_valid": valid, "onnx_full_message": message})
            print(f"{name} {exporter}: {time.time() - t:.1f}s, full_check {valid}", file=sys.stderr)
    (out / "manifest.json").write_text(json.dumps(
        {"torch": torch.__version__, "torchvision": torchvision.__version__,
         "onnx": onnx.__version__, "files": files}, indent=1) + "\n")


if __name__ == "__main__":
    main()
