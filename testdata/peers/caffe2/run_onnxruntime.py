"""Checks an ONNX model with onnx.checker (full_check: types and shapes too)
and runs it in onnxruntime, comparing its first output with an expected
array. Run in the peer venv (onnx + onnxruntime of today), not the Caffe2 one:

    python run_onnxruntime.py MODEL.onnx --feed NAME=INPUT.npy [...]
        [--expect EXPECTED.npy [--expect-next NEXT.npy ...] --rtol R --atol A]

Prints one JSON document: checker verdict, output shape, max_abs_diff and
allclose (numpy.allclose with the given tolerances); each --expect-next is
compared with the next output in order (RNN models: Y_h, Y_c).
"""
import argparse
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--feed", action="append", default=[])
    p.add_argument("--expect")
    p.add_argument("--expect-next", action="append", default=[])
    p.add_argument("--rtol", type=float, default=1e-4)
    p.add_argument("--atol", type=float, default=1e-5)
    a = p.parse_args()
    report = {}
    try:
        onnx.checker.check_model(onnx.load(a.model), full_check=True)
        report["checker"] = "ok"
    except Exception as e:  # the verdict is the report
        report["checker"] = str(e)[:2000]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    feeds = {}
    for f in a.feed:
        name, path = f.split("=", 1)
        feeds[name] = np.load(path)
    outputs = sess.run(None, feeds)
    got = outputs[0]
    report["shape"] = list(got.shape)
    if a.expect:
        want = np.load(a.expect)
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
