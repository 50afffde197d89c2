"""Reference files from the real Caffe2 (torch 1.4.0 wheel, Python 3.7) for
netport's ONNX <-> Caffe2 interop tests. Run only by `cargo xtask caffe2-refs`
(or by hand) inside the Caffe2 venv made by `cargo xtask caffe2-venv`:

    python make_caffe2_refs.py --out DIR [--models resnet18_2class,alexnet ...]

For every model: DIR/<name>/model.onnx (torchvision model with seeded weights,
eval mode, exported by torch 1.4 at opset 9 with keep_initializers_as_inputs),
input.npy (fixed seeded input), torch_output.npy, and ref/init_net.pb +
ref/predict_net.pb (+ predict_net.pbtxt) as `Caffe2Backend.onnx_graph_to_caffe2_net`
writes them, ref/caffe2_output.npy (those nets run in the Caffe2 workspace).
Native Caffe2 nets (no ONNX): DIR/native_<name>/{init_net.pb, predict_net.pb,
input.npy, caffe2_output.npy} from caffe2.python.models builders saved with
predictor.mobile_exporter. DIR/manifest.json lists what was made.
"""
# onnx before torch: else two protobuf copies and onnx.checker segfaults.
import onnx
import argparse
import json
import os
import sys

import numpy as np
import torch
import torchvision

from caffe2.python.onnx.backend import Caffe2Backend
from caffe2.python import workspace, core

SEED = 20261202

# name -> (constructor, input shape)
MODELS = {
    "resnet18_2class": (lambda: resnet18_2class(), (1, 3, 224, 224)),
    "resnet50": (lambda: torchvision.models.resnet50(), (1, 3, 224, 224)),
    "alexnet": (lambda: torchvision.models.alexnet(), (1, 3, 224, 224)),
    "vgg11_bn": (lambda: torchvision.models.vgg11_bn(), (1, 3, 224, 224)),
    "vgg16": (lambda: torchvision.models.vgg16(), (1, 3, 224, 224)),
    "squeezenet1_1": (lambda: torchvision.models.squeezenet1_1(), (1, 3, 224, 224)),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(), (1, 3, 224, 224)),
    "densenet121": (lambda: torchvision.models.densenet121(), (1, 3, 224, 224)),
    "shufflenet_v2": (lambda: torchvision.models.shufflenet_v2_x1_0(), (1, 3, 224, 224)),
    "mnasnet1_0": (lambda: torchvision.models.mnasnet1_0(), (1, 3, 224, 224)),
    "googlenet": (lambda: googlenet(), (1, 3, 224, 224)),
}
NATIVE = ["resnet50", "shufflenet"]
DEFAULT = ["resnet18_2class", "alexnet", "squeezenet1_1", "mobilenet_v2", "shufflenet_v2",
           "mnasnet1_0", "resnet50", "densenet121", "googlenet", "native_resnet50",
           "native_shufflenet"]


def resnet18_2class():
    # The seed's network: resnet18 with a 2-class head.
    net = torchvision.models.resnet18()
    net.fc = torch.nn.Linear(net.fc.in_features, 2)
    return net


def googlenet():
    # init_weights=True needs scipy; the default init is seeded as well.
    return torchvision.models.googlenet(aux_logits=False, init_weights=False)


def randomize_bn(model):
    # Non-trivial running statistics so that SpatialBN really computes.
    g = torch.Generator().manual_seed(SEED + 1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 0.5 + 0.75)


def save_net(net, path, text=True):
    with open(path, "wb") as f:
        f.write(net.SerializeToString())
    if text:  # init nets in text are ~10x their binary size: left out
        with open(path + "txt", "w") as f:
            f.write(str(net))


def run_pair(init_net, predict_net, feeds):
    workspace.ResetWorkspace()
    workspace.RunNetOnce(init_net)
    for name, value in feeds.items():
        workspace.FeedBlob(name, value)
    workspace.RunNetOnce(predict_net)
    return [workspace.FetchBlob(o) for o in predict_net.external_output]


def make_onnx_model(name, out):
    ctor, shape = MODELS[name]
    torch.manual_seed(SEED)
    model = ctor().eval()
    randomize_bn(model)
    x = torch.from_numpy(np.random.RandomState(SEED).rand(*shape).astype(np.float32))
    d = os.path.join(out, name)
    os.makedirs(os.path.join(d, "ref"), exist_ok=True)
    with torch.no_grad():
        y = model(x)
    path = os.path.join(d, "model.onnx")
    torch.onnx.export(model, x, path, opset_version=9, keep_initializers_as_inputs=True)
    np.save(os.path.join(d, "input.npy"), x.numpy())
    np.save(os.path.join(d, "torch_output.npy"), y.numpy())
    m = onnx.load(path)
    init_net, predict_net = Caffe2Backend.onnx_graph_to_caffe2_net(m, device="CPU")
    save_net(init_net, os.path.join(d, "ref", "init_net.pb"), text=False)
    save_net(predict_net, os.path.join(d, "ref", "predict_net.pb"))
    data = [i.name for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
    (c2,) = run_pair(init_net, predict_net, {data[0]: x.numpy()})
    np.save(os.path.join(d, "ref", "caffe2_output.npy"), c2)
    diff = float(np.abs(c2 - y.numpy()).max())
    return {"kind": "onnx", "input": data[0], "output": m.graph.output[0].name,
            "input_shape": list(shape), "caffe2_vs_torch_max_abs_diff": diff,
            "predict_ops": len(predict_net.op), "init_ops": len(init_net.op)}


def make_native(name, out):
    from caffe2.python import model_helper, brew
    from caffe2.python.models import resnet, shufflenet
    from caffe2.python.predictor import mobile_exporter
    workspace.ResetWorkspace()
    np.random.seed(SEED)
    m = model_helper.ModelHelper(name="native_" + name, arg_scope={"order": "NCHW"})
    if name == "resnet50":
        out_blob = resnet.create_resnet50(m, "data", num_input_channels=3, num_labels=10,
                                          is_test=True, no_loss=True)
        shape = (1, 3, 224, 224)
    elif name == "shufflenet":
        out_blob = shufflenet.create_shufflenet(m, "data", num_input_channels=3,
                                                num_labels=10, is_test=True, no_loss=True)
        shape = (1, 3, 224, 224)
    else:
        raise ValueError(name)
    if isinstance(out_blob, (list, tuple)):
        out_blob = out_blob[0]
    workspace.RunNetOnce(m.param_init_net)
    # Non-trivial BN statistics (the builders init them to 0/1).
    rs = np.random.RandomState(SEED + 2)
    for p in m.GetAllParams():
        b = str(p)
        if b.endswith("_rm"):
            v = workspace.FetchBlob(b)
            workspace.FeedBlob(b, (rs.rand(*v.shape) * 0.2 - 0.1).astype(np.float32))
        elif b.endswith("_riv"):
            v = workspace.FetchBlob(b)
            workspace.FeedBlob(b, (rs.rand(*v.shape) * 0.5 + 0.75).astype(np.float32))
    x = np.random.RandomState(SEED).rand(*shape).astype(np.float32)
    workspace.FeedBlob("data", x)
    params = [str(p) for p in m.GetAllParams()]
    # Running stats are not in GetAllParams for SpatialBN in test mode.
    for op in m.net.Proto().op:
        for i in op.input:
            if i not in params and i != "data" and workspace.HasBlob(i) and \
                    not any(i in o.output for o in m.net.Proto().op):
                params.append(i)
    init_net, predict_net = mobile_exporter.Export(workspace, m.net, params)
    predict_net.external_output[:] = [str(out_blob)]
    d = os.path.join(out, "native_" + name)
    os.makedirs(d, exist_ok=True)
    save_net(init_net, os.path.join(d, "init_net.pb"), text=False)
    save_net(predict_net, os.path.join(d, "predict_net.pb"))
    (y,) = run_pair(init_net, predict_net, {"data": x})
    np.save(os.path.join(d, "input.npy"), x)
    np.save(os.path.join(d, "caffe2_output.npy"), y)
    return {"kind": "native", "input": "data", "output": str(out_blob),
            "input_shape": list(shape), "predict_ops": len(predict_net.op)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--models", default=None)
    p.add_argument("--full", action="store_true", help="also the large models (vgg)")
    a = p.parse_args()
    if a.models is None:
        a.models = ",".join(DEFAULT + (["vgg11_bn", "vgg16"] if a.full else []))
    os.makedirs(a.out, exist_ok=True)
    manifest_path = os.path.join(a.out, "manifest.json")
    manifest = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
    manifest.setdefault("versions", {"torch": torch.__version__, "onnx": onnx.__version__,
                                     "torchvision": torchvision.__version__,
                                     "numpy": np.__version__, "seed": SEED})
    models = manifest.setdefault("models", {})
    for name in [n for n in a.models.split(",") if n]:
        print("==>", name, flush=True)
        if name.startswith("native_"):
            models[name] = make_native(name[len("native_"):], a.out)
        else:
            models[name] = make_onnx_model(name, a.out)
        print("   ", models[name], flush=True)
        with open(manifest_path, "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    sys.exit(main())
