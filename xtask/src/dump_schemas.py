"""Dumps every operator schema the installed onnx package registers, with its
whole version history, as one JSON document on stdout.

Run by `cargo xtask schemas` in the peer venv (the script is embedded in
xtask); xtask turns the document into crates/onnx/src/schema/generated.rs.
Only facts onnx states are written: nothing is derived or defaulted here.
"""

import json
import sys

import onnx
import onnx.defs

OPTION = {
    onnx.defs.OpSchema.FormalParameterOption.Single: "single",
    onnx.defs.OpSchema.FormalParameterOption.Optional: "optional",
    onnx.defs.OpSchema.FormalParameterOption.Variadic: "variadic",
}

SUPPORT = {
    onnx.defs.OpSchema.SupportType.COMMON: "common",
    onnx.defs.OpSchema.SupportType.EXPERIMENTAL: "experimental",
}

AttributeProto = onnx.AttributeProto


def default_value(attr):
    """The attribute's default as {"type", "value"}, or None when it has none."""
    d = attr.default_value
    if d.type == AttributeProto.UNDEFINED:
        return None
    kind = AttributeProto.AttributeType.Name(d.type)
    if d.type == AttributeProto.FLOAT:
        value = d.f
    elif d.type == AttributeProto.INT:
        value = d.i
    elif d.type == AttributeProto.STRING:
        value = d.s.decode("utf-8")
    elif d.type == AttributeProto.FLOATS:
        value = list(d.floats)
    elif d.type == AttributeProto.INTS:
        value = list(d.ints)
    elif d.type == AttributeProto.STRINGS:
        value = [s.decode("utf-8") for s in d.strings]
    else:
        # The table has no representation for it: fail loudly, never drop it.
        raise SystemExit(f"attribute {attr.name}: default of type {kind} is not supported")
    return {"type": kind, "value": value}


def parameter(p):
    return {
        "name": p.name,
        "option": OPTION[p.option],
        "is_homogeneous": bool(p.is_homogeneous),
        "min_arity": int(p.min_arity),
        "type_str": p.type_str,
    }


def schema(s):
    return {
        "name": s.name,
        "domain": s.domain,
        "since_version": int(s.since_version),
        "deprecated": bool(s.deprecated),
        "support_level": SUPPORT[s.support_level],
        "min_input": int(s.min_input),
        "max_input": int(s.max_input),
        "min_output": int(s.min_output),
        "max_output": int(s.max_output),
        "inputs": [parameter(p) for p in s.inputs],
        "outputs": [parameter(p) for p in s.outputs],
        "type_constraints": [
            {"name": tc.type_param_str, "allowed_types": list(tc.allowed_type_strs)}
            for tc in s.type_constraints
        ],
        "attributes": [
            {
                "name": name,
                "type": AttributeProto.AttributeType.Name(int(a.type)),
                "required": bool(a.required),
                "default": default_value(a),
            }
            for name, a in sorted(s.attributes.items())
        ],
    }


def main():
    schemas = [schema(s) for s in onnx.defs.get_all_schemas_with_history()]
    schemas.sort(key=lambda s: (s["domain"], s["name"], s["since_version"]))
    domains = [
        {"domain": d, "min_version": lo, "max_version": hi}
        for d, (lo, hi) in sorted(onnx.defs.C.schema_version_map().items())
    ]
    json.dump(
        {"onnx_version": onnx.__version__, "domains": domains, "schemas": schemas},
        sys.stdout,
        indent=1,
        sort_keys=True,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
