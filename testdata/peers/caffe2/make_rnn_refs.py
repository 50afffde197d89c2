"""Reference files for netport's ONNX -> Caffe2 conversion of LSTM, GRU and
RNN nodes, from the real Caffe2 (torch 1.4.0 wheel, Python 3.7). Run by
`cargo xtask caffe2-refs` (or by hand) inside the Caffe2 venv:

    python make_rnn_refs.py --out DIR

For every model in MODELS: DIR/<name>/model.onnx (a torch.nn.LSTM / GRU /
RNN with seeded weights, exported by torch 1.4 at opset 9 with
keep_initializers_as_inputs, all outputs: the sequence, then the last hidden
[and cell] states), input.npy, torch_output.npy (the sequence) and
torch_output_1.npy[, torch_output_2.npy] (the last states), and ref/init_net.pb
+ ref/predict_net.pb(+txt) as `Caffe2Backend.onnx_graph_to_caffe2_net` writes
them, ref/caffe2_output.npy[, ref/caffe2_output_1.npy, ...] (every output of
those nets run in the Caffe2 workspace).
DIR/manifest.json lists what was made, with the max abs difference of every
Caffe2 output from torch's.

LBR0 models are torch's GRU exports with the GRU node's linear_before_reset
set to 0 (ONNX's default, which PyTorch never writes): no torch output
(torch computes linear_before_reset=1); their manifest entry says
"expected": "onnxruntime" (the tests run model.onnx there). SEQ_MODELS are
torch's LSTM, GRU and RNN exports (forward and bidirectional) with a graph
input `seq_lens` (int32, one length per sequence) as every recurrent node's
sequence_lens; DIR/<name>/seq_lens.npy is fed with the input ("feeds" in the
manifest), expected from onnxruntime as well.
"""
# onnx before torch: else two protobuf copies and onnx.checker segfaults.
import onnx
import argparse
import json
import os
import sys

import numpy as np
import torch

from caffe2.python.onnx.backend import Caffe2Backend
from caffe2.python import core, workspace

SEED = 20261202
INPUT_SIZE, HIDDEN, SEQ, BATCH = 5, 6, 7, 3

# name -> (module, num_layers, bidirectional, extra kwargs)
MODELS = {
    "lstm_1l": ("LSTM", 1, False, {}),
    "lstm_2l": ("LSTM", 2, False, {}),
    "lstm_bi_1l": ("LSTM", 1, True, {}),
    "lstm_bi_2l": ("LSTM", 2, True, {}),
    "gru_1l": ("GRU", 1, False, {}),
    "gru_2l": ("GRU", 2, False, {}),
    "gru_bi_1l": ("GRU", 1, True, {}),
    "gru_bi_2l": ("GRU", 2, True, {}),
    "rnn_tanh_1l": ("RNN", 1, False, {"nonlinearity": "tanh"}),
    "rnn_relu_2l": ("RNN", 2, False, {"nonlinearity": "relu"}),
    "rnn_tanh_bi_1l": ("RNN", 1, True, {"nonlinearity": "tanh"}),
    "rnn_relu_bi_2l": ("RNN", 2, True, {"nonlinearity": "relu"}),
}
# name -> the model whose GRU export is rewritten to linear_before_reset=0
LBR0 = {"gru_lbr0_1l": "gru_1l", "gru_lbr0_bi_2l": "gru_bi_2l"}
# name -> the export given a sequence_lens input
SEQ_MODELS = {
    "lstm_seq_1l": "lstm_1l",
    "lstm_seq_2l": "lstm_2l",
    "lstm_seq_bi_1l": "lstm_bi_1l",
    "lstm_seq_bi_2l": "lstm_bi_2l",
    "gru_seq_1l": "gru_1l",
    "gru_seq_2l": "gru_2l",
    "gru_seq_bi_2l": "gru_bi_2l",
    "gru_lbr0_seq_bi_2l": "gru_lbr0_bi_2l",
    "rnn_tanh_seq_1l": "rnn_tanh_1l",
    "rnn_relu_seq_2l": "rnn_relu_2l",
    "rnn_tanh_seq_bi_1l": "rnn_tanh_bi_1l",
    "rnn_relu_seq_bi_2l": "rnn_relu_bi_2l",
}
SEQ_LENS = np.array([7, 4, 1], dtype=np.int32)


class Flat(torch.nn.Module):
    """The RNN with its outputs flattened: (seq, h[, c])."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        y, state = self.rnn(x)
        if isinstance(state, tuple):
            return (y,) + state
        return y, state


def backend_nets(m):
    """Caffe2Backend's nets for model m as a fresh process writes them:
    core.Net makes every net name unique in the process (a name used before
    gets `_1`, `_2`, ...), and the step nets are named after their scope
    (`OC2_DUMMY_<n>`), which models of this script repeat."""
    core.Net._net_names_used = set()
    return Caffe2Backend.onnx_graph_to_caffe2_net(m, device="CPU")


def save_net(net, path):
    with open(path, "wb") as f:
        f.write(net.SerializeToString())
    with open(path + "txt", "w") as f:
        f.write(str(net))


def make_lbr0(name, out):
    src = os.path.join(out, LBR0[name] if name in LBR0 else SEQ_MODELS[name])
    m = onnx.load(os.path.join(src, "model.onnx"))
    feeds = {}
    for n in m.graph.node:
        if n.op_type == "GRU" and name in LBR0:
            for a in n.attribute:
                if a.name == "linear_before_reset":
                    a.i = 0
        if n.op_type in ("LSTM", "GRU", "RNN") and name in SEQ_MODELS:
            n.input[4] = "seq_lens"
    if name in SEQ_MODELS:
        m.graph.input.extend([onnx.helper.make_tensor_value_info(
            "seq_lens", onnx.TensorProto.INT32, [len(SEQ_LENS)])])
        feeds["seq_lens"] = "seq_lens.npy"
    d = os.path.join(out, name)
    os.makedirs(os.path.join(d, "ref"), exist_ok=True)
    onnx.save(m, os.path.join(d, "model.onnx"))
    x = np.load(os.path.join(src, "input.npy"))
    np.save(os.path.join(d, "input.npy"), x)
    init_net, predict_net = backend_nets(m)
    save_net(init_net, os.path.join(d, "ref", "init_net.pb"))
    save_net(predict_net, os.path.join(d, "ref", "predict_net.pb"))
    workspace.ResetWorkspace()
    workspace.RunNetOnce(init_net)
    workspace.FeedBlob("input", x)
    if feeds:
        np.save(os.path.join(d, "seq_lens.npy"), SEQ_LENS)
        workspace.FeedBlob("seq_lens", SEQ_LENS)
    workspace.RunNetOnce(predict_net)
    c2 = [workspace.FetchBlob(o) for o in predict_net.external_output]
    np.save(os.path.join(d, "ref", "caffe2_output.npy"), c2[0])
    for i, y in enumerate(c2[1:], start=1):
        np.save(os.path.join(d, "ref", "caffe2_output_%d.npy" % i), y)
    return {"kind": "onnx", "input": "input", "outputs": len(c2), "expected": "onnxruntime",
            "feeds": feeds,
            "input_shape": list(x.shape), "predict_ops": len(predict_net.op),
            "init_ops": len(init_net.op)}


def make(name, out):
    if name in LBR0 or name in SEQ_MODELS:
        return make_lbr0(name, out)
    kind, layers, bidi, kw = MODELS[name]
    torch.manual_seed(SEED)
    rnn = getattr(torch.nn, kind)(INPUT_SIZE, HIDDEN, num_layers=layers,
                                  bidirectional=bidi, **kw)
    model = Flat(rnn).eval()
    x = torch.from_numpy(
        np.random.RandomState(SEED).randn(SEQ, BATCH, INPUT_SIZE).astype(np.float32))
    d = os.path.join(out, name)
    os.makedirs(os.path.join(d, "ref"), exist_ok=True)
    with torch.no_grad():
        ys = [y.numpy() for y in model(x)]
    path = os.path.join(d, "model.onnx")
    torch.onnx.export(model, x, path, opset_version=9, keep_initializers_as_inputs=True)
    np.save(os.path.join(d, "input.npy"), x.numpy())
    np.save(os.path.join(d, "torch_output.npy"), ys[0])
    for i, y in enumerate(ys[1:], start=1):
        np.save(os.path.join(d, "torch_output_%d.npy" % i), y)
    m = onnx.load(path)
    init_net, predict_net = backend_nets(m)
    save_net(init_net, os.path.join(d, "ref", "init_net.pb"))
    save_net(predict_net, os.path.join(d, "ref", "predict_net.pb"))
    data = [i.name for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
    workspace.ResetWorkspace()
    workspace.RunNetOnce(init_net)
    workspace.FeedBlob(data[0], x.numpy())
    workspace.RunNetOnce(predict_net)
    c2 = [workspace.FetchBlob(o) for o in predict_net.external_output]
    np.save(os.path.join(d, "ref", "caffe2_output.npy"), c2[0])
    for i, y in enumerate(c2[1:], start=1):
        np.save(os.path.join(d, "ref", "caffe2_output_%d.npy" % i), y)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(c2, ys))
    return {"kind": "onnx", "input": data[0], "outputs": len(ys),
            "input_shape": [SEQ, BATCH, INPUT_SIZE], "caffe2_vs_torch_max_abs_diff": diff,
            "predict_ops": len(predict_net.op), "init_ops": len(init_net.op)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--models", default=",".join(list(MODELS) + list(LBR0) + list(SEQ_MODELS)))
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    manifest = {"versions": {"torch": torch.__version__, "onnx": onnx.__version__,
                             "numpy": np.__version__, "seed": SEED}, "models": {}}
    for name in [n for n in a.models.split(",") if n]:
        print("==>", name, flush=True)
        manifest["models"][name] = make(name, a.out)
        print("   ", manifest["models"][name], flush=True)
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    sys.exit(main())
