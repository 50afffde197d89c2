"""Converts an ONNX model to a Caffe2 init_net.pb + predict_net.pb pair with
the real Caffe2 (torch 1.4's caffe2.python.onnx.backend, onnx 1.7), for the
browser test of `netport graph` (crates/graph/tests/it/browser.rs).

    python onnx_to_caffe2.py MODEL.onnx OUT_DIR

onnx 1.7 checks models up to IR version 6 and wants every initializer
listed as a graph input (IR < 4), so both are adjusted first; the ops are
what Caffe2's backend makes of them.
"""
import sys

import onnx  # before torch/caffe2, as the Caffe2 venv needs

from caffe2.python.onnx.backend import Caffe2Backend

model = onnx.load(sys.argv[1])
model.ir_version = min(model.ir_version, 6)
listed = {i.name for i in model.graph.input}
for t in model.graph.initializer:
    if t.name not in listed:
        model.graph.input.append(
            onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
        )
opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
init, predict = Caffe2Backend.onnx_graph_to_caffe2_net(model, device="CPU", opset_version=opset)
with open(sys.argv[2] + "/init_net.pb", "wb") as f:
    f.write(init.SerializeToString())
with open(sys.argv[2] + "/predict_net.pb", "wb") as f:
    f.write(predict.SerializeToString())
print(len(init.op), "fill ops,", len(predict.op), "ops")
