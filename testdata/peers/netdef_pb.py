"""A Caffe2 NetDef-compatible protobuf schema, built by hand for peer tests.

This deliberately does NOT read netport's proto/caffe2.proto: the point of the
peer files is to check our Rust encoder/decoder against the real protobuf
library from PyPI, so the schema here is an independent transcription of the
upstream caffe2.proto field numbers, labels, types and packed options
(docs/formats/caffe2.md, 'The schema'). If both sides made the same mistake a
round trip would still pass, hence two transcriptions.

Wire-format points that matter (proto2):
  * Argument.floats, Argument.ints and TensorProto.dims are NOT packed: each
    element is written with its own tag, as Caffe2 does.
  * TensorProto.float_data / int32_data / int64_data / double_data ARE packed
    ([packed = true] upstream).

Usage:
    from netdef_pb import NetDef, OperatorDef, Argument, TensorProto, DeviceOption
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto

OPTIONAL = F.LABEL_OPTIONAL
REQUIRED = F.LABEL_REQUIRED
REPEATED = F.LABEL_REPEATED


def _field(msg, name, number, label, ftype, type_name=None, packed=None, default=None):
    f = msg.field.add()
    f.name = name
    f.number = number
    f.label = label
    f.type = ftype
    if type_name is not None:
        f.type_name = type_name
    if packed is not None:
        f.options.packed = packed
    if default is not None:
        f.default_value = default
    return f


def _build_file():
    fdp = descriptor_pb2.FileDescriptorProto()
    # A name of our own, so this never clashes with (or silently reuses) any
    # other caffe2.proto registered in the process.
    fdp.name = "netport_peer/caffe2_netdef.proto"
    fdp.package = "caffe2"
    fdp.syntax = "proto2"

    # --- TensorProto ---------------------------------------------------------
    t = fdp.message_type.add()
    t.name = "TensorProto"
    dt = t.enum_type.add()
    dt.name = "DataType"
    for name, number in [
        ("UNDEFINED", 0), ("FLOAT", 1), ("INT32", 2), ("BYTE", 3), ("STRING", 4),
        ("BOOL", 5), ("UINT8", 6), ("INT8", 7), ("UINT16", 8), ("INT16", 9),
        ("INT64", 10), ("FLOAT16", 12), ("DOUBLE", 13), ("ZERO_COLLISION_HASH", 14),
        ("REBATCHING_BUFFER", 15),
    ]:
        v = dt.value.add()
        v.name = name
        v.number = number
    seg = t.nested_type.add()
    seg.name = "Segment"
    _field(seg, "begin", 1, REQUIRED, F.TYPE_INT64)
    _field(seg, "end", 2, REQUIRED, F.TYPE_INT64)

    _field(t, "dims", 1, REPEATED, F.TYPE_INT64)  # unpacked
    _field(t, "data_type", 2, OPTIONAL, F.TYPE_ENUM, ".caffe2.TensorProto.DataType", default="FLOAT")
    _field(t, "data_format", 15, OPTIONAL, F.TYPE_UINT32, default="0")
    _field(t, "float_data", 3, REPEATED, F.TYPE_FLOAT, packed=True)
    _field(t, "int32_data", 4, REPEATED, F.TYPE_INT32, packed=True)
    _field(t, "byte_data", 5, OPTIONAL, F.TYPE_BYTES)
    _field(t, "string_data", 6, REPEATED, F.TYPE_BYTES)
    _field(t, "double_data", 9, REPEATED, F.TYPE_DOUBLE, packed=True)
    _field(t, "int64_data", 10, REPEATED, F.TYPE_INT64, packed=True)
    _field(t, "raw_data", 13, OPTIONAL, F.TYPE_BYTES)
    _field(t, "name", 7, OPTIONAL, F.TYPE_STRING)
    _field(t, "device_detail", 8, OPTIONAL, F.TYPE_MESSAGE, ".caffe2.DeviceOption")
    _field(t, "segment", 11, OPTIONAL, F.TYPE_MESSAGE, ".caffe2.TensorProto.Segment")

    # --- DeviceOption --------------------------------------------------------
    d = fdp.message_type.add()
    d.name = "DeviceOption"
    _field(d, "device_type", 1, OPTIONAL, F.TYPE_INT32, default="0")
    _field(d, "device_id", 2, OPTIONAL, F.TYPE_INT32)
    _field(d, "random_seed", 3, OPTIONAL, F.TYPE_UINT32)
    _field(d, "node_name", 4, OPTIONAL, F.TYPE_STRING)
    _field(d, "numa_node_id", 5, OPTIONAL, F.TYPE_INT32)
    _field(d, "extra_info", 6, REPEATED, F.TYPE_STRING)

    # --- Argument ------------------------------------------------------------
    a = fdp.message_type.add()
    a.name = "Argument"
    _field(a, "name", 1, OPTIONAL, F.TYPE_STRING)
    _field(a, "f", 2, OPTIONAL, F.TYPE_FLOAT)
    _field(a, "i", 3, OPTIONAL, F.TYPE_INT64)
    _field(a, "s", 4, OPTIONAL, F.TYPE_BYTES)
    _field(a, "t", 10, OPTIONAL, F.TYPE_MESSAGE, ".caffe2.TensorProto")
    _field(a, "n", 8, OPTIONAL, F.TYPE_MESSAGE, ".caffe2.NetDef")
    _field(a, "floats", 5, REPEATED, F.TYPE_FLOAT)  # unpacked
    _field(a, "ints", 6, REPEATED, F.TYPE_INT64)  # unpacked
    _field(a, "strings", 7, REPEATED, F.TYPE_BYTES)
    _field(a, "tensors", 11, REPEATED, F.TYPE_MESSAGE, ".caffe2.TensorProto")
    _field(a, "nets", 9, REPEATED, F.TYPE_MESSAGE, ".caffe2.NetDef")
    # qtensors = 12 (QTensorProto) is left out: we never write it, and a reader
    # of these files sees nothing different.

    # --- OperatorDef ---------------------------------------------------------
    o = fdp.message_type.add()
    o.name = "OperatorDef"
    _field(o, "input", 1, REPEATED, F.TYPE_STRING)
    _field(o, "output", 2, REPEATED, F.TYPE_STRING)
    _field(o, "name", 3, OPTIONAL, F.TYPE_STRING)
    _field(o, "type", 4, OPTIONAL, F.TYPE_STRING)
    _field(o, "arg", 5, REPEATED, F.TYPE_MESSAGE, ".caffe2.Argument")
    _field(o, "device_option", 6, OPTIONAL, F.TYPE_MESSAGE, ".caffe2.DeviceOption")
    _field(o, "engine", 7, OPTIONAL, F.TYPE_STRING)
    _field(o, "control_input", 8, REPEATED, F.TYPE_STRING)
    _field(o, "is_gradient_op", 9, OPTIONAL, F.TYPE_BOOL, default="false")
    _field(o, "debug_info", 10, OPTIONAL, F.TYPE_STRING)
    _field(o, "domain", 11, OPTIONAL, F.TYPE_STRING)
    _field(o, "op_version", 12, OPTIONAL, F.TYPE_INT64)

    # --- NetDef --------------------------------------------------------------
    n = fdp.message_type.add()
    n.name = "NetDef"
    _field(n, "name", 1, OPTIONAL, F.TYPE_STRING)
    _field(n, "op", 2, REPEATED, F.TYPE_MESSAGE, ".caffe2.OperatorDef")
    _field(n, "type", 3, OPTIONAL, F.TYPE_STRING)
    _field(n, "num_workers", 4, OPTIONAL, F.TYPE_INT32)
    _field(n, "device_option", 5, OPTIONAL, F.TYPE_MESSAGE, ".caffe2.DeviceOption")
    _field(n, "arg", 6, REPEATED, F.TYPE_MESSAGE, ".caffe2.Argument")
    _field(n, "external_input", 7, REPEATED, F.TYPE_STRING)
    _field(n, "external_output", 8, REPEATED, F.TYPE_STRING)
    # partition_info = 9 (PartitionInfo) is left out for the same reason.
    return fdp


FILE_DESCRIPTOR = _build_file()
# A private pool: independent of google.protobuf's default pool and of any
# other caffe2 schema a library might have registered.
POOL = descriptor_pool.DescriptorPool()
POOL.Add(FILE_DESCRIPTOR)


def _cls(name):
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName("caffe2." + name))


TensorProto = _cls("TensorProto")
DeviceOption = _cls("DeviceOption")
Argument = _cls("Argument")
OperatorDef = _cls("OperatorDef")
NetDef = _cls("NetDef")


# --- small builders, shared by make_peers.py and make_fixtures.py ------------

def arg(name, value=None, **kw):
    """Argument(name, ...). A keyword picks the field: f=, i=, s=, t=, n=,
    floats=, ints=, strings=, tensors=, nets=. Bytes for s/strings may be given
    as str (encoded UTF-8)."""
    a = Argument(name=name)
    for key, v in kw.items():
        if key == "s":
            a.s = v.encode() if isinstance(v, str) else v
        elif key == "strings":
            a.strings.extend(x.encode() if isinstance(x, str) else x for x in v)
        elif key in ("floats", "ints"):
            getattr(a, key).extend(v)
        elif key in ("tensors", "nets"):
            for m in v:
                getattr(a, key).add().CopyFrom(m)
        elif key in ("t", "n"):
            getattr(a, key).CopyFrom(v)
        else:
            setattr(a, key, v)
    return a


def op(op_type, inputs, outputs, args=(), name=None, **kw):
    o = OperatorDef(type=op_type)
    o.input.extend(inputs)
    o.output.extend(outputs)
    if name is not None:
        o.name = name
    for a in args:
        o.arg.add().CopyFrom(a)
    for key, v in kw.items():
        if key == "device_option":
            o.device_option.CopyFrom(v)
        else:
            setattr(o, key, v)
    return o


def given_tensor_fill(blob, array):
    """GivenTensorFill as convert-onnx-to-caffe2 writes it: args `values`
    (float32, unpacked) first, then `shape` (ints). float32 only."""
    import numpy as np

    a = np.ascontiguousarray(array, dtype=np.float32)
    return op(
        "GivenTensorFill",
        [],
        [blob],
        [arg("values", floats=a.reshape(-1).tolist()), arg("shape", ints=list(a.shape))],
    )


# Element type and size of what each Given*Fill op produces (Caffe2 CPU registrations).
FILL_DTYPES = {
    "GivenTensorFill": ("float32", 4),
    "GivenTensorDoubleFill": ("float64", 8),
    "GivenTensorIntFill": ("int32", 4),
    "GivenTensorInt64Fill": ("int64", 8),
    "GivenTensorBoolFill": ("bool", 1),
}


def fill_summary(o):
    """What expected.json records for a fill op: output blob, shape (null when
    there is no `shape` arg), element dtype, value count and the byte count of
    the values in memory (value_count * element size)."""
    args = {a.name: a for a in o.arg}
    shape = list(args["shape"].ints) if "shape" in args else None
    values = args.get("values")
    count = 0
    if values is not None:
        count = max(len(values.floats), len(values.ints), len(values.strings))
    dtype, size = FILL_DTYPES.get(o.type, (None, 0))
    return {"output": o.output[0], "type": o.type, "shape": shape, "dtype": dtype,
            "value_count": count, "byte_count": count * size}


def net_summary(net):
    """Semantic content of a NetDef for Rust tests (besides byte round trips)."""
    s = {
        "name": net.name,
        "op_types": [o.type for o in net.op],
        "external_input": list(net.external_input),
        "external_output": list(net.external_output),
        "fills": [fill_summary(o) for o in net.op if o.type.startswith("Given")],
    }
    if net.HasField("device_option"):
        s["device_option"] = {
            "device_type": net.device_option.device_type,
            "device_id": net.device_option.device_id,
        }
    return s


def tensor_summary(t):
    s = {"name": t.name, "dims": list(t.dims), "data_type": t.data_type}
    for field in ("float_data", "int32_data", "int64_data", "double_data"):
        if len(getattr(t, field)):
            s[field] = list(getattr(t, field))
    if t.HasField("raw_data"):
        s["raw_data_hex"] = t.raw_data.hex()
    return s


def bytes_value(b):
    try:
        return {"utf8": b.decode("utf-8")}
    except UnicodeDecodeError:
        return {"hex": b.hex()}


def arg_summary(a):
    s = {"name": a.name}
    if a.HasField("f"):
        s["f"] = a.f
    if a.HasField("i"):
        s["i"] = a.i
    if a.HasField("s"):
        s["s"] = bytes_value(a.s)
    if a.HasField("t"):
        s["t"] = tensor_summary(a.t)
    if a.HasField("n"):
        s["n"] = net_summary(a.n)
    if len(a.floats):
        s["floats"] = list(a.floats)
    if len(a.ints):
        s["ints"] = list(a.ints)
    if len(a.strings):
        s["strings"] = [bytes_value(x) for x in a.strings]
    if len(a.tensors):
        s["tensors"] = [tensor_summary(x) for x in a.tensors]
    if len(a.nets):
        s["nets"] = [net_summary(x) for x in a.nets]
    return s


def op_summary(o):
    s = {"type": o.type, "input": list(o.input), "output": list(o.output),
         "args": [arg_summary(a) for a in o.arg]}
    if o.HasField("name"):
        s["name"] = o.name
    if o.HasField("engine"):
        s["engine"] = o.engine
    if o.HasField("device_option"):
        s["device_option"] = {"device_type": o.device_option.device_type,
                              "device_id": o.device_option.device_id}
    return s
