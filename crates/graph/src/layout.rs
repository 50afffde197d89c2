//! The layered top-to-bottom layout (Sugiyama's method, as dagre and dot
//! do it, in its simple form): cycles broken by reversing DFS back edges,
//! longest-path layers (a node nothing feeds is moved down next to its
//! first consumer), dummy points on edges that span layers, barycenter
//! sweeps that keep the order with the fewest crossings (counted with a
//! Fenwick tree), and x coordinates pulled towards the median of the
//! neighbours, each sweep averaging a left-packed and a right-packed
//! placement, which keeps the order and the gaps. Every step sorts or scans,
//! so a 1,000-node model lays out in milliseconds; nothing depends on hash
//! order, so the result is the same on every run.
//!
//! A node that owns clusters (subgraph bodies) is a compound box: each body
//! is laid out first as a graph of its own, and the box grows to hold the
//! bodies side by side under its text.

use crate::picture::{Node, NodeKind, Picture};
use crate::text::{MAX_LINE_CHARS, clip, clip_to, text_width};

/// Font size of box text, in pixels.
pub(crate) const FONT: f64 = 12.0;
/// Font size of edge labels and cluster labels.
pub(crate) const SMALL_FONT: f64 = 10.0;
/// Height of the coloured header band of a box.
pub(crate) const HEADER_H: f64 = 22.0;
/// Height of one text line below the header.
pub(crate) const LINE_H: f64 = 15.0;
/// Horizontal padding inside a box.
pub(crate) const PAD_X: f64 = 8.0;
/// Vertical padding around the lines below the header.
pub(crate) const PAD_Y: f64 = 5.0;
/// Margin around the picture.
pub(crate) const MARGIN: f64 = 20.0;
/// Height of the title line, when there is a title.
pub(crate) const TITLE_H: f64 = 24.0;
/// Height of a cluster's label line.
pub(crate) const FRAME_LABEL_H: f64 = 16.0;
const MIN_W: f64 = 64.0;
const FRAME_PAD: f64 = 10.0;
const FRAME_GAP: f64 = 14.0;
const COMPOUND_PAD: f64 = 10.0;
const LAYER_GAP: f64 = 34.0;
const LABEL_GAP: f64 = 14.0;
const NODE_GAP: f64 = 24.0;
const DUMMY_GAP: f64 = 8.0;
const DUMMY_W: f64 = 6.0;
const ORDER_SWEEPS: usize = 6;
const PLACE_SWEEPS: usize = 8;
/// Attribute lines shown in a box; more are counted in one last line.
const MAX_ATTRIBUTE_LINES: usize = 8;

/// A rectangle: top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rect {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

impl Rect {
    /// True when `other` lies inside (edges included).
    pub fn contains(&self, other: &Rect) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.x + other.w <= self.x + self.w
            && other.y + other.h <= self.y + self.h
    }
}

/// Where everything of a [`Picture`] goes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    /// Width of the whole picture.
    pub width: f64,
    /// Height of the whole picture.
    pub height: f64,
    /// The box of each node (a compound box holds its bodies).
    pub nodes: Vec<Rect>,
    /// The frame of each cluster.
    pub clusters: Vec<Rect>,
    /// The points each edge passes through, source first.
    pub edges: Vec<Vec<(f64, f64)>>,
}

/// The style of a line of box text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineStyle {
    /// The op name, a value's type, a folded scope.
    Name,
    /// An initializer line.
    Init,
    /// An attribute line.
    Attr,
}

/// The text of a box: the bold title and the lines below it.
pub(crate) struct Content {
    pub(crate) title: String,
    pub(crate) lines: Vec<(String, LineStyle)>,
}

/// What a node's box says.
pub(crate) fn content(node: &Node) -> Content {
    let mut lines = Vec::new();
    if !node.subtitle.is_empty() {
        lines.push((clip(&node.subtitle), LineStyle::Name));
    }
    if let NodeKind::Collapsed { count } = node.kind {
        let ops = if count == 1 { "op" } else { "ops" };
        lines.push((format!("{count} {ops}"), LineStyle::Attr));
    }
    for init in &node.initializers {
        lines.push((clip(init), LineStyle::Init));
    }
    for (name, value) in node.attributes.iter().take(MAX_ATTRIBUTE_LINES) {
        lines.push((clip(&format!("{name} = {value}")), LineStyle::Attr));
    }
    if node.attributes.len() > MAX_ATTRIBUTE_LINES {
        let more = node.attributes.len() - MAX_ATTRIBUTE_LINES;
        lines.push((format!("… {more} more"), LineStyle::Attr));
    }
    Content {
        title: clip_to(&node.title, MAX_LINE_CHARS),
        lines,
    }
}

/// Width and height of the text part of a box.
pub(crate) fn content_size(c: &Content) -> (f64, f64) {
    let mut w = text_width(&c.title, FONT, true);
    for (line, _) in &c.lines {
        w = w.max(text_width(line, FONT, false));
    }
    let h = if c.lines.is_empty() {
        HEADER_H
    } else {
        HEADER_H + 2.0 * PAD_Y + LINE_H * c.lines.len() as f64
    };
    ((w + 2.0 * PAD_X).max(MIN_W).ceil(), h)
}

/// Lays out `picture`.
pub fn layout(picture: &Picture) -> Layout {
    let n = picture.nodes.len();
    let owned = picture.owned_clusters();
    let text: Vec<(f64, f64)> = picture
        .nodes
        .iter()
        .map(|node| content_size(&content(node)))
        .collect();
    // Nodes of each level: 0 the main graph, c + 1 cluster c.
    let levels = picture.clusters.len() + 1;
    let level_of = |node: &Node| node.cluster.map_or(0, |c| c + 1).min(levels - 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); levels];
    for (id, node) in picture.nodes.iter().enumerate() {
        members[level_of(node)].push(id);
    }
    // Each edge joins two nodes of one level once lifted to the owners.
    let depth: Vec<usize> = (0..n).map(|i| picture.depth(i)).collect();
    let owner_of = |id: usize| {
        picture.nodes[id]
            .cluster
            .and_then(|c| picture.clusters.get(c))
            .map(|c| c.owner)
    };
    let mut level_edges: Vec<Vec<(usize, usize, usize)>> = vec![Vec::new(); levels];
    let mut lifted = vec![(usize::MAX, usize::MAX); picture.edges.len()];
    for (e, edge) in picture.edges.iter().enumerate() {
        if edge.from >= n || edge.to >= n {
            continue;
        }
        let (mut a, mut b) = (edge.from, edge.to);
        let mut guard = 0;
        while picture.nodes[a].cluster != picture.nodes[b].cluster && guard <= 2 * levels {
            guard += 1;
            let (da, db) = (depth[a], depth[b]);
            if da >= db {
                a = owner_of(a).unwrap_or(a);
            }
            if db >= da {
                b = owner_of(b).unwrap_or(b);
            }
        }
        if a != b && picture.nodes[a].cluster == picture.nodes[b].cluster {
            level_edges[level_of(&picture.nodes[a])].push((a, b, e));
            lifted[e] = (a, b);
        }
    }
    // Clusters deepest first, so a compound box knows its bodies' sizes.
    let mut order: Vec<usize> = (0..picture.clusters.len()).collect();
    let cluster_depth = |c: usize| depth.get(picture.clusters[c].owner).map_or(0, |d| d + 1);
    order.sort_by_key(|&c| std::cmp::Reverse(cluster_depth(c)));
    let mut size: Vec<(f64, f64)> = text.clone();
    let mut done: Vec<Option<Level>> = (0..levels).map(|_| None).collect();
    let mut frame_size = vec![(0.0, 0.0); picture.clusters.len()];
    let grow = |id: usize, size: &mut Vec<(f64, f64)>, frame_size: &[(f64, f64)]| {
        if owned[id].is_empty() {
            return;
        }
        let frames_w: f64 = owned[id].iter().map(|&c| frame_size[c].0).sum::<f64>()
            + FRAME_GAP * (owned[id].len() - 1) as f64;
        let frames_h = owned[id]
            .iter()
            .map(|&c| frame_size[c].1)
            .fold(0.0, f64::max);
        let (tw, th) = text[id];
        size[id] = (
            tw.max(frames_w + 2.0 * COMPOUND_PAD),
            th + frames_h + 2.0 * COMPOUND_PAD,
        );
    };
    for &c in &order {
        for &id in &members[c + 1] {
            grow(id, &mut size, &frame_size);
        }
        let level = lay_level(&members[c + 1], &level_edges[c + 1], &size, picture);
        frame_size[c] = (
            level.width + 2.0 * FRAME_PAD,
            level.height + FRAME_LABEL_H + 2.0 * FRAME_PAD,
        );
        done[c + 1] = Some(level);
    }
    for &id in &members[0] {
        grow(id, &mut size, &frame_size);
    }
    let main = lay_level(&members[0], &level_edges[0], &size, picture);
    let top = if picture.title.is_empty() {
        0.0
    } else {
        TITLE_H
    };
    let mut out = Layout {
        width: main.width + 2.0 * MARGIN,
        height: main.height + 2.0 * MARGIN + top,
        nodes: vec![Rect::default(); n],
        clusters: vec![Rect::default(); picture.clusters.len()],
        edges: vec![Vec::new(); picture.edges.len()],
    };
    // Place the main level, then each cluster inside its owner, outermost
    // first.
    let mut offset = vec![(0.0, 0.0); levels];
    offset[0] = (MARGIN, MARGIN + top);
    let place = |level: &Level, (ox, oy): (f64, f64), out: &mut Layout| {
        for &(id, (x, y)) in &level.pos {
            out.nodes[id] = Rect {
                x: ox + x,
                y: oy + y,
                w: size[id].0,
                h: size[id].1,
            };
        }
        for (e, points) in &level.routes {
            out.edges[*e] = points.iter().map(|&(x, y)| (ox + x, oy + y)).collect();
        }
    };
    place(&main, offset[0], &mut out);
    for &c in order.iter().rev() {
        let owner = picture.clusters[c].owner;
        let Some(rect) = out.nodes.get(owner).copied() else {
            continue;
        };
        let frames = &owned[owner];
        let frames_w: f64 = frames.iter().map(|&f| frame_size[f].0).sum::<f64>()
            + FRAME_GAP * (frames.len().saturating_sub(1)) as f64;
        let mut x = rect.x + (rect.w - frames_w) / 2.0;
        for &f in frames {
            if f == c {
                break;
            }
            x += frame_size[f].0 + FRAME_GAP;
        }
        let y = rect.y + text[owner].1 + COMPOUND_PAD;
        out.clusters[c] = Rect {
            x,
            y,
            w: frame_size[c].0,
            h: frame_size[c].1,
        };
        offset[c + 1] = (x + FRAME_PAD, y + FRAME_LABEL_H + FRAME_PAD);
        if let Some(level) = done[c + 1].as_ref() {
            place(level, offset[c + 1], &mut out);
        }
    }
    // An edge lifted to an owner ends at the real node.
    for (e, edge) in picture.edges.iter().enumerate() {
        let (a, b) = lifted[e];
        if a == usize::MAX || out.edges[e].is_empty() {
            continue;
        }
        if a != edge.from {
            let r = out.nodes[edge.from];
            out.edges[e].insert(0, (r.x + r.w / 2.0, r.y + r.h));
        }
        if b != edge.to {
            let r = out.nodes[edge.to];
            out.edges[e].push((r.x + r.w / 2.0, r.y));
        }
    }
    out
}

/// One laid-out level, in its own coordinates (top-left at 0, 0).
struct Level {
    width: f64,
    height: f64,
    /// Top-left corner of each node, by node id.
    pos: Vec<(usize, (f64, f64))>,
    /// The points of each edge, by edge id.
    routes: Vec<(usize, Vec<(f64, f64)>)>,
}

/// Lays out the nodes `ids` (sizes in `size`, by node id) joined by `edges`
/// `(from, to, edge id)`.
fn lay_level(
    ids: &[usize],
    edges: &[(usize, usize, usize)],
    size: &[(f64, f64)],
    picture: &Picture,
) -> Level {
    if ids.is_empty() {
        return Level {
            width: MIN_W,
            height: LINE_H,
            pos: Vec::new(),
            routes: Vec::new(),
        };
    }
    let k = ids.len();
    // Local index of each node id.
    let mut local = std::collections::HashMap::with_capacity(k);
    for (i, &id) in ids.iter().enumerate() {
        local.insert(id, i);
    }
    let pairs: Vec<(usize, usize, usize)> = edges
        .iter()
        .filter_map(|&(a, b, e)| Some((*local.get(&a)?, *local.get(&b)?, e)))
        .collect();
    // 1. Break cycles: reverse the back edges of a DFS in node order.
    let mut out_adj: Vec<Vec<(usize, usize)>> = vec![Vec::new(); k];
    for (p, &(a, b, _)) in pairs.iter().enumerate() {
        out_adj[a].push((b, p));
    }
    let mut reversed = vec![false; pairs.len()];
    let mut state = vec![0u8; k]; // 0 new, 1 on stack, 2 done
    for root in 0..k {
        if state[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = 1;
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if let Some(&(w, p)) = out_adj[v].get(*next) {
                *next += 1;
                match state[w] {
                    0 => {
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => reversed[p] = true,
                    _ => {}
                }
            } else {
                state[v] = 2;
                stack.pop();
            }
        }
    }
    let dag: Vec<(usize, usize)> = pairs
        .iter()
        .zip(&reversed)
        .map(|(&(a, b, _), &r)| if r { (b, a) } else { (a, b) })
        .collect();
    // 2. Longest-path layers (Kahn's order, smallest index first).
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); k];
    let mut indeg = vec![0usize; k];
    for &(a, b) in &dag {
        if a != b {
            succ[a].push(b);
            indeg[b] += 1;
        }
    }
    let mut layer = vec![0usize; k];
    let mut ready: std::collections::BTreeSet<usize> = (0..k).filter(|&v| indeg[v] == 0).collect();
    let mut topo = Vec::with_capacity(k);
    while let Some(v) = ready.pop_first() {
        topo.push(v);
        for &w in &succ[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indeg[w] -= 1;
            if indeg[w] == 0 {
                ready.insert(w);
            }
        }
    }
    // A source moves down next to its first consumer.
    let has_pred: Vec<bool> = {
        let mut h = vec![false; k];
        for &(a, b) in &dag {
            if a != b {
                h[b] = true;
            }
        }
        h
    };
    for v in 0..k {
        if !has_pred[v]
            && let Some(m) = succ[v].iter().map(|&w| layer[w]).min()
        {
            layer[v] = m.saturating_sub(1);
        }
    }
    let layers_n = layer.iter().max().map_or(1, |m| m + 1);
    // 3. Vertices: the nodes, then the dummy points of long edges. The
    // edges of one value from one node share their dummy points (a trunk
    // going down to the deepest consumer, which each consumer leaves at
    // the layer above it), so a value read by every op of a deep model
    // costs one dummy per layer, not one per layer and consumer.
    let mut vlayer = layer.clone();
    let mut vwidth: Vec<f64> = ids.iter().map(|&id| size[id].0).collect();
    let mut trunks: std::collections::HashMap<(usize, &str), Vec<usize>> =
        std::collections::HashMap::new();
    let mut chains: Vec<Vec<usize>> = Vec::with_capacity(dag.len());
    for ((&(a, b), &(_, _, e)), &r) in dag.iter().zip(&pairs).zip(&reversed) {
        let mut chain = vec![a];
        if a != b {
            let value = if r {
                "" // a reversed edge keeps its own points
            } else {
                picture.edges.get(e).map_or("", |e| e.value.as_str())
            };
            let own = &mut Vec::new();
            let trunk = if r {
                own
            } else {
                trunks.entry((a, value)).or_default()
            };
            for (i, l) in (layer[a] + 1..layer[b]).enumerate() {
                if i == trunk.len() {
                    vlayer.push(l);
                    vwidth.push(DUMMY_W);
                    trunk.push(vlayer.len() - 1);
                }
                chain.push(trunk[i]);
            }
        }
        chain.push(b);
        chains.push(chain);
    }
    let nv = vlayer.len();
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); nv];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); nv];
    let mut linked = std::collections::HashSet::new();
    for chain in &chains {
        for w in chain.windows(2) {
            if w[0] != w[1] && linked.insert((w[0], w[1])) {
                down[w[0]].push(w[1]);
                up[w[1]].push(w[0]);
            }
        }
    }
    // 4. Order within layers: barycenter sweeps, keeping the best.
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); layers_n];
    // Start from a depth-first order so that chains stay together.
    let mut seen = vec![false; nv];
    for root in topo.iter().copied().chain(0..nv) {
        if seen[root] {
            continue;
        }
        let mut stack = vec![root];
        while let Some(v) = stack.pop() {
            if seen[v] {
                continue;
            }
            seen[v] = true;
            layers[vlayer[v]].push(v);
            for &w in down[v].iter().rev() {
                if !seen[w] {
                    stack.push(w);
                }
            }
        }
    }
    let mut pos = vec![0usize; nv];
    let index = |layers: &Vec<Vec<usize>>, pos: &mut Vec<usize>| {
        for l in layers {
            for (i, &v) in l.iter().enumerate() {
                pos[v] = i;
            }
        }
    };
    index(&layers, &mut pos);
    let mut best = layers.clone();
    let mut best_cross = crossings(&layers, &down, &pos);
    for sweep in 0..ORDER_SWEEPS {
        let downward = sweep % 2 == 0;
        let range: Vec<usize> = if downward {
            (1..layers_n).collect()
        } else {
            (0..layers_n.saturating_sub(1)).rev().collect()
        };
        for l in range {
            let nbrs = if downward { &up } else { &down };
            let mut keyed: Vec<(f64, usize, usize)> = layers[l]
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let n = &nbrs[v];
                    let key = if n.is_empty() {
                        i as f64
                    } else {
                        n.iter().map(|&w| pos[w] as f64).sum::<f64>() / n.len() as f64
                    };
                    (key, i, v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            layers[l] = keyed.into_iter().map(|(_, _, v)| v).collect();
            for (i, &v) in layers[l].iter().enumerate() {
                pos[v] = i;
            }
        }
        let c = crossings(&layers, &down, &pos);
        if c < best_cross {
            best_cross = c;
            best = layers.clone();
        }
    }
    let layers = best;
    index(&layers, &mut pos);
    // 5. x: centres pulled to the median of the neighbours.
    let gap = |a: usize, b: usize| {
        if a >= k && b >= k {
            DUMMY_GAP
        } else if a >= k || b >= k {
            NODE_GAP / 2.0
        } else {
            NODE_GAP
        }
    };
    let mut cx = vec![0.0f64; nv];
    for l in &layers {
        let mut x = 0.0;
        for (i, &v) in l.iter().enumerate() {
            if i > 0 {
                x += gap(l[i - 1], v);
            }
            cx[v] = x + vwidth[v] / 2.0;
            x += vwidth[v];
        }
    }
    for sweep in 0..PLACE_SWEEPS {
        let downward = sweep % 2 == 0;
        let order: Vec<usize> = if downward {
            (0..layers_n).collect()
        } else {
            (0..layers_n).rev().collect()
        };
        for l in order {
            let row = &layers[l];
            if row.is_empty() {
                continue;
            }
            let nbrs = if downward { &up } else { &down };
            let want: Vec<f64> = row
                .iter()
                .map(|&v| {
                    // A trunk's points follow each other, not the
                    // consumers leaving it, so the trunk stays straight.
                    let trunk = v >= k && nbrs[v].iter().any(|&w| w >= k);
                    let mut xs: Vec<f64> = nbrs[v]
                        .iter()
                        .filter(|&&w| !trunk || w >= k)
                        .map(|&w| cx[w])
                        .collect();
                    if xs.is_empty() {
                        return cx[v];
                    }
                    xs.sort_by(f64::total_cmp);
                    let m = xs.len() / 2;
                    if xs.len() % 2 == 1 {
                        xs[m]
                    } else {
                        (xs[m - 1] + xs[m]) / 2.0
                    }
                })
                .collect();
            let sep =
                |i: usize| (vwidth[row[i]] + vwidth[row[i + 1]]) / 2.0 + gap(row[i], row[i + 1]);
            let mut left = want.clone();
            for i in 1..row.len() {
                left[i] = left[i].max(left[i - 1] + sep(i - 1));
            }
            let mut right = want;
            for i in (0..row.len() - 1).rev() {
                right[i] = right[i].min(right[i + 1] - sep(i));
            }
            for (i, &v) in row.iter().enumerate() {
                cx[v] = (left[i] + right[i]) / 2.0;
            }
        }
    }
    // Straighten the dummy runs of long edges where the boxes around them
    // leave room: one x for the whole run, so it is one vertical line
    // (and two points in the SVG). Longest runs first; a run shared by the
    // edges of one value counts once.
    let mut runs: std::collections::BTreeMap<usize, &[usize]> = std::collections::BTreeMap::new();
    for chain in &chains {
        if chain.len() > 3 {
            let run = &chain[1..chain.len() - 1];
            let longest = runs.entry(run[0]).or_insert(run);
            if run.len() > longest.len() {
                *longest = run;
            }
        }
    }
    let mut runs: Vec<&[usize]> = runs.into_values().collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.len()));
    for run in runs {
        let mut xs: Vec<f64> = run.iter().map(|&d| cx[d]).collect();
        xs.sort_by(f64::total_cmp);
        let x = xs[xs.len() / 2];
        let fits = run.iter().all(|&d| {
            let row = &layers[vlayer[d]];
            let p = pos[d];
            let left = p
                .checked_sub(1)
                .map(|q| row[q])
                .is_none_or(|l| cx[l] + vwidth[l] / 2.0 + gap(l, d) <= x - vwidth[d] / 2.0 + 1e-9);
            let right = row
                .get(p + 1)
                .is_none_or(|&r| x + vwidth[d] / 2.0 + gap(d, r) <= cx[r] - vwidth[r] / 2.0 + 1e-9);
            left && right
        });
        if fits {
            for &d in run {
                cx[d] = x;
            }
        }
    }
    let min_x = (0..nv)
        .map(|v| cx[v] - vwidth[v] / 2.0)
        .fold(f64::INFINITY, f64::min);
    let max_x = (0..nv)
        .map(|v| cx[v] + vwidth[v] / 2.0)
        .fold(f64::NEG_INFINITY, f64::max);
    for x in &mut cx {
        *x -= min_x;
    }
    // 6. y: layer bands, with room for labels under a layer whose edges
    // have them.
    let mut band_h = vec![0.0f64; layers_n];
    for v in 0..k {
        band_h[vlayer[v]] = band_h[vlayer[v]].max(size[ids[v]].1);
    }
    let mut labelled = vec![false; layers_n];
    for (&(a, _, e), &r) in pairs.iter().zip(&reversed) {
        if !r && picture.edges.get(e).is_some_and(|e| e.label.is_some()) {
            labelled[layer[a]] = true;
        }
    }
    let mut band_y = vec![0.0f64; layers_n];
    let mut y = 0.0;
    for l in 0..layers_n {
        band_y[l] = y;
        y += band_h[l];
        if l + 1 < layers_n {
            y += LAYER_GAP + if labelled[l] { LABEL_GAP } else { 0.0 };
        }
    }
    let height = y;
    let top_of = |v: usize| band_y[vlayer[v]] + (band_h[vlayer[v]] - size[ids[v]].1) / 2.0;
    let pos: Vec<(usize, (f64, f64))> = (0..k)
        .map(|v| (ids[v], (cx[v] - vwidth[v] / 2.0, top_of(v))))
        .collect();
    // 7. Routes: from the bottom of the source through the dummy points
    // to the top of the target (a reversed edge leaves from the top).
    let mut routes = Vec::with_capacity(pairs.len());
    for ((&(_, _, e), chain), &r) in pairs.iter().zip(&chains).zip(&reversed) {
        let mut pts = Vec::with_capacity(chain.len() * 2);
        let (first, last) = (chain[0], chain[chain.len() - 1]);
        pts.push((cx[first], top_of(first) + size[ids[first]].1));
        for &d in &chain[1..chain.len() - 1] {
            let l = vlayer[d];
            pts.push((cx[d], band_y[l]));
            pts.push((cx[d], band_y[l] + band_h[l]));
        }
        pts.push((cx[last], top_of(last)));
        // Points in a vertical line between two others add nothing.
        let mut kept: Vec<(f64, f64)> = Vec::with_capacity(pts.len());
        for (i, &p) in pts.iter().enumerate() {
            let inner = i > 0 && i + 1 < pts.len();
            if inner && kept.last().is_some_and(|q| q.0 == p.0) && pts[i + 1].0 == p.0 {
                continue;
            }
            kept.push(p);
        }
        let mut pts = kept;
        if r {
            pts.reverse();
        }
        routes.push((e, pts));
    }
    // Labels sit right of their edge's first segment: the level is as
    // wide as they reach.
    let mut width = (max_x - min_x).max(MIN_W);
    for (e, pts) in &routes {
        if let Some(label) = picture.edges.get(*e).and_then(|e| e.label.as_deref()) {
            let (x, _) = label_anchor(pts);
            width = width.max(x + text_width(&clip(label), SMALL_FONT, false));
        }
    }
    Level {
        width,
        height,
        pos,
        routes,
    }
}

/// Where the label of an edge through `pts` starts (left end of the text
/// baseline): right of the middle of the first segment.
pub(crate) fn label_anchor(pts: &[(f64, f64)]) -> (f64, f64) {
    match pts {
        [(ax, ay), (bx, by), ..] => ((ax + bx) / 2.0 + 4.0, ay + (by - ay).min(40.0) / 2.0 + 3.0),
        [(ax, ay)] => (*ax + 4.0, *ay),
        [] => (0.0, 0.0),
    }
}

/// Edge crossings between consecutive layers, counted as inversions with a
/// Fenwick tree: O(E log V).
fn crossings(layers: &[Vec<usize>], down: &[Vec<usize>], pos: &[usize]) -> usize {
    let mut total = 0;
    for l in 0..layers.len().saturating_sub(1) {
        let width = layers[l + 1].len();
        let mut ends: Vec<(usize, usize)> = Vec::new();
        for &v in &layers[l] {
            for &w in &down[v] {
                ends.push((pos[v], pos[w]));
            }
        }
        ends.sort_unstable();
        let mut tree = vec![0usize; width + 1];
        for (seen, &(_, q)) in ends.iter().enumerate() {
            // Edges seen so far ending right of q cross this one.
            let mut i = q + 1;
            let mut not_greater = 0;
            while i > 0 {
                not_greater += tree[i];
                i -= i & i.wrapping_neg();
            }
            total += seen - not_greater;
            let mut i = q + 1;
            while i <= width {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossings_of_two_layers() {
        // 0 -> 3, 1 -> 2: one crossing; swapping layer 1 removes it.
        let down = vec![vec![3], vec![2], vec![], vec![]];
        let layers = vec![vec![0, 1], vec![2, 3]];
        let pos = vec![0, 1, 0, 1];
        assert_eq!(crossings(&layers, &down, &pos), 1);
        let pos = vec![0, 1, 1, 0];
        assert_eq!(crossings(&[vec![0, 1], vec![3, 2]], &down, &pos), 0);
    }
}
