//! `fix` on the committed fixtures: the output loads under weights_only
//! (our scan says so; the interop test asks real torch), tensors are
//! byte-identical to the source, every change is reported, and what cannot
//! be made safe is refused with nothing written.

use std::path::{Path, PathBuf};

use netport_torch::TorchError;
use netport_torch::fix::{FixChange, fix_file};
use netport_torch::write::WriteOptions;
use netport_torch::{Checkpoint, scan_file};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/torch")
        .join(rel)
}

fn assert_same_tensors(a: &Path, b: &Path) {
    let (a, b) = (Checkpoint::open(a).unwrap(), Checkpoint::open(b).unwrap());
    assert_eq!(a.tensors().len(), b.tensors().len());
    for (x, y) in a.tensors().iter().zip(b.tensors()) {
        assert_eq!((&x.path, x.dtype, &x.shape), (&y.path, y.dtype, &y.shape));
        assert_eq!(
            a.tensor_bytes(x).unwrap(),
            b.tensor_bytes(y).unwrap(),
            "{}",
            x.path
        );
    }
}

#[test]
fn training_checkpoint_loses_its_namespace_and_numpy_scalars() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("training.pt");
    let src = fixture("training.pt");
    assert_eq!(scan_file(&src).unwrap().weights_only.loads, Some(false));
    let report = fix_file(&src, &out, &WriteOptions::default()).unwrap();
    let text: Vec<String> = report.changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "data.pkl: argparse.Namespace(lr, batch_size, name) -> dict",
            "data.pkl: numpy float64 scalar -> 0.93",
            "data.pkl: numpy int64 scalar -> 1000",
        ]
    );
    let scan = scan_file(&out).unwrap();
    assert_eq!(
        scan.weights_only.loads,
        Some(true),
        "{:?}",
        scan.weights_only
    );
    assert_same_tensors(&src, &out);
    let fixed = Checkpoint::open(&out).unwrap();
    let value = |p: &str| {
        fixed
            .values()
            .iter()
            .find(|v| v.path == p)
            .map(|v| v.repr.clone())
            .unwrap()
    };
    assert_eq!(value("args.lr"), "0.001");
    assert_eq!(value("best_acc"), "0.93");
    assert_eq!(value("step"), "1000");
}

#[test]
fn protocol_4_becomes_protocol_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.pt");
    let report = fix_file(&fixture("protocol4.pt"), &out, &WriteOptions::default()).unwrap();
    assert!(matches!(
        report.changes.as_slice(),
        [FixChange::Protocol { from: 4, .. }]
    ));
    let fixed = Checkpoint::open(&out).unwrap();
    assert_eq!(fixed.pickles()[0].protocol, Some(2));
    assert_eq!(scan_file(&out).unwrap().weights_only.loads, Some(true));
    assert_same_tensors(&fixture("protocol4.pt"), &out);
}

#[test]
fn files_that_already_load_are_copied_unchanged_in_content() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["legacy.pt", "protocol2.pt"] {
        let out = dir.path().join(name);
        let report = fix_file(&fixture(name), &out, &WriteOptions::default()).unwrap();
        assert!(report.changes.is_empty(), "{name}: {:?}", report.changes);
        assert_same_tensors(&fixture(name), &out);
    }
}

#[test]
fn what_cannot_be_made_safe_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pt");
    let e = fix_file(
        &fixture("malicious/zip_reduce.pt"),
        &out,
        &WriteOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, TorchError::Refused(_)), "{e}");
    assert!(e.to_string().contains("posix.system"), "{e}");
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a temporary file was left"
    );
}

#[test]
fn the_input_is_never_the_output_unless_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("training.pt");
    std::fs::copy(fixture("training.pt"), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let options = WriteOptions {
        input: Some(copy.clone()),
        in_place: false,
    };
    assert!(fix_file(&copy, &copy, &options).is_err());
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    let options = WriteOptions {
        input: Some(copy.clone()),
        in_place: true,
    };
    fix_file(&copy, &copy, &options).unwrap();
    assert_eq!(scan_file(&copy).unwrap().weights_only.loads, Some(true));
}
