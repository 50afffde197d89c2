//! What both adapters share while making a [`Picture`]: one scope of value
//! names per graph or body being read, values a body takes from an
//! enclosing graph (drawn as an input box inside the body's cluster, fed by
//! an edge into the op that owns the body, so no edge crosses a cluster
//! frame), edges kept unique by `(from, to, value)`, and how attribute
//! values are written.

use crate::family::Family;
use crate::picture::{Cluster, Edge, Node, NodeKind, Picture};
use std::collections::{HashMap, HashSet};

/// Bodies nested deeper than this are not drawn (their owner stays a box).
pub(crate) const MAX_NESTING: usize = 16;

struct Scope {
    /// The cluster of the body; `None` for the main graph.
    cluster: Option<usize>,
    /// The node owning the body.
    owner: usize,
    /// Value name to the node that makes it, as far as read.
    values: HashMap<String, usize>,
}

/// A picture being made.
pub(crate) struct Builder {
    pub(crate) pic: Picture,
    /// The dtype and shape text of values, by name, for edge labels.
    pub(crate) labels: HashMap<String, String>,
    edges: HashSet<(usize, usize, String)>,
    scopes: Vec<Scope>,
}

impl Builder {
    pub(crate) fn new(title: &str) -> Self {
        Builder {
            pic: Picture {
                title: title.to_owned(),
                ..Picture::default()
            },
            labels: HashMap::new(),
            edges: HashSet::new(),
            scopes: vec![Scope {
                cluster: None,
                owner: 0,
                values: HashMap::new(),
            }],
        }
    }

    /// How many bodies deep the builder is (0 in the main graph).
    pub(crate) fn nesting(&self) -> usize {
        self.scopes.len() - 1
    }

    /// Adds a box in the current scope; returns its id.
    pub(crate) fn node(
        &mut self,
        kind: NodeKind,
        title: &str,
        subtitle: &str,
        family: Family,
    ) -> usize {
        let cluster = self.scopes.last().and_then(|s| s.cluster);
        self.pic.nodes.push(Node {
            kind,
            title: title.to_owned(),
            subtitle: subtitle.to_owned(),
            initializers: Vec::new(),
            attributes: Vec::new(),
            family,
            cluster,
        });
        self.pic.nodes.len() - 1
    }

    /// An input box for value `name`, which it also defines.
    pub(crate) fn input(&mut self, name: &str) -> usize {
        let subtitle = self.labels.get(name).cloned().unwrap_or_default();
        let id = self.node(NodeKind::Input, name, &subtitle, Family::Value);
        self.define(name, id);
        id
    }

    /// An output box for value `name`, fed by whatever makes it.
    pub(crate) fn output(&mut self, name: &str) -> usize {
        let subtitle = self.labels.get(name).cloned().unwrap_or_default();
        let id = self.node(NodeKind::Output, name, &subtitle, Family::Value);
        if let Some(from) = self.resolve(name) {
            self.edge(from, id, name);
        }
        id
    }

    /// Records that `node` makes value `name` from here on.
    pub(crate) fn define(&mut self, name: &str, node: usize) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.values.insert(name.to_owned(), node);
        }
    }

    /// True when `name` is known in the current scope itself.
    pub(crate) fn is_local(&self, name: &str) -> bool {
        self.scopes
            .last()
            .is_some_and(|s| s.values.contains_key(name))
    }

    /// The node that makes `name`, looking outwards through the enclosing
    /// graphs; a value of an enclosing graph gets an input box in each body
    /// between (see the module docs). `None` when nothing makes it.
    pub(crate) fn resolve(&mut self, name: &str) -> Option<usize> {
        let top = self.scopes.len() - 1;
        self.resolve_at(name, top)
    }

    fn resolve_at(&mut self, name: &str, level: usize) -> Option<usize> {
        if let Some(&n) = self.scopes[level].values.get(name) {
            return Some(n);
        }
        if level == 0 {
            return None;
        }
        let outer = self.resolve_at(name, level - 1)?;
        let owner = self.scopes[level].owner;
        self.edge(outer, owner, name);
        let subtitle = self.labels.get(name).cloned().unwrap_or_default();
        self.pic.nodes.push(Node {
            kind: NodeKind::Input,
            title: name.to_owned(),
            subtitle,
            initializers: Vec::new(),
            attributes: Vec::new(),
            family: Family::Value,
            cluster: self.scopes[level].cluster,
        });
        let id = self.pic.nodes.len() - 1;
        self.scopes[level].values.insert(name.to_owned(), id);
        Some(id)
    }

    /// Adds the edge `from -> to` carrying `value` unless it is there or a
    /// self loop.
    pub(crate) fn edge(&mut self, from: usize, to: usize, value: &str) {
        if from == to || !self.edges.insert((from, to, value.to_owned())) {
            return;
        }
        self.pic.edges.push(Edge {
            from,
            to,
            value: value.to_owned(),
            label: self.labels.get(value).cloned(),
        });
    }

    /// Opens a body owned by `owner`, shown as a cluster labelled `label`.
    pub(crate) fn push_body(&mut self, owner: usize, label: &str) {
        self.pic.clusters.push(Cluster {
            owner,
            label: label.to_owned(),
        });
        self.scopes.push(Scope {
            cluster: Some(self.pic.clusters.len() - 1),
            owner,
            values: HashMap::new(),
        });
    }

    /// Closes the body opened last.
    pub(crate) fn pop_body(&mut self) {
        if self.scopes.len() > 1 {
            self.scopes.pop();
        }
    }

    pub(crate) fn finish(self) -> Picture {
        self.pic
    }
}

/// Most items of a list attribute written out; the rest is `…`.
const MAX_LIST_ITEMS: usize = 16;

/// `[1, 2, 3]`, at most 16 items written, then `…`.
pub(crate) fn list<T>(items: &[T], one: impl Fn(&T) -> String) -> String {
    let mut parts: Vec<String> = items.iter().take(MAX_LIST_ITEMS).map(one).collect();
    if items.len() > MAX_LIST_ITEMS {
        parts.push("…".into());
    }
    format!("[{}]", parts.join(", "))
}

/// The shortest text that reads back as the same `f32`.
pub(crate) fn format_float(f: f32) -> String {
    format!("{f}")
}
