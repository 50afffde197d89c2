"""Compares two Caffe2 init/predict pairs op for op (type, inputs, outputs,
name, arguments as a name -> value map, device options, fill values bit for
bit) and external inputs/outputs (as lists and as sets), and says whether
the files are byte-identical. NetDef arguments (the sub-nets of If and
ONNXWhile) are compared recursively: ops as above, control inputs, and their
external inputs/outputs as lists (their order is meaningful there). Run in
the Caffe2 venv:

    python compare_nets.py OURS_DIR REF_DIR [--extra-external A,B,...]

--extra-external names the blobs that only our external lists may hold (the
control inputs of If/ONNXWhile, which the backend leaves out).

Prints one JSON document; exit code 0 when equal op for op.
"""
import json
import struct
import sys
import os

from caffe2.proto import caffe2_pb2


def load(path):
    net = caffe2_pb2.NetDef()
    with open(path, "rb") as f:
        net.ParseFromString(f.read())
    return net


def arg_value(a):
    out = {}
    for field in ("f", "i", "s"):
        if a.HasField(field):
            v = getattr(a, field)
            out[field] = struct.pack("<f", v).hex() if field == "f" else (
                v.hex() if isinstance(v, bytes) else v)
    if a.floats:
        out["floats"] = struct.pack("<%df" % len(a.floats), *a.floats).hex()
    if a.ints:
        out["ints"] = list(a.ints)
    if a.strings:
        out["strings"] = [s.hex() for s in a.strings]
    if a.HasField("n"):
        out["n"] = net_key(a.n)
    if a.nets:
        out["nets"] = [net_key(n) for n in a.nets]
    return out


def net_key(net):
    return {
        "name": net.name if net.HasField("name") else None,
        "op": [op_key(o) for o in net.op],
        "external_input": list(net.external_input),
        "external_output": list(net.external_output),
        "device_option": net.device_option.SerializeToString().hex() if net.HasField("device_option") else None,
    }


def op_key(op):
    return {
        "type": op.type,
        "input": list(op.input),
        "output": list(op.output),
        "name": op.name if op.HasField("name") else None,
        "args": {a.name: arg_value(a) for a in op.arg},
        "arg_order": [a.name for a in op.arg],
        "control_input": list(op.control_input),
        "device_option": op.device_option.SerializeToString().hex() if op.HasField("device_option") else None,
    }


def compare(ours, ref, what, extra=()):
    diffs = []
    if ours.name != ref.name:
        diffs.append("%s: name %r != %r" % (what, ours.name, ref.name))
    if ours.device_option.SerializeToString() != ref.device_option.SerializeToString():
        diffs.append("%s: device_option %s != %s" % (what, ours.device_option, ref.device_option))
    if len(ours.op) != len(ref.op):
        diffs.append("%s: %d ops != %d" % (what, len(ours.op), len(ref.op)))
    order_only = 0
    for i, (a, b) in enumerate(zip(ours.op, ref.op)):
        ka, kb = op_key(a), op_key(b)
        if ka["arg_order"] != kb["arg_order"] and ka["args"] == kb["args"]:
            order_only += 1
        ka.pop("arg_order"), kb.pop("arg_order")
        if ka != kb:
            diffs.append("%s op %d: ours %s\n   ref %s" % (
                what, i, json.dumps(ka)[:600], json.dumps(kb)[:600]))
            if len(diffs) > 20:
                break
    for field in ("external_input", "external_output"):
        a, b = list(getattr(ours, field)), list(getattr(ref, field))
        a = [x for x in a if not (x in extra and x not in b)]
        if set(a) != set(b) or len(a) != len(b):
            diffs.append("%s %s: sets differ: only ours %s, only ref %s" % (
                what, field, sorted(set(a) - set(b))[:10], sorted(set(b) - set(a))[:10]))
    return diffs, order_only


def main():
    ours_dir, ref_dir = sys.argv[1], sys.argv[2]
    extra = ()
    if len(sys.argv) > 4 and sys.argv[3] == "--extra-external":
        extra = set(x for x in sys.argv[4].split(",") if x)
    report = {"equal": True, "diffs": [], "byte_identical": {}, "list_order_equal": {},
              "ops_with_other_arg_order": {}}
    for name in ("init_net.pb", "predict_net.pb"):
        ours, ref = load(os.path.join(ours_dir, name)), load(os.path.join(ref_dir, name))
        diffs, order_only = compare(ours, ref, name, extra)
        report["diffs"] += diffs
        report["ops_with_other_arg_order"][name] = order_only
        with open(os.path.join(ours_dir, name), "rb") as f1, open(os.path.join(ref_dir, name), "rb") as f2:
            report["byte_identical"][name] = f1.read() == f2.read()
        report["list_order_equal"][name] = (list(ours.external_input) == list(ref.external_input)
                                            and list(ours.external_output) == list(ref.external_output))
    report["equal"] = not report["diffs"]
    print(json.dumps(report, indent=1))
    return 0 if report["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
