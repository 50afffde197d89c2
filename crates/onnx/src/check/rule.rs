//! The stable ids of the checker's rules, their severity and what each means.

use super::Severity;

macro_rules! rules {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $sev:ident; )*) => {
        /// A rule of the checker. [`Rule::id`] is its stable name (used in
        /// `netport check --json` and documented in docs/formats/onnx.md).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule {
            $( $(#[$doc])* $variant, )*
        }

        impl Rule {
            /// Every rule, in documentation order.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant,)*];

            /// The stable id, e.g. `"node-input-undefined"`.
            pub fn id(self) -> &'static str {
                match self { $(Rule::$variant => $id,)* }
            }

            /// Whether breaking it makes a model invalid.
            pub fn severity(self) -> Severity {
                match self { $(Rule::$variant => Severity::$sev,)* }
            }

            /// The rule with this id.
            pub fn from_id(id: &str) -> Option<Rule> {
                match id { $($id => Some(Rule::$variant),)* _ => None }
            }
        }
    };
}

rules! {
    /// `ir_version` is missing or zero.
    IrVersionMissing = "ir-version-missing", Error;
    /// `ir_version` is newer than the newest this checker knows.
    IrVersionUnknown = "ir-version-unknown", Error;
    /// `ir_version` is older than the first IR that could carry the imported
    /// ai.onnx opset (onnx accepts it).
    IrVersionTooOld = "ir-version-too-old", Warning;
    /// Two `metadata_props` entries share a key.
    MetadataDuplicateKey = "metadata-duplicate-key", Error;
    /// IR >= 3 without any `opset_import`.
    OpsetImportMissing = "opset-import-missing", Error;
    /// IR < 3 with an `opset_import`.
    OpsetImportForbidden = "opset-import-forbidden", Error;
    /// An opset version outside the range of a C `int`.
    OpsetVersionRange = "opset-version-range", Error;
    /// A domain imported twice (onnx keeps the last one).
    OpsetImportDuplicate = "opset-import-duplicate", Warning;
    /// The model has no graph.
    GraphMissing = "graph-missing", Error;
    /// `graph.name` is empty.
    GraphNameEmpty = "graph-name-empty", Error;
    /// A graph input or output without a name.
    ValueInfoNameEmpty = "value-info-name-empty", Error;
    /// A main-graph input or output without a type, element type or shape.
    ValueInfoTypeMissing = "value-info-type-missing", Error;
    /// The same name used for two graph inputs.
    GraphInputDuplicate = "graph-input-duplicate", Error;
    /// An initializer (or sparse initializer) without a name.
    InitializerNameEmpty = "initializer-name-empty", Error;
    /// Two initializers (or sparse initializers) with one name.
    InitializerDuplicate = "initializer-duplicate", Error;
    /// IR < 4: an initializer that is not also a graph input.
    InitializerNotInput = "initializer-not-input", Error;
    /// A node input that is not a graph input, an initializer, an earlier
    /// node's output or an outer-scope value (undefined, or nodes out of
    /// topological order).
    NodeInputUndefined = "node-input-undefined", Error;
    /// A value defined twice (SSA): a node output named like a graph input,
    /// an initializer, an outer-scope value or another node's output.
    SsaViolation = "ssa-violation", Error;
    /// A graph output that nothing in the graph defines.
    GraphOutputUndefined = "graph-output-undefined", Error;
    /// A node without an op type.
    NodeOpTypeEmpty = "node-op-type-empty", Error;
    /// A node with neither inputs nor outputs.
    NodeNoIo = "node-no-io", Error;
    /// A node whose domain is not in the opset imports.
    DomainNotImported = "domain-not-imported", Error;
    /// An op with no schema in its (standard) domain at the imported version.
    OpUnknown = "op-unknown", Error;
    /// An op whose schema at the imported version is deprecated.
    OpDeprecated = "op-deprecated", Error;
    /// An experimental op (onnx warns and skips its schema).
    OpExperimental = "op-experimental", Warning;
    /// Too few or too many inputs or outputs for the op's schema, or an
    /// empty name at a required position.
    Arity = "arity", Error;
    /// Two attributes of one node with the same name.
    AttributeDuplicate = "attribute-duplicate", Error;
    /// A malformed attribute: no name, no type, a value field that does not
    /// match its type, or several value fields.
    AttributeMalformed = "attribute-malformed", Error;
    /// An attribute the op's schema does not declare.
    AttributeUnknown = "attribute-unknown", Error;
    /// An attribute of another type than the schema declares.
    AttributeType = "attribute-type", Error;
    /// A required attribute that is absent.
    AttributeRequired = "attribute-required", Error;
    /// A tensor whose data_type is missing or UNDEFINED.
    TensorDataType = "tensor-data-type", Error;
    /// A tensor whose data_type is not a known code (onnx accepts it; its
    /// data cannot be checked).
    TensorDataTypeUnknown = "tensor-data-type-unknown", Warning;
    /// A tensor with a negative dimension, or dims whose product overflows.
    TensorDims = "tensor-dims", Error;
    /// A tensor with no value field, or more than one (raw_data and a typed
    /// field), or data in a 0-element tensor.
    TensorValueFields = "tensor-value-fields", Error;
    /// A tensor whose data is in the wrong field for its type (STRING in
    /// raw_data, INT64 in float_data, ...).
    TensorField = "tensor-field", Error;
    /// A tensor with fewer data bytes or values than its dims and type need.
    TensorSize = "tensor-size", Error;
    /// A sparse tensor that breaks the sparse rules.
    SparseTensor = "sparse-tensor", Error;
    /// External data without a location, with inline data too, or whose
    /// location is absolute, leaves the model's folder or is not a file.
    ExternalData = "external-data", Error;
    /// External data whose offset and length do not lie inside the file
    /// (onnx.checker does not look; loading the model fails).
    ExternalDataRange = "external-data-range", Warning;
    /// A model-local function without a name or domain.
    FunctionMalformed = "function-malformed", Error;
    /// Two model-local functions with the same domain, name and overload.
    FunctionDuplicate = "function-duplicate", Error;
    /// A function's inputs, outputs or attributes repeat a name.
    FunctionSignature = "function-signature", Error;
    /// A function imports another version of a domain than the model, and
    /// one of its nodes has a different schema at the two versions.
    FunctionOpsetIncompatible = "function-opset-incompatible", Error;
    /// Model-local functions that call each other in a cycle.
    FunctionRecursive = "function-recursive", Error;
    /// Shape inference: an inferred element type that differs from the
    /// declared one, or inputs a rule cannot combine (broadcast of 3 against
    /// 4, an axis out of range).
    InferenceTypeClash = "inference-type-clash", Error;
    /// Type inference: an input whose element type its op's type constraint
    /// does not allow, or inputs bound to one type parameter with different
    /// types (onnx's strict inference, `full_check=True`).
    InferenceTypeConstraint = "inference-type-constraint", Error;
    /// Shape inference: an inferred rank or dim that contradicts the
    /// declared shape.
    InferenceShapeClash = "inference-shape-clash", Error;
}
