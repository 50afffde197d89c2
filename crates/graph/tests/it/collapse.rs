//! Folding torch-style name scopes: by name and by depth, with counts,
//! the edges in and out kept once, and errors that list the scopes there
//! are.

use crate::common::{check_svg, residual_model};
use netport_graph::onnx::{Options, picture};
use netport_graph::{Collapse, GraphError, NodeKind, collapse, to_svg};

fn folded(scopes: &[&str], depth: Option<usize>) -> netport_graph::Picture {
    let p = picture(&residual_model(30), &Options::default());
    let what = Collapse {
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        depth,
    };
    let out = collapse(&p, &what).unwrap();
    check_svg(&to_svg(&out), &out);
    out
}

fn boxes(p: &netport_graph::Picture) -> Vec<(String, usize)> {
    p.nodes
        .iter()
        .filter_map(|n| match n.kind {
            NodeKind::Collapsed { count } => Some((n.subtitle.clone(), count)),
            _ => None,
        })
        .collect()
}

#[test]
fn depth_one_folds_each_layer() {
    let p = folded(&[], Some(1));
    assert_eq!(
        boxes(&p),
        [
            ("/layer0".to_string(), 40),
            ("/layer1".to_string(), 40),
            ("/layer2".to_string(), 40)
        ]
    );
    // x -> layer0 -> layer1 -> layer2 -> Identity -> out, each edge once.
    assert_eq!(p.nodes.len(), 6);
    let chain: Vec<(String, String)> = p
        .edges
        .iter()
        .map(|e| (p.nodes[e.from].title.clone(), p.nodes[e.to].title.clone()))
        .collect();
    assert_eq!(
        chain,
        [
            ("x".into(), "layer0".into()),
            ("layer0".into(), "layer1".into()),
            ("layer1".into(), "layer2".into()),
            ("layer2".into(), "Identity".into()),
            ("Identity".into(), "out".into()),
        ]
    );
}

#[test]
fn depth_two_folds_each_block() {
    let p = folded(&[], Some(2));
    let b = boxes(&p);
    assert_eq!(b.len(), 30);
    assert!(b.iter().all(|(_, count)| *count == 4));
    assert_eq!(b[0].0, "/layer0/block0");
}

#[test]
fn a_named_scope_folds_alone_and_wins_over_depth() {
    let p = folded(&["/layer1/"], None);
    assert_eq!(boxes(&p), [("/layer1".to_string(), 40)]);
    assert_eq!(p.op_count(), 121 - 40);
    let both = folded(&["layer1"], Some(2));
    let b = boxes(&both);
    assert_eq!(b.len(), 21);
    assert!(b.contains(&("/layer1".to_string(), 40)));
}

#[test]
fn unknown_and_empty_scopes_are_errors() {
    let p = picture(&residual_model(30), &Options::default());
    let err = collapse(
        &p,
        &Collapse {
            scopes: vec!["/layer9".into()],
            depth: None,
        },
    )
    .unwrap_err();
    assert_eq!(
        err,
        GraphError::NoSuchScope {
            scope: "/layer9".into(),
            available: "/layer0, /layer1, /layer2".into()
        }
    );
    let err = collapse(
        &p,
        &Collapse {
            scopes: vec!["/".into()],
            depth: None,
        },
    )
    .unwrap_err();
    assert!(matches!(err, GraphError::EmptyScope { .. }));
}
