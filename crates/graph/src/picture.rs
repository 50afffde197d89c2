//! The format-neutral picture of a network: boxes (ops, graph inputs and
//! outputs, folded scopes), the edges between them and the clusters that
//! hold subgraph bodies. Adapters make one; the layout and the writers read
//! it. Node, edge and cluster ids are indexes into the vectors.

use crate::family::Family;

/// What a box stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// An operator.
    Op,
    /// A graph input (or a value a subgraph body takes from outside).
    Input,
    /// A graph output.
    Output,
    /// A folded name scope standing for `count` ops.
    Collapsed {
        /// How many ops the box stands for (ops of nested bodies included).
        count: usize,
    },
}

/// One box of the picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What it stands for.
    pub kind: NodeKind,
    /// The bold first line: the op type, the value name of an input or
    /// output, the last segment of a folded scope.
    pub title: String,
    /// The line below it: the op's name, the type of an input or output
    /// (`float32 ⟨1×3×224×224⟩`), the full folded scope; empty when none.
    pub subtitle: String,
    /// Initializers the op consumes, one line each: `W ⟨64×3×7×7⟩`.
    pub initializers: Vec<String>,
    /// Attributes as `(name, value)`, in the model's order.
    pub attributes: Vec<(String, String)>,
    /// The family that picks the colour.
    pub family: Family,
    /// The cluster (subgraph body) the box is in; `None` for the main graph.
    pub cluster: Option<usize>,
}

/// An edge: a value from the box that makes it to a box that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The producing node.
    pub from: usize,
    /// The consuming node.
    pub to: usize,
    /// The name of the value.
    pub value: String,
    /// The dtype and shape, when known (`float32 ⟨1×64×56×56⟩`).
    pub label: Option<String>,
}

/// A subgraph body drawn inside the op that owns it (If, Loop, Scan, a
/// Caffe2 net argument).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The node that owns the body.
    pub owner: usize,
    /// The attribute holding it: `then_branch`, `body`, ...
    pub label: String,
}

/// A whole picture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Picture {
    /// The model or net name (may be empty).
    pub title: String,
    /// Every box.
    pub nodes: Vec<Node>,
    /// Every edge; no two have the same `(from, to, value)`.
    pub edges: Vec<Edge>,
    /// Every cluster; a cluster's nodes name it in [`Node::cluster`].
    pub clusters: Vec<Cluster>,
}

impl Picture {
    /// How many op boxes the picture has.
    pub fn op_count(&self) -> usize {
        self.nodes.iter().filter(|n| n.kind == NodeKind::Op).count()
    }

    /// The clusters each node owns, by node id.
    pub fn owned_clusters(&self) -> Vec<Vec<usize>> {
        let mut owned = vec![Vec::new(); self.nodes.len()];
        for (c, cluster) in self.clusters.iter().enumerate() {
            if let Some(list) = owned.get_mut(cluster.owner) {
                list.push(c);
            }
        }
        owned
    }

    /// How deep a node is nested: 0 in the main graph, 1 in a body of a
    /// main-graph op, ...
    pub fn depth(&self, node: usize) -> usize {
        let mut depth = 0;
        let mut at = self.nodes.get(node).and_then(|n| n.cluster);
        while let Some(c) = at {
            depth += 1;
            if depth > self.clusters.len() {
                break; // a cycle of owners: never made by the adapters
            }
            at = self
                .clusters
                .get(c)
                .and_then(|c| self.nodes.get(c.owner))
                .and_then(|n| n.cluster);
        }
        depth
    }
}
