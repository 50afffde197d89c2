"""Write the mutation corpus of `netport check` and what onnx.checker says of it.

Run from the repository root with the peer venv (onnx 1.23.2):

    python testdata/onnx/make_check_cases.py

Three small valid base models (an MLP, a CNN, an If with subgraphs that read
outer-scope values) are each broken in many ways (undefined input, SSA,
node order, unknown op, missing opset import, attributes, arity, tensor sizes,
external data, functions, ...). Every case is saved under testdata/onnx/check/
as <base>__<kind>.onnx, and `onnx.checker.check_model(path, full_check=False)`
is run on the saved file; its verdict and message go to
testdata/onnx/check/expected.json, and so do those of
`check_model(path, full_check=True)` (strict type and shape inference:
`onnx_full_valid`, `onnx_full_message`); a few kinds (a type an op's
constraint refuses, a declared output contradicting inference) are caught by
full_check only. Some "breakages" are accepted by onnx (IR
too old for the opset, duplicate opset imports, a newer opset than onnx
knows, external data past the end of its file): they are recorded as valid,
and netport must accept them too (it may warn). Deterministic: no random data,
no timestamps.
"""

import copy
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

OUT = Path(__file__).resolve().parent / "check"
MAX_TOTAL_BYTES = 300 * 1024


def vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def model(graph, opset, ir, extra_opsets=()):
    m = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)] + list(extra_opsets),
        producer_name="netport-check-cases",
    )
    m.ir_version = ir
    return m


def base_mlp():
    w = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    b = np.array([0.5, -0.5, 0.25], dtype=np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "b"], ["hb"], name="add"),
        helper.make_node("Relu", ["hb"], ["r"], name="relu"),
        helper.make_node("Softmax", ["r"], ["s"], name="softmax", axis=-1),
        helper.make_node("Cast", ["s"], ["y"], name="cast", to=T.FLOAT),
    ]
    g = helper.make_graph(
        nodes, "mlp", [vi("x", T.FLOAT, ["batch", 4])], [vi("y", T.FLOAT, ["batch", 3])],
        initializer=[init("w", w), init("b", b)],
    )
    return model(g, 21, 10)


def base_cnn():
    w = (np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3) - 8) / 16
    b = np.array([0.1, -0.1], dtype=np.float32)
    shape = np.array([1, -1], dtype=np.int64)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p", "shape"], ["f"], name="flatten"),
        helper.make_node("Cast", ["f"], ["y"], name="cast", to=T.FLOAT),
    ]
    g = helper.make_graph(
        nodes, "cnn", [vi("x", T.FLOAT, [1, 1, 4, 4])], [vi("y", T.FLOAT, [1, 8])],
        initializer=[init("w", w), init("b", b), init("shape", shape)],
    )
    return model(g, 17, 8)


def base_if():
    k = np.array([2.0, 3.0], dtype=np.float32)
    then_g = helper.make_graph(
        [helper.make_node("Mul", ["x", "k"], ["t_out"], name="then_mul")],
        "then", [], [vi("t_out", T.FLOAT, [2])],
    )
    else_g = helper.make_graph(
        [helper.make_node("Sub", ["x", "k"], ["e_out"], name="else_sub")],
        "else", [], [vi("e_out", T.FLOAT, [2])],
    )
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["sum"], name="sum", keepdims=0),
        helper.make_node("Greater", ["sum", "zero"], ["cond"], name="gt"),
        helper.make_node("If", ["cond"], ["z"], name="if", then_branch=then_g, else_branch=else_g),
        helper.make_node("Cast", ["z"], ["y"], name="cast", to=T.FLOAT),
    ]
    g = helper.make_graph(
        nodes, "branchy", [vi("x", T.FLOAT, [2])], [vi("y", T.FLOAT, [2])],
        initializer=[init("k", k), init("zero", np.array(0.0, dtype=np.float32))],
    )
    return model(g, 13, 7)


BASES = {"mlp": base_mlp, "cnn": base_cnn, "if": base_if}


# --- mutations: each takes a copy of a base and changes it in place; a
# mutation that returns False does not apply to that base. Some need the
# case's directory (external data).

def undefined_input(m, d):
    m.graph.node[1].input[0] = "nowhere"


def ssa_violation(m, d):
    m.graph.node[1].output[0] = m.graph.node[0].output[0]


def ssa_output_is_initializer(m, d):
    m.graph.node[0].output[0] = m.graph.initializer[0].name


def nodes_out_of_order(m, d):
    nodes = list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(reversed(nodes))


def unknown_op(m, d):
    m.graph.node[0].op_type = "NoSuchOp"


def missing_opset_import(m, d):
    m.ClearField("opset_import")


def unknown_attribute(m, d):
    m.graph.node[0].attribute.append(helper.make_attribute("bogus", 1))


def internal_attribute(m, d):
    # Names starting with "__" are never checked against the schema.
    m.graph.node[0].attribute.append(helper.make_attribute("__netport", 1))


def mistyped_attribute(m, d):
    cast = next(n for n in m.graph.node if n.op_type == "Cast")
    del cast.attribute[:]
    cast.attribute.append(helper.make_attribute("to", 1.0))


def missing_required_attribute(m, d):
    cast = next(n for n in m.graph.node if n.op_type == "Cast")
    del cast.attribute[:]


def duplicate_attribute(m, d):
    cast = next(n for n in m.graph.node if n.op_type == "Cast")
    cast.attribute.append(helper.make_attribute("to", T.FLOAT))


def attribute_field_mismatch(m, d):
    cast = next(n for n in m.graph.node if n.op_type == "Cast")
    cast.attribute[0].f = 1.0


def too_many_inputs(m, d):
    relu = next((n for n in m.graph.node if n.op_type in ("Relu", "Mul")), None)
    if relu is None:
        relu = m.graph.node[-1]
    relu.input.append(m.graph.input[0].name)


def too_few_inputs(m, d):
    node = next(n for n in m.graph.node if n.op_type in ("Add", "MatMul", "Reshape", "Greater"))
    del node.input[1:]


def too_many_outputs(m, d):
    cast = next(n for n in m.graph.node if n.op_type == "Cast")
    cast.output.append("extra")


def empty_single_input(m, d):
    node = next(n for n in m.graph.node if n.op_type in ("Add", "MatMul", "Reshape", "Greater"))
    node.input[1] = ""


def omitted_optional_input(m, d):
    # Conv's bias is optional: an empty name there is fine; elsewhere an
    # optional trailing input is left out.
    conv = next((n for n in m.graph.node if n.op_type == "Conv"), None)
    if conv is None:
        return False
    conv.input[2] = ""


def initializer_raw_too_small(m, d):
    t = m.graph.initializer[0]
    t.raw_data = t.raw_data[: len(t.raw_data) // 2]


def initializer_dtype_mismatch(m, d):
    t = m.graph.initializer[0]
    t.data_type = T.DOUBLE  # raw_data keeps the float32 bytes: half of what DOUBLE needs


def initializer_wrong_field(m, d):
    t = m.graph.initializer[0]
    values = numpy_helper.to_array(t).astype(np.float32).ravel().tolist()
    t.ClearField("raw_data")
    t.float_data.extend(values)
    t.data_type = T.INT64


def initializer_typed_too_short(m, d):
    t = m.graph.initializer[0]
    values = numpy_helper.to_array(t).ravel().tolist()
    t.ClearField("raw_data")
    if t.data_type == T.INT64:
        t.int64_data.extend(values[:-1])
    else:
        t.float_data.extend(values[:-1])


def initializer_two_fields(m, d):
    t = m.graph.initializer[0]
    values = numpy_helper.to_array(t).ravel().tolist()
    if t.data_type == T.INT64:
        t.int64_data.extend(values)
    else:
        t.float_data.extend(values)


def initializer_no_data(m, d):
    m.graph.initializer[0].ClearField("raw_data")


def initializer_undefined_dtype(m, d):
    m.graph.initializer[0].data_type = T.UNDEFINED


def initializer_negative_dim(m, d):
    m.graph.initializer[0].dims[0] = -1


def string_in_raw_data(m, d):
    t = helper.make_tensor("label", T.STRING, [1], [b"x"])
    t.ClearField("string_data")
    t.raw_data = b"abcd"
    m.graph.initializer.append(t)


def duplicate_initializer(m, d):
    m.graph.initializer.append(copy.deepcopy(m.graph.initializer[0]))


def unnamed_initializer(m, d):
    t = copy.deepcopy(m.graph.initializer[0])
    t.name = ""
    m.graph.initializer.append(t)


def duplicate_input(m, d):
    m.graph.input.append(copy.deepcopy(m.graph.input[0]))


def input_without_shape(m, d):
    m.graph.input[0].type.tensor_type.ClearField("shape")


def input_without_type(m, d):
    m.graph.input[0].ClearField("type")


def graph_output_not_produced(m, d):
    m.graph.output[0].name = "ghost"


def graph_output_is_input(m, d):
    m.graph.output.append(copy.deepcopy(m.graph.input[0]))


def graph_without_name(m, d):
    m.graph.name = ""


def ir_version_missing(m, d):
    m.ClearField("ir_version")


def ir_version_too_new(m, d):
    m.ir_version = 99


def ir_version_too_old_for_opset(m, d):
    m.ir_version = 4  # below what the ai.onnx opset shipped with; onnx accepts it


def ir3_initializer_not_input(m, d):
    m.ir_version = 3


def ir3_initializers_as_inputs(m, d):
    m.ir_version = 3
    for t in m.graph.initializer:
        m.graph.input.append(vi(t.name, t.data_type, list(t.dims)))


def ir2_with_opset_import(m, d):
    m.ir_version = 2


def duplicate_opset_import(m, d):
    m.opset_import.append(helper.make_opsetid("", m.opset_import[0].version))


def opset_newer_than_onnx(m, d):
    m.opset_import[0].version = 29


def duplicate_metadata_key(m, d):
    helper.set_model_props(m, {"k": "1"})
    m.metadata_props.append(onnx.StringStringEntryProto(key="k", value="2"))


def domain_not_imported(m, d):
    m.graph.node[0].domain = "com.example"


def custom_domain_imported(m, d):
    m.graph.node[0].domain = "com.example"
    m.graph.node[0].op_type = "Anything"
    m.opset_import.append(helper.make_opsetid("com.example", 1))


def ai_onnx_alias(m, d):
    m.opset_import[0].domain = "ai.onnx"
    m.graph.node[0].domain = "ai.onnx"


def node_without_io(m, d):
    m.graph.node.append(helper.make_node("Constant", [], [], value_float=1.0))


def experimental_op(m, d):
    m.graph.node.append(helper.make_node("ScaledTanh", [m.graph.input[0].name], ["scaled"]))


def deprecated_op(m, d):
    if m.opset_import[0].version < 10:
        return False
    m.graph.node.append(
        helper.make_node("Upsample", [m.graph.input[0].name, "scales"], ["up"], name="up")
    )
    m.graph.initializer.append(init("scales", np.ones(len(m.graph.input[0].type.tensor_type.shape.dim), np.float32)))


def subgraph_reads_later_value(m, d):
    ifs = [n for n in m.graph.node if n.op_type == "If"]
    if not ifs:
        return False
    then_g = ifs[0].attribute[0].g
    then_g.node[0].input[1] = "y"  # defined after the If in the outer graph


def subgraph_redefines_outer_value(m, d):
    ifs = [n for n in m.graph.node if n.op_type == "If"]
    if not ifs:
        return False
    then_g = ifs[0].attribute[0].g
    then_g.node[0].output[0] = "sum"
    then_g.output[0].name = "sum"


def subgraph_output_named_like_parent_output(m, d):
    ifs = [n for n in m.graph.node if n.op_type == "If"]
    if not ifs:
        return False
    then_g = ifs[0].attribute[0].g
    then_g.node[0].output[0] = "z"
    then_g.output[0].name = "z"


def subgraph_undefined_input(m, d):
    ifs = [n for n in m.graph.node if n.op_type == "If"]
    if not ifs:
        return False
    ifs[0].attribute[1].g.node[0].input[0] = "nowhere"


def missing_subgraph_attribute(m, d):
    ifs = [n for n in m.graph.node if n.op_type == "If"]
    if not ifs:
        return False
    del ifs[0].attribute[1]


def _external(m, location):
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = T.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "16")):
        t.external_data.append(onnx.StringStringEntryProto(key=k, value=v))


def external_escapes_folder(m, d):
    _external(m, "../tiny_cnn.onnx")


def external_absolute_path(m, d):
    _external(m, "/etc/hostname")


def external_missing_file(m, d):
    _external(m, "no_such_file.bin")


def _external_file(m, d, name, data, length):
    t = m.graph.initializer[0]
    location = f"{name}.bin"
    (d / location).write_bytes(data)
    t.ClearField("raw_data")
    t.data_location = T.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(length))):
        t.external_data.append(onnx.StringStringEntryProto(key=k, value=v))


def external_ok(m, d, name=None):
    data = m.graph.initializer[0].raw_data
    _external_file(m, d, name, data, len(data))


def external_past_end_of_file(m, d, name=None):
    # onnx.checker does not look at offset and length: valid for it.
    _external_file(m, d, name, m.graph.initializer[0].raw_data[:4], 4096)


def external_without_location(m, d):
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = T.EXTERNAL
    t.external_data.append(onnx.StringStringEntryProto(key="offset", value="0"))


def _function(name, domain="local", calls=None):
    op, dom = calls if calls else ("Relu", "")
    return helper.make_function(
        domain, name, ["a"], ["b"], [helper.make_node(op, ["a"], ["b"], domain=dom)],
        [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
    )


def _call_function(m):
    m.opset_import.append(helper.make_opsetid("local", 1))
    m.graph.node.append(helper.make_node("F", [m.graph.input[0].name], ["f_out"], domain="local"))


def local_function_ok(m, d):
    if m.ir_version < 8:
        return False
    m.functions.append(_function("F"))
    _call_function(m)


def duplicate_local_function(m, d):
    if m.ir_version < 8:
        return False
    m.functions.extend([_function("F"), _function("F")])
    _call_function(m)


def recursive_local_functions(m, d):
    if m.ir_version < 8:
        return False
    m.functions.extend([_function("F", calls=("G", "local")), _function("G", calls=("F", "local"))])
    _call_function(m)


def local_function_without_domain(m, d):
    if m.ir_version < 8:
        return False
    f = _function("F")
    f.ClearField("domain")
    m.functions.append(f)


def local_function_undefined_input(m, d):
    if m.ir_version < 8:
        return False
    f = _function("F")
    f.node[0].input[0] = "nowhere"
    m.functions.append(f)
    _call_function(m)


def attribute_without_type(m, d):
    cast = next(n for n in m.graph.node if n.op_type == "Cast")
    cast.attribute[0].ClearField("type")


def zero_element_tensor_with_data(m, d):
    m.graph.initializer.append(_zero_with_data())


def _zero_with_data():
    t = helper.make_tensor("empty", T.FLOAT, [0], [])
    t.raw_data = b"\0\0\0\0"
    return t


def unknown_data_type(m, d):
    m.graph.initializer[0].data_type = 99


def _sparse(values, indices, dims):
    v = numpy_helper.from_array(np.asarray(values, dtype=np.float32), "sp")
    i = numpy_helper.from_array(np.asarray(indices, dtype=np.int64), "sp_indices") if indices is not None else None
    return helper.make_sparse_tensor(v, i, dims) if i is not None else _sparse_no_indices(v, dims)


def _sparse_no_indices(v, dims):
    st = onnx.SparseTensorProto()
    st.values.CopyFrom(v)
    st.dims.extend(dims)
    return st


def sparse_initializer_ok(m, d):
    m.graph.sparse_initializer.append(_sparse([1.0, 2.0], [1, 3], [4]))


def sparse_indices_2d_ok(m, d):
    m.graph.sparse_initializer.append(_sparse([1.0, 2.0], [[0, 1], [1, 0]], [2, 2]))


def sparse_indices_not_ascending(m, d):
    m.graph.sparse_initializer.append(_sparse([1.0, 2.0], [3, 1], [4]))


def sparse_index_out_of_range(m, d):
    m.graph.sparse_initializer.append(_sparse([1.0, 2.0], [1, 9], [4]))


def sparse_without_indices(m, d):
    m.graph.sparse_initializer.append(_sparse([1.0, 2.0], None, [4]))


def sparse_named_like_initializer(m, d):
    st = _sparse([1.0, 2.0], [1, 3], [4])
    st.values.name = m.graph.initializer[0].name
    m.graph.sparse_initializer.append(st)


def local_function_ref_attr_with_value(m, d):
    if m.ir_version < 8:
        return False
    f = helper.make_function(
        "local", "F", ["a"], ["b"],
        [helper.make_node("LeakyRelu", ["a"], ["b"])],
        [helper.make_opsetid("", 17)], attributes=["alpha"],
    )
    attr = helper.make_attribute("alpha", 0.5)
    attr.ref_attr_name = "alpha"
    f.node[0].attribute.append(attr)
    m.functions.append(f)
    _call_function(m)


def local_function_ref_attr_ok(m, d):
    if m.ir_version < 8:
        return False
    f = helper.make_function(
        "local", "F", ["a"], ["b"],
        [helper.make_node("LeakyRelu", ["a"], ["b"])],
        [helper.make_opsetid("", 17)], attributes=["alpha"],
    )
    f.node[0].attribute.append(helper.make_attribute_ref("alpha", onnx.AttributeProto.FLOAT))
    m.functions.append(f)
    _call_function(m)


def _reshape_function(opset):
    return helper.make_function(
        "local", "F", ["a", "s"], ["b"], [helper.make_node("Reshape", ["a", "s"], ["b"])],
        [helper.make_opsetid("", opset)],
    )


def local_function_opset_compatible(m, d):
    if m.ir_version < 8:
        return False
    # Relu has the same schema (since 14) at the model's and the function's opset.
    f = _function("F")
    del f.opset_import[:]
    f.opset_import.extend([helper.make_opsetid("", 14)])
    m.functions.append(f)
    _call_function(m)


def local_function_opset_incompatible(m, d):
    if m.ir_version < 8 or m.opset_import[0].version < 19:
        return False
    # Reshape at opset 14 (function) and 21 (model) are different schemas.
    m.functions.append(_reshape_function(14))


def function_domain_imported_by_function_only(m, d):
    if m.ir_version < 8:
        return False
    m.functions.append(_function("F"))
    m.graph.node.append(helper.make_node("F", [m.graph.input[0].name], ["f_out"], domain="local"))


# --- breakages only full_check (strict type and shape inference) finds.

def relu_int8_input(m, d):
    # Relu allows int8 from opset 14 on: invalid for the opset-13 base only.
    m.graph.input.append(vi("q", T.INT8, [2]))
    m.graph.node.append(helper.make_node("Relu", ["q"], ["q_out"], name="relu_q"))
    m.graph.output.append(vi("q_out", T.INT8, [2]))


def add_float_int64(m, d):
    x = m.graph.input[0]
    m.graph.input.append(vi("n", T.INT64, [1]))
    m.graph.node.append(helper.make_node("Add", [x.name, "n"], ["xn"], name="add_n"))
    out = copy.deepcopy(x)
    out.name = "xn"
    m.graph.output.append(out)


def declared_output_shape_contradicts(m, d):
    dims = m.graph.output[0].type.tensor_type.shape.dim
    dims[len(dims) - 1].dim_value += 1


def declared_output_type_contradicts(m, d):
    m.graph.output[0].type.tensor_type.elem_type = T.INT32


def initializer_type_clash(m, d):
    # The first node's second input (a float initializer or value) becomes double.
    name = m.graph.node[0].input[-1]
    for t in m.graph.initializer:
        if t.name == name:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), name))
            return None
    return False


def _branches(m):
    ifs = [n for n in m.graph.node if n.op_type == "If"]
    if not ifs:
        return None
    by_name = {a.name: a.g for a in ifs[0].attribute}
    return by_name["then_branch"], by_name["else_branch"]


def subgraph_relu_int8(m, d):
    # Relu on an int8 outer value inside a branch: Relu takes int8 from opset 14
    branches = _branches(m)
    if branches is None:
        return False
    m.graph.input.append(vi("q", T.INT8, [2]))
    branches[0].node.append(helper.make_node("Relu", ["q"], ["q_relu"], name="then_relu_q"))


def subgraph_add_float_int64(m, d):
    branches = _branches(m)
    if branches is None:
        return False
    m.graph.input.append(vi("n", T.INT64, [1]))
    branches[1].node.append(helper.make_node("Add", ["x", "n"], ["xn"], name="else_add_n"))


def subgraph_output_type_contradicts(m, d):
    branches = _branches(m)
    if branches is None:
        return False
    branches[0].output[0].type.tensor_type.elem_type = T.INT32


def if_branch_types_differ(m, d):
    # both branches declare what they compute, but one says int32, the other float
    branches = _branches(m)
    if branches is None:
        return False
    else_g = branches[1]
    else_g.node.append(helper.make_node("Cast", ["e_out"], ["e_int"], name="else_cast", to=T.INT32))
    del else_g.output[:]
    else_g.output.append(vi("e_int", T.INT32, [2]))


def function_body_type_clash(m, d):
    # a local function adding an int64 constant to its (float) input
    if m.ir_version < 8:
        return False
    f = helper.make_function(
        "local", "F", ["a"], ["b"],
        [helper.make_node("Constant", [], ["one"], value_int=1),
         helper.make_node("Add", ["a", "one"], ["b"])],
        [helper.make_opsetid("", m.opset_import[0].version)],
    )
    m.functions.append(f)
    _call_function(m)


MUTATIONS = [
    undefined_input, ssa_violation, ssa_output_is_initializer, nodes_out_of_order, unknown_op,
    missing_opset_import, unknown_attribute, internal_attribute, mistyped_attribute,
    missing_required_attribute, duplicate_attribute, attribute_field_mismatch, too_many_inputs,
    too_few_inputs, too_many_outputs, empty_single_input, omitted_optional_input,
    initializer_raw_too_small, initializer_dtype_mismatch, initializer_wrong_field,
    initializer_typed_too_short, initializer_two_fields, initializer_no_data,
    initializer_undefined_dtype, initializer_negative_dim, string_in_raw_data,
    duplicate_initializer, unnamed_initializer, duplicate_input, input_without_shape,
    input_without_type, graph_output_not_produced, graph_output_is_input, graph_without_name,
    ir_version_missing, ir_version_too_new, ir_version_too_old_for_opset,
    ir3_initializer_not_input, ir3_initializers_as_inputs, ir2_with_opset_import,
    duplicate_opset_import, opset_newer_than_onnx, duplicate_metadata_key, domain_not_imported,
    custom_domain_imported, ai_onnx_alias, node_without_io, experimental_op, deprecated_op,
    subgraph_reads_later_value, subgraph_redefines_outer_value,
    subgraph_output_named_like_parent_output, subgraph_undefined_input,
    missing_subgraph_attribute, external_escapes_folder, external_absolute_path,
    external_missing_file, external_ok, external_past_end_of_file, external_without_location,
    local_function_ok, duplicate_local_function, recursive_local_functions,
    local_function_without_domain, local_function_undefined_input, attribute_without_type,
    zero_element_tensor_with_data, unknown_data_type, sparse_initializer_ok, sparse_indices_2d_ok,
    sparse_indices_not_ascending, sparse_index_out_of_range, sparse_without_indices,
    sparse_named_like_initializer, local_function_ref_attr_with_value, local_function_ref_attr_ok,
    local_function_opset_compatible, local_function_opset_incompatible,
    function_domain_imported_by_function_only, relu_int8_input, add_float_int64,
    declared_output_shape_contradicts, declared_output_type_contradicts, initializer_type_clash,
    subgraph_relu_int8, subgraph_add_float_int64, subgraph_output_type_contradicts,
    if_branch_types_differ, function_body_type_clash,
]


def verdict(path, full_check=False):
    try:
        onnx.checker.check_model(str(path), full_check=full_check)
        return True, None
    except Exception as e:  # ValidationError, and anything else onnx raises
        message = str(e).split("\n\n==> Context")[0].strip()
        # The corpus's folder appears in external-data messages; keep the
        # committed file free of this machine's paths.
        return False, message.replace(str(OUT) + "/", "<dir>/").replace(str(OUT), "<dir>")


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    cases = []
    for base_name, make in BASES.items():
        items = [("valid", None)] + [(f.__name__, f) for f in MUTATIONS]
        for kind, mutate in items:
            name = f"{base_name}__{kind}"
            m = make()
            if mutate is not None:
                takes_name = "name" in mutate.__code__.co_varnames[: mutate.__code__.co_argcount]
                applied = mutate(m, OUT, name=name) if takes_name else mutate(m, OUT)
                if applied is False:
                    continue
            path = OUT / f"{name}.onnx"
            path.write_bytes(m.SerializeToString(deterministic=True))
            valid, message = verdict(path)
            full_valid, full_message = verdict(path, full_check=True)
            cases.append({"file": path.name, "base": base_name, "kind": kind,
                          "onnx_valid": valid, "onnx_message": message,
                          "onnx_full_valid": full_valid, "onnx_full_message": full_message})
    (OUT / "expected.json").write_text(
        json.dumps({"onnx_version": onnx.__version__, "cases": cases}, indent=1, sort_keys=True) + "\n"
    )
    total = sum(p.stat().st_size for p in OUT.iterdir())
    kinds = {c["kind"] for c in cases}
    print(f"{len(cases)} cases of {len(kinds)} kinds, {total} bytes; "
          f"{sum(c['onnx_valid'] for c in cases)} valid for onnx, "
          f"{sum(c['onnx_full_valid'] for c in cases)} with full_check")
    if total > MAX_TOTAL_BYTES:
        sys.exit(f"the corpus is {total} bytes, over {MAX_TOTAL_BYTES}")


if __name__ == "__main__":
    main()
