"""What the onnx library reads from a model, as plain JSON for Rust tests.

Shared by make_peers.py (onnx-summary.json) and make_fixtures.py
(tiny_cnn.expected.json), so both files use the same field meanings:

    ir_version        int
    opset_import      [{"domain": str, "version": int}]  in file order; an absent
                      domain reads as "" (proto2 default)
    inputs / outputs  graph.input / graph.output as written (for IR < 4 files
                      graph.input also lists the initializers), each
                      {"name": str, "kind": str, "elem_type": int | null,
                       "shape": [int | str | null] | null}
                      kind is the TypeProto oneof ("tensor_type",
                      "sequence_type", "map_type", "optional_type",
                      "sparse_tensor_type", or null when no type is set);
                      elem_type/shape are only filled for tensor and sparse
                      tensor types. A dim is its dim_value, else its
                      dim_param, else null; shape is null when the type has no
                      shape field at all (unknown rank), [] for a scalar.
    initializer_count len(graph.initializer)
    node_count        len(graph.node) (top-level graph only)
"""


def dim_value(d):
    which = d.WhichOneof("value")
    if which == "dim_value":
        return d.dim_value
    if which == "dim_param":
        return d.dim_param
    return None


def value_info_summary(vi):
    kind = vi.type.WhichOneof("value")
    elem_type = None
    shape = None
    if kind in ("tensor_type", "sparse_tensor_type"):
        t = getattr(vi.type, kind)
        elem_type = t.elem_type
        if t.HasField("shape"):
            shape = [dim_value(d) for d in t.shape.dim]
    return {"name": vi.name, "kind": kind, "elem_type": elem_type, "shape": shape}


def model_summary(m):
    g = m.graph
    return {
        "ir_version": m.ir_version,
        "opset_import": [{"domain": o.domain, "version": o.version} for o in m.opset_import],
        "inputs": [value_info_summary(v) for v in g.input],
        "outputs": [value_info_summary(v) for v in g.output],
        "initializer_count": len(g.initializer),
        "node_count": len(g.node),
    }
