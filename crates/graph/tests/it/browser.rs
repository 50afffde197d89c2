//! Interop: a real browser renders our SVG. Headless Chromium (the Debian
//! package; `.ci/run` installs it) takes a screenshot of the picture of the
//! peer corpus's resnet18 export, of its Caffe2 pair (converted by the real
//! Caffe2 when `NETPORT_CAFFE2_PYTHON` names its Python) and of the
//! corpus's Caffe2 CNN pair, at the picture's own size; the screenshot must not be blank, every node's box must have ink
//! in it (so the viewBox holds every node), and the op-family colours must
//! show. Ignored in a plain `cargo test`: needs NETPORT_PEERS and Chromium
//! (`NETPORT_CHROMIUM`, else `chromium` on PATH).

use crate::common::{check_svg, peer_dir};
use netport_graph::{Picture, layout, to_svg};
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> PathBuf {
    std::env::var_os("NETPORT_CHROMIUM").map_or_else(|| PathBuf::from("chromium"), PathBuf::from)
}

/// Screenshots `svg` at `w` x `h` pixels; returns RGBA rows.
fn screenshot(dir: &Path, name: &str, svg: &str, w: u32, h: u32) -> Vec<Vec<[u8; 4]>> {
    let svg_path = dir.join(format!("{name}.svg"));
    let png_path = dir.join(format!("{name}.png"));
    std::fs::write(&svg_path, svg).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png_path.display()))
        .arg(format!("--window-size={w},{h}"))
        .arg(format!("file://{}", svg_path.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", chromium().display()));
    assert!(
        png_path.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png_path).unwrap();
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    assert_eq!((info.width, info.height), (w, h));
    buf[..info.buffer_size()]
        .chunks(info.line_size)
        .map(|row| {
            row.chunks(channels)
                .map(|p| [p[0], p[1], p[2], if channels == 4 { p[3] } else { 255 }])
                .collect()
        })
        .collect()
}

fn is_ink(p: [u8; 4]) -> bool {
    p[3] > 0 && (p[0] < 235 || p[1] < 235 || p[2] < 235)
}

/// Renders `picture` and checks the screenshot.
fn renders(picture: &Picture, name: &str, family_colour: [u8; 3]) {
    let svg = to_svg(picture);
    check_svg(&svg, picture);
    let l = layout(picture);
    let (w, h) = (l.width.ceil() as u32, l.height.ceil() as u32);
    assert!(h < 16_000, "{name}: {h} px tall");
    let dir = tempfile::tempdir().unwrap();
    let px = screenshot(dir.path(), name, &svg, w, h);
    let total = (w * h) as usize;
    let ink = px.iter().flatten().filter(|p| is_ink(**p)).count();
    assert!(
        ink * 100 > total,
        "{name}: {ink} of {total} pixels drawn, the screenshot is blank"
    );
    let coloured = px
        .iter()
        .flatten()
        .filter(|p| (0..3).all(|i| p[i].abs_diff(family_colour[i]) < 12))
        .count();
    assert!(coloured > 100, "{name}: the family colour is not drawn");
    for (id, r) in l.nodes.iter().enumerate() {
        let (x0, y0) = (r.x.floor() as usize, r.y.floor() as usize);
        let (x1, y1) = (
            ((r.x + r.w).ceil() as usize).min(w as usize),
            ((r.y + r.h).ceil() as usize).min(h as usize),
        );
        let inked = (y0..y1).any(|y| (x0..x1).any(|x| is_ink(px[y][x])));
        assert!(inked, "{name}: nothing drawn where node n{id} is ({r:?})");
    }
}

#[test]
#[ignore = "interop: needs NETPORT_PEERS and Chromium"]
fn chromium_draws_resnet18() {
    let dir = peer_dir().join("resnet18/torchscript");
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "onnx"))
        .unwrap();
    let model = netport_onnx::load_model(&path).unwrap();
    let options = netport_graph::onnx::Options { shapes: true };
    let p = netport_graph::onnx::picture(&model, &options);
    assert!(p.op_count() >= 40);
    crate::common::assert_svg_shows_model(&to_svg(&p), &model);
    // Conv boxes are Netron's layer blue.
    renders(&p, "resnet18", [0x33, 0x55, 0x88]);
    let folded = netport_graph::collapse(
        &p,
        &netport_graph::Collapse {
            scopes: vec![],
            depth: Some(1),
        },
    )
    .unwrap();
    renders(&folded, "resnet18-depth1", [0x33, 0x55, 0x88]);
}

#[test]
#[ignore = "interop: needs NETPORT_PEERS and Chromium"]
fn chromium_draws_a_caffe2_pair() {
    let model = netport_caffe2::Caffe2Model::load_dir(peer_dir().join("caffe2/cnn")).unwrap();
    let p = netport_graph::caffe2::picture(&model.predict_net, Some(&model.init_net));
    assert!(p.op_count() >= 3);
    renders(&p, "caffe2-cnn", [0x33, 0x55, 0x88]);
}

/// resnet18 converted by the real Caffe2 (`tests/onnx_to_caffe2.py` in the
/// venv `NETPORT_CAFFE2_PYTHON` names): the Caffe2 picture shows the same
/// ops, and Chromium draws it. Without that venv the test fails and says
/// what is missing (`cargo xtask ci` builds it).
#[test]
#[ignore = "interop: needs NETPORT_PEERS, NETPORT_CAFFE2_PYTHON and Chromium"]
fn chromium_draws_resnet18_as_a_caffe2_pair() {
    let python = std::env::var_os("NETPORT_CAFFE2_PYTHON").expect(
        "NETPORT_CAFFE2_PYTHON must name the Python of the Caffe2 venv (Python 3.7, \
         torch 1.4.0; `cargo xtask ci` builds it)",
    );
    let onnx_path = peer_dir().join("resnet18/torchscript/resnet18.onnx");
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx_to_caffe2.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(&onnx_path)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model = netport_onnx::load_model(&onnx_path).unwrap();
    let pair = netport_caffe2::Caffe2Model::load_dir(dir.path()).unwrap();
    let p = netport_graph::caffe2::picture(&pair.predict_net, Some(&pair.init_net));
    let onnx = netport_graph::onnx::picture(&model, &Default::default());
    assert_eq!(p.op_count(), pair.predict_net.op.len());
    // The same network: the same ops by name and, folded by block, the
    // same boxes and edges.
    let names = |p: &Picture| {
        let mut v: Vec<String> = p
            .nodes
            .iter()
            .filter(|n| n.kind == netport_graph::NodeKind::Op)
            .map(|n| n.subtitle.clone())
            .collect();
        v.sort();
        v
    };
    let depth2 = netport_graph::Collapse {
        scopes: vec![],
        depth: Some(2),
    };
    let (a, b) = (
        netport_graph::collapse(&onnx, &depth2).unwrap(),
        netport_graph::collapse(&p, &depth2).unwrap(),
    );
    let titles = |p: &Picture| -> Vec<String> {
        p.nodes
            .iter()
            .filter(|n| matches!(n.kind, netport_graph::NodeKind::Collapsed { .. }))
            .map(|n| n.subtitle.clone())
            .collect()
    };
    assert_eq!(titles(&a), titles(&b));
    assert_eq!(a.edges.len(), b.edges.len());
    // Caffe2's backend drops the name of the op it makes of Gemm (FC).
    let (ours, theirs) = (names(&onnx), names(&p));
    assert_eq!(ours.len(), theirs.len());
    assert!(theirs.iter().all(|n| n.is_empty() || ours.contains(n)));
    assert!(theirs.iter().filter(|n| n.is_empty()).count() <= 1);
    renders(&p, "resnet18-caffe2", [0x33, 0x55, 0x88]);
}
