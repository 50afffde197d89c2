//! The layout on a generated 1,000-op model: boxes of one graph never
//! overlap, everything is inside the picture, every edge leaves its source
//! at the bottom and reaches its target at the top, layers go down.

use crate::common::{check_svg, residual_model};
use netport_graph::onnx::{Options, picture};
use netport_graph::{layout, to_dot, to_svg};

#[test]
fn a_thousand_op_model_is_drawn() {
    let model = residual_model(250);
    let p = picture(&model, &Options { shapes: true });
    assert_eq!(p.op_count(), 1001);
    let l = layout(&p);
    let whole = netport_graph::layout::Rect {
        x: 0.0,
        y: 0.0,
        w: l.width,
        h: l.height,
    };
    for (i, r) in l.nodes.iter().enumerate() {
        assert!(whole.contains(r), "node {i} at {r:?} outside {whole:?}");
        assert!(r.w > 0.0 && r.h > 0.0);
    }
    // No two boxes overlap (sorted by top, compared while they can).
    let mut by_y: Vec<usize> = (0..l.nodes.len()).collect();
    by_y.sort_by(|&a, &b| l.nodes[a].y.total_cmp(&l.nodes[b].y));
    for (k, &a) in by_y.iter().enumerate() {
        let ra = l.nodes[a];
        for &b in &by_y[k + 1..] {
            let rb = l.nodes[b];
            if rb.y >= ra.y + ra.h {
                break;
            }
            let apart = rb.x >= ra.x + ra.w || ra.x >= rb.x + rb.w;
            assert!(apart, "boxes {a} {ra:?} and {b} {rb:?} overlap");
        }
    }
    for (e, edge) in p.edges.iter().enumerate() {
        let pts = &l.edges[e];
        let (from, to) = (l.nodes[edge.from], l.nodes[edge.to]);
        let (first, last) = (pts[0], pts[pts.len() - 1]);
        assert!((first.1 - (from.y + from.h)).abs() < 1e-6, "edge {e} start");
        assert!((last.1 - to.y).abs() < 1e-6, "edge {e} end");
        assert!(first.0 >= from.x && first.0 <= from.x + from.w);
        assert!(last.0 >= to.x && last.0 <= to.x + to.w);
        assert!(to.y > from.y, "edge {e} goes up in a DAG");
    }
    let svg = to_svg(&p);
    check_svg(&svg, &p);
    assert!(to_dot(&p).lines().filter(|l| l.contains(" -> ")).count() == p.edges.len());
}

#[test]
fn a_chain_is_one_straight_column() {
    let model = residual_model(0);
    let p = picture(&model, &Options::default());
    // x -> Identity -> out
    let l = layout(&p);
    let centres: Vec<f64> = l.nodes.iter().map(|r| r.x + r.w / 2.0).collect();
    assert!(
        centres.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-6),
        "{centres:?}"
    );
    assert!(l.nodes.windows(2).all(|w| w[1].y > w[0].y + w[0].h));
}

#[test]
fn a_value_read_by_every_op_shares_one_straight_trunk() {
    // x feeds every Add of a 1,000-op chain: its edges run down together,
    // so each is a handful of points, not one per layer it spans.
    let mut m = netport_onnx::build::ModelBuilder::new("fan", &[("", 17)]).unwrap();
    let g = m.graph();
    let dims = [netport_onnx::build::Dim::Fixed(4)];
    g.input("x", netport_tensor::DType::Float32, &dims).unwrap();
    let mut y = "x".to_owned();
    for b in 0..500 {
        let (r, s) = (format!("r{b}"), format!("y{b}"));
        g.node("Relu", &[&y], &[&r]).add().unwrap();
        g.node("Add", &["x", &r], &[&s]).add().unwrap();
        y = s;
    }
    g.output(&y, netport_tensor::DType::Float32, &dims).unwrap();
    let p = picture(&m.into_model(), &Options::default());
    assert_eq!(p.op_count(), 1000);
    let l = layout(&p);
    let longest = l.edges.iter().map(Vec::len).max().unwrap();
    assert!(longest <= 6, "an edge of {longest} points");
    check_svg(&to_svg(&p), &p);
}
