"""Regenerate netport's peer corpus: files written by the real Python tools.

Run by `cargo xtask peers` inside the peer venv (testdata/peers/requirements.txt),
into a cache folder outside the repo. Not committed: it is ~60 MB and fully
determined by this script and the pinned package versions.

    python make_peers.py --out DIR [--only node,resnet,caffe2,third-party]

Layout of DIR:
    onnx-node/<test>/model.onnx                  every onnx backend node test
    onnx-node/<test>/test_data_set_0/{input,output}_N.pb   plain-tensor data only
    onnx-node/manifest.json                      tests, and the data left out
    resnet18/{input,output}.npy                  torch input and torch output
    resnet18/torchscript/resnet18.onnx           torch.onnx.export(dynamo=False)
    resnet18/dynamo/resnet18.onnx(+.data)        torch.onnx.export(dynamo=True)
    resnet18/<exporter>/test_data_set_0/{input,output}_0.pb
    resnet18/meta.json                           versions, ORT vs torch max diff
    onnx-summary.json                            what the onnx library reads
    caffe2/**.pb, .pbtxt, expected.json          NetDefs written by protobuf
    third-party/<package>/<model>/model.onnx     ONNX files shipped in pinned wheels
    third-party/<package>/<model>/set_K/{inputs,outputs}/<name>.npy
    third-party/<package>/LICENSE                the wheel's license file
    third-party/manifest.json                    wheels (sha256, license), models, sets
"""

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netdef_pb as c2  # noqa: E402
from onnx_summary import model_summary  # noqa: E402

SEED = 20240611


def log(msg):
    print(f"[make_peers] {msg}", flush=True)


def write_json(path, obj):
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


# --- onnx backend node tests ---------------------------------------------------

def tensor_type_of(value_info):
    return value_info.type.WhichOneof("value") == "tensor_type"


def node_tests(out):
    """onnx >= 1.23 no longer ships node test files; its loader builds them in
    memory (docs/formats/onnx.md, 'Conformance data'). Write them back out in the old on-disk layout."""
    from onnx.backend.test.loader import load_node_model_tests

    t0 = time.time()
    cases = load_node_model_tests()
    log(f"onnx generated {len(cases)} node test cases in {time.time() - t0:.1f}s")
    root = out / "onnx-node"
    root.mkdir(parents=True)
    manifest = {"onnx_version": onnx.__version__, "tests": {}}
    written = []
    for case in sorted(cases, key=lambda c: c.name):
        d = root / case.name
        d.mkdir()
        (d / "model.onnx").write_bytes(case.model.SerializeToString())
        written.append(f"onnx-node/{case.name}/model.onnx")
        entry = {"inputs": [], "outputs": [], "skipped": []}
        graph = case.model.graph
        for k, (inputs, outputs) in enumerate(case.data_sets):
            ds = d / f"test_data_set_{k}"
            ds.mkdir()
            for kind, values, infos in (("input", inputs, graph.input), ("output", outputs, graph.output)):
                for i, value in enumerate(values):
                    info = infos[i] if i < len(infos) else None
                    why, tp = None, None
                    if info is None or not tensor_type_of(info):
                        why = f"graph declares a non-tensor type ({type(value).__name__} value)"
                    elif isinstance(value, onnx.TensorProto):
                        # The loader hands over types numpy cannot hold (float8,
                        # int4, ...) as ready-made TensorProtos.
                        tp = onnx.TensorProto()
                        tp.CopyFrom(value)
                        if not tp.name:
                            tp.name = info.name
                    elif isinstance(value, (np.ndarray, np.generic)):
                        try:
                            tp = numpy_helper.from_array(np.asarray(value), info.name)
                        except Exception as e:  # e.g. dtypes numpy_helper cannot map
                            why = f"from_array failed: {type(e).__name__}: {e}"
                    else:
                        why = f"{type(value).__name__} value"
                    if why is not None:
                        entry["skipped"].append(f"test_data_set_{k}/{kind}_{i}: {why}")
                        continue
                    (ds / f"{kind}_{i}.pb").write_bytes(tp.SerializeToString())
                    if k == 0:
                        entry[f"{kind}s"].append(f"{kind}_{i}.pb")
        manifest["tests"][case.name] = entry
    write_json(root / "manifest.json", manifest)
    skipped = sum(1 for e in manifest["tests"].values() if e["skipped"])
    log(f"wrote {len(written)} node models ({skipped} with some non-tensor data left out) "
        f"in {time.time() - t0:.1f}s")
    return written


# --- torchvision resnet18 via both exporters ----------------------------------

def resnet18(out):
    import torch
    import torchvision
    import onnxruntime as ort

    t0 = time.time()
    torch.manual_seed(SEED)
    model = torchvision.models.resnet18(weights=None).eval()
    # With weights=None every BN is exactly gamma=1, beta=0, mean=0, var=1, so the
    # TorchScript exporter dedups identical initializers into Identity nodes
    # (docs/formats/onnx.md, 'What torch's exporters write'). Random BN stats give a realistic graph and make
    # BN folding numerically visible.
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
                m.running_mean.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
        x = torch.randn(1, 3, 224, 224, generator=g)
        y = model(x)

    root = out / "resnet18"
    root.mkdir(parents=True)
    np.save(root / "input.npy", x.numpy())
    np.save(root / "output.npy", y.numpy())

    meta = {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "onnx": onnx.__version__, "onnxruntime": ort.__version__, "seed": SEED,
            "input_shape": list(x.shape), "exports": {}}
    written = []
    for exporter, dynamo in (("torchscript", False), ("dynamo", True)):
        d = root / exporter
        d.mkdir()
        path = d / "resnet18.onnx"
        t1 = time.time()
        if dynamo:
            torch.onnx.export(model, (x,), str(path), dynamo=True, external_data=True)
        else:
            torch.onnx.export(model, (x,), str(path), dynamo=False)
        export_s = time.time() - t1
        written.append(f"resnet18/{exporter}/resnet18.onnx")
        m = onnx.load(str(path), load_external_data=False)
        in_name, out_name = m.graph.input[0].name, m.graph.output[0].name
        ds = d / "test_data_set_0"
        ds.mkdir()
        (ds / "input_0.pb").write_bytes(numpy_helper.from_array(x.numpy(), in_name).SerializeToString())
        (ds / "output_0.pb").write_bytes(numpy_helper.from_array(y.numpy(), out_name).SerializeToString())
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (got,) = sess.run(None, {in_name: x.numpy()})
        diff = float(np.max(np.abs(got - y.numpy())))
        meta["exports"][exporter] = {
            "file": f"{exporter}/resnet18.onnx",
            "external_data": sorted(p.name for p in d.iterdir() if p.name.endswith(".data")),
            "input": in_name, "output": out_name,
            "onnxruntime_max_abs_diff_vs_torch": diff,
        }
        log(f"resnet18 {exporter}: exported in {export_s:.1f}s, ORT max |diff| {diff:.2e}")
    write_json(root / "meta.json", meta)
    log(f"resnet18 done in {time.time() - t0:.1f}s")
    return written


# --- onnx-summary.json -------------------------------------------------------------

def summaries(out, paths):
    t0 = time.time()
    result = {}
    for rel in sorted(paths):
        m = onnx.load(str(out / rel), load_external_data=False)
        result[rel] = model_summary(m)
    write_json(out / "onnx-summary.json", result)
    log(f"onnx-summary.json: {len(result)} models in {time.time() - t0:.1f}s")


# --- Caffe2 NetDefs written by the real protobuf library ---------------------------

def caffe2_nets():
    """Each entry: (relative path, NetDef). Every net is written as binary
    (.pb) and text format (.pbtxt)."""
    rng = np.random.default_rng(SEED)
    cpu = c2.DeviceOption(device_type=0, device_id=0)
    nets = []

    # 1. A tiny CNN pair in the convert-onnx-to-caffe2 layout: init_net of
    #    GivenTensorFill (values then shape), predict_net with Conv/SpatialBN/
    #    Relu/MaxPool/FC whose args use f, i, s, ints, floats and strings.
    params = {
        "conv1_w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "conv1_b": rng.standard_normal(4).astype(np.float32),
        "bn_scale": (rng.random(4) + 0.5).astype(np.float32),
        "bn_bias": rng.standard_normal(4).astype(np.float32),
        "bn_mean": rng.standard_normal(4).astype(np.float32),
        "bn_var": (rng.random(4) + 0.5).astype(np.float32),
        "fc_w": rng.standard_normal((2, 64)).astype(np.float32),
        "fc_b": rng.standard_normal(2).astype(np.float32),
    }
    init = c2.NetDef(name="tiny_cnn_init")
    init.device_option.CopyFrom(cpu)
    for blob, value in params.items():
        init.op.add().CopyFrom(c2.given_tensor_fill(blob, value))
    init.external_output.extend(params)
    nets.append(("cnn/init_net.pb", init))

    predict = c2.NetDef(name="tiny_cnn_predict", type="simple")
    predict.device_option.CopyFrom(cpu)
    predict.external_input.extend(["data", *params])
    predict.external_output.append("prob")
    ops = [
        c2.op("Conv", ["data", "conv1_w", "conv1_b"], ["conv1"], [
            c2.arg("kernels", ints=[3, 3]), c2.arg("strides", ints=[1, 1]),
            c2.arg("pads", ints=[1, 1, 1, 1]), c2.arg("dilations", ints=[1, 1]),
            c2.arg("group", i=1), c2.arg("order", s="NCHW")], name="conv1"),
        c2.op("SpatialBN", ["conv1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn1"], [
            c2.arg("is_test", i=1), c2.arg("epsilon", f=1e-5), c2.arg("momentum", f=0.9),
            c2.arg("order", s="NCHW")]),
        c2.op("Relu", ["bn1"], ["bn1"]),  # in place, as Caffe2 nets often are
        c2.op("MaxPool", ["bn1"], ["pool1"], [
            c2.arg("kernels", ints=[4, 4]), c2.arg("strides", ints=[4, 4]),
            c2.arg("pads", ints=[0, 0, 0, 0]), c2.arg("legacy_pad", i=3)]),
        c2.op("FC", ["pool1", "fc_w", "fc_b"], ["fc1"], [c2.arg("axis", i=1)]),
        c2.op("Softmax", ["fc1"], ["prob"], [c2.arg("axis", i=1)], engine="CUDNN"),
        # An op using the list kinds that real CNN ops rarely use.
        c2.op("NetportArgKinds", ["prob"], ["prob_copy"], [
            c2.arg("scales", floats=[0.5, 1.0, -2.25, 1e-30, 3.4028234663852886e38]),
            c2.arg("labels", strings=["cat", "dog", "caf\u00e9", ""]),
            c2.arg("blob_bytes", s=b"\x00\xff\x80binary"),
            c2.arg("empty_ints", ints=[])]),
    ]
    for o in ops:
        predict.op.add().CopyFrom(o)
    predict.op[-1].device_option.CopyFrom(c2.DeviceOption(device_type=1, device_id=3))
    predict.arg.add().CopyFrom(c2.arg("net_level_arg", i=7))
    nets.append(("cnn/predict_net.pb", predict))

    # 2. A TensorProto inside an Argument (`t`, `tensors`): packed float_data /
    #    int32_data / int64_data / double_data next to unpacked dims.
    t = c2.TensorProto(name="const_t", data_type=c2.TensorProto.FLOAT)
    t.dims.extend([2, 3])
    t.float_data.extend([0.0, -1.5, 2.0, 1e-7, -3.25, 100.0])
    t32 = c2.TensorProto(name="ints32", data_type=c2.TensorProto.INT32)
    t32.dims.append(4)
    t32.int32_data.extend([-1, 0, 2147483647, -2147483648])
    t64 = c2.TensorProto(name="ints64", data_type=c2.TensorProto.INT64)
    t64.dims.append(3)
    t64.int64_data.extend([-1, 9007199254740993, -9223372036854775808])
    tdbl = c2.TensorProto(name="doubles", data_type=c2.TensorProto.DOUBLE)
    tdbl.dims.append(2)
    tdbl.double_data.extend([0.1, -1e300])
    traw = c2.TensorProto(name="raw", data_type=c2.TensorProto.UINT8, raw_data=bytes(range(8)))
    traw.dims.append(8)
    tnet = c2.NetDef(name="tensor_args")
    tnet.external_output.append("y")
    tnet.op.add().CopyFrom(c2.op("GivenTensorFill", [], ["y"], [
        c2.arg("t", t=t), c2.arg("tensors", tensors=[t32, t64, tdbl, traw])]))
    nets.append(("tensor_arg/net.pb", tnet))

    # 3. Negative integers: int64 args are varints, so negatives take 10 bytes
    #    each (no zigzag); an encoder that truncates to 32 bits breaks here.
    neg = c2.NetDef(name="negative_ints")
    neg.external_input.append("x")
    neg.external_output.append("y")
    neg.op.add().CopyFrom(c2.op("Reshape", ["x"], ["r", "old_shape"], [
        c2.arg("shape", ints=[-1, 800, -9223372036854775808, 9223372036854775807])]))
    neg.op.add().CopyFrom(c2.op("Transpose", ["r"], ["y"], [
        c2.arg("axes", ints=[0, -1]), c2.arg("axis", i=-1), c2.arg("bias", f=-0.0)]))
    neg.op[1].device_option.CopyFrom(c2.DeviceOption(device_type=0, device_id=-1))
    nets.append(("negative_ints/net.pb", neg))

    # 4. Nested nets: an If op carrying NetDefs in `n` and `nets`.
    then_net = c2.NetDef(name="then")
    then_net.op.add().CopyFrom(c2.op("Relu", ["x"], ["y"]))
    else_net = c2.NetDef(name="else")
    else_net.op.add().CopyFrom(c2.op("Sigmoid", ["x"], ["y"]))
    sub = c2.NetDef(name="subnets")
    sub.external_input.extend(["cond", "x"])
    sub.external_output.append("y")
    sub.op.add().CopyFrom(c2.op("If", ["cond", "x"], ["y"], [
        c2.arg("then_net", n=then_net), c2.arg("else_net", n=else_net),
        c2.arg("both", nets=[then_net, else_net])]))
    nets.append(("subnets/net.pb", sub))

    # 5. An empty NetDef: zero bytes on the wire, which is a valid message.
    nets.append(("empty/net.pb", c2.NetDef()))
    return nets


def caffe2(out):
    from google.protobuf import text_format
    import google.protobuf

    root = out / "caffe2"
    expected = {"protobuf_version": google.protobuf.__version__, "files": {}}
    for rel, net in caffe2_nets():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = net.SerializeToString()
        path.write_bytes(data)
        path.with_suffix(".pbtxt").write_text(text_format.MessageToString(net))
        # Read back through the same library: the file must decode to the net.
        again = c2.NetDef()
        again.ParseFromString(path.read_bytes())
        assert again == net, rel
        s = c2.net_summary(net)
        s["ops"] = [c2.op_summary(o) for o in net.op if not o.type.startswith("GivenTensor") or
                    any(a.name not in ("values", "shape") for a in o.arg)]
        s["size_bytes"] = len(data)
        expected["files"][rel] = s
    write_json(root / "expected.json", expected)
    log(f"caffe2: wrote {len(expected['files'])} nets")


# --- third-party ONNX files shipped in pinned wheels --------------------------

# silero-vad: a voice activity detector whose wheel ships six ONNX exports of
# the same net (If on the sample rate, an If-less opset 18 one, a batched
# sequence LSTM one, ...). Downloaded with --no-deps: its dependencies pull
# torchaudio, so it is not in requirements.txt. A new pin needs a new sha256.
SILERO_VAD = {
    "package": "silero-vad",
    "version": "6.2.3",
    "wheel": "silero_vad-6.2.3-py3-none-any.whl",
    "sha256": "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
    "license": "MIT",
    "license_file": "silero_vad-6.2.3.dist-info/licenses/LICENSE",
    "models": [
        "silero_vad", "silero_vad_16k_op15", "silero_vad_16k_sequence",
        "silero_vad_half", "silero_vad_op18_ifless", "silero_vad_openvino_16k",
    ],
}


def download_wheel(spec, tmp):
    """pip downloads the pinned wheel (no dependencies) into `tmp`; its
    sha256 must be the pinned one."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "--disable-pip-version-check", "-d", str(tmp),
                    f"{spec['package']}=={spec['version']}"], check=True)
    path = Path(tmp) / spec["wheel"]
    if not path.is_file():
        raise SystemExit(f"pip did not write {spec['wheel']} into {tmp}: {sorted(p.name for p in Path(tmp).iterdir())}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != spec["sha256"]:
        raise SystemExit(f"{spec['wheel']}: sha256 {digest}, expected {spec['sha256']}")
    return path


def silero_sets(sess, model, rng):
    """Seeded input sets for one silero-vad model: a 16 kHz step from a
    random state; the next step, fed the state the first one returned; and,
    where the model takes `sr`, an 8 kHz step (the other If branch).
    Windows are 512 (256 at 8 kHz) samples plus 64 (32) of context."""
    names = [i.name for i in sess.get_inputs()]
    out_names = [o.name for o in sess.get_outputs()]

    def noise(*shape):
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)

    def first(rows, samples, sr):
        feeds = {}
        for n in names:
            if n == "input":
                feeds[n] = noise(rows, samples)
            elif n == "state":
                feeds[n] = noise(2, 1, 128)
            elif n in ("h", "c"):
                feeds[n] = noise(1, 1, 128)
            elif n == "sr":
                feeds[n] = np.array(sr, dtype=np.int64)
            else:
                raise SystemExit(f"silero-vad {model}: unexpected input {n!r}")
        return feeds

    sequence = "h" in names  # the sequence model: [steps, 576] and an LSTM's h, c
    sets = []
    feeds = first(3 if sequence else 1, 576, 16000)
    outs = sess.run(None, feeds)
    sets.append((feeds, outs))
    # The next step: the returned state (stateN, or hn and cn) goes back in.
    got = dict(zip(out_names, outs))
    nxt = dict(feeds)
    nxt["input"] = noise(5 if sequence else 1, 576)
    if sequence:
        nxt["h"], nxt["c"] = got["hn"], got["cn"]
    else:
        nxt["state"] = got["stateN"]
    sets.append((nxt, sess.run(None, nxt)))
    if "sr" in names:
        feeds = first(1, 288, 8000)
        sets.append((feeds, sess.run(None, feeds)))
    return sets


def third_party(out):
    import onnxruntime as ort

    t0 = time.time()
    spec = SILERO_VAD
    root = out / "third-party"
    pkg_dir = root / spec["package"]
    pkg_dir.mkdir(parents=True)
    manifest = {"onnxruntime": ort.__version__, "seed": SEED, "packages": {}, "models": {}}
    with tempfile.TemporaryDirectory(prefix="netport-wheel-") as tmp:
        wheel = download_wheel(spec, tmp)
        with zipfile.ZipFile(wheel) as z:
            license_text = z.read(spec["license_file"])
            if b"MIT License" not in license_text:
                raise SystemExit(f"{spec['wheel']}: {spec['license_file']} is not the MIT license")
            (pkg_dir / "LICENSE").write_bytes(license_text)
            for model in spec["models"]:
                d = pkg_dir / model
                d.mkdir()
                (d / "model.onnx").write_bytes(z.read(f"silero_vad/data/{model}.onnx"))
    manifest["packages"][spec["package"]] = {
        "version": spec["version"], "wheel": spec["wheel"], "sha256": spec["sha256"],
        "license": spec["license"], "license_file": f"{spec['package']}/LICENSE",
    }
    rng = np.random.default_rng(SEED)
    for model in spec["models"]:
        d = pkg_dir / model
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # the If-less export has unused initializers ORT warns about
        sess = ort.InferenceSession(str(d / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        m = onnx.load(str(d / "model.onnx"))
        entry = {"package": spec["package"], "file": f"{spec['package']}/{model}/model.onnx",
                 "source": f"silero_vad/data/{model}.onnx",
                 "opsets": {o.domain or "ai.onnx": o.version for o in m.opset_import},
                 "sets": []}
        for k, (feeds, outs) in enumerate(silero_sets(sess, model, rng)):
            s = d / f"set_{k}"
            (s / "inputs").mkdir(parents=True)
            (s / "outputs").mkdir()
            ins, outputs = {}, []
            for name, value in feeds.items():
                np.save(s / "inputs" / f"{name}.npy", value)
                ins[name] = f"{spec['package']}/{model}/set_{k}/inputs/{name}.npy"
            for o, value in zip(sess.get_outputs(), outs):
                np.save(s / "outputs" / f"{o.name}.npy", value)
                outputs.append([o.name, f"{spec['package']}/{model}/set_{k}/outputs/{o.name}.npy"])
            entry["sets"].append({"inputs": ins, "outputs": outputs})
        manifest["models"][f"{spec['package']}/{model}"] = entry
        log(f"third-party {spec['package']}/{model}: {len(entry['sets'])} input sets")
    write_json(root / "manifest.json", manifest)
    log(f"third-party: {len(manifest['models'])} models in {time.time() - t0:.1f}s")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--only", default="node,resnet,caffe2,third-party")
    args = p.parse_args()
    parts = set(args.only.split(","))
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    onnx_files = []
    if "node" in parts:
        onnx_files += node_tests(out)
    if "resnet" in parts:
        onnx_files += resnet18(out)
    if onnx_files:
        summaries(out, onnx_files)
    if "caffe2" in parts:
        caffe2(out)
    if "third-party" in parts:
        third_party(out)
    log(f"done in {time.time() - t0:.1f}s: {out}")


if __name__ == "__main__":
    main()
