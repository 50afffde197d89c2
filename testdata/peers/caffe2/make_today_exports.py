"""Today's exports of the torchvision families for netport's ONNX -> Caffe2
interop tests. Run by `cargo xtask caffe2-refs` in the peer venv (torch 2.x,
onnx, onnxscript), not the Caffe2 one:

    python make_today_exports.py --out DIR [--models a,b,...]

For every model: DIR/<name>/torchscript.onnx (the TorchScript exporter,
opset 17), DIR/<name>/dynamo.onnx (+ .onnx.data; the dynamo exporter, opset
18), input.npy (a fixed seeded input) and torch_output.npy (eval mode,
seeded weights and batch-norm statistics). DIR/manifest.json lists them.
Also torch.nn.LSTM / GRU / RNN (RNN_MODELS, input (7, 3, 5), hidden 6) as
DIR/rnn_<name>/ with every output: torch_output.npy (the sequence),
torch_output_1.npy[, torch_output_2.npy] (the last states); their manifest
entries carry "outputs".
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


# name -> (module, layers, bidirectional, kwargs)
RNN_MODELS = {
    "rnn_lstm_1l": ("LSTM", 1, False, {}),
    "rnn_lstm_bi_2l": ("LSTM", 2, True, {}),
    "rnn_gru_1l": ("GRU", 1, False, {}),
    "rnn_gru_bi_2l": ("GRU", 2, True, {}),
    "rnn_rnn_tanh_1l": ("RNN", 1, False, {"nonlinearity": "tanh"}),
    "rnn_rnn_relu_bi_2l": ("RNN", 2, True, {"nonlinearity": "relu"}),
}


class Flat(torch.nn.Module):
    """The recurrent layer with its outputs flattened: (seq, h[, c])."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        y, state = self.rnn(x)
        if isinstance(state, tuple):
            return (y,) + state
        return y, state


def build(name):
    if name in RNN_MODELS:
        kind, layers, bidi, kw = RNN_MODELS[name]
        return Flat(getattr(torch.nn, kind)(5, 6, num_layers=layers, bidirectional=bidi, **kw))
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
    p.add_argument("--models", default=",".join(FAMILIES + list(RNN_MODELS)))
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
        shape = (7, 3, 5) if name in RNN_MODELS else (1, 3, 224, 224)
        x = torch.from_numpy(np.random.RandomState(SEED).rand(*shape).astype(np.float32))
        d = os.path.join(a.out, name)
        os.makedirs(d, exist_ok=True)
        with torch.no_grad():
            y = net(x)
        entry = {}
        if isinstance(y, tuple):
            for i, t in enumerate(y[1:], start=1):
                np.save(os.path.join(d, "torch_output_%d.npy" % i), t.numpy())
            entry["outputs"] = len(y)
            y = y[0]
        np.save(os.path.join(d, "input.npy"), x.numpy())
        np.save(os.path.join(d, "torch_output.npy"), y.numpy())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x,), os.path.join(d, "torchscript.onnx"), opset_version=17,
                              dynamo=False, input_names=["input"],
                              output_names=["output"] + ["output_%d" % i for i in
                                                         range(1, entry.get("outputs", 1))])
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
