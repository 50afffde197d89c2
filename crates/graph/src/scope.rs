//! Folding name scopes into one box, so that a 500-op model stays readable.
//! Exporters name ops by module path: torch writes
//! `/layer1/layer1.0/conv1/Conv`, whose scope is `/layer1/layer1.0/conv1`.
//! Folding `/layer1` replaces every op of the main graph whose scope is
//! `/layer1` or inside it (with the bodies of their subgraphs) by one box
//! that counts them; the edges between them go, the edges in and out join
//! the box. Folding by depth N folds every scope at depth N that holds more
//! than one op.

use crate::error::GraphError;
use crate::family::Family;
use crate::picture::{Cluster, Edge, Node, NodeKind, Picture};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Which scopes to fold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collapse {
    /// Scopes folded whatever their size (`/layer1`); each must hold an op.
    pub scopes: Vec<String>,
    /// Fold every scope at this depth (1: `/layer1`, 2: `/layer1/layer1.0`)
    /// that holds more than one op.
    pub depth: Option<usize>,
}

impl Collapse {
    /// True when there is nothing to fold.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty() && self.depth.is_none()
    }
}

/// The scope segments of an op name: `/layer1/layer1.0/conv1/Conv` gives
/// `["layer1", "layer1.0", "conv1"]`.
pub fn scope_of(name: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    parts.pop();
    parts
}

/// `picture` with the scopes of `what` folded.
pub fn collapse(picture: &Picture, what: &Collapse) -> Result<Picture, GraphError> {
    let mut wanted: Vec<Vec<&str>> = Vec::new();
    for scope in &what.scopes {
        let parts: Vec<&str> = scope.split('/').filter(|p| !p.is_empty()).collect();
        if parts.is_empty() {
            return Err(GraphError::EmptyScope {
                scope: scope.clone(),
            });
        }
        wanted.push(parts);
    }
    // Outermost first, so that a scope inside another folds with it.
    wanted.sort_by_key(Vec::len);
    let n = picture.nodes.len();
    let top = top_ancestors(picture);
    // The group (scope key) of each main-graph op.
    let mut group: Vec<Option<String>> = vec![None; n];
    let mut matched = vec![false; wanted.len()];
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    for (id, node) in picture.nodes.iter().enumerate() {
        if node.cluster.is_some() || node.kind != NodeKind::Op {
            continue;
        }
        let scope = scope_of(&node.subtitle);
        let explicit = wanted
            .iter()
            .position(|w| scope.len() >= w.len() && scope[..w.len()] == w[..]);
        let key = match (explicit, what.depth) {
            (Some(i), _) => {
                matched[i] = true;
                Some(format!("/{}", wanted[i].join("/")))
            }
            (None, Some(d)) if d > 0 && scope.len() >= d => {
                Some(format!("/{}", scope[..d].join("/")))
            }
            _ => None,
        };
        if let Some(key) = key {
            *sizes.entry(key.clone()).or_default() += 1;
            group[id] = Some(key);
        }
    }
    if let Some(i) = matched.iter().position(|m| !m) {
        let tops: BTreeSet<&str> = picture
            .nodes
            .iter()
            .filter(|n| n.cluster.is_none() && n.kind == NodeKind::Op)
            .filter_map(|n| scope_of(&n.subtitle).first().copied())
            .collect();
        let mut available: Vec<String> = tops.iter().take(12).map(|t| format!("/{t}")).collect();
        if tops.len() > 12 {
            available.push("…".into());
        }
        if available.is_empty() {
            available.push("none".into());
        }
        return Err(GraphError::NoSuchScope {
            scope: format!("/{}", wanted[i].join("/")),
            available: available.join(", "),
        });
    }
    // A depth group of one op stays that op.
    let explicit_keys: HashSet<String> =
        wanted.iter().map(|w| format!("/{}", w.join("/"))).collect();
    for g in group.iter_mut() {
        if g.as_ref()
            .is_some_and(|k| sizes[k] == 1 && !explicit_keys.contains(k))
        {
            *g = None;
        }
    }
    // How many ops each group stands for, bodies included.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, node) in picture.nodes.iter().enumerate() {
        if node.kind == NodeKind::Op
            && let Some(key) = top[id].and_then(|t| group[t].as_deref())
        {
            *counts.entry(key).or_default() += 1;
        }
    }
    let mut out = Picture {
        title: picture.title.clone(),
        ..Picture::default()
    };
    let mut new_id: Vec<Option<usize>> = vec![None; n];
    let mut group_node: BTreeMap<&str, usize> = BTreeMap::new();
    let mut new_cluster: Vec<Option<usize>> = vec![None; picture.clusters.len()];
    // Clusters whose owner stays keep their place, renumbered.
    let mut kept_clusters: Vec<(usize, &Cluster)> = Vec::new();
    for (c, cluster) in picture.clusters.iter().enumerate() {
        let folded = top
            .get(cluster.owner)
            .copied()
            .flatten()
            .is_some_and(|t| group[t].is_some());
        if !folded && cluster.owner < n {
            new_cluster[c] = Some(kept_clusters.len());
            kept_clusters.push((c, cluster));
        }
    }
    for (id, node) in picture.nodes.iter().enumerate() {
        let key = top[id].and_then(|t| group[t].as_deref());
        match key {
            Some(key) => {
                let g = *group_node.entry(key).or_insert_with(|| {
                    let title = key.rsplit('/').next().unwrap_or(key).to_owned();
                    out.nodes.push(Node {
                        kind: NodeKind::Collapsed {
                            count: counts.get(key).copied().unwrap_or(0),
                        },
                        title,
                        subtitle: key.to_owned(),
                        initializers: Vec::new(),
                        attributes: Vec::new(),
                        family: Family::Collapsed,
                        cluster: None,
                    });
                    out.nodes.len() - 1
                });
                new_id[id] = Some(g);
            }
            None => {
                let mut node = node.clone();
                node.cluster = node
                    .cluster
                    .and_then(|c| new_cluster.get(c).copied().flatten());
                out.nodes.push(node);
                new_id[id] = Some(out.nodes.len() - 1);
            }
        }
    }
    for (_, cluster) in kept_clusters {
        if let Some(owner) = new_id[cluster.owner] {
            out.clusters.push(Cluster {
                owner,
                label: cluster.label.clone(),
            });
        }
    }
    let mut seen = HashSet::new();
    for e in &picture.edges {
        let (Some(Some(from)), Some(Some(to))) = (new_id.get(e.from), new_id.get(e.to)) else {
            continue;
        };
        if from != to && seen.insert((*from, *to, e.value.as_str())) {
            out.edges.push(Edge {
                from: *from,
                to: *to,
                value: e.value.clone(),
                label: e.label.clone(),
            });
        }
    }
    Ok(out)
}

/// For each node, the main-graph node it is inside (itself when it is in
/// the main graph); `None` when its chain of owners is broken.
fn top_ancestors(p: &Picture) -> Vec<Option<usize>> {
    (0..p.nodes.len())
        .map(|id| {
            let mut at = id;
            for _ in 0..=p.clusters.len() {
                match p.nodes.get(at)?.cluster {
                    None => return Some(at),
                    Some(c) => at = p.clusters.get(c)?.owner,
                }
            }
            None
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_of_torch_names() {
        assert_eq!(
            scope_of("/layer1/layer1.0/conv1/Conv"),
            ["layer1", "layer1.0", "conv1"]
        );
        assert!(scope_of("Conv_0").is_empty());
        assert!(scope_of("").is_empty());
    }
}
