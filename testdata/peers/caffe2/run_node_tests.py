"""Runs converted ONNX node tests in the real Caffe2 workspace. Run in the
Caffe2 venv:

    python run_node_tests.py JOBS.json

JOBS.json is a list of {"test", "init_net", "predict_net", "feeds": [[blob,
input_N.pb], ...], "expected": [output_N.pb, ...]}. Each job: run the init
net, feed the inputs (ONNX TensorProto files read with onnx.numpy_helper),
run the predict net, compare every external output with the expected array
(shape equal and numpy.allclose with rtol 1e-3, atol 1e-7, the ONNX backend
test defaults; NaNs equal). Prints one JSON document {test: {"equal": bool,
"error": str}}.
"""
import json
import sys

import numpy as np
import onnx  # noqa: F401  (onnx before anything that imports torch)
from onnx import numpy_helper
from caffe2.proto import caffe2_pb2
from caffe2.python import workspace


def load_net(path):
    net = caffe2_pb2.NetDef()
    with open(path, "rb") as f:
        net.ParseFromString(f.read())
    return net


def load_tensor(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def run(job):
    init, pred = load_net(job["init_net"]), load_net(job["predict_net"])
    workspace.ResetWorkspace()
    workspace.RunNetOnce(init)
    for blob, path in job["feeds"]:
        workspace.FeedBlob(blob, load_tensor(path))
    workspace.RunNetOnce(pred)
    for name, path in zip(pred.external_output, job["expected"]):
        got = np.asarray(workspace.FetchBlob(name))
        want = load_tensor(path)
        if got.shape != want.shape:
            return {"equal": False, "error": "%s: shape %s, expected %s" % (name, got.shape, want.shape)}
        if want.dtype.kind in "fc":
            ok = np.allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-3, atol=1e-7, equal_nan=True)
        else:
            ok = np.array_equal(got.astype(want.dtype), want)
        if not ok:
            diff = ""
            if want.dtype.kind in "fiub" and want.size:
                diff = " max_abs_diff %g" % float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
            return {"equal": False, "error": "%s: values differ%s (dtype %s vs %s)" % (name, diff, got.dtype, want.dtype)}
    return {"equal": True, "error": ""}


def main():
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    results = {}
    for job in jobs:
        try:
            results[job["test"]] = run(job)
        except Exception as e:  # the verdict is the report
            results[job["test"]] = {"equal": False, "error": str(e).splitlines()[0][:300]}
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
