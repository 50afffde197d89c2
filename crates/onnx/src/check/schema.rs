//! Schema rules of a node (placeholder until the op-schema table lands).

use super::{At, Checker};
use crate::proto::NodeProto;

pub(super) fn check_node_schema(
    _cx: &mut Checker,
    _at: &At<'_>,
    _node: &NodeProto,
    _domain: &str,
    _version: i64,
) {
}
