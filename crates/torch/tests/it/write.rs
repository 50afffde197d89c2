//! The writer (`netport_torch::write`): byte-for-byte parity with torch.save
//! and torch.jit.save layouts, round trips of every fixture, atomic output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use netport_torch::write::{
    LegacyCheckpoint, WriteOptions, ZipCheckpoint, archive_name_for, crc32, rewrite_zip_to,
    write_atomic, write_legacy_file, write_zip_file,
};
use netport_torch::{Checkpoint, Format, TorchError, ZipArchive};

fn torch_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/torch")
}

/// Every loadable fixture made by torch.
const FIXTURES: &[&str] = &[
    "dtypes.pt",
    "protocol2.pt",
    "protocol4.pt",
    "legacy.pt",
    "torchscript.pt",
    "torchscript_frozen.pt",
    "export.pt2",
    "training.pt",
    "dataparallel.pt",
    "compiled.pt",
    "cuda_tagged.pt",
    "cuda_tagged_reference.pt",
    "cuda_tagged_legacy.pt",
    "big_endian.pt",
];

fn open(name: &str) -> Checkpoint {
    Checkpoint::open(torch_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Same tensors (path, dtype, shape, strides, offset, device, kind) with the
/// same logical bytes; same values.
pub fn assert_same_tensors(a: &Checkpoint, b: &Checkpoint, what: &str) {
    assert_eq!(a.tensors().len(), b.tensors().len(), "{what}: tensor count");
    for (x, y) in a.tensors().iter().zip(b.tensors()) {
        assert_eq!(x.path, y.path, "{what}");
        assert_eq!(x.dtype, y.dtype, "{what} {}", x.path);
        assert_eq!(x.shape, y.shape, "{what} {}", x.path);
        assert_eq!(x.strides, y.strides, "{what} {}", x.path);
        assert_eq!(x.storage_offset, y.storage_offset, "{what} {}", x.path);
        assert_eq!(
            std::mem::discriminant(&x.kind),
            std::mem::discriminant(&y.kind),
            "{what} {}",
            x.path
        );
        assert_eq!(x.requires_grad, y.requires_grad, "{what} {}", x.path);
        let (bx, by) = (a.tensor_bytes(x), b.tensor_bytes(y));
        match (bx, by) {
            (Ok(bx), Ok(by)) => assert!(bx == by, "{what} {}: bytes differ", x.path),
            (Err(ex), Err(ey)) => assert_eq!(ex.to_string(), ey.to_string()),
            (x, y) => panic!("{what}: {:?} vs {:?}", x.err(), y.err()),
        }
    }
    let vals = |c: &Checkpoint| {
        c.values()
            .iter()
            .map(|v| (v.path.clone(), v.repr.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(vals(a), vals(b), "{what}: values");
}

#[test]
fn crc32_known_vector() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
    // Slicing-by-8 and the byte loop agree on every length.
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 + 7) as u8).collect();
    for n in [1, 7, 8, 9, 63, 64, 65, 999] {
        let mut c = 0u32;
        for &b in &data[..n] {
            c = netport_torch::write::crc32_update(c, &[b]);
        }
        assert_eq!(c, crc32(&data[..n]));
    }
}

#[test]
fn archive_names_follow_torch() {
    for (path, want) in [
        ("tensor.pt", "tensor"),
        ("dir/a.b.pt", "a.b"),
        ("x.tar.gz", "x.tar"),
        ("noext", "noext"),
        ("sp ace.pth", "sp ace"),
        ("ünï.pt", "archive"),
        (".pt", "archive"),
    ] {
        assert_eq!(archive_name_for(Path::new(path)), want, "{path}");
    }
}

/// Rewriting a torch-written zip with no replacement reproduces it exactly:
/// headers, FB padding, descriptors, ZIP64 end records, compressed
/// TorchScript records and the serialization id's CRC half.
#[test]
fn identity_rewrite_is_byte_identical() {
    for name in FIXTURES {
        let path = torch_dir().join(name);
        let bytes = std::fs::read(&path).unwrap();
        if !bytes.starts_with(b"PK") {
            continue;
        }
        let zip = ZipArchive::parse(&bytes).unwrap();
        let (out, n) = rewrite_zip_to(Vec::new(), &bytes, &zip, &HashMap::new(), None).unwrap();
        assert_eq!(n as usize, out.len());
        assert!(out == bytes, "{name}: identity rewrite differs");
    }
}

/// Writing the data.pkl and storages of a torch.save file (output named like
/// the source) gives torch.save's bytes exactly.
#[test]
fn zip_writer_matches_torch_save() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "protocol2.pt",
        "dtypes.pt",
        "training.pt",
        "cuda_tagged.pt",
        "big_endian.pt",
        "dataparallel.pt",
    ] {
        let src = open(name);
        let zc = ZipCheckpoint::from_checkpoint(&src).unwrap();
        // torch names the archive after the file (training.pt was saved
        // through a file object: `archive`).
        let archive = src.info().archive_name.clone().unwrap();
        let out = dir.path().join(format!("{archive}.pt"));
        write_zip_file(&out, &zc, &WriteOptions::default()).unwrap();
        let want = std::fs::read(torch_dir().join(name)).unwrap();
        let got = std::fs::read(&out).unwrap();
        assert!(got == want, "{name}: bytes differ from torch.save");
    }
}

/// Every fixture: read, write (zip writer, legacy writer, record rewrite),
/// read again: same tensors, bytes, paths and values.
#[test]
fn round_trips_of_every_fixture() {
    let dir = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let src = open(name);
        let stem = name.split('.').next().unwrap();
        match src.format() {
            Format::Zip | Format::Legacy => {
                let zc = ZipCheckpoint::from_checkpoint(&src).unwrap();
                let out = dir.path().join(format!("{stem}_zip.pt"));
                write_zip_file(&out, &zc, &WriteOptions::default()).unwrap();
                let back = Checkpoint::open(&out).unwrap();
                assert_eq!(back.format(), Format::Zip);
                assert_eq!(
                    back.info().archive_name.as_deref(),
                    Some(format!("{stem}_zip").as_str())
                );
                assert_eq!(back.pickles()[0].protocol, Some(2), "{name}");
                assert_same_tensors(&src, &back, &format!("{name} -> zip"));

                let untyped = src
                    .storages()
                    .iter()
                    .any(|s| s.storage_type.ends_with("UntypedStorage"));
                if src.info().byteorder != Some(netport_tensor::ByteOrder::Big) && !untyped {
                    let lc = LegacyCheckpoint::from_checkpoint(&src).unwrap();
                    let out = dir.path().join(format!("{stem}_legacy.pt"));
                    write_legacy_file(&out, &lc, &WriteOptions::default()).unwrap();
                    let back = Checkpoint::open(&out).unwrap();
                    assert_eq!(back.format(), Format::Legacy);
                    assert_same_tensors(&src, &back, &format!("{name} -> legacy"));
                } else {
                    assert!(LegacyCheckpoint::from_checkpoint(&src).is_err());
                }
            }
            Format::TorchScript | Format::Pt2 => {
                assert!(ZipCheckpoint::from_checkpoint(&src).is_err());
            }
            other => panic!("{other:?}"),
        }
        if src.bytes().starts_with(b"PK") {
            // Record rewrite with data.pkl replaced by itself and a new name.
            let zip = ZipArchive::parse(src.bytes()).unwrap();
            let mut rep = HashMap::new();
            if let Some(pkl) = src.pickles().iter().find(|p| p.name == "data.pkl") {
                rep.insert(
                    "data.pkl".to_owned(),
                    src.pickle_bytes(pkl).unwrap().into_owned(),
                );
            }
            let (out, _) =
                rewrite_zip_to(Vec::new(), src.bytes(), &zip, &rep, Some("renamed")).unwrap();
            let back = Checkpoint::from_bytes(out, &netport_torch::Options::default()).unwrap();
            assert_eq!(back.format(), src.format());
            assert_eq!(back.info().archive_name.as_deref(), Some("renamed"));
            assert_same_tensors(&src, &back, &format!("{name} -> rewrite"));
        }
    }
}

/// The legacy writer reproduces torch's legacy files exactly.
#[test]
fn legacy_writer_matches_torch() {
    for name in ["legacy.pt", "cuda_tagged_legacy.pt"] {
        let src = open(name);
        let lc = LegacyCheckpoint::from_checkpoint(&src).unwrap();
        let (out, _) = lc.write_to(Vec::new()).unwrap();
        assert!(out == src.bytes(), "{name}: legacy bytes differ");
    }
}

/// zip -> legacy -> zip gives back the same data.pkl.
#[test]
fn pid_conversion_round_trips() {
    let src = open("protocol2.pt");
    let pkl = src.pickle_bytes(&src.pickles()[0]).unwrap();
    let legacy = netport_torch::write::convert_pids(&pkl, "data.pkl", true).unwrap();
    assert_ne!(legacy, *pkl);
    let back = netport_torch::write::convert_pids(&legacy, "data.pkl", false).unwrap();
    assert_eq!(back, *pkl);
}

#[test]
fn output_equal_to_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("m.pt");
    std::fs::copy(torch_dir().join("protocol2.pt"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let src = Checkpoint::open(&input).unwrap();
    let zc = ZipCheckpoint::from_checkpoint(&src).unwrap();
    let opts = WriteOptions {
        input: Some(input.clone()),
        in_place: false,
    };
    // Same path, and the same file through another spelling.
    for out in [input.clone(), dir.path().join(".").join("m.pt")] {
        let e = write_zip_file(&out, &zc, &opts).unwrap_err();
        assert!(matches!(e, TorchError::Refused(_)), "{e}");
        assert!(e.to_string().contains("is the input"), "{e}");
    }
    assert_eq!(std::fs::read(&input).unwrap(), before);
    // Explicit in-place works (the source stays mapped while renaming).
    let opts = WriteOptions {
        input: Some(input.clone()),
        in_place: true,
    };
    write_zip_file(&input, &zc, &opts).unwrap();
    let n = src.tensors().len();
    drop(src);
    let back = Checkpoint::open(&input).unwrap();
    assert_eq!(back.tensors().len(), n);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn failed_write_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pt");
    let e = write_atomic(&out, &WriteOptions::default(), |w| {
        use std::io::Write;
        w.write_all(b"partial")?;
        Err(TorchError::Refused("boom".into()))
    })
    .unwrap_err();
    assert_eq!(e.to_string(), "boom");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // A missing directory is an error naming the path.
    let e = write_atomic(
        &dir.path().join("nope/out.pt"),
        &WriteOptions::default(),
        |_| Ok(()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
}

/// The mode a plain create gives a new file in `dir` (0666 less the umask).
#[cfg(unix)]
fn plain_create_mode(dir: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let probe = dir.join("probe");
    std::fs::File::create(&probe).unwrap();
    let mode = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
    std::fs::remove_file(probe).unwrap();
    mode
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Every writer of the crate (zip, legacy): outputs have the mode a plain
/// create gives, and a failed write leaves no temporary file.
#[test]
fn every_writer_creates_like_a_plain_create_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let src = open("protocol2.pt");
    let zc = ZipCheckpoint::from_checkpoint(&src).unwrap();
    let lc = LegacyCheckpoint::from_checkpoint(&src).unwrap();
    let zip = dir.path().join("zip.pt");
    let legacy = dir.path().join("legacy.pt");
    write_zip_file(&zip, &zc, &WriteOptions::default()).unwrap();
    write_legacy_file(&legacy, &lc, &WriteOptions::default()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let want = plain_create_mode(dir.path());
        for p in [&zip, &legacy] {
            let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, want, "{}: {mode:o}", p.display());
        }
    }
    // Failures: an unwritable destination for each writer, and a
    // destination that is a folder with files in it.
    let missing = dir.path().join("no/such");
    assert!(write_zip_file(&missing.join("a.pt"), &zc, &WriteOptions::default()).is_err());
    assert!(write_legacy_file(&missing.join("a.pt"), &lc, &WriteOptions::default()).is_err());
    let blocked = dir.path().join("blocked.pt");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("keep"), b"x").unwrap();
    let e = write_zip_file(&blocked, &zc, &WriteOptions::default()).unwrap_err();
    assert!(e.to_string().contains("blocked.pt"), "{e}");
    assert_eq!(names_in(dir.path()), ["blocked.pt", "legacy.pt", "zip.pt"]);
}

/// A record of 1 MiB or more copied unchanged keeps its source's offset
/// modulo 64 KiB (`netport_io::COPY_STEP`, the kernel copy's step) when the
/// records before it changed length, with more `FB` padding and still 64-byte
/// alignment; smaller records keep torch's padding, and the bytes, CRCs and
/// names read back unchanged.
#[test]
fn large_copied_records_keep_their_phase() {
    use netport_torch::write::ZipWriter;
    let step = netport_io::COPY_STEP;
    let big: Vec<u8> = (0..(1 << 20) + 4321).map(|i| (i % 251) as u8).collect();
    let small = vec![7u8; 5000];
    let mut z = ZipWriter::new(Vec::new(), "src", 64);
    z.add_stored("data.pkl", &[0x80; 300]).unwrap();
    z.add_stored("data/0", &small).unwrap();
    z.add_stored("data/1", &big).unwrap();
    z.add_stored("data/2", &big[..(1 << 20)]).unwrap();
    let (src, _) = z.finish().unwrap();
    let src_zip = ZipArchive::parse(&src).unwrap();
    // Every growth of data.pkl up to 72 bytes (moving the records by 64
    // with data/1's padding of 60 or more needs the header before it), then
    // larger growths and shrinking.
    for pkl_len in (300..372).chain([1300, 300 + 64 * 700, 40]) {
        let replacements = HashMap::from([("data.pkl".to_owned(), vec![0x80; pkl_len])]);
        let (out, _) = rewrite_zip_to(Vec::new(), &src, &src_zip, &replacements, None).unwrap();
        let out_zip = ZipArchive::parse(&out).unwrap();
        let at = |zip: &ZipArchive, name: &str| zip.find(name).unwrap().data_range().start;
        for name in ["src/data/1", "src/data/2"] {
            let (from, to) = (at(&src_zip, name), at(&out_zip, name));
            assert_eq!(to % step, from % step, "{pkl_len}: {name}");
            assert_eq!(to % 64, 0, "{pkl_len}: {name}");
        }
        // The small record: torch's padding (under 64 bytes), and 64 more
        // when the large record after it needs them.
        let e = out_zip.find("src/data/0").unwrap();
        let header = e.data_range().start - e.header_offset();
        assert!(header < 30 + 10 + 4 + 64 + 64, "{pkl_len}: {header}");
        assert_eq!(e.data_range().start % 64, 0, "{pkl_len}");
        for e in src_zip.entries() {
            let name = e.name.as_str();
            let o = out_zip.find(name).unwrap();
            let bytes = |zip: &ZipArchive, buf: &[u8], n: &str| {
                let r = zip.find(n).unwrap().data_range();
                buf[r.start as usize..r.end as usize].to_vec()
            };
            if name != "src/data.pkl" {
                assert_eq!(bytes(&out_zip, &out, name), bytes(&src_zip, &src, name));
                assert_eq!(o.crc32, e.crc32);
                assert_eq!(o.crc32, crc32(&bytes(&out_zip, &out, name)));
            }
        }
    }
    // Unchanged lengths: the same bytes as the source.
    let replacements = HashMap::from([("data.pkl".to_owned(), vec![0x81; 300])]);
    let (out, _) = rewrite_zip_to(Vec::new(), &src, &src_zip, &replacements, None).unwrap();
    assert_eq!(out.len(), src.len());
}
