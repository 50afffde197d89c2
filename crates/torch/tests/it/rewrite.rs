//! Checkpoint -> checkpoint with edits (`netport_torch::rewrite`), on the
//! committed fixtures: names, bytes, shared storages, dtype conversion, the
//! legacy layout, and refusals that leave no file.

use std::path::{Path, PathBuf};

use netport_tensor::DType;
use netport_torch::rewrite::{Layout, rewrite_checkpoint};
use netport_torch::{Checkpoint, ConvertReport, Edits, Format, TensorKind, TorchError};

fn torch_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/torch")
}

fn open(name: &str) -> Checkpoint {
    Checkpoint::open(torch_dir().join(name)).unwrap()
}

fn rewrite(name: &str, out: &Path, edits: &Edits, layout: Layout) -> ConvertReport {
    let src = torch_dir().join(name);
    let ckpt = Checkpoint::open(&src).unwrap();
    rewrite_checkpoint(&ckpt, Some(&src), out, edits, layout).unwrap()
}

/// The output is a plain state dict: an OrderedDict of plain tensors with
/// the expected names in order, on cpu, requires_grad False, no values.
fn assert_state_dict(out: &Checkpoint, names: &[String]) {
    let got: Vec<&str> = out.tensors().iter().map(|t| t.path.as_str()).collect();
    assert_eq!(got, names);
    assert!(out.values().is_empty(), "{:?}", out.values());
    for t in out.tensors() {
        assert_eq!(t.kind, TensorKind::Dense, "{}", t.path);
        assert_eq!(&*t.device, "cpu");
        assert!(!t.requires_grad);
    }
    assert!(
        out.pickles()
            .iter()
            .all(|p| p.protocol.is_none_or(|v| v <= 2))
    );
}

/// Every output tensor has the logical bytes of its source tensor.
fn assert_same_bytes(src: &Checkpoint, out: &Checkpoint, pairs: &[(String, String)]) {
    for (s, o) in pairs {
        let a = src.tensor(s).unwrap_or_else(|| panic!("source {s}"));
        let b = out.tensor(o).unwrap_or_else(|| panic!("output {o}"));
        assert_eq!((a.dtype, &a.shape), (b.dtype, &b.shape), "{s} -> {o}");
        assert_eq!(
            src.tensor_bytes(a).unwrap(),
            out.tensor_bytes(b).unwrap(),
            "{s} -> {o}"
        );
    }
}

#[test]
fn strip_prefix_of_dataparallel_gives_protocol2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plain.pt");
    let edits = Edits {
        strip_prefixes: vec!["module.".into()],
        ..Edits::default()
    };
    let r = rewrite("dataparallel.pt", &out, &edits, Layout::Zip);
    let reference = open("protocol2.pt");
    let got = Checkpoint::open(&out).unwrap();
    assert_eq!(got.format(), Format::Zip);
    let names: Vec<String> = reference.tensors().iter().map(|t| t.path.clone()).collect();
    assert_state_dict(&got, &names);
    let pairs: Vec<(String, String)> = names.iter().map(|n| (n.clone(), n.clone())).collect();
    assert_same_bytes(&reference, &got, &pairs);
    // Storages are the source's, unchanged and in the same order.
    assert_eq!(r.tensors, names.len());
    assert_eq!(r.dtype_changed, 0);
    assert!(r.left_out.is_empty() && r.copies.is_empty() && r.dropped_values.is_empty());
    let src = open("dataparallel.pt");
    let sb: Vec<&[u8]> = src
        .storages()
        .iter()
        .map(|s| &src.bytes()[s.byte_range.start as usize..s.byte_range.end as usize])
        .collect();
    let ob: Vec<&[u8]> = got
        .storages()
        .iter()
        .map(|s| &got.bytes()[s.byte_range.start as usize..s.byte_range.end as usize])
        .collect();
    assert_eq!(sb, ob);
    assert_eq!(r.data_bytes, sb.iter().map(|b| b.len() as u64).sum::<u64>());
    assert_eq!(r.file_bytes, std::fs::metadata(&out).unwrap().len());
}

#[test]
fn key_model_of_training_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.pt");
    let edits = Edits {
        key: Some("model".into()),
        ..Edits::default()
    };
    let r = rewrite("training.pt", &out, &edits, Layout::Zip);
    let src = open("training.pt");
    let got = Checkpoint::open(&out).unwrap();
    let pairs: Vec<(String, String)> = src
        .tensors()
        .iter()
        .filter_map(|t| Some((t.path.clone(), t.path.strip_prefix("model.")?.to_owned())))
        .collect();
    assert!(!pairs.is_empty());
    let names: Vec<String> = pairs.iter().map(|p| p.1.clone()).collect();
    assert_state_dict(&got, &names);
    assert_same_bytes(&src, &got, &pairs);
    assert!(r.left_out.iter().all(|n| !n.starts_with("model.")));
    assert!(r.left_out.iter().any(|n| n.starts_with("optimizer.")));

    // Without --key, the whole checkpoint's tensors; its values are dropped.
    let out2 = dir.path().join("all.pt");
    let r = rewrite("training.pt", &out2, &Edits::default(), Layout::Zip);
    assert_eq!(r.tensors, src.tensors().len());
    assert!(r.dropped_values.iter().any(|v| v == "epoch"), "{r:?}");
    assert_eq!(r.dropped_values.len(), src.values().len());
    assert!(Checkpoint::open(&out2).unwrap().values().is_empty());
}

#[test]
fn bf16_of_protocol2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bf16.pt");
    let edits = Edits {
        dtype: Some(DType::BFloat16),
        ..Edits::default()
    };
    let r = rewrite("protocol2.pt", &out, &edits, Layout::Zip);
    let src = open("protocol2.pt");
    let got = Checkpoint::open(&out).unwrap();
    let names: Vec<String> = src.tensors().iter().map(|t| t.path.clone()).collect();
    assert_state_dict(&got, &names);
    let mut before = 0;
    for (a, b) in src.tensors().iter().zip(got.tensors()) {
        if a.dtype == DType::Float32 {
            assert_eq!(b.dtype, DType::BFloat16, "{}", a.path);
            assert_eq!(
                src.tensor_converted(a, DType::BFloat16).unwrap(),
                got.tensor_bytes(b).unwrap().into_owned(),
                "{}",
                a.path
            );
            before += src.tensor_bytes(a).unwrap().len() as u64;
        } else {
            // num_batches_tracked (int64) is kept as it is.
            assert_eq!(a.dtype, b.dtype);
            assert_eq!(src.tensor_bytes(a).unwrap(), got.tensor_bytes(b).unwrap());
        }
    }
    assert_eq!(r.dtype_changed, 8);
    assert_eq!(r.dtype_bytes_before, before);
    assert_eq!(r.dtype_bytes_after, before / 2);
    assert_eq!(r.bytes_saved(), (before / 2) as i64);
}

#[test]
fn filter_exclude_rename() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fr.pt");
    let edits = Edits {
        filter: Some(Edits::regex(r"^(conv|fc)\.").unwrap()),
        exclude: Some(Edits::regex(r"bias$").unwrap()),
        renames: vec![Edits::parse_rename(r"^fc\.(.*)=head.$1").unwrap()],
        ..Edits::default()
    };
    let r = rewrite("protocol2.pt", &out, &edits, Layout::Zip);
    let src = open("protocol2.pt");
    let got = Checkpoint::open(&out).unwrap();
    let pairs = vec![
        ("conv.weight".to_owned(), "conv.weight".to_owned()),
        ("fc.weight".to_owned(), "head.weight".to_owned()),
    ];
    assert_state_dict(&got, &["conv.weight".into(), "head.weight".into()]);
    assert_same_bytes(&src, &got, &pairs);
    assert_eq!(r.left_out.len(), src.tensors().len() - 2);
    assert_eq!(got.storages().len(), 2);
}

#[test]
fn shared_storage_is_preserved() {
    let dir = tempfile::tempdir().unwrap();
    let src = open("dtypes.pt");
    let views = [
        "shared_a",
        "shared_b",
        "transposed",
        "slice_offset",
        "expanded",
    ];
    let edits = Edits {
        filter: Some(Edits::regex(&format!("^({})$", views.join("|"))).unwrap()),
        ..Edits::default()
    };
    let out = dir.path().join("shared.pt");
    let r = rewrite("dtypes.pt", &out, &edits, Layout::Zip);
    assert!(r.copies.is_empty(), "{r:?}");
    let got = Checkpoint::open(&out).unwrap();
    for name in views {
        let (a, b) = (src.tensor(name).unwrap(), got.tensor(name).unwrap());
        assert_eq!(
            (&a.shape, &a.strides, a.storage_offset),
            (&b.shape, &b.strides, b.storage_offset),
            "{name}"
        );
        assert_eq!(src.tensor_bytes(a).unwrap(), got.tensor_bytes(b).unwrap());
    }
    let (a, b) = (
        got.tensor("shared_a").unwrap(),
        got.tensor("shared_b").unwrap(),
    );
    assert_eq!(a.storage, b.storage, "shared_a/shared_b: one storage");
    let mut distinct: Vec<_> = views
        .iter()
        .map(|v| src.tensor(v).unwrap().storage)
        .collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(got.storages().len(), distinct.len());

    // A dtype change gives each converted view its own contiguous storage.
    let out2 = dir.path().join("shared_f16.pt");
    let edits = Edits {
        filter: Some(Edits::regex("^shared_[ab]$").unwrap()),
        dtype: Some(DType::Float16),
        ..Edits::default()
    };
    let r = rewrite("dtypes.pt", &out2, &edits, Layout::Zip);
    let got = Checkpoint::open(&out2).unwrap();
    assert_eq!(r.copies, vec!["shared_a".to_owned(), "shared_b".to_owned()]);
    assert_eq!(got.storages().len(), 2);
    for name in ["shared_a", "shared_b"] {
        let a = src.tensor(name).unwrap();
        assert_eq!(
            src.tensor_converted(a, DType::Float16).unwrap(),
            got.tensor_bytes(got.tensor(name).unwrap())
                .unwrap()
                .into_owned()
        );
    }
}

#[test]
fn every_dense_dtype_and_view_survives() {
    let dir = tempfile::tempdir().unwrap();
    let src = open("dtypes.pt");
    let out = dir.path().join("all.pt");
    let edits = Edits {
        exclude: Some(Edits::regex("^q").unwrap()),
        ..Edits::default()
    };
    rewrite("dtypes.pt", &out, &edits, Layout::Zip);
    let got = Checkpoint::open(&out).unwrap();
    let pairs: Vec<(String, String)> = got
        .tensors()
        .iter()
        .map(|t| (t.path.clone(), t.path.clone()))
        .collect();
    assert_eq!(
        pairs.len(),
        src.tensors()
            .iter()
            .filter(|t| !matches!(t.kind, TensorKind::Quantized(_)) && !t.path.starts_with('q'))
            .count()
    );
    assert_same_bytes(&src, &got, &pairs);
}

#[test]
fn legacy_output_reads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    for (name, edits) in [
        (
            "dataparallel.pt",
            Edits {
                strip_prefixes: vec!["module.".into()],
                ..Edits::default()
            },
        ),
        (
            "training.pt",
            Edits {
                key: Some("model".into()),
                dtype: Some(DType::BFloat16),
                ..Edits::default()
            },
        ),
        ("legacy.pt", Edits::default()),
        (
            "big_endian.pt",
            Edits {
                exclude: Some(Edits::regex("^u16$").unwrap()),
                ..Edits::default()
            },
        ),
    ] {
        let zip = dir.path().join(format!("{name}.zip.pt"));
        let leg = dir.path().join(format!("{name}.legacy.pt"));
        let rz = rewrite(name, &zip, &edits, Layout::Zip);
        let rl = rewrite(name, &leg, &edits, Layout::Legacy);
        assert_eq!(rz.tensors, rl.tensors);
        assert_eq!(rz.data_bytes, rl.data_bytes);
        let (z, l) = (
            Checkpoint::open(&zip).unwrap(),
            Checkpoint::open(&leg).unwrap(),
        );
        assert_eq!(z.format(), Format::Zip);
        assert_eq!(l.format(), Format::Legacy, "{name}");
        let pairs: Vec<(String, String)> = z
            .tensors()
            .iter()
            .map(|t| (t.path.clone(), t.path.clone()))
            .collect();
        assert_state_dict(&l, &pairs.iter().map(|p| p.0.clone()).collect::<Vec<_>>());
        assert_same_bytes(&z, &l, &pairs);
    }
}

#[test]
fn legacy_refuses_untyped_dtypes_by_name_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.pt");
    let src = open("dtypes.pt");
    let edits = Edits {
        exclude: Some(Edits::regex("^q").unwrap()),
        ..Edits::default()
    };
    let err = rewrite_checkpoint(&src, None, &out, &edits, Layout::Legacy)
        .unwrap_err()
        .to_string();
    assert!(err.contains("uint16") && err.contains("legacy"), "{err}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn errors_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.pt");
    let src_path = torch_dir().join("dtypes.pt");
    let src = Checkpoint::open(&src_path).unwrap();
    // Quantized tensors are refused, all named.
    let err = rewrite_checkpoint(&src, None, &out, &Edits::default(), Layout::Zip).unwrap_err();
    assert!(
        matches!(&err, TorchError::TensorsRefused { tensors, .. } if tensors.iter().any(|t| t.contains("'qint8'"))),
        "{err}"
    );
    // Name collisions.
    let edits = Edits {
        renames: vec![Edits::parse_rename("^.*$=same").unwrap()],
        ..Edits::default()
    };
    assert!(rewrite_checkpoint(&src, None, &out, &edits, Layout::Zip).is_err());
    // Nothing left.
    let edits = Edits {
        filter: Some(Edits::regex("^nothing$").unwrap()),
        ..Edits::default()
    };
    let err = rewrite_checkpoint(&src, None, &out, &edits, Layout::Zip)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no tensor"), "{err}");
    // Unknown key.
    let edits = Edits {
        key: Some("model".into()),
        ..Edits::default()
    };
    assert!(rewrite_checkpoint(&src, None, &out, &edits, Layout::Zip).is_err());
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    // The output is the input.
    let copy = dir.path().join("in.pt");
    std::fs::copy(torch_dir().join("protocol2.pt"), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let c = Checkpoint::open(&copy).unwrap();
    assert!(rewrite_checkpoint(&c, Some(&copy), &copy, &Edits::default(), Layout::Zip).is_err());
    drop(c);
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// The CRC-32 of every record of `path` (a zip) matches its bytes.
fn assert_crcs_match(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let zip = netport_torch::ZipArchive::parse(&bytes).unwrap();
    for e in zip.entries() {
        let r = e.data_range();
        let data = &bytes[r.start as usize..r.end as usize];
        assert_eq!(
            e.crc32,
            netport_torch::write::crc32(data),
            "{}: {}",
            path.display(),
            e.name
        );
    }
}

/// Storages copied whole keep their record's CRC-32 (they are not read for
/// it); converted ones get theirs computed: every record's CRC matches its
/// bytes. A source written without CRCs (zeros in the central directory, as
/// torch writes with `set_crc32_options(False)`) gets real ones.
#[test]
fn every_record_of_a_rewrite_has_its_crc() {
    let dir = tempfile::tempdir().unwrap();
    let strip = Edits {
        strip_prefixes: vec!["module.".into()],
        ..Edits::default()
    };
    let bf16 = Edits {
        dtype: Some(DType::BFloat16),
        ..Edits::default()
    };
    for (name, edits) in [
        ("dataparallel.pt", &strip),
        ("protocol2.pt", &Edits::default()),
        ("protocol2.pt", &bf16),
        ("training.pt", &Edits::default()),
    ] {
        let out = dir.path().join(format!("crc_{name}"));
        rewrite(name, &out, edits, Layout::Zip);
        assert_crcs_match(&out);
    }
    // protocol2.pt with every central CRC zeroed.
    let mut bytes = std::fs::read(torch_dir().join("protocol2.pt")).unwrap();
    let mut zeroed = 0;
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(4).position(|w| w == b"PK\x01\x02") {
        let entry = at + i;
        bytes[entry + 16..entry + 20].fill(0);
        zeroed += 1;
        at = entry + 4;
    }
    assert!(zeroed > 5, "{zeroed}");
    let src = dir.path().join("no_crc.pt");
    std::fs::write(&src, &bytes).unwrap();
    let ckpt = Checkpoint::open(&src).unwrap();
    assert!(ckpt.info().records.iter().all(|r| r.crc32 == 0));
    let out = dir.path().join("crc_from_no_crc.pt");
    rewrite_checkpoint(&ckpt, Some(&src), &out, &Edits::default(), Layout::Zip).unwrap();
    assert_crcs_match(&out);
}
