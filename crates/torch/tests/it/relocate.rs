//! `map-location` (`netport_torch::relocate`) on the committed fixtures.

use std::path::{Path, PathBuf};

use netport_torch::TorchError;
use netport_torch::relocate::{
    LocationMap, RelocateOptions, RelocateReport, relocate_file, relocate_pickle,
};
use netport_torch::write::WriteOptions;
use netport_torch::{Checkpoint, ZipArchive};

fn torch_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/torch")
}

fn opts(map: LocationMap) -> RelocateOptions {
    RelocateOptions {
        map,
        all_devices: false,
        write: WriteOptions::default(),
    }
}

fn pickle<'a>(c: &'a Checkpoint, name: &str) -> std::borrow::Cow<'a, [u8]> {
    let p = c.pickles().iter().find(|p| p.name == name).unwrap();
    c.pickle_bytes(p).unwrap()
}

fn record<'a>(c: &'a Checkpoint, name: &str) -> &'a [u8] {
    let r = c.info().records.iter().find(|r| r.name == name).unwrap();
    &c.bytes()[r.byte_range.start as usize..r.byte_range.end as usize]
}

fn same_tensors(a: &Checkpoint, b: &Checkpoint) {
    assert_eq!(a.tensors().len(), b.tensors().len());
    for (x, y) in a.tensors().iter().zip(b.tensors()) {
        assert_eq!(
            (&x.path, x.dtype, &x.shape, &x.strides),
            (&y.path, y.dtype, &y.shape, &y.strides)
        );
        assert!(a.tensor_bytes(x).unwrap() == b.tensor_bytes(y).unwrap());
    }
}

#[test]
fn zip_to_cpu_equals_reference() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pt");
    let report = relocate_file(
        &torch_dir().join("cuda_tagged.pt"),
        &out,
        &opts(LocationMap::to("cpu")),
    )
    .unwrap();
    assert_eq!(report.storages_changed(), 9);
    assert_eq!(report.lines()[0], "9 storages: cuda:0 -> cpu");
    assert_eq!(report.pickles_rewritten, ["data.pkl"]);
    let got = Checkpoint::open(&out).unwrap();
    let reference = Checkpoint::open(torch_dir().join("cuda_tagged_reference.pt")).unwrap();
    assert!(pickle(&got, "data.pkl") == pickle(&reference, "data.pkl"));
    // The serialization id is the one torch wrote for the reference (same
    // record names, CRC half recomputed).
    assert_eq!(
        got.info().serialization_id,
        reference.info().serialization_id
    );
    // Every other record is copied as it is.
    let src = Checkpoint::open(torch_dir().join("cuda_tagged.pt")).unwrap();
    for r in &src.info().records {
        if r.name != "data.pkl" && r.name != ".data/serialization_id" {
            assert!(record(&src, &r.name) == record(&got, &r.name), "{}", r.name);
        }
    }
    same_tensors(&reference, &got);
    assert!(got.tensors().iter().all(|t| &*t.device == "cpu"));
    // The whole file is what torch.save writes for the reference, except for
    // the archive name (the source's is kept).
    let zip = ZipArchive::parse(got.bytes()).unwrap();
    let (renamed, _) = netport_torch::write::rewrite_zip_to(
        Vec::new(),
        got.bytes(),
        &zip,
        &Default::default(),
        Some("cuda_tagged_reference"),
    )
    .unwrap();
    assert!(renamed == reference.bytes());
}

#[test]
fn legacy_to_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pt");
    let input = torch_dir().join("cuda_tagged_legacy.pt");
    let report = relocate_file(&input, &out, &opts(LocationMap::to("cpu"))).unwrap();
    assert_eq!(report.lines()[0], "9 storages: cuda:0 -> cpu");
    let src = Checkpoint::open(&input).unwrap();
    let got = Checkpoint::open(&out).unwrap();
    // Pickle #4 differs only by the one tag definition.
    let want: Vec<u8> = {
        let p = pickle(&src, "legacy pickle #4").into_owned();
        let old = b"X\x06\x00\x00\x00cuda:0";
        let at = p.windows(old.len()).position(|w| w == old).unwrap();
        assert_eq!(
            p.windows(old.len()).filter(|w| w == old).count(),
            1,
            "one definition, BINGET for the others"
        );
        [
            &p[..at],
            b"X\x03\x00\x00\x00cpu".as_slice(),
            &p[at + old.len()..],
        ]
        .concat()
    };
    assert!(*pickle(&got, "legacy pickle #4") == want[..]);
    // Pickles 1-3, 5 and the raw area are copied.
    let p4s = &src.pickles()[3].byte_range;
    let p4g = &got.pickles()[3].byte_range;
    assert!(src.bytes()[..p4s.start as usize] == got.bytes()[..p4g.start as usize]);
    assert!(src.bytes()[p4s.end as usize..] == got.bytes()[p4g.end as usize..]);
    same_tensors(&src, &got);
    assert!(got.tensors().iter().all(|t| &*t.device == "cpu"));
}

#[test]
fn map_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.pt");
    let b = dir.path().join("b.pt");
    let input = torch_dir().join("cuda_tagged.pt");
    let r = relocate_file(
        &input,
        &a,
        &opts(LocationMap::parse_pairs(&["cuda:0=cuda:1"]).unwrap()),
    )
    .unwrap();
    assert_eq!(r.lines()[0], "9 storages: cuda:0 -> cuda:1");
    let mid = Checkpoint::open(&a).unwrap();
    assert!(mid.tensors().iter().all(|t| &*t.device == "cuda:1"));
    // A map that matches nothing: exit 0, says so, output still written.
    let r = relocate_file(
        &a,
        &b,
        &opts(LocationMap::parse_pairs(&["cuda:0=cpu"]).unwrap()),
    )
    .unwrap();
    assert_eq!(r.storages_changed(), 0);
    assert!(r.lines().iter().any(|l| l.contains("nothing to rewrite")));
    relocate_file(
        &a,
        &b,
        &opts(LocationMap::parse_pairs(&["cuda:1=cuda:0"]).unwrap()),
    )
    .unwrap();
    assert!(std::fs::read(&b).unwrap() == std::fs::read(&input).unwrap());
}

#[test]
fn torchscript_tags_in_data_and_constants() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["torchscript.pt", "torchscript_frozen.pt"] {
        let input = torch_dir().join(name);
        let a = dir.path().join(format!("a_{name}"));
        let b = dir.path().join(format!("b_{name}"));
        let src = Checkpoint::open(&input).unwrap();
        let n = src.storages().len();
        let r = relocate_file(&input, &a, &opts(LocationMap::to("cuda:0"))).unwrap();
        assert_eq!(r.storages_changed(), n, "{name}");
        let mid = Checkpoint::open(&a).unwrap();
        assert!(
            mid.tensors().iter().all(|t| &*t.device == "cuda:0"),
            "{name}"
        );
        same_tensors(&src, &mid);
        relocate_file(&a, &b, &opts(LocationMap::to("cpu"))).unwrap();
        assert!(
            std::fs::read(&b).unwrap() == std::fs::read(&input).unwrap(),
            "{name}"
        );
    }
}

/// Protocol-4 pickles: FRAME lengths are recomputed.
#[test]
fn protocol4_frames_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let input = torch_dir().join("protocol4.pt");
    let a = dir.path().join("a.pt");
    let b = dir.path().join("b.pt");
    relocate_file(&input, &a, &opts(LocationMap::to("cuda:0"))).unwrap();
    let mid = Checkpoint::open(&a).unwrap();
    assert!(mid.tensors().iter().all(|t| &*t.device == "cuda:0"));
    relocate_file(&a, &b, &opts(LocationMap::to("cpu"))).unwrap();
    assert!(std::fs::read(&b).unwrap() == std::fs::read(&input).unwrap());
}

/// A memoized 'cpu' shared by a storage tag and a user string: the user
/// string keeps 'cpu' (its BINGET becomes an inline copy).
#[test]
fn shared_tag_string_is_unshared() {
    // {'t': pid('storage', FloatStorage, '0', 'cpu', 2), 'dev': <memo 'cpu'>}
    let mut p = b"\x80\x02}q\x00(X\x01\x00\x00\x00tq\x01(X\x07\x00\x00\x00storageq\x02ctorch\nFloatStorage\nq\x03X\x01\x00\x00\x000q\x04X\x03\x00\x00\x00cpuq\x05K\x02tq\x06QX\x03\x00\x00\x00devq\x07h\x05u.".to_vec();
    let mut report = RelocateReport::default();
    let out = relocate_pickle(&p, "t", &LocationMap::to("cuda:0"), false, &mut report)
        .unwrap()
        .unwrap();
    let want = b"\x80\x02}q\x00(X\x01\x00\x00\x00tq\x01(X\x07\x00\x00\x00storageq\x02ctorch\nFloatStorage\nq\x03X\x01\x00\x00\x000q\x04X\x06\x00\x00\x00cuda:0q\x05K\x02tq\x06QX\x03\x00\x00\x00devq\x07X\x03\x00\x00\x00cpuu.";
    assert_eq!(out, want);
    assert_eq!(report.unshared_uses, 1);
    // And a tag reached only through BINGET (the def is a user string).
    p = b"\x80\x02}q\x00(X\x03\x00\x00\x00devq\x01X\x03\x00\x00\x00cpuq\x02X\x01\x00\x00\x00tq\x03(X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06h\x02K\x02tq\x07Qu.".to_vec();
    let mut report = RelocateReport::default();
    let out = relocate_pickle(&p, "t", &LocationMap::to("cuda:0"), false, &mut report)
        .unwrap()
        .unwrap();
    let want = b"\x80\x02}q\x00(X\x03\x00\x00\x00devq\x01X\x03\x00\x00\x00cpuq\x02X\x01\x00\x00\x00tq\x03(X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06X\x06\x00\x00\x00cuda:0K\x02tq\x07Qu.";
    assert_eq!(out, want);
    assert_eq!(report.unshared_uses, 0);
    assert_eq!(report.storages_changed(), 1);
}

/// torch.device objects: reported, rewritten only with all_devices.
#[test]
fn device_objects() {
    // {'d': torch.device('cuda', 1), 'e': torch.device('cuda:1')}
    let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00dq\x01ctorch\ndevice\nq\x02X\x04\x00\x00\x00cudaq\x03K\x01\x86q\x04Rq\x05X\x01\x00\x00\x00eq\x06h\x02X\x06\x00\x00\x00cuda:1q\x07\x85q\x08Rq\x09u.";
    let map = LocationMap::parse_pairs(&["cuda:1=cpu"]).unwrap();
    let mut report = RelocateReport::default();
    assert!(
        relocate_pickle(p, "t", &map, false, &mut report)
            .unwrap()
            .is_none()
    );
    assert_eq!(report.devices.len(), 2);
    assert_eq!(report.devices[0].device, "cuda:1");
    assert!(
        report
            .lines()
            .iter()
            .any(|l| l.contains("left as is") && l.contains("all devices"))
    );
    let mut report = RelocateReport::default();
    let out = relocate_pickle(p, "t", &map, true, &mut report)
        .unwrap()
        .unwrap();
    let want = b"\x80\x02}q\x00(X\x01\x00\x00\x00dq\x01ctorch\ndevice\nq\x02X\x03\x00\x00\x00cpuq\x03N\x86q\x04Rq\x05X\x01\x00\x00\x00eq\x06h\x02X\x03\x00\x00\x00cpuq\x07\x85q\x08Rq\x09u.";
    assert_eq!(out, want);
}

#[test]
fn output_equal_to_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("m.pt");
    std::fs::copy(torch_dir().join("cuda_tagged.pt"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let e = relocate_file(&input, &input, &opts(LocationMap::to("cpu"))).unwrap_err();
    assert!(matches!(e, TorchError::Refused(_)), "{e}");
    assert_eq!(std::fs::read(&input).unwrap(), before);
    let mut o = opts(LocationMap::to("cpu"));
    o.write.in_place = true;
    relocate_file(&input, &input, &o).unwrap();
    let got = Checkpoint::open(&input).unwrap();
    assert!(got.tensors().iter().all(|t| &*t.device == "cpu"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn broken_inputs_error_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broken = torch_dir().join("broken");
    let mut n = 0;
    for e in std::fs::read_dir(&broken).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".md") || name.ends_with(".json") {
            continue;
        }
        let out = dir.path().join(format!("{name}.out"));
        let r = relocate_file(&path, &out, &opts(LocationMap::to("cpu")));
        if matches!(name.as_str(), "pickle_bomb.pt" | "deep_nesting.pt") {
            // Readable (bounded) files: no tags, nothing to rewrite.
            if let Ok(r) = r {
                assert_eq!(r.storages_changed(), 0, "{name}");
                std::fs::remove_file(&out).unwrap();
            }
            continue;
        }
        assert!(r.is_err(), "{name} should fail");
        n += 1;
    }
    assert!(n >= 8);
    let e = relocate_file(
        &torch_dir().join("export.pt2"),
        &dir.path().join("x.pt2"),
        &opts(LocationMap::to("cpu")),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not supported"), "{e}");
    assert!(LocationMap::parse_pairs(&["cuda:0"]).is_err());
    assert!(LocationMap::to("cu da").validate().is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn open_pickles_locates_what_a_rewrite_needs_and_walks_nothing() {
    for name in ["cuda_tagged.pt", "torchscript.pt", "cuda_tagged_legacy.pt"] {
        let path = torch_dir().join(name);
        let full = Checkpoint::open(&path).unwrap();
        let light = Checkpoint::open_pickles(&path).unwrap();
        assert_eq!(light.format(), full.format(), "{name}");
        assert_eq!(light.pickles(), full.pickles(), "{name}");
        assert_eq!(light.info().records, full.info().records, "{name}");
        assert_eq!(light.info().version, full.info().version, "{name}");
        assert_eq!(light.info().byteorder, full.info().byteorder, "{name}");
        for p in full.pickles() {
            assert_eq!(pickle(&light, &p.name), pickle(&full, &p.name), "{name}");
        }
        assert!(!full.tensors().is_empty(), "{name}");
        if name.ends_with("_legacy.pt") {
            // Legacy stacked pickles are run to find where each ends.
            assert_eq!(light.tensors().len(), full.tensors().len());
        } else {
            assert!(light.tensors().is_empty() && light.storages().is_empty());
        }
    }
    // What makes a zip no checkpoint is refused as by `open`.
    let missing = torch_dir().join("broken/missing_data_pkl.pt");
    let err = Checkpoint::open_pickles(&missing).unwrap_err();
    assert!(matches!(err, TorchError::NotACheckpoint { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        Checkpoint::open(&missing).unwrap_err().to_string()
    );
}
