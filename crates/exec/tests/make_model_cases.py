"""Makes the whole-model cases the netport-exec tests compare with
onnxruntime: torchvision families exported by both torch exporters, run in
onnxruntime (peer venv, env NETPORT_PYTHON).

    $NETPORT_PYTHON crates/exec/tests/make_model_cases.py OUT_DIR FAMILY

FAMILY is one of FAMILIES below, or `resize_legacy` (one-node models of
Upsample 7/9 and Resize 10, see `resize_legacy`). torch builds the model with random weights
and randomised BatchNorm statistics (testdata/peers/torchvision_export.py's
`build` and `randomise`, imported, not copied), a seeded input [1, 3, H, W],
then exports it twice:
- OUT_DIR/torchscript.onnx: torch.onnx.export(dynamo=False, opset_version=17);
- OUT_DIR/dynamo.onnx (+ .data): torch.onnx.export(dynamo=True,
  opset_version=18).
For each export, onnxruntime's output on the input (CPU provider, one
intra-op thread) goes to OUT_DIR/<exporter>.ort.npy. OUT_DIR/input.npy is the
input, OUT_DIR/torch.npy torch's own output, OUT_DIR/case.json lists each
file with its opset, input name, op types and onnxruntime's max abs
difference from torch (the float32 noise floor of the net).
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "testdata" / "peers"))
from torchvision_export import build, randomise  # noqa: E402

# name: (torchvision builder, H = W). Small inputs keep CI short. ViT is
# built for its input size (torchvision's `image_size` argument sizes the
# position embedding; 224 is only what the pretrained weights need): 32 is
# 2x2 patches plus the class token, the same ops as at 224.
FAMILIES = {
    "resnet50": ("resnet50", 64),
    "mobilenet_v3_small": ("mobilenet_v3_small", 64),
    "efficientnet_b0": ("efficientnet_b0", 64),
    "densenet121": ("densenet121", 64),
    "googlenet": ("googlenet", 64),
    "inception_v3": ("inception_v3", 80),
    "shufflenet_v2": ("shufflenet_v2_x0_5", 64),
    "squeezenet": ("squeezenet1_0", 64),
    "convnext_tiny": ("convnext_tiny", 64),
    "vit_b_16": ("vit_b_16", 32),
    "swin_t": ("swin_t", 64),
}
CLASSES = 10
EXPORTS = (("torchscript", 17), ("dynamo", 18))


def resize_legacy(out):
    """Pseudo-family: Upsample 7 and 9 and Resize 10 (the forms before
    opset 11, which torch's exporter writes at opsets 9 and 10), one node
    each, on one input, run in onnxruntime."""
    from onnx import TensorProto, helper

    x = np.random.RandomState(3).randn(1, 2, 5, 7).astype(np.float32)
    np.save(out / "input.npy", x)
    graphs = {
        "upsample7_nearest": (7, "Upsample", {"mode": "nearest", "scales": [1.0, 1.0, 2.0, 3.0]}, None),
        "upsample7_linear": (7, "Upsample", {"mode": "linear", "scales": [1.0, 1.0, 2.0, 1.5]}, None),
        "upsample9_nearest": (9, "Upsample", {"mode": "nearest"}, [1.0, 1.0, 1.5, 2.5]),
        "upsample9_linear": (9, "Upsample", {"mode": "linear"}, [1.0, 1.0, 3.0, 2.0]),
        "resize10_nearest_up": (10, "Resize", {"mode": "nearest"}, [1.0, 1.0, 2.0, 1.7]),
        "resize10_nearest_down": (10, "Resize", {"mode": "nearest"}, [1.0, 1.0, 0.6, 0.45]),
        "resize10_linear_down": (10, "Resize", {"mode": "linear"}, [1.0, 1.0, 0.6, 0.5]),
        "resize10_linear_up": (10, "Resize", {"mode": "linear"}, [1.0, 1.0, 1.4, 2.2]),
    }
    meta = {"family": "resize_legacy", "onnxruntime": ort.__version__, "exports": {}}
    for name, (opset, op, attrs, scales) in graphs.items():
        inputs = ["x"]
        inits = []
        if scales is not None:
            inputs.append("scales")
            inits.append(helper.make_tensor("scales", TensorProto.FLOAT, [4], scales))
        node = helper.make_node(op, inputs, ["y"], **attrs)
        g = helper.make_graph([node], name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 4 if opset < 10 else 5
        path = out / f"{name}.onnx"
        onnx.save(m, str(path))
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"x": x})
        for i, g_ in enumerate(got):
            np.save(out / f"{name}.ort.{i}.npy", g_)
        meta["exports"][name] = {"file": path.name, "opset": opset, "input": "x", "outputs": ["y"],
                                 "nodes": 1, "ops": {op: 1}, "ort_vs_torch_max_abs": None}
    (out / "case.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def main():
    out = Path(sys.argv[1])
    family = sys.argv[2]
    if family == "resize_legacy":
        out.mkdir(parents=True, exist_ok=True)
        return resize_legacy(out)
    arch, size = FAMILIES[family]
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = build(arch, CLASSES, image_size=size)
    randomise(model, torch, size, size)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = model(x).numpy()
    np.save(out / "input.npy", x.numpy())
    np.save(out / "torch.npy", want)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    meta = {"family": family, "arch": arch, "size": size, "torch": torch.__version__,
            "onnxruntime": ort.__version__, "exports": {}}
    for exporter, opset in EXPORTS:
        path = out / f"{exporter}.onnx"
        kw = {"dynamo": exporter == "dynamo", "opset_version": opset,
              "input_names": ["input"], "output_names": ["output"]}
        if exporter == "dynamo":
            kw["external_data"] = True
        torch.onnx.export(model, (x,), str(path), **kw)
        m = onnx.load(str(path), load_external_data=False)
        ops = {}
        for n in m.graph.node:
            ops[n.op_type] = ops.get(n.op_type, 0) + 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        got = sess.run(None, {name: x.numpy()})
        for i, g in enumerate(got):
            np.save(out / f"{exporter}.ort.{i}.npy", g)
        meta["exports"][exporter] = {
            "file": path.name,
            "opset": [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0],
            "input": name,
            "outputs": [o.name for o in sess.get_outputs()],
            "nodes": len(m.graph.node),
            "ops": ops,
            "ort_vs_torch_max_abs": float(np.max(np.abs(got[0] - want))),
        }
        print(json.dumps({"family": family, "exporter": exporter, **meta["exports"][exporter]}), flush=True)
    (out / "case.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    main()
