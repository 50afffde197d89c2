//! The DOT writer, for people who have Graphviz: the same boxes as the SVG
//! as HTML-like labels (coloured header with the bold type, then the name,
//! initializer and attribute lines), an op that owns bodies wrapped in a
//! cluster with one nested cluster per body, edges labelled with dtype and
//! shape and carrying the value name as tooltip.

use crate::layout::{LineStyle, content};
use crate::picture::{NodeKind, Picture};
use crate::text::{clip, xml_escape};
use std::fmt::Write as _;

/// The picture as a Graphviz `digraph`.
pub fn to_dot(picture: &Picture) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph {} {{", quote(&picture.title));
    s.push_str("  graph [rankdir=TB, fontname=\"Helvetica\", nodesep=0.3, ranksep=0.45");
    if !picture.title.is_empty() {
        let _ = write!(
            s,
            ", labelloc=t, label=<<b>{}</b>>",
            xml_escape(&clip(&picture.title))
        );
    }
    s.push_str("];\n");
    s.push_str("  node [shape=plain, fontname=\"Helvetica\", fontsize=11];\n");
    s.push_str("  edge [fontname=\"Helvetica\", fontsize=9, color=\"#555555\", arrowsize=0.7];\n");
    let owned = picture.owned_clusters();
    // Nodes by level: 0 the main graph, c + 1 cluster c.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); picture.clusters.len() + 1];
    for (id, node) in picture.nodes.iter().enumerate() {
        let level = node.cluster.map_or(0, |c| c + 1);
        if let Some(m) = members.get_mut(level) {
            m.push(id);
        }
    }
    let mut visited = vec![false; picture.clusters.len()];
    level(&mut s, picture, &owned, &members, 0, 1, &mut visited);
    for edge in &picture.edges {
        let _ = write!(
            s,
            "  n{} -> n{} [tooltip={}",
            edge.from,
            edge.to,
            quote(&edge.value)
        );
        if let Some(label) = &edge.label {
            let _ = write!(s, ", label=<{}>", xml_escape(&clip(label)));
        }
        s.push_str("];\n");
    }
    s.push_str("}\n");
    s
}

/// Writes the nodes of `lvl` (and, inside the compound clusters, their
/// bodies) indented by `indent` steps.
fn level(
    s: &mut String,
    picture: &Picture,
    owned: &[Vec<usize>],
    members: &[Vec<usize>],
    lvl: usize,
    indent: usize,
    visited: &mut [bool],
) {
    let pad = "  ".repeat(indent);
    for &id in &members[lvl] {
        if owned[id].is_empty() {
            let _ = writeln!(s, "{pad}n{id} [label=<{}>];", label(picture, id));
            continue;
        }
        let _ = writeln!(s, "{pad}subgraph cluster_n{id} {{");
        let _ = writeln!(
            s,
            "{pad}  graph [label=\"\", style=\"rounded,filled\", fillcolor=\"#f7f7f7\", color=\"#888888\"];"
        );
        let _ = writeln!(s, "{pad}  n{id} [label=<{}>];", label(picture, id));
        for &c in &owned[id] {
            if std::mem::replace(&mut visited[c], true) {
                continue;
            }
            let _ = writeln!(s, "{pad}  subgraph cluster_c{c} {{");
            let _ = writeln!(
                s,
                "{pad}    graph [label=<{}>, style=\"dashed\", fillcolor=\"#ffffff\", color=\"#999999\", fontsize=10];",
                xml_escape(&clip(&picture.clusters[c].label))
            );
            level(s, picture, owned, members, c + 1, indent + 2, visited);
            let _ = writeln!(s, "{pad}  }}");
        }
        let _ = writeln!(s, "{pad}}}");
    }
}

/// The HTML-like label of node `id`.
fn label(picture: &Picture, id: usize) -> String {
    let node = &picture.nodes[id];
    let c = content(node);
    let style = match node.kind {
        NodeKind::Input | NodeKind::Output => " style=\"rounded\"",
        _ => "",
    };
    let border = if matches!(node.kind, NodeKind::Collapsed { .. }) {
        2
    } else {
        1
    };
    let mut s = format!(
        "<table border=\"{border}\" cellborder=\"0\" cellspacing=\"0\" cellpadding=\"4\" color=\"#666666\"{style}><tr><td bgcolor=\"{}\" align=\"left\"><font color=\"{}\"><b>{}</b></font></td></tr>",
        node.family.fill(),
        node.family.text(),
        xml_escape(&c.title)
    );
    if !c.lines.is_empty() {
        s.push_str("<tr><td align=\"left\" balign=\"left\">");
        for (i, (line, line_style)) in c.lines.iter().enumerate() {
            if i > 0 {
                s.push_str("<br/>");
            }
            let colour = match line_style {
                LineStyle::Name => "#666666",
                LineStyle::Init => "#000000",
                LineStyle::Attr => "#333333",
            };
            let _ = write!(s, "<font color=\"{colour}\">{}</font>", xml_escape(line));
        }
        s.push_str("</td></tr>");
    }
    s.push_str("</table>");
    s
}

/// A DOT quoted string: `"` and `\` escaped, line breaks and other
/// controls as spaces.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
