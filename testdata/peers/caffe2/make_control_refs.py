"""ONNX If/Loop models and the nets Caffe2Backend makes of them, for netport's
control-flow interop tests. Run in the Caffe2 venv (`cargo xtask caffe2-venv`):

    python make_control_refs.py --out DIR

For every case: DIR/<name>/model.onnx (opset 9, the models of caffe2's own
conversion_test.py `test_onnx_to_caffe2_if` / `test_onnx_to_caffe2_loop`, and
variants that netport converts, and nested ones), input_<k>.npy and .pb
(seeded data inputs, in graph-input order; .pb as ONNX TensorProto),
expected_<k>.npy and .pb (the outputs computed with numpy from the model's
meaning),
ref/init_net.pb + ref/predict_net.pb (+ .pbtxt) as
`Caffe2Backend.onnx_graph_to_caffe2_net` writes them, and
ref/caffe2_output_<k>.npy (those nets run in the Caffe2 workspace).
DIR/manifest.json lists the cases with their data inputs and outputs.
"""
# onnx before torch (caffe2 imports torch): else two protobuf copies.
import onnx
import onnx.numpy_helper
import argparse
import json
import os
import sys

import numpy as np
from onnx import helper, TensorProto

from caffe2.python.onnx.backend import Caffe2Backend
from caffe2.python import workspace

SEED = 20261202


def save_net(net, path):
    with open(path, "wb") as f:
        f.write(net.SerializeToString())
    with open(path + "txt", "w") as f:
        f.write(str(net))


def save_array(stem, a):
    np.save(stem + ".npy", a)
    with open(stem + ".pb", "wb") as f:
        f.write(onnx.numpy_helper.from_array(np.asarray(a)).SerializeToString())


def const(name, dtype, dims, vals):
    return helper.make_node("Constant", [], [name],
                            value=helper.make_tensor(name + "_value", dtype, dims, vals))


def case_if(rng, else_nodes=None):
    # conversion_test.py test_onnx_to_caffe2_if: a constant true condition,
    # MatMul in the then branch, Slice in the else branch, both reading outer
    # names (X, W).
    X = rng.rand(2, 3).astype(np.float32)
    W = rng.rand(3, 2).astype(np.float32)
    then_g = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], "true_graph", [],
                               [helper.make_tensor_value_info("Y", TensorProto.FLOAT, (2, 2))])
    if else_nodes is None:
        else_nodes = [helper.make_node("Slice", ["X"], ["Y"], axes=[0, 1], starts=[0, 0],
                                       ends=[2, 2])]
    else_g = helper.make_graph(else_nodes, "false_graph", [],
                               [helper.make_tensor_value_info("Y", TensorProto.FLOAT, (2, 2))])
    nodes = [const("condition", TensorProto.BOOL, (), [True]),
             helper.make_node("If", ["condition"], ["Y"], then_branch=then_g, else_branch=else_g)]
    g = helper.make_graph(nodes, "test",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, (2, 3)),
                           helper.make_tensor_value_info("W", TensorProto.FLOAT, (3, 2))],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, (2, 2))],
                          initializer=[helper.make_tensor("W", TensorProto.FLOAT, [3, 2],
                                                          W.flatten().tolist())])
    return g, [X], [X @ W]


def case_if_const(rng):
    # The same with an else branch of ops netport converts (its op table has
    # no Slice before opset 10): MatMul then Neg.
    return case_if(rng, [helper.make_node("MatMul", ["X", "W"], ["P"]),
                         helper.make_node("Neg", ["P"], ["Y"])])


def case_if_data_cond(rng):
    # The condition is a data input: both branches compute from outer names
    # and an initializer; run with cond false so that the else branch counts.
    X = rng.rand(2, 3).astype(np.float32)
    B = rng.rand(2, 3).astype(np.float32)
    then_g = helper.make_graph([helper.make_node("Add", ["X", "B"], ["T"]),
                                helper.make_node("Relu", ["T"], ["Y"])], "then", [],
                               [helper.make_tensor_value_info("Y", TensorProto.FLOAT, (2, 3))])
    else_g = helper.make_graph([helper.make_node("Mul", ["X", "B"], ["Y"])], "else", [],
                               [helper.make_tensor_value_info("Y", TensorProto.FLOAT, (2, 3))])
    nodes = [helper.make_node("If", ["c"], ["Y"], then_branch=then_g, else_branch=else_g),
             helper.make_node("Sigmoid", ["Y"], ["Z"])]
    g = helper.make_graph(nodes, "if_data_cond",
                          [helper.make_tensor_value_info("c", TensorProto.BOOL, ()),
                           helper.make_tensor_value_info("X", TensorProto.FLOAT, (2, 3)),
                           helper.make_tensor_value_info("B", TensorProto.FLOAT, (2, 3))],
                          [helper.make_tensor_value_info("Z", TensorProto.FLOAT, (2, 3))],
                          initializer=[helper.make_tensor("B", TensorProto.FLOAT, [2, 3],
                                                          B.flatten().tolist())])
    c = np.array(False)
    return g, [c, X], [1.0 / (1.0 + np.exp(-(X * B)))]


def loop_body(nodes, carried, outputs, name="body_graph"):
    # conversion_test.py types the iteration number as an INT32 scalar, which
    # ONNX says is INT64 (so netport's ONNX executor refuses these models).
    # Declared INT64, with a shape or without, the backend's onnx 1.7 shape
    # inference crashes (SIGSEGV) on these bodies.
    inputs = [helper.make_tensor_value_info("i", TensorProto.INT32, ()),
              helper.make_tensor_value_info("cond", TensorProto.BOOL, ())]
    inputs += [helper.make_tensor_value_info("_" + n, TensorProto.FLOAT, s) for n, s in carried]
    outs = [helper.make_tensor_value_info("cond", TensorProto.BOOL, ())]
    outs += [helper.make_tensor_value_info("_" + n, TensorProto.FLOAT, s) for n, s in outputs]
    return helper.make_graph(nodes, name, inputs, outs)


def case_loop(rng):
    # conversion_test.py test_onnx_to_caffe2_loop: 10 trips of Y = Y @ W.
    X = rng.rand(2, 2).astype(np.float32)
    W = rng.rand(2, 2).astype(np.float32)
    body = loop_body([helper.make_node("MatMul", ["_X", "W"], ["_Y"])], [("X", (2, 2))],
                     [("Y", (2, 2))])
    nodes = [const("trip_count", TensorProto.INT64, (1,), [10]),
             const("condition", TensorProto.BOOL, (1,), [True]),
             helper.make_node("Loop", ["trip_count", "condition", "X"], ["Y"], body=body)]
    g = helper.make_graph(nodes, "test",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, (2, 2)),
                           helper.make_tensor_value_info("W", TensorProto.FLOAT, (2, 2))],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, (2, 2))],
                          initializer=[helper.make_tensor("W", TensorProto.FLOAT, [2, 2],
                                                          W.flatten().tolist())])
    Y = X
    for _ in range(10):
        Y = Y @ W
    return g, [X], [Y]


def case_loop_nested_if(rng):
    # A Loop (trip count and condition given as data) whose body holds an If
    # on an outer data value: two loop-carried values, nested control inputs.
    X = rng.rand(2, 2).astype(np.float32)
    S = rng.rand(2, 2).astype(np.float32)
    then_g = helper.make_graph([helper.make_node("Add", ["_A", "S"], ["R"])], "then", [],
                               [helper.make_tensor_value_info("R", TensorProto.FLOAT, (2, 2))])
    else_g = helper.make_graph([helper.make_node("Sub", ["_A", "S"], ["R"])], "else", [],
                               [helper.make_tensor_value_info("R", TensorProto.FLOAT, (2, 2))])
    body = loop_body([helper.make_node("If", ["flag"], ["R"], then_branch=then_g,
                                       else_branch=else_g),
                      helper.make_node("Mul", ["R", "S"], ["_Y"]),
                      helper.make_node("Add", ["_B", "_Y"], ["_Z"])],
                     [("A", (2, 2)), ("B", (2, 2))], [("Y", (2, 2)), ("Z", (2, 2))])
    nodes = [helper.make_node("Loop", ["n", "go", "X", "X"], ["Y", "Z"], body=body)]
    g = helper.make_graph(nodes, "loop_nested_if",
                          [helper.make_tensor_value_info("n", TensorProto.INT64, (1,)),
                           helper.make_tensor_value_info("go", TensorProto.BOOL, (1,)),
                           helper.make_tensor_value_info("flag", TensorProto.BOOL, ()),
                           helper.make_tensor_value_info("X", TensorProto.FLOAT, (2, 2)),
                           helper.make_tensor_value_info("S", TensorProto.FLOAT, (2, 2))],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, (2, 2)),
                           helper.make_tensor_value_info("Z", TensorProto.FLOAT, (2, 2))])
    n, go, flag = np.array([3], dtype=np.int64), np.array([True]), np.array(True)
    A, B = X, X
    for _ in range(3):
        Y = (A + S) * S
        Z = B + Y
        A, B = Y, Z
    return g, [n, go, flag, X, S], [A, B]


CASES = {
    "if": case_if,
    "if_const": case_if_const,
    "if_data_cond": case_if_data_cond,
    "loop": case_loop,
    "loop_nested_if": case_loop_nested_if,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    manifest = {}
    for name, make in CASES.items():
        rng = np.random.RandomState(SEED)
        graph, inputs, expected = make(rng)
        model = helper.make_model(graph, producer_name="netport-control-refs",
                                  opset_imports=[helper.make_opsetid("", 9)])
        onnx.checker.check_model(model)
        d = os.path.join(args.out, name)
        os.makedirs(os.path.join(d, "ref"), exist_ok=True)
        onnx.save(model, os.path.join(d, "model.onnx"))
        inits = {t.name for t in graph.initializer}
        data = [i.name for i in graph.input if i.name not in inits]
        for k, a in enumerate(inputs):
            save_array(os.path.join(d, "input_%d" % k), a)
        for k, a in enumerate(expected):
            save_array(os.path.join(d, "expected_%d" % k), np.asarray(a, dtype=np.float32))
        init_net, predict_net = Caffe2Backend.onnx_graph_to_caffe2_net(model, device="CPU")
        save_net(init_net, os.path.join(d, "ref", "init_net.pb"))
        save_net(predict_net, os.path.join(d, "ref", "predict_net.pb"))
        workspace.ResetWorkspace()
        workspace.RunNetOnce(init_net)
        for blob, a in zip(data, inputs):
            workspace.FeedBlob(blob, a)
        workspace.RunNetOnce(predict_net)
        outs = [o.name for o in graph.output]
        for k, o in enumerate(outs):
            got = workspace.FetchBlob(o)
            np.save(os.path.join(d, "ref", "caffe2_output_%d.npy" % k), got)
            if not np.allclose(got, expected[k], rtol=1e-4, atol=1e-5):
                print("%s: Caffe2 output %s differs from the expected one" % (name, o),
                      file=sys.stderr)
                return 1
        manifest[name] = {"inputs": data, "outputs": outs}
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
