"""Makes the hermetic fixtures of netport-exec's tests (run with the peer
venv's Python: onnx, onnxruntime, numpy):

    python testdata/exec/make_exec_fixtures.py

- tiny_cnn_input.npy / tiny_cnn_output.npy: testdata/onnx/tiny_cnn.onnx run
  by onnxruntime (one intra-op thread) on a fixed random input.

The Caffe2 cases under testdata/exec/caffe2/ are copies of small cases that
crates/exec/tests/make_caffe2_cases.py makes with the real Caffe2 (Python 3.7
+ torch 1.4.0); regenerate them with that script and copy the folders.
"""

import os

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
model = os.path.join(HERE, "..", "onnx", "tiny_cnn.onnx")
rng = np.random.RandomState(20261202)
x = rng.randn(2, 3, 32, 32).astype(np.float32)
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
(y,) = sess.run(None, {"input": x})
np.save(os.path.join(HERE, "tiny_cnn_input.npy"), x)
np.save(os.path.join(HERE, "tiny_cnn_output.npy"), y)
print("tiny_cnn", y.shape)
