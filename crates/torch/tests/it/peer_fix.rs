//! Interop: what `netport_torch::fix` writes loads with the real
//! `torch.load(f)` (torch 2.15, weights_only=True by default, and with
//! mmap=True) although the
//! source does not, and holds the same tensors (torch.equal) and the same
//! values (a Namespace's attributes as a dict, numpy scalars as numbers) as
//! the source loaded with weights_only=False. Run by `cargo xtask ci`.

use std::path::Path;

use netport_torch::fix::fix_file;
use netport_torch::write::WriteOptions;

use crate::peer::run_python;

const SNIPPET: &str = r#"
import json, sys, argparse, torch, numpy as np
src, out = sys.argv[1], sys.argv[2]
try:
    torch.load(src)
    src_loads = True
except Exception:
    src_loads = False
fixed = torch.load(out)                       # weights_only=True
fixed_mmap = torch.load(out, mmap=True)
orig = torch.load(src, weights_only=False)

def plain(o):
    if isinstance(o, argparse.Namespace):
        return {k: plain(v) for k, v in vars(o).items()}
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, dict):
        return {k: plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return type(o)(plain(v) for v in o)
    return o

def same(a, b, path):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor), path
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), path
        return 1
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (path, list(a), list(b))
        return sum(same(a[k], b[k], f"{path}.{k}") for k in a)
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        return sum(same(x, y, f"{path}.{i}") for i, (x, y) in enumerate(zip(a, b)))
    assert a == b and type(a) == type(b), (path, a, b, type(a), type(b))
    return 0

n = same(fixed, plain(orig), "")
assert same(fixed_mmap, plain(orig), "") == n
print(json.dumps({"src_loads": src_loads, "tensors": n}))
"#;

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn fixed_checkpoints_load_with_weights_only_and_keep_everything() {
    let dir = tempfile::tempdir().unwrap();
    let torch_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/torch");
    for (name, tensors) in [("training.pt", 27), ("protocol4.pt", 9)] {
        let src = torch_dir.join(name);
        let out = dir.path().join(name);
        let report = fix_file(&src, &out, &WriteOptions::default()).unwrap();
        assert!(!report.changes.is_empty(), "{name}: nothing changed");
        let stdout = run_python(&format!("{name}: torch disagrees"), SNIPPET, [&src, &out]);
        let verdict: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(
            verdict["src_loads"], false,
            "{name}: the source already loaded"
        );
        assert_eq!(verdict["tensors"], tensors, "{name}");
    }
}

/// Storages of 1 MiB or more keep their offset modulo 64 KiB when the fixed
/// `data.pkl` before them changes length (netport_torch::write, 'phase'):
/// the extra padding is read by the real torch.load, with and without mmap.
#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn torch_loads_records_moved_into_phase() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("phase_p4.pt");
    let out = dir.path().join("phase_fixed.pt");
    run_python(
        "saving the source",
        "import argparse, sys, torch\n\
             torch.manual_seed(0)\n\
             args = argparse.Namespace(**{f'option_{i}': i * 0.5 for i in range(400)})\n\
             torch.save({'args': args, 'w': torch.randn(400_000),\n\
                         'b': torch.arange(300_000), 'small': torch.ones(3)},\n\
                        sys.argv[1], pickle_protocol=4)",
        [&src],
    );
    fix_file(&src, &out, &WriteOptions::default()).unwrap();
    let (a, b) = (std::fs::read(&src).unwrap(), std::fs::read(&out).unwrap());
    let (za, zb) = (
        netport_torch::ZipArchive::parse(&a).unwrap(),
        netport_torch::ZipArchive::parse(&b).unwrap(),
    );
    let mut moved = 0;
    for e in za.entries().iter().filter(|e| e.size >= 1 << 20) {
        let (from, to) = (
            e.data_range().start,
            zb.find(&e.name).unwrap().data_range().start,
        );
        assert_eq!(
            to % netport_io::COPY_STEP,
            from % netport_io::COPY_STEP,
            "{}",
            e.name
        );
        moved += usize::from(to != from);
    }
    assert_eq!(moved, 2, "the large storages did not move");
    let stdout = run_python("torch disagrees", SNIPPET, [&src, &out]);
    let verdict: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(verdict["src_loads"], false);
    assert_eq!(verdict["tensors"], 3);
}
