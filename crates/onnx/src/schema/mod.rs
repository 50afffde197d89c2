//! The operator schemas of every domain the onnx package registers (`ai.onnx`,
//! spelled `""`, `ai.onnx.ml`, `ai.onnx.preview`, `ai.onnx.preview.training`),
//! with their whole version history, as static data.
//!
//! The table (`generated.rs`) is written by `cargo xtask schemas` from
//! `onnx.defs.get_all_schemas_with_history()` of the pinned onnx package and
//! committed; CI fails when it is stale. Nothing here needs Python.
//!
//! Versions follow onnx's registry: the schema of an op at opset `N` is the
//! one with the largest `since_version <= N` ([`lookup`]). A deprecated
//! schema is still returned (its [`OpSchema::deprecated`] is `true`), as
//! onnx's registry does; a checker refuses it.
//!
//! ```
//! use netport_onnx::schema::{self, FormalParameterOption};
//!
//! let conv = schema::lookup("", "Conv", 11).expect("Conv exists at opset 11");
//! assert_eq!(conv.since_version, 11);
//! assert_eq!(conv.inputs[2].option, FormalParameterOption::Optional);
//! assert!(schema::lookup("", "Gelu", 19).is_none());
//! ```

mod generated;

use std::fmt;

/// The onnx package version the table was generated from.
pub const ONNX_VERSION: &str = generated::ONNX_VERSION;

/// What onnx writes for "no upper bound" in [`OpSchema::max_input`] and
/// [`OpSchema::max_output`] (`std::numeric_limits<int>::max()`).
pub const UNBOUNDED: usize = i32::MAX as usize;

/// An operator set domain onnx registers, with the opset versions it knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainInfo {
    /// The domain as written in `NodeProto.domain` (`""` is `ai.onnx`).
    pub name: &'static str,
    /// The first opset version of the domain.
    pub min_version: i64,
    /// The newest opset version of the domain onnx knows.
    pub max_version: i64,
}

/// One version of one operator's schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpSchema {
    /// The operator name (`NodeProto.op_type`).
    pub name: &'static str,
    /// Its domain (`""` is `ai.onnx`).
    pub domain: &'static str,
    /// The opset version of the domain that introduced this version.
    pub since_version: i64,
    /// Whether the op is deprecated from this version on (onnx's checker
    /// refuses a node whose schema is deprecated).
    pub deprecated: bool,
    /// Whether onnx marks the op experimental.
    pub support_level: SupportLevel,
    /// The formal inputs, in order.
    pub inputs: &'static [FormalParameter],
    /// The formal outputs, in order.
    pub outputs: &'static [FormalParameter],
    /// The fewest inputs a node may have.
    pub min_input: usize,
    /// The most inputs a node may have ([`UNBOUNDED`] when variadic).
    pub max_input: usize,
    /// The fewest outputs a node may have.
    pub min_output: usize,
    /// The most outputs a node may have ([`UNBOUNDED`] when variadic).
    pub max_output: usize,
    /// The type parameters the inputs and outputs name, with their allowed types.
    pub type_constraints: &'static [TypeConstraint],
    /// The attributes the op knows, sorted by name.
    pub attributes: &'static [AttributeSchema],
}

/// Whether onnx considers an operator stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SupportLevel {
    /// A regular operator (`OpSchema::SupportType::COMMON`).
    Common,
    /// An experimental operator (`OpSchema::SupportType::EXPERIMENTAL`).
    Experimental,
}

impl SupportLevel {
    /// `"common"` or `"experimental"`.
    pub fn name(self) -> &'static str {
        match self {
            SupportLevel::Common => "common",
            SupportLevel::Experimental => "experimental",
        }
    }
}

/// A formal input or output of an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormalParameter {
    /// Its name in the spec (nodes do not name their inputs).
    pub name: &'static str,
    /// Whether it must be given, may be left out, or repeats.
    pub option: FormalParameterOption,
    /// For a variadic parameter: whether every value has the same type.
    pub is_homogeneous: bool,
    /// For a variadic parameter: the fewest values it takes.
    pub min_arity: usize,
    /// The name of a type constraint of the schema (`"T"`), or a literal
    /// type (`"tensor(int64)"`).
    pub type_str: &'static str,
}

/// How often a formal parameter occurs (onnx's `FormalParameterOption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormalParameterOption {
    /// Exactly once.
    Single,
    /// Once, or left out (an empty name, or absent at the end).
    Optional,
    /// Any number of times, at least [`FormalParameter::min_arity`]; only
    /// the last parameter can be variadic.
    Variadic,
}

impl FormalParameterOption {
    /// `"single"`, `"optional"` or `"variadic"`.
    pub fn name(self) -> &'static str {
        match self {
            FormalParameterOption::Single => "single",
            FormalParameterOption::Optional => "optional",
            FormalParameterOption::Variadic => "variadic",
        }
    }
}

/// A type parameter of an operator and the types it may stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeConstraint {
    /// The parameter name (`"T"`, `"T1"`, ...).
    pub name: &'static str,
    /// The allowed types in onnx's notation: `tensor(float)`,
    /// `seq(tensor(int64))`, `optional(tensor(bool))`, `map(int64, string)`, ...
    pub allowed_types: &'static [&'static str],
}

/// An attribute an operator accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttributeSchema {
    /// The attribute name.
    pub name: &'static str,
    /// The type a node's attribute must have.
    pub attr_type: AttrType,
    /// Whether every node must set it.
    pub required: bool,
    /// The value onnx documents when the attribute is absent, if any.
    pub default: Option<AttrValue>,
}

/// The type of an attribute: the values of `AttributeProto.AttributeType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrType {
    /// `UNDEFINED` (0).
    Undefined = 0,
    /// `FLOAT` (1).
    Float = 1,
    /// `INT` (2).
    Int = 2,
    /// `STRING` (3).
    String = 3,
    /// `TENSOR` (4).
    Tensor = 4,
    /// `GRAPH` (5).
    Graph = 5,
    /// `FLOATS` (6).
    Floats = 6,
    /// `INTS` (7).
    Ints = 7,
    /// `STRINGS` (8).
    Strings = 8,
    /// `TENSORS` (9).
    Tensors = 9,
    /// `GRAPHS` (10).
    Graphs = 10,
    /// `SPARSE_TENSOR` (11).
    SparseTensor = 11,
    /// `SPARSE_TENSORS` (12).
    SparseTensors = 12,
    /// `TYPE_PROTO` (13).
    TypeProto = 13,
    /// `TYPE_PROTOS` (14).
    TypeProtos = 14,
}

impl AttrType {
    /// Every attribute type, in `AttributeProto.AttributeType` order.
    pub const ALL: [AttrType; 15] = [
        AttrType::Undefined,
        AttrType::Float,
        AttrType::Int,
        AttrType::String,
        AttrType::Tensor,
        AttrType::Graph,
        AttrType::Floats,
        AttrType::Ints,
        AttrType::Strings,
        AttrType::Tensors,
        AttrType::Graphs,
        AttrType::SparseTensor,
        AttrType::SparseTensors,
        AttrType::TypeProto,
        AttrType::TypeProtos,
    ];

    /// The type for the value of `AttributeProto.type`, if it is one.
    pub fn from_i32(value: i32) -> Option<AttrType> {
        AttrType::ALL.into_iter().find(|t| *t as i32 == value)
    }

    /// The value of `AttributeProto.type` for this type.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The name onnx uses (`"INT"`, `"FLOATS"`, `"SPARSE_TENSOR"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            AttrType::Undefined => "UNDEFINED",
            AttrType::Float => "FLOAT",
            AttrType::Int => "INT",
            AttrType::String => "STRING",
            AttrType::Tensor => "TENSOR",
            AttrType::Graph => "GRAPH",
            AttrType::Floats => "FLOATS",
            AttrType::Ints => "INTS",
            AttrType::Strings => "STRINGS",
            AttrType::Tensors => "TENSORS",
            AttrType::Graphs => "GRAPHS",
            AttrType::SparseTensor => "SPARSE_TENSOR",
            AttrType::SparseTensors => "SPARSE_TENSORS",
            AttrType::TypeProto => "TYPE_PROTO",
            AttrType::TypeProtos => "TYPE_PROTOS",
        }
    }
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The default value of an attribute. onnx gives defaults only for these
/// types (`cargo xtask schemas` fails on any other).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrValue {
    /// A `FLOAT` default (onnx stores `f32`).
    Float(f32),
    /// An `INT` default.
    Int(i64),
    /// A `STRING` default (every default onnx gives is UTF-8).
    String(&'static str),
    /// A `FLOATS` default.
    Floats(&'static [f32]),
    /// An `INTS` default.
    Ints(&'static [i64]),
    /// A `STRINGS` default.
    Strings(&'static [&'static str]),
}

impl AttrValue {
    /// The attribute type of the value.
    pub fn attr_type(&self) -> AttrType {
        match self {
            AttrValue::Float(_) => AttrType::Float,
            AttrValue::Int(_) => AttrType::Int,
            AttrValue::String(_) => AttrType::String,
            AttrValue::Floats(_) => AttrType::Floats,
            AttrValue::Ints(_) => AttrType::Ints,
            AttrValue::Strings(_) => AttrType::Strings,
        }
    }
}

impl fmt::Display for AttrValue {
    /// Python-like: `1`, `0.0001`, `"NOTSET"`, `[1, 1]`, `["Tanh", "Tanh"]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T>(
            f: &mut fmt::Formatter<'_>,
            items: &[T],
            one: impl Fn(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
        ) -> fmt::Result {
            f.write_str("[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                one(f, item)?;
            }
            f.write_str("]")
        }
        match self {
            AttrValue::Float(v) => write!(f, "{v:?}"),
            AttrValue::Int(v) => write!(f, "{v}"),
            AttrValue::String(v) => write!(f, "{v:?}"),
            AttrValue::Floats(v) => list(f, v, |f, x| write!(f, "{x:?}")),
            AttrValue::Ints(v) => list(f, v, |f, x| write!(f, "{x}")),
            AttrValue::Strings(v) => list(f, v, |f, x| write!(f, "{x:?}")),
        }
    }
}

impl OpSchema {
    /// The attribute named `name`, if the op knows it.
    pub fn attribute(&self, name: &str) -> Option<&'static AttributeSchema> {
        self.attributes
            .binary_search_by(|a| a.name.cmp(name))
            .ok()
            .map(|i| &self.attributes[i])
    }

    /// The type constraint named `name` (a [`FormalParameter::type_str`]),
    /// if the schema declares it.
    pub fn type_constraint(&self, name: &str) -> Option<&'static TypeConstraint> {
        self.type_constraints.iter().find(|c| c.name == name)
    }

    /// The allowed types of a formal parameter: those of its type
    /// constraint, or its literal type.
    pub fn allowed_types(&self, param: &'static FormalParameter) -> &'static [&'static str] {
        match self.type_constraint(param.type_str) {
            Some(c) => c.allowed_types,
            None => std::slice::from_ref(&param.type_str),
        }
    }
}

// Constructors the generated table uses: one short line per item.

const fn param(
    name: &'static str,
    option: FormalParameterOption,
    is_homogeneous: bool,
    min_arity: usize,
    type_str: &'static str,
) -> FormalParameter {
    FormalParameter {
        name,
        option,
        is_homogeneous,
        min_arity,
        type_str,
    }
}

const fn constraint(name: &'static str, allowed_types: &'static [&'static str]) -> TypeConstraint {
    TypeConstraint {
        name,
        allowed_types,
    }
}

const fn attr(
    name: &'static str,
    attr_type: AttrType,
    required: bool,
    default: Option<AttrValue>,
) -> AttributeSchema {
    AttributeSchema {
        name,
        attr_type,
        required,
        default,
    }
}

/// Every schema version of every domain, sorted by domain, name and
/// `since_version`.
pub fn all() -> &'static [OpSchema] {
    generated::SCHEMAS
}

/// Every domain onnx registers, sorted by name (`""` first), including
/// domains without operators (`ai.onnx.training`).
pub fn domains() -> &'static [DomainInfo] {
    generated::DOMAINS
}

/// The domain named `name` (exactly as in `NodeProto.domain`: `""` for
/// `ai.onnx`), if onnx registers it.
pub fn domain(name: &str) -> Option<&'static DomainInfo> {
    generated::DOMAINS.iter().find(|d| d.name == name)
}

/// Every version of `op_type` in `domain`, oldest first; empty when the op
/// is unknown there. The domain is matched exactly, as onnx's registry does
/// (`""` is `ai.onnx`; the spelling `"ai.onnx"` finds nothing).
pub fn history(domain: &str, op_type: &str) -> &'static [OpSchema] {
    let all = generated::SCHEMAS;
    let key = (domain, op_type);
    let start = all.partition_point(|s| (s.domain, s.name) < key);
    let end = start + all[start..].partition_point(|s| (s.domain, s.name) == key);
    &all[start..end]
}

/// The schema of `op_type` in `domain` at opset `opset_version` of that
/// domain: the version with the largest `since_version <= opset_version`.
/// `None` when the op is unknown in the domain or not yet introduced at that
/// opset. A deprecated schema is returned too: check
/// [`OpSchema::deprecated`].
pub fn lookup(domain: &str, op_type: &str, opset_version: i64) -> Option<&'static OpSchema> {
    history(domain, op_type)
        .iter()
        .rev()
        .find(|s| s.since_version <= opset_version)
}

/// The names of the operators of `domain` (any version), sorted.
pub fn ops(domain: &str) -> impl Iterator<Item = &'static str> + use<> {
    let all = generated::SCHEMAS;
    let start = all.partition_point(|s| s.domain < domain);
    let end = start + all[start..].partition_point(|s| s.domain == domain);
    let mut last = None;
    all[start..end].iter().filter_map(move |s| {
        if last == Some(s.name) {
            None
        } else {
            last = Some(s.name);
            Some(s.name)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_unique() {
        for pair in all().windows(2) {
            let key = |s: &OpSchema| (s.domain, s.name, s.since_version);
            assert!(key(&pair[0]) < key(&pair[1]), "{:?}", key(&pair[1]));
        }
        for s in all() {
            for pair in s.attributes.windows(2) {
                assert!(pair[0].name < pair[1].name, "{} {}", s.name, pair[1].name);
            }
        }
    }

    #[test]
    fn attr_type_values_are_those_of_attribute_proto() {
        use crate::proto::attribute_proto::AttributeType as P;
        for t in AttrType::ALL {
            let p = P::try_from(t.as_i32()).expect("a proto value");
            assert_eq!(p.as_str_name(), t.name());
            assert_eq!(AttrType::from_i32(p as i32), Some(t));
        }
        assert_eq!(AttrType::from_i32(15), None);
    }
}
