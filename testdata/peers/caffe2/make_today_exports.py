"""Today's exports of the torchvision families for netport's ONNX -> Caffe2
interop tests. Run by `cargo xtask caffe2-refs` in the peer venv (torch 2.x,
onnx, onnxscript), not the Caffe2 one:

    python make_today_exports.py --out DIR [--models a,b,...]

For every model: DIR/<name>/torchscript.onnx (the TorchScript exporter,
opset 17), DIR/<name>/dynamo.onnx (+ .onnx.data; the dynamo exporter, opset
18), input.npy (a fixed seeded input) and torch_output.npy (eval mode,
seeded weights and batch-norm statistics). DIR/manifest.json lists them.
"""
import argparse
import json
import os
import sys
import warnings

import numpy as np
import torch
import torchvision

SEED = 20261202
FAMILIES = ["resnet18_2class", "alexnet", "squeezenet1_1", "mobilenet_v2", "shufflenet_v2",
            "mnasnet1_0", "resnet50", "densenet121", "googlenet"]


def build(name):
    m = torchvision.models
    if name == "resnet18_2class":
        net = m.resnet18()
        net.fc = torch.nn.Linear(net.fc.in_features, 2)
        return net
    if name == "shufflenet_v2":
        return m.shufflenet_v2_x1_0()
    if name == "googlenet":
        return m.googlenet(aux_logits=False, init_weights=False)
    return getattr(m, name)()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--models", default=",".join(FAMILIES))
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    manifest = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                "seed": SEED, "models": {}}
    for name in a.models.split(","):
        print("==>", name, flush=True)
        torch.manual_seed(SEED)
        net = build(name).eval()
        g = torch.Generator().manual_seed(SEED + 1)
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.copy_(torch.rand(mod.running_mean.shape, generator=g) * 0.2 - 0.1)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) * 0.5 + 0.75)
        x = torch.from_numpy(np.random.RandomState(SEED).rand(1, 3, 224, 224).astype(np.float32))
        d = os.path.join(a.out, name)
        os.makedirs(d, exist_ok=True)
        with torch.no_grad():
            y = net(x)
        np.save(os.path.join(d, "input.npy"), x.numpy())
        np.save(os.path.join(d, "torch_output.npy"), y.numpy())
        entry = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x,), os.path.join(d, "torchscript.onnx"), opset_version=17,
                              dynamo=False, input_names=["input"], output_names=["output"])
            entry["torchscript"] = {"file": "torchscript.onnx", "input": "input", "opset": 17}
            try:
                prog = torch.onnx.export(net, (x,), dynamo=True, opset_version=18)
                prog.save(os.path.join(d, "dynamo.onnx"), external_data=True)
                import onnx
                m = onnx.load(os.path.join(d, "dynamo.onnx"), load_external_data=False)
                entry["dynamo"] = {"file": "dynamo.onnx", "input": m.graph.input[0].name,
                                   "opset": 18}
            except Exception as e:  # recorded: the test then covers torchscript only
                entry["dynamo_error"] = str(e).splitlines()[0][:300]
        manifest["models"][name] = entry
        print("   ", entry, flush=True)
        with open(os.path.join(a.out, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
