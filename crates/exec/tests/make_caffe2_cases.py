"""Makes the Caffe2 cases the netport-exec tests compare with: nets run by
the real Caffe2 (Python 3.7 + torch 1.4.0, env NETPORT_CAFFE2_PYTHON) and
their outputs.

    $NETPORT_CAFFE2_PYTHON crates/exec/tests/make_caffe2_cases.py OUT_DIR

Each case is a folder OUT_DIR/<case>/ with init_net.pb, predict_net.pb,
input_<i>.npy / output_<i>.npy and case.json (input and output blob names
in order). Cases:
- resnet18_onnx: a torch 1.4 resnet18 exported to ONNX opset 9 and
  converted by Caffe2Backend.onnx_graph_to_caffe2_net (model.onnx is kept
  next to the pair, so the ONNX and the Caffe2 runs can be compared);
- resnet50_native, shufflenet_native: nets made by Caffe2's own model
  builders (caffe2.python.models), exported with mobile_exporter;
- op_<name>: one op with argument variants, on random inputs.
"""

import json
import os
import sys

import onnx  # before torch: two protobuf copies otherwise
import numpy as np
import torch
import torchvision
from caffe2.proto import caffe2_pb2
from caffe2.python import core, model_helper, workspace, brew
from caffe2.python.models import resnet, shufflenet
from caffe2.python.onnx.backend import Caffe2Backend
from caffe2.python.predictor import mobile_exporter

OUT = sys.argv[1]
rng = np.random.RandomState(20261202)


def save_case(name, init_net, predict_net, inputs, extra=None):
    """Runs the pair in a fresh workspace and writes the case folder."""
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    workspace.ResetWorkspace()
    workspace.RunNetOnce(init_net)
    for n, v in inputs:
        workspace.FeedBlob(n, v)
    workspace.RunNetOnce(predict_net)
    outs = list(predict_net.external_output)
    with open(os.path.join(d, "init_net.pb"), "wb") as f:
        f.write(init_net.SerializeToString())
    with open(os.path.join(d, "predict_net.pb"), "wb") as f:
        f.write(predict_net.SerializeToString())
    for i, (n, v) in enumerate(inputs):
        np.save(os.path.join(d, "input_%d.npy" % i), v)
    for i, n in enumerate(outs):
        np.save(os.path.join(d, "output_%d.npy" % i), np.asarray(workspace.FetchBlob(n)))
    meta = {"inputs": [n for n, _ in inputs], "outputs": outs}
    meta.update(extra or {})
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(name, "ok:", ", ".join(outs))


def resnet18_onnx():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    d = os.path.join(OUT, "resnet18_onnx")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    torch.onnx.export(model, x, path, opset_version=9, keep_initializers_as_inputs=True,
                      input_names=["input"], output_names=["output"])
    m = onnx.load(path)
    init_net, predict_net = Caffe2Backend.onnx_graph_to_caffe2_net(m)
    with torch.no_grad():
        torch_out = model(x).numpy()
    np.save(os.path.join(d, "torch_output.npy"), torch_out)
    save_case("resnet18_onnx", init_net, predict_net, [("input", x.numpy())])


def native(name, build, shape):
    workspace.ResetWorkspace()
    m = model_helper.ModelHelper(name=name, arg_scope={"order": "NCHW"})
    build(m)
    workspace.RunNetOnce(m.param_init_net)
    x = rng.randn(*shape).astype(np.float32)
    workspace.FeedBlob("data", x)
    workspace.CreateNet(m.net)
    params = [p for p in m.GetAllParams() if str(p) != "data"]
    # mobile_exporter keeps only the params; BN running stats are computed
    # blobs, so give them non-trivial values first.
    for p in m.GetAllParams():
        v = workspace.FetchBlob(p)
        if str(p).endswith("_rm"):
            workspace.FeedBlob(p, (rng.randn(*v.shape) * 0.1).astype(v.dtype))
        elif str(p).endswith("_riv"):
            workspace.FeedBlob(p, (rng.rand(*v.shape) + 0.5).astype(v.dtype))
    init_net, predict_net = mobile_exporter.Export(workspace, m.net, params)
    save_case(name, init_net, predict_net, [("data", x)])


def one_op(name, op_type, inputs, outputs, weights=(), **args):
    """A one-op net: `inputs` are fed, `weights` come from the init net."""
    init = caffe2_pb2.NetDef()
    init.name = name + "_init"  # never an empty file
    for wn, wv in weights:
        init.op.extend([core.CreateOperator("GivenTensorFill", [], [wn],
                                            values=wv.flatten().tolist(), shape=list(wv.shape))])
    pred = caffe2_pb2.NetDef()
    pred.name = name
    pred.op.extend([core.CreateOperator(op_type, [n for n, _ in inputs] + [wn for wn, _ in weights],
                                        outputs, **args)])
    pred.external_input.extend([n for n, _ in inputs] + [wn for wn, _ in weights])
    pred.external_output.extend(outputs)
    save_case("op_" + name, init, pred, inputs)


def r(*shape):
    return rng.randn(*shape).astype(np.float32)


def op_cases():
    x = r(2, 4, 9, 11)
    w = r(6, 4, 3, 3)
    b = r(6)
    one_op("conv_pads", "Conv", [("x", x)], ["y"], [("w", w), ("b", b)], kernels=[3, 3], pads=[1, 0, 2, 1], strides=[2, 1])
    one_op("conv_scalar_args", "Conv", [("x", x)], ["y"], [("w", w), ("b", b)], kernel=3, pad=1, stride=2)
    one_op("conv_dilation", "Conv", [("x", x)], ["y"], [("w", w), ("b", b)], kernel_h=3, kernel_w=3, dilation=2, pad_t=1, pad_l=2, pad_b=0, pad_r=1)
    one_op("conv_group", "Conv", [("x", x)], ["y"], [("w", r(6, 2, 3, 3)), ("b", b)], kernel=3, group=2)
    one_op("conv_nobias", "Conv", [("x", x)], ["y"], [("w", w)], kernel=3, legacy_pad=2)
    one_op("maxpool_legacy", "MaxPool", [("x", x)], ["y"], kernel=3, stride=2, pad=1, legacy_pad=3)
    one_op("avgpool_legacy", "AveragePool", [("x", x)], ["y"], kernel=3, stride=2, pad=1, legacy_pad=3)
    one_op("avgpool_include_pad", "AveragePool", [("x", x)], ["y"], kernel=3, stride=2, pad=1, count_include_pad=1)
    one_op("avgpool_exclude_pad", "AveragePool", [("x", x)], ["y"], kernels=[3, 2], strides=[2, 2], pads=[1, 1, 1, 0])
    one_op("maxpool_global", "MaxPool", [("x", x)], ["y"], global_pooling=1)
    one_op("avgpool_global", "AveragePool", [("x", x)], ["y"], global_pooling=1)
    one_op("spatialbn", "SpatialBN", [("x", x)], ["y"], [("s", r(4)), ("bb", r(4)), ("m", r(4)), ("v", np.abs(r(4)) + 0.1)], is_test=1, epsilon=1e-3)
    one_op("fc", "FC", [("x", r(3, 4, 5))], ["y"], [("w", r(7, 20)), ("b", r(7))])
    one_op("fc_axis2", "FC", [("x", r(3, 4, 5))], ["y"], [("w", r(7, 5)), ("b", r(7))], axis=2)
    one_op("fc_axis_w", "FC", [("x", r(3, 20))], ["y"], [("w", r(7, 4, 5)), ("b", r(7))], axis_w=1)
    one_op("fc_transposed", "FCTransposed", [("x", r(3, 20))], ["y"], [("w", r(20, 7)), ("b", r(7))])
    one_op("add_broadcast_axis", "Add", [("a", x), ("b", r(4))], ["y"], broadcast=1, axis=1)
    one_op("mul_broadcast_suffix", "Mul", [("a", x), ("b", r(9, 11))], ["y"], broadcast=1)
    one_op("sub_broadcast_strip", "Sub", [("a", x), ("b", r(1, 4, 9, 1))], ["y"], broadcast=1, axis=0)
    one_op("div_numpy", "Div", [("a", x), ("b", r(4, 1, 1) + 3)], ["y"])
    one_op("sum3", "Sum", [("a", x), ("b", r(*x.shape)), ("c", r(*x.shape))], ["y"])
    one_op("concat", "Concat", [("a", x), ("b", r(2, 3, 9, 11))], ["y", "split_info"], axis=1)
    one_op("concat_add_axis", "Concat", [("a", x), ("b", r(*x.shape))], ["y", "split_info"], axis=1, add_axis=1)
    one_op("split", "Split", [("x", x)], ["y0", "y1"], axis=1, split=[1, 3])
    one_op("split_equal", "Split", [("x", x)], ["y0", "y1"], axis=3 - 2)
    one_op("reshape", "Reshape", [("x", x)], ["y", "old_shape"], shape=[0, -1, 11])
    one_op("channel_shuffle", "ChannelShuffle", [("x", r(2, 6, 3, 3))], ["y"], group=3)
    one_op("softmax_axis", "Softmax", [("x", x)], ["y"], axis=2)
    one_op("softmax", "Softmax", [("x", r(3, 10))], ["y"])
    one_op("relu", "Relu", [("x", x)], ["y"])
    one_op("sigmoid", "Sigmoid", [("x", x)], ["y"])
    one_op("tanh", "Tanh", [("x", x)], ["y"])
    one_op("leakyrelu", "LeakyRelu", [("x", x)], ["y"], alpha=0.2)
    one_op("dropout", "Dropout", [("x", x)], ["y"], is_test=1, ratio=0.3)
    one_op("flatten", "Flatten", [("x", x)], ["y"])
    one_op("transpose", "Transpose", [("x", x)], ["y"], axes=[0, 2, 3, 1])
    one_op("lrn", "LRN", [("x", x)], ["y"], size=3, alpha=1e-3, beta=0.75, bias=2.0)
    one_op("clip", "Clip", [("x", x)], ["y"], min=-0.5, max=0.7)
    one_op("scale", "Scale", [("x", x)], ["y"], scale=0.25)
    one_op("batchmatmul", "BatchMatMul", [("a", r(2, 3, 4)), ("b", r(2, 5, 4))], ["y"], trans_b=1)
    one_op("matmul", "MatMul", [("a", r(3, 4)), ("b", r(4, 6))], ["y"])
    one_op("copy", "Copy", [("x", x)], ["y"])
    one_op("exp", "Exp", [("x", x)], ["y"])
    one_op("averagepool_1d", "AveragePool", [("x", r(2, 3, 10))], ["y"], kernels=[3], strides=[2], pads=[1, 1])
    # Ops of the ONNX -> Caffe2 conversion (ConvTranspose, Upsample ->
    # ResizeNearest, Slice) and of detection nets.
    xt = r(2, 4, 5, 6)
    one_op("convtranspose", "ConvTranspose", [("x", xt)], ["y"], [("w", r(4, 3, 3, 3)), ("b", r(3))],
           kernels=[3, 3], strides=[2, 2], pads=[1, 0, 1, 2], adjs=[1, 0])
    one_op("convtranspose_scalar_args", "ConvTranspose", [("x", xt)], ["y"], [("w", r(4, 2, 2, 2)), ("b", r(2))],
           kernel=2, stride=2, pad=0)
    one_op("resizenearest_up", "ResizeNearest", [("x", xt)], ["y"], height_scale=2.0, width_scale=1.5)
    one_op("resizenearest_down", "ResizeNearest", [("x", r(2, 3, 10, 15))], ["y"], height_scale=0.5, width_scale=0.6)
    # starts/ends for every dim, as the ONNX -> Caffe2 conversion writes them
    # (fewer abort torch 1.4's CPU op in slice_op.h).
    one_op("slice_args", "Slice", [("x", x)], ["y"], starts=[0, 1, 0, 0], ends=[-1, 3, -1, -1])
    one_op("slice_negative", "Slice", [("x", x)], ["y"], starts=[0, 0, 2, 0], ends=[-1, -1, -3, -1])
    one_op("slice_inputs", "Slice", [("x", x), ("s", np.array([0, 0, 0, 3], dtype=np.int32)),
                                     ("e", np.array([-1, -1, -1, -2], dtype=np.int32))], ["y"])
    # Ops of Caffe2Backend's LSTM/GRU/RNN nets (their step nets and the
    # backward direction), argument and input variants included.
    t = np.zeros(1, dtype=np.int32)
    one_op("lstmunit", "LSTMUnit", [("h", r(1, 3, 4)), ("c", r(1, 3, 4)), ("g", r(1, 3, 16)), ("t", t)],
           ["h_out", "c_out"], forget_bias=0.5, drop_states=0, sequence_lengths=0)
    lens, t2 = np.array([3, 2, 0], dtype=np.int32), np.array([2], dtype=np.int32)
    one_op("lstmunit_seq", "LSTMUnit",
           [("h", r(1, 3, 4)), ("c", r(1, 3, 4)), ("g", r(1, 3, 16)), ("l", lens), ("t", t2)],
           ["h_out", "c_out"], sequence_lengths=1)
    one_op("lstmunit_seq_drop", "LSTMUnit",
           [("h", r(1, 3, 4)), ("c", r(1, 3, 4)), ("g", r(1, 3, 16)), ("l", lens), ("t", t2)],
           ["h_out", "c_out"], sequence_lengths=1, drop_states=1)
    one_op("variablelengthsequencepadding", "VariableLengthSequencePadding",
           [("x", r(4, 3, 2)), ("l", lens)], ["x"])
    one_op("gruunit", "GRUUnit", [("h", r(1, 3, 4)), ("g", r(1, 3, 12)), ("t", t)], ["h_out"],
           drop_states=0, sequence_lengths=0)
    one_op("gruunit_seq", "GRUUnit", [("h", r(1, 3, 4)), ("g", r(1, 3, 12)), ("l", lens), ("t", t2)],
           ["h_out"], sequence_lengths=1)
    one_op("gruunit_seq_drop", "GRUUnit", [("h", r(1, 3, 4)), ("g", r(1, 3, 12)), ("l", lens), ("t", t2)],
           ["h_out"], sequence_lengths=1, drop_states=1)
    # The BasicRNN step's length masks: lengths against the timestep, and
    # legacy broadcast on an axis.
    one_op("gt_broadcast_scalar", "GT", [("l", lens), ("t", t2)], ["y"], broadcast=1)
    one_op("le_broadcast_scalar", "LE", [("l", lens), ("t", t2)], ["y"], broadcast=1)
    one_op("lt_broadcast_axis", "LT", [("a", x), ("b", r(4))], ["y"], broadcast=1, axis=1)
    one_op("cast_to_name", "Cast", [("l", lens)], ["y"], to="float")
    one_op("reversepackedsegs", "ReversePackedSegs",
           [("x", r(5, 3, 2)), ("l", np.array([5, 2, 0], dtype=np.int32))], ["y"])
    # An int64 tiles input resets the axis to 0 (tile_op.h), an int32 one not.
    one_op("tile_input64", "Tile", [("x", r(2, 3)), ("n", np.array([3], dtype=np.int64))], ["y"], axis=1)
    one_op("tile_input32", "Tile", [("x", r(2, 3)), ("n", np.array([3], dtype=np.int32))], ["y"], axis=1)
    one_op("tile_args", "Tile", [("x", r(2, 3, 2))], ["y"], tiles=2, axis=0)
    one_op("scatterassign", "ScatterAssign",
           [("d", r(5, 3)), ("i", np.array([3, 0], dtype=np.int64)), ("s", r(2, 3))], ["d"])
    one_op("expand", "Expand", [("x", r(3, 1, 4)), ("s", np.array([2, 1, 5, 1], dtype=np.int64))], ["y"])


def main():
    os.makedirs(OUT, exist_ok=True)
    op_cases()
    resnet18_onnx()
    native("resnet50_native", lambda m: resnet.create_resnet50(
        m, "data", 3, 10, is_test=True, no_loss=True, final_avg_kernel=2), (1, 3, 64, 64))
    native("shufflenet_native", lambda m: shufflenet.create_shufflenet(
        m, "data", 3, 10, is_test=True, no_loss=True), (1, 3, 224, 224))


if __name__ == "__main__":
    main()
