//! Shared helpers for the graph tests: fixtures, snapshot files, the checks
//! every SVG must pass (valid XML, each node and edge once, inside the
//! viewBox) and a generated 1,000-op model with torch-style scopes.
#![allow(dead_code)]

use netport_graph::Picture;
use netport_onnx::build::{Dim, ModelBuilder};
use netport_onnx::proto::ModelProto;
use netport_tensor::DType;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

/// The committed snapshot `tests/snapshots/NAME`.
pub fn snapshot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name)
}

/// Fails when the file at `path` does not hold `actual`. Outside CI the
/// file is then rewritten with `actual`, so a change shows in `git diff`
/// and the next run passes once it has been reviewed.
pub fn ensure_file_contents(path: &Path, actual: &str) {
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return;
    }
    let ci = std::env::var_os("CI").is_some();
    if !ci {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
    }
    let first = expected
        .lines()
        .zip(actual.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(expected.lines().count().min(actual.lines().count()));
    panic!(
        "{} is not up to date (first difference at line {}){}",
        path.display(),
        first + 1,
        if ci {
            ""
        } else {
            "; it has been rewritten: review it with `git diff` and run the tests again"
        }
    );
}

pub fn load_onnx(rel: &str) -> ModelProto {
    netport_onnx::load_model(&testdata(rel)).unwrap()
}

/// Parses `svg` and checks what every picture must satisfy: it is XML,
/// every node of `picture` is one `<g class="node ..." id="nK">` and every
/// edge one `<g class="edge" id="eK">` with its endpoints, nothing else
/// has those ids, and every rectangle lies inside the viewBox.
pub fn check_svg(svg: &str, picture: &Picture) {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let vb: Vec<f64> = root
        .attribute("viewBox")
        .unwrap()
        .split(' ')
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(vb.len(), 4);
    assert_eq!((vb[0], vb[1]), (0.0, 0.0));
    let mut nodes: BTreeMap<usize, usize> = BTreeMap::new();
    let mut edges: BTreeMap<usize, (String, String)> = BTreeMap::new();
    for g in doc.descendants().filter(|n| n.has_tag_name("g")) {
        let class = g.attribute("class").unwrap_or("");
        let id = g.attribute("id").unwrap_or("");
        if class.starts_with("node ") {
            let k: usize = id.strip_prefix('n').unwrap().parse().unwrap();
            *nodes.entry(k).or_default() += 1;
        } else if class == "edge" {
            let k: usize = id.strip_prefix('e').unwrap().parse().unwrap();
            let ends = (
                g.attribute("data-from").unwrap().to_owned(),
                g.attribute("data-to").unwrap().to_owned(),
            );
            assert!(edges.insert(k, ends).is_none(), "edge e{k} twice");
        }
    }
    assert_eq!(nodes.len(), picture.nodes.len(), "node groups");
    assert!(nodes.values().all(|&c| c == 1), "a node drawn twice");
    assert!(nodes.keys().copied().eq(0..picture.nodes.len()));
    assert_eq!(edges.len(), picture.edges.len(), "edge groups");
    for (k, e) in picture.edges.iter().enumerate() {
        assert_eq!(
            edges[&k],
            (format!("n{}", e.from), format!("n{}", e.to)),
            "edge e{k}"
        );
    }
    for rect in doc.descendants().filter(|n| n.has_tag_name("rect")) {
        let get = |a: &str| rect.attribute(a).map_or(0.0, |v| v.parse::<f64>().unwrap());
        let (x, y, w, h) = (get("x"), get("y"), get("width"), get("height"));
        assert!(
            x >= vb[0] && y >= vb[1] && x + w <= vb[2] + 0.05 && y + h <= vb[3] + 0.05,
            "rect {x},{y} {w}x{h} outside viewBox {vb:?}"
        );
    }
}

/// A model of `blocks` residual blocks of 4 ops (Relu, Sigmoid, Mul, Add)
/// named as torch names them, `/layerL/blockB/Op`, ten blocks a layer.
pub fn residual_model(blocks: usize) -> ModelProto {
    let mut m = ModelBuilder::new("residual", &[("", 17)]).unwrap();
    let g = m.graph();
    let dims = [Dim::Fixed(1), Dim::Fixed(8)];
    g.input("x", DType::Float32, &dims).unwrap();
    let mut x = "x".to_owned();
    for b in 0..blocks {
        g.push_scope(&format!("layer{}", b / 10));
        g.push_scope(&format!("block{b}"));
        let (r, s, p, y) = (
            format!("r{b}"),
            format!("s{b}"),
            format!("p{b}"),
            format!("y{b}"),
        );
        g.node("Relu", &[&x], &[&r]).add().unwrap();
        g.node("Sigmoid", &[&x], &[&s]).add().unwrap();
        g.node("Mul", &[&r, &s], &[&p]).add().unwrap();
        g.node("Add", &[&x, &p], &[&y]).add().unwrap();
        g.pop_scope();
        g.pop_scope();
        x = y;
    }
    g.node("Identity", &[&x], &["out"]).add().unwrap();
    g.output("out", DType::Float32, &dims).unwrap();
    m.into_model()
}

/// The env var of the peer corpus, if set.
pub fn peer_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os("NETPORT_PEERS")
            .expect("NETPORT_PEERS is not set: interop tests run through `cargo xtask ci`"),
    )
}

/// The boxes and edges a flat ONNX graph must show, worked out from the
/// model itself: one per node (by name), one per graph input that is not an
/// initializer and per graph output, and one edge per (maker, reader,
/// value), makers and readers named by node name, input or output name.
pub fn expected_from_model(model: &ModelProto) -> (Vec<String>, Vec<(String, String, String)>) {
    let g = model.graph.as_ref().unwrap();
    let inits: std::collections::HashSet<&str> = g.initializer.iter().map(|t| t.name()).collect();
    let mut maker: BTreeMap<&str, String> = BTreeMap::new();
    let mut boxes = Vec::new();
    for i in g.input.iter().filter(|i| !inits.contains(i.name())) {
        maker.insert(i.name(), i.name().to_owned());
        boxes.push(i.name().to_owned());
    }
    for n in &g.node {
        boxes.push(n.name().to_owned());
        for o in &n.output {
            maker.insert(o, n.name().to_owned());
        }
    }
    let mut edges = std::collections::BTreeSet::new();
    for n in &g.node {
        for i in n.input.iter().filter(|i| maker.contains_key(i.as_str())) {
            edges.insert((maker[i.as_str()].clone(), n.name().to_owned(), i.clone()));
        }
    }
    for o in &g.output {
        boxes.push(o.name().to_owned());
        edges.insert((
            maker[o.name()].clone(),
            o.name().to_owned(),
            o.name().to_owned(),
        ));
    }
    (boxes, edges.into_iter().collect())
}

/// The boxes (by `<title>`) and edges (maker title, reader title, value)
/// an SVG shows, read back from the XML alone.
pub fn shown_in_svg(svg: &str) -> (Vec<String>, Vec<(String, String, String)>) {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let title = |g: roxmltree::Node| {
        g.children()
            .find(|c| c.has_tag_name("title"))
            .and_then(|t| t.text())
            .unwrap_or("")
            .to_owned()
    };
    let mut by_id = BTreeMap::new();
    let mut boxes = Vec::new();
    let mut edges = Vec::new();
    for g in doc.descendants().filter(|n| n.has_tag_name("g")) {
        let class = g.attribute("class").unwrap_or("");
        if class.starts_with("node ") {
            let name = title(g);
            by_id.insert(g.attribute("id").unwrap().to_owned(), name.clone());
            boxes.push(name);
        }
    }
    for g in doc.descendants().filter(|n| n.has_tag_name("g")) {
        if g.attribute("class") == Some("edge") {
            edges.push((
                by_id[g.attribute("data-from").unwrap()].clone(),
                by_id[g.attribute("data-to").unwrap()].clone(),
                title(g),
            ));
        }
    }
    (boxes, edges)
}

/// Every node and edge of `model` is in `svg` exactly once, and nothing
/// else is.
pub fn assert_svg_shows_model(svg: &str, model: &ModelProto) {
    let (mut want_boxes, want_edges) = expected_from_model(model);
    let (mut boxes, mut edges) = shown_in_svg(svg);
    want_boxes.sort();
    boxes.sort();
    edges.sort();
    assert_eq!(boxes, want_boxes);
    assert_eq!(edges, want_edges);
}
