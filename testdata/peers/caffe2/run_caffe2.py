"""Runs a Caffe2 init/predict pair in the real Caffe2 workspace and compares
its first output with an expected array. Run in the Caffe2 venv:

    python run_caffe2.py INIT_NET PREDICT_NET --feed NAME=INPUT.npy [...]
        [--expect EXPECTED.npy [--expect-next NEXT.npy ...] --rtol R --atol A]
        [--save OUT.npy [--save-next]]

The init net runs once, the feeds are written into the workspace, the
predict net runs, and its external outputs are read back. Prints one JSON
document: output names and shapes, max_abs_diff and allclose against the
expected array (numpy.allclose with the given tolerances); each
--expect-next is compared with the next output in order (RNN nets: Y_h, Y_c).
"""
# onnx is not needed here, but keep the venv's rule: nothing imports torch first.
import argparse
import json
import sys

import numpy as np
from caffe2.proto import caffe2_pb2
from caffe2.python import workspace


def load(path):
    net = caffe2_pb2.NetDef()
    with open(path, "rb") as f:
        net.ParseFromString(f.read())
    return net


def main():
    p = argparse.ArgumentParser()
    p.add_argument("init_net")
    p.add_argument("predict_net")
    p.add_argument("--feed", action="append", default=[])
    p.add_argument("--expect")
    p.add_argument("--expect-next", action="append", default=[])
    p.add_argument("--rtol", type=float, default=1e-4)
    p.add_argument("--atol", type=float, default=1e-5)
    p.add_argument("--save")
    p.add_argument("--save-next", action="store_true",
                   help="also save output i > 0 as OUT_i.npy")
    a = p.parse_args()
    init_net, predict_net = load(a.init_net), load(a.predict_net)
    workspace.ResetWorkspace()
    workspace.RunNetOnce(init_net)
    for feed in a.feed:
        name, path = feed.split("=", 1)
        workspace.FeedBlob(name, np.load(path))
    workspace.RunNetOnce(predict_net)
    outputs = [workspace.FetchBlob(o) for o in predict_net.external_output]
    report = {"outputs": [{"name": n, "shape": list(o.shape), "dtype": str(o.dtype)}
                          for n, o in zip(predict_net.external_output, outputs)]}
    if a.save:
        np.save(a.save, outputs[0])
        if a.save_next:
            for i, o in enumerate(outputs[1:], start=1):
                np.save(a.save[:-len(".npy")] + "_%d.npy" % i if a.save.endswith(".npy")
                        else "%s_%d" % (a.save, i), o)
    if a.expect:
        want = np.load(a.expect)
        got = outputs[0]
        report["shape_equal"] = list(got.shape) == list(want.shape)
        if report["shape_equal"]:
            report["max_abs_diff"] = float(np.abs(got.astype(np.float64) - want).max())
            report["allclose"] = bool(np.allclose(got, want, rtol=a.rtol, atol=a.atol))
        else:
            report["allclose"] = False
        for i, path in enumerate(a.expect_next, start=1):
            want, got = np.load(path), outputs[i]
            same = list(got.shape) == list(want.shape) and bool(
                np.allclose(got, want, rtol=a.rtol, atol=a.atol))
            if same:
                diff = float(np.abs(got.astype(np.float64) - want).max())
                report["max_abs_diff"] = max(report.get("max_abs_diff", 0.0), diff)
            report["allclose"] = report["allclose"] and same
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
