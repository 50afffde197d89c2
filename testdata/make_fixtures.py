"""(Re)write netport's small committed test fixtures with the real Python tools.

Run through `cargo xtask fixtures` (it runs this in the peer venv from
testdata/peers/requirements.txt, with the working directory at the repo root):

    python testdata/make_fixtures.py

Every output is deterministic (fixed seeds, no timestamps); running it twice
gives byte-identical files, which the script checks for the ONNX export by
exporting twice. The outputs are committed together with this script; the
list is in testdata/README.md. Total size is kept well under 2 MB.
"""

import hashlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper, TensorProto

TESTDATA = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTDATA / "peers"))
import netdef_pb as c2  # noqa: E402
from onnx_summary import model_summary  # noqa: E402

SEED = 1234
MAX_TOTAL_BYTES = 2 * 1024 * 1024

ONNX_DIR = TESTDATA / "onnx"
HOSTILE_DIR = ONNX_DIR / "hostile"
EXTERNAL_DIR = ONNX_DIR / "tiny_cnn_external"
CAFFE2_DIR = TESTDATA / "caffe2" / "tiny"

written = []


def write_bytes(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    written.append(path)


def write_text(path, text):
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


# --- the tiny CNN -----------------------------------------------------------------

class TinyCnn(torch.nn.Module):
    """Conv-BN-ReLU-pool-Linear, 2-class head, input N x 3 x 32 x 32.
    Small enough to commit (~5 KB of weights), but with every piece a CNN
    converter must handle: conv with bias, a BN that is not folded, a pool,
    a flatten, and a Gemm."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, kernel_size=3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.relu = torch.nn.ReLU()
        self.pool = torch.nn.MaxPool2d(4)
        self.flatten = torch.nn.Flatten()
        self.fc = torch.nn.Linear(8 * 8 * 8, 2)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.relu(self.bn(self.conv(x))))))


def tiny_cnn():
    torch.manual_seed(SEED)
    model = TinyCnn().eval()
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        # Non-trivial BN statistics: with the defaults (1, 0, 0, 1) the
        # exporter would dedup equal initializers into Identity nodes
        # (docs/formats/onnx.md, 'What torch's exporters write'), and BN would be a no-op numerically.
        model.bn.weight.copy_(torch.rand(8, generator=g) + 0.5)
        model.bn.bias.copy_(torch.rand(8, generator=g) - 0.5)
        model.bn.running_mean.copy_(torch.rand(8, generator=g) - 0.5)
        model.bn.running_var.copy_(torch.rand(8, generator=g) + 0.5)
    return model, g


def export_tiny_cnn(model):
    """TorchScript exporter, no constant folding: BN stays a node and the
    initializers keep their state_dict names (conv.weight, bn.running_mean ...)."""
    import warnings

    x = torch.zeros(1, 3, 32, 32)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based ONNX export"
        torch.onnx.export(
            model, (x,), buf, dynamo=False, do_constant_folding=False,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )
    return buf.getvalue()


def tensor_info(t):
    arr = numpy_helper.to_array(t)
    return {"name": t.name, "data_type": t.data_type,
            "dtype": str(arr.dtype), "dims": list(t.dims), "bytes": int(arr.nbytes)}


def onnx_expected(m):
    s = model_summary(m)
    s["initializers"] = [tensor_info(t) for t in m.graph.initializer]
    s["total_initializer_bytes"] = sum(i["bytes"] for i in s["initializers"])
    s["node_op_types"] = [n.op_type for n in m.graph.node]
    s["producer"] = {"name": m.producer_name, "version": m.producer_version}
    return s


def write_tiny_cnn(model, g):
    data = export_tiny_cnn(model)
    # The exporter must be deterministic for the committed file to be stable.
    assert export_tiny_cnn(model) == data, "torch.onnx.export is not deterministic"
    m = onnx.load_from_string(data)
    onnx.checker.check_model(m, full_check=True)
    # Why: the main small ONNX fixture for read / inspect / convert tests.
    write_bytes(ONNX_DIR / "tiny_cnn.onnx", data)
    # Why: what the onnx library itself reads from it, for semantic checks.
    write_json(ONNX_DIR / "tiny_cnn.expected.json", onnx_expected(m))

    # Why: numeric checks (runtime, conversion) without Python. Batch 2 also
    # exercises the dynamic "batch" dim. Inputs/outputs are ONNX TensorProtos
    # named after the graph's input/output, as in onnx's backend test layout.
    x = torch.randn(2, 3, 32, 32, generator=g)
    with torch.no_grad():
        y = model(x)
    ds = ONNX_DIR / "tiny_cnn_data"
    write_bytes(ds / "input_0.pb", numpy_helper.from_array(x.numpy(), "input").SerializeToString())
    write_bytes(ds / "output_0.pb", numpy_helper.from_array(y.numpy(), "output").SerializeToString())
    check_with_onnxruntime(data, x.numpy(), y.numpy())
    return data, m


def check_with_onnxruntime(data, x, y):
    import onnxruntime as ort

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"input": x})
    diff = float(np.max(np.abs(got - y)))
    assert diff < 1e-4, f"onnxruntime disagrees with torch on tiny_cnn: {diff}"
    print(f"tiny_cnn: onnxruntime vs torch max |diff| = {diff:.2e}")


def write_tiny_cnn_external(m):
    """Why: external-data reading, as laid out by onnx's own writer."""
    ext = onnx.ModelProto()
    ext.CopyFrom(m)
    tmp = EXTERNAL_DIR / ".tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    # onnx.save_model writes the .data file next to the model; write into a
    # scratch folder and move, so a stale data file is never appended to.
    onnx.save_model(ext, str(tmp / "tiny_cnn.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="tiny_cnn.data",
                    size_threshold=0, convert_attribute=False)
    for name in ("tiny_cnn.onnx", "tiny_cnn.data"):
        write_bytes(EXTERNAL_DIR / name, (tmp / name).read_bytes())
        (tmp / name).unlink()
    tmp.rmdir()
    header = onnx.load(str(EXTERNAL_DIR / "tiny_cnn.onnx"), load_external_data=False)
    full = onnx.load(str(EXTERNAL_DIR / "tiny_cnn.onnx"))
    for a, b in zip(full.graph.initializer, m.graph.initializer):
        assert np.array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b)), a.name
    s = onnx_expected(full)
    s["external_data"] = {
        t.name: {e.key: (int(e.value) if e.key in ("offset", "length") else e.value)
                 for e in t.external_data}
        for t in header.graph.initializer if t.data_location == TensorProto.EXTERNAL
    }
    s["inline_initializers"] = [t.name for t in header.graph.initializer
                                if t.data_location != TensorProto.EXTERNAL]
    s["data_file_bytes"] = (EXTERNAL_DIR / "tiny_cnn.data").stat().st_size
    # Why: the offsets/lengths onnx chose, and the values they must decode to.
    write_json(EXTERNAL_DIR / "expected.json", s)


# --- hostile files: a reader must refuse each cleanly (no panic, no huge -----
# --- allocation, no read outside the model's folder) ---------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def with_external(m, tensor_name, location, offset, length):
    """A copy of m whose initializer `tensor_name` points at external data."""
    out = onnx.ModelProto()
    out.CopyFrom(m)
    for t in out.graph.initializer:
        if t.name == tensor_name:
            t.ClearField("raw_data")
            t.data_location = TensorProto.EXTERNAL
            del t.external_data[:]
            for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
                e = t.external_data.add()
                e.key, e.value = key, value
            return out
    raise KeyError(tensor_name)


def field(number, payload):
    """A length-delimited protobuf field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def nested_if_model(depth):
    """An If whose then_branch holds an If whose then_branch ... `depth` levels,
    as serialized ModelProto bytes.

    Each piece (graphs, If nodes, attributes, the model) is made with
    onnx.helper and serialized by protobuf, but the nesting is spliced at the
    wire level: protobuf's Python runtime (upb) refuses to build messages
    deeper than 100 levels, and this one is 600 deep (graph > node >
    attribute per level). Field numbers: GraphProto.node = 1,
    NodeProto.attribute = 5, AttributeProto.g = 6, ModelProto.graph = 7."""
    def leaf(name):
        return helper.make_graph(
            [helper.make_node("Constant", [], [name], value=helper.make_tensor(
                name + "_v", TensorProto.FLOAT, [1], [1.0]))],
            name + "_graph", [], [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1])])

    def if_node(out, then_graph_bytes, level):
        node = helper.make_node("If", ["cond"], [out], name=f"if{level}", else_branch=leaf(f"e{level}"))
        then_attr = helper.make_attribute("then_branch", helper.make_graph([], "placeholder", [], []))
        then_attr.ClearField("g")
        return node.SerializeToString() + field(5, then_attr.SerializeToString() + field(6, then_graph_bytes))

    inner = leaf("y0").SerializeToString()
    for level in range(1, depth + 1):
        out = f"y{level}"
        inputs = [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])] if level == depth else []
        shell = helper.make_graph([], "nested_if" if level == depth else f"level{level}", inputs,
                                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1])])
        inner = shell.SerializeToString() + field(1, if_node(out, inner, level))
    model = helper.make_model(helper.make_graph([], "placeholder", [], []),
                              opset_imports=[helper.make_opsetid("", 20)],
                              producer_name="netport make_fixtures.py")
    model.ClearField("graph")
    return model.SerializeToString() + field(7, inner)


def read_varint(data, pos):
    n = shift = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return n, pos


def fields(data):
    """(field number, wire type, value) of one message level; value is the
    payload bytes for wire type 2, else None."""
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = read_varint(data, pos)
            yield number, wire, None
        elif wire == 2:
            n, pos = read_varint(data, pos)
            yield number, wire, data[pos:pos + n]
            pos += n
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            yield number, wire, None
        else:
            raise ValueError(f"wire type {wire}")
    assert pos == len(data), "message overruns its length"


def count_nested_ifs(model_bytes):
    """Follow graph -> If node -> then_branch down, with a wire-level walk."""
    graph = next(v for n, w, v in fields(model_bytes) if n == 7)
    depth = 0
    while True:
        nodes = [v for n, w, v in fields(graph) if n == 1]
        ifs = [nd for nd in nodes if any(n == 4 and v == b"If" for n, w, v in fields(nd))]
        if not ifs:
            return depth
        depth += 1
        attrs = [v for n, w, v in fields(ifs[0]) if n == 5]
        then = next(a for a in attrs if any(n == 1 and v == b"then_branch" for n, w, v in fields(a)))
        graph = next(v for n, w, v in fields(then) if n == 6)


def write_hostile(tiny_bytes, m):
    fc_w = next(t for t in m.graph.initializer if t.name == "fc.weight")
    fc_w_bytes = len(numpy_helper.to_array(fc_w).tobytes())
    files = []  # (name, bytes, what)

    # A download cut short: cut inside the initializers, so the last field's
    # length prefix points past the end.
    cut = len(tiny_bytes) // 2
    files.append(("truncated.onnx", tiny_bytes[:cut],
                  f"the first {cut} of {len(tiny_bytes)} bytes of ../tiny_cnn.onnx (cut inside an initializer)"))

    # External data must stay inside the model's folder (docs/formats/onnx.md, 'External data'). The
    # target ../escape.bin exists and has the right size, so a reader that
    # forgets the check silently succeeds instead of failing by accident.
    files.append(("external_escape.onnx",
                  with_external(m, "fc.weight", "../escape.bin", 0, fc_w_bytes).SerializeToString(),
                  "fc.weight's external_data location is `../escape.bin` (exists: testdata/onnx/escape.bin)"))
    write_bytes(ONNX_DIR / "escape.bin", numpy_helper.to_array(fc_w).tobytes())

    files.append(("external_absolute.onnx",
                  with_external(m, "fc.weight", "/etc/passwd", 0, 16).SerializeToString(),
                  "fc.weight's external_data location is the absolute path `/etc/passwd`"))

    # offset + length past the end of a data file that does exist.
    data_len = 64
    files.append(("external_out_of_range.onnx",
                  with_external(m, "fc.weight", "external_out_of_range.data", 32, fc_w_bytes).SerializeToString(),
                  f"fc.weight wants offset 32 + length {fc_w_bytes} from external_out_of_range.data, "
                  f"which has {data_len} bytes"))
    files.append(("external_out_of_range.data", bytes(range(data_len)),
                  "the too-short data file that external_out_of_range.onnx points at"))

    # A length prefix claiming 2^60 bytes: a reader must not allocate it.
    files.append(("varint_2_60.onnx",
                  varint(1 << 3 | 0) + varint(9)            # ir_version = 9
                  + varint(7 << 3 | 2) + varint(1 << 60)    # graph, length 2^60
                  + b"\x0a\x00",                            # ... and 2 bytes of it
                  "ir_version 9, then a graph field whose varint length prefix claims 2^60 bytes"))

    # Recursion: 200 nested If subgraphs (600 message levels). Protobuf's own
    # parsers stop at 100 levels; a recursive Rust decoder needs a limit too.
    # The wire-level splicing is checked twice: at a depth protobuf can parse,
    # onnx must accept the model; at 200, our own walk must count 200 Ifs.
    shallow = onnx.load_from_string(nested_if_model(20))
    onnx.checker.check_model(shallow, full_check=True)
    nested = nested_if_model(200)
    assert count_nested_ifs(nested) == 200
    files.append(("nested_if_200.onnx", nested,
                  "an If whose then_branch contains an If ... 200 levels deep (pieces built with onnx.helper, "
                  "nested at the wire level since protobuf will not build it)"))

    # What a failed download from a model hub looks like.
    files.append(("html_error_page.onnx",
                  b"<!DOCTYPE html>\n<html>\n<head><title>404 Not Found</title></head>\n"
                  b"<body>\n<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n"
                  b"</body>\n</html>\n",
                  "an HTML 404 page saved under a .onnx name"))

    # What a clone without git-lfs gives instead of the model.
    files.append(("git_lfs_pointer.onnx",
                  b"version https://git-lfs.github.com/spec/v1\n"
                  + f"oid sha256:{hashlib.sha256(tiny_bytes).hexdigest()}\n".encode()
                  + f"size {len(tiny_bytes)}\n".encode(),
                  "a Git LFS pointer file (for ../tiny_cnn.onnx) instead of the model"))

    # Zero bytes decode as an empty ModelProto (valid protobuf): the refusal
    # has to come from a semantic check (no ir_version, no graph).
    files.append(("empty.onnx", b"", "an empty file (0 bytes; decodes as an empty ModelProto)"))

    behaviour = {}
    lines = ["# Hostile ONNX files", "",
             "Written by `testdata/make_fixtures.py` (`cargo xtask fixtures`). Each is something a",
             "reader must refuse cleanly: an error, no panic, no huge allocation, no file read",
             "outside the model's folder. `expected.json` records what the onnx library "
             f"{onnx.__version__} does with each.", ""]
    for name, data, what in files:
        write_bytes(HOSTILE_DIR / name, data)
        lines.append(f"- `{name}`: {what}.")
    for name, _, _ in files:
        if name.endswith(".onnx"):
            behaviour[name] = onnx_behaviour(HOSTILE_DIR / name)
    write_text(HOSTILE_DIR / "README.md", "\n".join(lines) + "\n")
    write_json(HOSTILE_DIR / "expected.json", behaviour)


def onnx_behaviour(path):
    """What onnx.load (with external data) and onnx.checker say about a file.
    Messages are cut to their first line and stripped of this machine's paths."""
    def clean(e):
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return f"{type(e).__name__}: {msg.replace(str(TESTDATA), '<testdata>')}"[:300]

    result = {}
    try:
        m = onnx.load(str(path))
        result["onnx_load"] = "ok"
    except Exception as e:  # noqa: BLE001 - we record whatever onnx raises
        result["onnx_load"] = clean(e)
        return result
    try:
        onnx.checker.check_model(str(path))
        result["onnx_checker"] = "ok"
    except Exception as e:  # noqa: BLE001
        result["onnx_checker"] = clean(e)
    result["ir_version"] = m.ir_version
    return result


# --- Caffe2 NetDefs of the same tiny CNN ----------------------------------------------

def write_caffe2_tiny(m):
    """Why: a Caffe2 pair with the same weights as tiny_cnn.onnx, laid out the
    way convert-onnx-to-caffe2 did (docs/formats/caffe2.md, 'Conversion from ONNX'), so
    conversion in either direction has a target to compare against. Written by
    the real protobuf library with our hand-built NetDef schema (peers/netdef_pb.py).
    It is hand-translated here, not produced by Caffe2 (which no longer installs)."""
    graph = m.graph
    init = c2.NetDef(name=f"{graph.name}_init")
    init.device_option.CopyFrom(c2.DeviceOption(device_type=0, device_id=0))
    for t in graph.initializer:
        arr = numpy_helper.to_array(t)
        assert arr.dtype == np.float32, t.name
        init.op.add().CopyFrom(c2.given_tensor_fill(t.name, arr))
        init.external_output.append(t.name)

    predict = c2.NetDef(name=f"{graph.name}_predict")
    predict.device_option.CopyFrom(c2.DeviceOption(device_type=0, device_id=0))
    predict.external_input.extend([graph.input[0].name] + [t.name for t in graph.initializer])
    predict.external_output.extend(o.name for o in graph.output)
    for node in graph.node:
        predict.op.add().CopyFrom(translate(node))

    CAFFE2_DIR.mkdir(parents=True, exist_ok=True)
    from google.protobuf import text_format

    write_bytes(CAFFE2_DIR / "init_net.pb", init.SerializeToString())
    write_bytes(CAFFE2_DIR / "predict_net.pb", predict.SerializeToString())
    write_text(CAFFE2_DIR / "predict_net.pbtxt", text_format.MessageToString(predict))
    import google.protobuf

    # Same layout as the peer corpus's caffe2/expected.json ({"files": {path: net}}).
    expected = {
        "note": "hand-translated from ../../onnx/tiny_cnn.onnx with the convert-onnx-to-caffe2 "
                "rules; ../../onnx/tiny_cnn_data holds an input/output pair for these weights",
        "protobuf_version": google.protobuf.__version__,
        "files": {
            "init_net.pb": dict(c2.net_summary(init), ops=[],
                                size_bytes=(CAFFE2_DIR / "init_net.pb").stat().st_size),
            "predict_net.pb": dict(c2.net_summary(predict), ops=[c2.op_summary(o) for o in predict.op],
                                   size_bytes=(CAFFE2_DIR / "predict_net.pb").stat().st_size),
        },
    }
    write_json(CAFFE2_DIR / "expected.json", expected)


def translate(node):
    """One ONNX node of tiny_cnn -> one Caffe2 op, convert-onnx-to-caffe2 style:
    name/inputs/outputs copied, BatchNormalization -> SpatialBN (+is_test=1),
    Gemm(transB=1) -> FC without args, kernel_shape -> kernels, other
    attributes passed through in ONNX order."""
    op_type = {"BatchNormalization": "SpatialBN", "Gemm": "FC"}.get(node.op_type, node.op_type)
    args = []
    if node.op_type != "Gemm":
        for a in node.attribute:
            if node.op_type == "BatchNormalization" and a.name == "training_mode":
                continue  # SpatialBN's schema declares its args; this one is not among them
            name = "kernels" if a.name == "kernel_shape" else a.name
            v = helper.get_attribute_value(a)
            if isinstance(v, float):
                args.append(c2.arg(name, f=v))
            elif isinstance(v, int):
                args.append(c2.arg(name, i=v))
            elif isinstance(v, bytes):
                args.append(c2.arg(name, s=v))
            elif isinstance(v, list) and all(isinstance(x, int) for x in v):
                args.append(c2.arg(name, ints=v))
            elif isinstance(v, list) and all(isinstance(x, float) for x in v):
                args.append(c2.arg(name, floats=v))
            else:
                raise ValueError(f"untranslated attribute {node.op_type}.{a.name}")
    else:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert attrs.get("transB") == 1 and attrs.get("transA", 0) == 0, attrs
        assert attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0, attrs
    if node.op_type == "BatchNormalization":
        args.append(c2.arg("is_test", i=1))
    return c2.op(op_type, list(node.input), list(node.output), args, name=node.name)


def main():
    os.chdir(TESTDATA.parent)
    for d in (HOSTILE_DIR, EXTERNAL_DIR, CAFFE2_DIR):
        if d.exists():
            for p in d.iterdir():
                if p.is_file():
                    p.unlink()
    model, g = tiny_cnn()
    data, m = write_tiny_cnn(model, g)
    write_tiny_cnn_external(m)
    write_hostile(data, m)
    write_caffe2_tiny(m)

    total = 0
    for p in sorted(written):
        size = p.stat().st_size
        total += size
        print(f"{size:>9}  {p.relative_to(TESTDATA.parent)}")
    print(f"{total:>9}  total ({len(written)} files)")
    assert total < MAX_TOTAL_BYTES, f"fixtures are {total} bytes, over the {MAX_TOTAL_BYTES} budget"


if __name__ == "__main__":
    main()
