//! The SVG writer: the [`layout`](crate::layout()) drawn as Netron draws a
//! graph (a coloured header with the op type in bold, the name, initializer
//! and attribute lines below; inputs and outputs as rounded grey boxes;
//! edges as curves with an arrow and their dtype/shape label). Each node is
//! one `<g class="node" id="nK">`, each edge one `<g class="edge" id="eK"
//! data-from="nA" data-to="nB">`, each cluster one `<g class="cluster"
//! id="cK">`, so tools and tests can find them; all text is escaped.

use crate::layout::{
    FONT, FRAME_LABEL_H, HEADER_H, LINE_H, LineStyle, PAD_X, PAD_Y, SMALL_FONT, content,
    label_anchor, layout,
};
use crate::picture::{NodeKind, Picture};
use crate::text::{clip, num, xml_escape};
use std::fmt::Write as _;

/// The picture as a standalone SVG document.
pub fn to_svg(picture: &Picture) -> String {
    let l = layout(picture);
    let mut s = String::new();
    let (w, h) = (num(l.width), num(l.height));
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="Helvetica, Arial, sans-serif" font-size="{}">"#,
        num(FONT)
    );
    let _ = writeln!(s, "<title>{}</title>", xml_escape(&picture.title));
    s.push_str(concat!(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" ",
        "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">",
        "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555555\"/></marker></defs>\n"
    ));
    let _ = writeln!(s, r##"<rect width="{w}" height="{h}" fill="#ffffff"/>"##);
    if !picture.title.is_empty() {
        let _ = writeln!(
            s,
            r##"<text x="20" y="26" font-size="14" font-weight="bold" fill="#333333">{}</text>"##,
            xml_escape(&clip(&picture.title))
        );
    }
    // Compound boxes and cluster frames first, outermost first, so what is
    // inside them is drawn over them.
    let owned = picture.owned_clusters();
    let mut by_depth: Vec<usize> = (0..picture.nodes.len())
        .filter(|&i| !owned[i].is_empty())
        .collect();
    by_depth.sort_by_key(|&i| (picture.depth(i), i));
    s.push_str("<g class=\"clusters\">\n");
    for &id in &by_depth {
        let r = l.nodes[id];
        let _ = writeln!(
            s,
            r##"<rect class="compound" x="{}" y="{}" width="{}" height="{}" rx="4" fill="#f7f7f7" stroke="#888888"/>"##,
            num(r.x),
            num(r.y),
            num(r.w),
            num(r.h)
        );
        for &c in &owned[id] {
            let f = l.clusters[c];
            let _ = writeln!(
                s,
                r##"<g class="cluster" id="c{c}"><rect x="{}" y="{}" width="{}" height="{}" rx="3" fill="#ffffff" stroke="#999999" stroke-dasharray="4 3"/><text x="{}" y="{}" font-size="{}" fill="#555555">{}</text></g>"##,
                num(f.x),
                num(f.y),
                num(f.w),
                num(f.h),
                num(f.x + 6.0),
                num(f.y + FRAME_LABEL_H - 4.0),
                num(SMALL_FONT),
                xml_escape(&clip(&picture.clusters[c].label))
            );
        }
    }
    s.push_str("</g>\n<g class=\"edges\" fill=\"none\">\n");
    // A value going to several boxes is labelled once, on its first edge,
    // where the edges still start at one point.
    let mut labelled = std::collections::HashSet::new();
    for (e, edge) in picture.edges.iter().enumerate() {
        let pts = &l.edges[e];
        if pts.len() < 2 {
            continue;
        }
        let _ = write!(
            s,
            r#"<g class="edge" id="e{e}" data-from="n{}" data-to="n{}"><title>{}</title><path d="M{},{}"#,
            edge.from,
            edge.to,
            xml_escape(&edge.value),
            num(pts[0].0),
            num(pts[0].1)
        );
        for win in pts.windows(2) {
            let ((ax, ay), (bx, by)) = (win[0], win[1]);
            if (ax - bx).abs() < 0.05 {
                let _ = write!(s, " L{},{}", num(bx), num(by));
            } else {
                let my = (ay + by) / 2.0;
                let _ = write!(
                    s,
                    " C{},{} {},{} {},{}",
                    num(ax),
                    num(my),
                    num(bx),
                    num(my),
                    num(bx),
                    num(by)
                );
            }
        }
        s.push_str(r##"" stroke="#555555" stroke-width="1.2" marker-end="url(#arrow)"/>"##);
        let label = edge
            .label
            .as_ref()
            .filter(|_| labelled.insert((edge.from, edge.value.as_str())));
        if let Some(label) = label {
            let (x, y) = label_anchor(pts);
            let _ = write!(
                s,
                r##"<text x="{}" y="{}" font-size="{}" fill="#444444" stroke="none">{}</text>"##,
                num(x),
                num(y),
                num(SMALL_FONT),
                xml_escape(&clip(label))
            );
        }
        s.push_str("</g>\n");
    }
    s.push_str("</g>\n<g class=\"nodes\">\n");
    for (id, node) in picture.nodes.iter().enumerate() {
        let r = l.nodes[id];
        let c = content(node);
        let kind = match node.kind {
            NodeKind::Op => "op",
            NodeKind::Input => "input",
            NodeKind::Output => "output",
            NodeKind::Collapsed { .. } => "collapsed",
        };
        let _ = write!(
            s,
            r#"<g class="node {kind} {}" id="n{id}"><title>{}</title>"#,
            node.family.name(),
            xml_escape(match node.kind {
                // The op's name (its type when it has none), the value's
                // name, the folded scope: whole, unclipped.
                NodeKind::Op if !node.subtitle.is_empty() => &node.subtitle,
                NodeKind::Collapsed { .. } => &node.subtitle,
                _ => &node.title,
            })
        );
        let text_h = if c.lines.is_empty() {
            HEADER_H
        } else {
            HEADER_H + 2.0 * PAD_Y + LINE_H * c.lines.len() as f64
        };
        let compound = !owned[id].is_empty();
        let (fill, ink) = (node.family.fill(), node.family.text());
        let rx = match node.kind {
            NodeKind::Input | NodeKind::Output => 11.0,
            _ => 4.0,
        };
        if !compound {
            let stroke = if matches!(node.kind, NodeKind::Collapsed { .. }) {
                r##" stroke="#556677" stroke-width="2""##
            } else {
                r##" stroke="#666666""##
            };
            let _ = write!(
                s,
                r##"<rect x="{}" y="{}" width="{}" height="{}" rx="{}" fill="#ffffff"{stroke}/>"##,
                num(r.x),
                num(r.y),
                num(r.w),
                num(text_h),
                num(rx)
            );
        }
        // The header band: rounded on top only when lines follow.
        let _ = write!(
            s,
            r#"<path d="{}" fill="{fill}"/>"#,
            header_path(r.x, r.y, r.w, rx, !c.lines.is_empty())
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-weight="bold" fill="{ink}">{}</text>"#,
            num(r.x + PAD_X),
            num(r.y + HEADER_H / 2.0 + FONT / 2.0 - 2.0),
            xml_escape(&c.title)
        );
        for (i, (line, style)) in c.lines.iter().enumerate() {
            let colour = match style {
                LineStyle::Name => "#666666",
                LineStyle::Init => "#000000",
                LineStyle::Attr => "#333333",
            };
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" fill="{colour}">{}</text>"#,
                num(r.x + PAD_X),
                num(r.y + HEADER_H + PAD_Y + LINE_H * (i as f64 + 1.0) - 3.0),
                xml_escape(line)
            );
        }
        s.push_str("</g>\n");
    }
    s.push_str("</g>\n</svg>\n");
    s
}

/// The header band of a box at `(x, y)`, `w` wide: a rounded rectangle,
/// square at the bottom when lines follow.
fn header_path(x: f64, y: f64, w: f64, rx: f64, square_bottom: bool) -> String {
    let (x2, y2) = (x + w, y + HEADER_H);
    let rx = rx.min(HEADER_H / 2.0);
    let mut d = format!(
        "M{},{} Q{},{} {},{} L{},{} Q{},{} {},{}",
        num(x),
        num(y + rx),
        num(x),
        num(y),
        num(x + rx),
        num(y),
        num(x2 - rx),
        num(y),
        num(x2),
        num(y),
        num(x2),
        num(y + rx)
    );
    if square_bottom {
        let _ = write!(d, " L{},{} L{},{} z", num(x2), num(y2), num(x), num(y2));
    } else {
        let _ = write!(
            d,
            " L{},{} Q{},{} {},{} L{},{} Q{},{} {},{} z",
            num(x2),
            num(y2 - rx),
            num(x2),
            num(y2),
            num(x2 - rx),
            num(y2),
            num(x + rx),
            num(y2),
            num(x),
            num(y2),
            num(x),
            num(y2 - rx)
        );
    }
    d
}
