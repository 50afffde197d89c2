//! Hand-built hostile inputs: zips and pickles that must give errors naming
//! what and where (never a panic), and edge cases that must be read right.

use netport_torch::{Checkpoint, Detected, Format, Leaf, Options, TorchError, detect};

// --- a tiny protocol-2 pickle writer ---------------------------------------

pub(crate) fn global(m: &str, n: &str) -> Vec<u8> {
    format!("c{m}\n{n}\n").into_bytes()
}

pub(crate) fn unicode(s: &str) -> Vec<u8> {
    let mut v = vec![b'X'];
    v.extend((s.len() as u32).to_le_bytes());
    v.extend(s.as_bytes());
    v
}

pub(crate) fn int(i: i32) -> Vec<u8> {
    let mut v = vec![b'J'];
    v.extend(i.to_le_bytes());
    v
}

pub(crate) fn tuple(items: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![b'('];
    for i in items {
        v.extend(i);
    }
    v.push(b't');
    v
}

/// `_rebuild_tensor_v2(pid, offset, size, stride, False, OrderedDict())`.
pub(crate) fn tensor(pid: Vec<u8>, offset: i32, size: &[i32], stride: &[i32]) -> Vec<u8> {
    rebuild_v2(
        pid,
        int(offset),
        tuple(&size.iter().map(|&d| int(d)).collect::<Vec<_>>()),
        tuple(&stride.iter().map(|&d| int(d)).collect::<Vec<_>>()),
        None,
    )
}

/// `_rebuild_tensor_v2(persistent_load(pid), offset, size, stride, False,
/// OrderedDict()[, metadata])`, each argument given as pickle ops.
pub(crate) fn rebuild_v2(
    pid: Vec<u8>,
    offset: Vec<u8>,
    size: Vec<u8>,
    stride: Vec<u8>,
    metadata: Option<Vec<u8>>,
) -> Vec<u8> {
    let mut v = global("torch._utils", "_rebuild_tensor_v2");
    let mut p = pid;
    p.push(b'Q');
    let mut hooks = global("collections", "OrderedDict");
    hooks.extend(b")R");
    let mut args = vec![p, offset, size, stride, vec![0x89], hooks];
    args.extend(metadata);
    v.extend(tuple(&args));
    v.push(b'R');
    v
}

pub(crate) fn pid(storage: &str, key: &str, location: Vec<u8>, numel: i32) -> Vec<u8> {
    tuple(&[
        unicode("storage"),
        global("torch", storage),
        unicode(key),
        location,
        int(numel),
    ])
}

/// `{name: value, ...}` as a protocol-2 pickle.
pub(crate) fn dict_pickle(items: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut v = vec![0x80, 2, b'}', b'('];
    for (k, val) in items {
        v.extend(unicode(k));
        v.extend(val);
    }
    v.extend(b"u.");
    v
}

// --- a tiny zip writer -----------------------------------------------------

pub(crate) struct Entry {
    name: String,
    data: Vec<u8>,
    deflate: bool,
}

pub(crate) fn entry(name: &str, data: &[u8]) -> Entry {
    Entry {
        name: name.into(),
        data: data.to_vec(),
        deflate: false,
    }
}

/// A zip with local sizes, no descriptors; `zip64` writes every central size
/// and offset as 0xFFFFFFFF with a ZIP64 extra, plus ZIP64 end records.
pub(crate) fn zip(entries: &[Entry], zip64: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let lho = out.len() as u64;
        let (method, body) = if e.deflate {
            (8u16, miniz_oxide::deflate::compress_to_vec(&e.data, 6))
        } else {
            (0u16, e.data.clone())
        };
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend([20, 0, 0, 0]);
        out.extend(method.to_le_bytes());
        out.extend([0, 0, 0, 0, 0, 0, 0, 0]); // time, date, crc
        out.extend((body.len() as u32).to_le_bytes());
        out.extend((e.data.len() as u32).to_le_bytes());
        out.extend((e.name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(e.name.as_bytes());
        out.extend(&body);
        let mut extra = Vec::new();
        if zip64 {
            extra.extend(1u16.to_le_bytes());
            extra.extend(24u16.to_le_bytes());
            extra.extend((e.data.len() as u64).to_le_bytes());
            extra.extend((body.len() as u64).to_le_bytes());
            extra.extend(lho.to_le_bytes());
        }
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend([20, 0, 20, 0, 0, 0]);
        central.extend(method.to_le_bytes());
        central.extend([0, 0, 0, 0, 0, 0, 0, 0]);
        let (cs, us, off) = if zip64 {
            (u32::MAX, u32::MAX, u32::MAX)
        } else {
            (body.len() as u32, e.data.len() as u32, lho as u32)
        };
        central.extend(cs.to_le_bytes());
        central.extend(us.to_le_bytes());
        central.extend((e.name.len() as u16).to_le_bytes());
        central.extend((extra.len() as u16).to_le_bytes());
        central.extend([0u8; 8]); // comment len, disk, internal attr, external attr (2 of 4)
        central.extend([0u8; 2]);
        central.extend(off.to_le_bytes());
        central.extend(e.name.as_bytes());
        central.extend(&extra);
    }
    let cd_offset = out.len() as u64;
    out.extend(&central);
    let n = entries.len() as u64;
    if zip64 {
        let z = out.len() as u64;
        out.extend(0x0606_4b50u32.to_le_bytes());
        out.extend(44u64.to_le_bytes());
        out.extend([0x1e, 3, 0x2d, 0]);
        out.extend([0u8; 8]);
        out.extend(n.to_le_bytes());
        out.extend(n.to_le_bytes());
        out.extend((central.len() as u64).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(0x0706_4b50u32.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend(z.to_le_bytes());
        out.extend(1u32.to_le_bytes());
    }
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0, 0, 0, 0]);
    let n16 = if zip64 { u16::MAX } else { n as u16 };
    out.extend(n16.to_le_bytes());
    out.extend(n16.to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    let off32 = if zip64 { u32::MAX } else { cd_offset as u32 };
    out.extend(off32.to_le_bytes());
    out.extend([0, 0]);
    out
}

pub(crate) fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A minimal checkpoint `{'w': tensor}` over storage '0'.
pub(crate) fn checkpoint(pkl: Vec<u8>, storage: &[u8], extra: Vec<Entry>, zip64: bool) -> Vec<u8> {
    let mut entries = vec![
        entry("a/data.pkl", &pkl),
        entry("a/data/0", storage),
        entry("a/version", b"3\n"),
    ];
    entries.extend(extra);
    zip(&entries, zip64)
}

fn open(bytes: Vec<u8>) -> Result<Checkpoint, TorchError> {
    Checkpoint::from_bytes(bytes, &Options::default())
}

fn open_err(bytes: Vec<u8>) -> String {
    match open(bytes) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn simple_pickle(size: &[i32], stride: &[i32], numel: i32) -> Vec<u8> {
    dict_pickle(&[(
        "w",
        tensor(
            pid("FloatStorage", "0", unicode("cpu"), numel),
            0,
            size,
            stride,
        ),
    )])
}

// --- tests -------------------------------------------------------------------

#[test]
fn reads_a_hand_built_checkpoint() {
    let bytes = checkpoint(
        simple_pickle(&[2, 2], &[1, 2], 4),
        &f32s(&[1.0, 3.0, 2.0, 4.0]),
        vec![],
        false,
    );
    let c = open(bytes).unwrap();
    assert_eq!(c.format(), Format::Zip);
    let t = c.tensor("w").unwrap();
    assert_eq!(t.shape, [2, 2]);
    // Transposed: logical order 1, 2, 3, 4.
    assert_eq!(
        &c.tensor_bytes(t).unwrap()[..],
        &f32s(&[1.0, 2.0, 3.0, 4.0])[..]
    );
    let halves = c
        .tensor_converted(t, netport_tensor::DType::Float16)
        .unwrap();
    assert_eq!(halves, [0x00, 0x3C, 0x00, 0x40, 0x00, 0x42, 0x00, 0x44]);
    assert_eq!(c.storages()[0].tensors, ["w"]);
    assert_eq!(c.pickles()[0].name, "data.pkl");
}

#[test]
fn zip64_fields_are_read() {
    let bytes = checkpoint(
        simple_pickle(&[2], &[1], 2),
        &f32s(&[5.0, 6.0]),
        vec![],
        true,
    );
    let c = open(bytes).unwrap();
    assert!(c.info().zip64);
    let t = c.tensor("w").unwrap();
    assert_eq!(&c.tensor_bytes(t).unwrap()[..], &f32s(&[5.0, 6.0])[..]);
}

#[test]
fn duplicate_names_differing_in_case_are_rejected() {
    let bytes = checkpoint(
        simple_pickle(&[2], &[1], 2),
        &f32s(&[5.0, 6.0]),
        vec![entry("a/DATA.PKL", b"\x80\x02N.")],
        false,
    );
    let msg = open_err(bytes.clone());
    assert!(
        msg.contains("duplicate record name")
            && msg.contains("a/DATA.PKL")
            && msg.contains("a/data.pkl"),
        "{msg}"
    );
    // Detection still says what the file is; the scanner looks at both
    // copies and reports the duplicate as dangerous.
    assert!(matches!(detect(&bytes), Detected::Torch(Format::Zip)));
    let scan = netport_torch::scan_bytes(&bytes).unwrap();
    assert_eq!(scan.verdict, netport_pickle::ScanVerdict::Dangerous);
    assert!(scan.findings[0].reason.contains("duplicate record name"));
    assert_eq!(
        scan.pickles.iter().filter(|p| p.read_by_torch_load).count(),
        2
    );
}

#[test]
fn entries_outside_the_archive_folder_are_rejected() {
    let bytes = checkpoint(
        simple_pickle(&[2], &[1], 2),
        &f32s(&[5.0, 6.0]),
        vec![entry("b/evil.pkl", b"x")],
        false,
    );
    let msg = open_err(bytes);
    assert!(
        msg.contains("not in a subdirectory a/: b/evil.pkl"),
        "{msg}"
    );
}

#[test]
fn a_lying_shape_names_the_tensor() {
    let bytes = checkpoint(
        simple_pickle(&[10], &[1], 2),
        &f32s(&[5.0, 6.0]),
        vec![],
        false,
    );
    let msg = open_err(bytes);
    assert!(
        msg.contains("tensor 'w'") && msg.contains("need 40 bytes") && msg.contains("has 8"),
        "{msg}"
    );
}

#[test]
fn a_storage_shorter_than_its_numel_is_an_error() {
    let bytes = checkpoint(
        simple_pickle(&[2], &[1], 4),
        &f32s(&[5.0, 6.0]),
        vec![],
        false,
    );
    let msg = open_err(bytes);
    assert!(
        msg.contains("storage '0'") && msg.contains("has 8 bytes") && msg.contains("16 bytes"),
        "{msg}"
    );
}

#[test]
fn a_missing_storage_record_names_the_tensor() {
    let pkl = simple_pickle(&[2], &[1], 2);
    let bytes = zip(
        &[entry("a/data.pkl", &pkl), entry("a/version", b"3\n")],
        false,
    );
    let msg = open_err(bytes);
    assert!(
        msg.contains("'data/0'") && msg.contains("tensor 'w'"),
        "{msg}"
    );
}

#[test]
fn a_non_string_location_is_an_error() {
    let pkl = dict_pickle(&[(
        "w",
        tensor(pid("FloatStorage", "0", int(7), 2), 0, &[2], &[1]),
    )]);
    let msg = open_err(checkpoint(pkl, &f32s(&[5.0, 6.0]), vec![], false));
    assert!(
        msg.contains("path 'w'") && msg.contains("location") && msg.contains("int"),
        "{msg}"
    );
}

#[test]
fn an_unknown_storage_type_is_an_error() {
    let pkl = dict_pickle(&[(
        "w",
        tensor(pid("EvilStorage", "0", unicode("cpu"), 2), 0, &[2], &[1]),
    )]);
    let msg = open_err(checkpoint(pkl, &f32s(&[5.0, 6.0]), vec![], false));
    assert!(
        msg.contains("unknown storage type torch.EvilStorage"),
        "{msg}"
    );
}

#[test]
fn a_truncated_central_directory_is_explained() {
    let bytes = checkpoint(
        simple_pickle(&[2], &[1], 2),
        &f32s(&[5.0, 6.0]),
        vec![],
        false,
    );
    let cut = bytes.len() - 30;
    let msg = open_err(bytes[..cut].to_vec());
    assert!(
        msg.contains("end-of-central-directory record is missing"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("the file has {cut} bytes"))
            && msg.contains("inside the central directory"),
        "{msg}"
    );
    // Cut inside the storage.
    let start = bytes
        .windows(8)
        .position(|w| w == f32s(&[5.0, 6.0]))
        .unwrap();
    let msg = open_err(bytes[..start + 4].to_vec());
    assert!(msg.contains("ends inside a/data/0"), "{msg}");
}

#[test]
fn a_central_directory_pointing_past_the_file_is_an_error() {
    let mut bytes = checkpoint(
        simple_pickle(&[2], &[1], 2),
        &f32s(&[5.0, 6.0]),
        vec![],
        false,
    );
    let n = bytes.len();
    // EOCD: central directory offset (at EOCD + 16) -> beyond the file.
    bytes[n - 6..n - 2].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let msg = open_err(bytes);
    assert!(msg.contains("central directory"), "{msg}");
}

#[test]
fn a_memo_bomb_in_data_pkl_is_read_in_bounded_work() {
    // L0 = ['lol'] * 10; L(i) = [L(i-1)] * 10 for 20 levels: 10^20 leaves.
    let mut p = vec![0x80, 2, b'}'];
    p.extend(unicode("bomb"));
    p.extend(b"]q\x00(");
    for _ in 0..10 {
        p.extend(unicode("lol"));
    }
    p.push(b'e');
    for lvl in 1..=20u8 {
        p.extend(b"0]q");
        p.push(lvl);
        p.push(b'(');
        for _ in 0..10 {
            p.extend([b'h', lvl - 1]);
        }
        p.push(b'e');
    }
    p.extend(b"s.");
    let c = open(zip(
        &[entry("a/data.pkl", &p), entry("a/version", b"3\n")],
        false,
    ))
    .unwrap();
    assert!(c.values().len() < 1000, "{} values", c.values().len());
    assert!(
        c.values()
            .iter()
            .any(|v| matches!(v.leaf, Leaf::Alias { .. }))
    );
    assert!(c.values().iter().all(|v| v.repr.len() <= 200));
}

#[test]
fn missing_version_is_reported() {
    let pkl = simple_pickle(&[2], &[1], 2);
    let bytes = zip(
        &[
            entry("a/data.pkl", &pkl),
            entry("a/data/0", &f32s(&[1.0, 2.0])),
        ],
        false,
    );
    let msg = open_err(bytes);
    assert!(msg.contains("'version'"), "{msg}");
}

#[test]
fn bad_byteorder_is_reported() {
    let bytes = checkpoint(
        simple_pickle(&[2], &[1], 2),
        &f32s(&[5.0, 6.0]),
        vec![entry("a/byteorder", b"middle")],
        false,
    );
    let msg = open_err(bytes);
    assert!(
        msg.contains("Unknown endianness type") && msg.contains("middle"),
        "{msg}"
    );
}

#[test]
fn compressed_pickles_are_inflated_and_compressed_storages_refused() {
    let pkl = simple_pickle(&[2], &[1], 2);
    let bytes = zip(
        &[
            Entry {
                name: "a/data.pkl".into(),
                data: pkl,
                deflate: true,
            },
            Entry {
                name: "a/data/0".into(),
                data: f32s(&[1.0, 2.0]),
                deflate: true,
            },
            entry("a/version", b"3\n"),
        ],
        false,
    );
    let c = open(bytes).unwrap();
    let t = c.tensor("w").unwrap();
    assert!(c.storages()[0].compressed);
    // Read in place too: its range is the deflated record's, not its
    // declared size.
    let s = c.storage_ref(0).unwrap();
    let record = c
        .info()
        .records
        .iter()
        .find(|r| r.name == "data/0")
        .unwrap();
    assert!(s.compressed());
    assert_eq!(s.byte_range(), record.byte_range);
    assert_ne!(record.byte_range.end - record.byte_range.start, 8);
    let msg = c.tensor_bytes(t).unwrap_err().to_string();
    assert!(
        msg.contains("compressed") && msg.contains("data/0"),
        "{msg}"
    );
    let p = &c.pickles()[0];
    assert!(p.compressed);
    assert_eq!(c.pickle_bytes(p).unwrap()[0], 0x80);
}

#[test]
fn a_bad_pickle_names_record_offset_and_opcode() {
    let mut pkl = simple_pickle(&[2], &[1], 2);
    let n = pkl.len();
    pkl.truncate(n - 1); // drop STOP
    let msg = open_err(checkpoint(pkl, &f32s(&[5.0, 6.0]), vec![], false));
    assert!(
        msg.contains("pickle 'data.pkl'") && msg.contains("at byte"),
        "{msg}"
    );
}

#[test]
fn tied_tensors_share_one_storage() {
    // {'a': T, 'b': T} with the second a BINGET of the first.
    let mut p = vec![0x80, 2, b'}', b'('];
    p.extend(unicode("a"));
    p.extend(tensor(
        pid("FloatStorage", "0", unicode("cpu"), 2),
        0,
        &[2],
        &[1],
    ));
    p.extend(b"q\x05");
    p.extend(unicode("b"));
    p.extend(b"h\x05u.");
    let c = open(checkpoint(p, &f32s(&[1.0, 2.0]), vec![], false)).unwrap();
    let paths: Vec<&str> = c.tensors().iter().map(|t| t.path.as_str()).collect();
    assert_eq!(paths, ["a", "b"]);
    assert_eq!(c.storages().len(), 1);
    assert_eq!(c.storages()[0].tensors, ["a", "b"]);
}

#[test]
fn detection_of_other_files() {
    assert_eq!(detect(b""), Detected::Empty);
    let mut st = 2u64.to_le_bytes().to_vec();
    st.extend(b"{}");
    assert_eq!(detect(&st), Detected::Safetensors { header_len: 2 });
    assert_eq!(
        detect(b"\x80\x02N."),
        Detected::Pickle { protocol: Some(2) }
    );
    let lfs = b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n";
    assert_eq!(
        detect(lfs),
        Detected::GitLfsPointer {
            oid: Some("sha256:abc".into()),
            size: Some(12)
        }
    );
    assert!(detect(lfs).to_string().contains("git lfs pull"));
    assert_eq!(detect(b"  <!DOCTYPE html><html>"), Detected::Html);
    let mut tar = vec![0u8; 512];
    tar[257..262].copy_from_slice(b"ustar");
    assert_eq!(detect(&tar), Detected::Torch(Format::LegacyTar));
    let msg = open_err(tar);
    assert!(msg.contains("recognised but not supported"), "{msg}");
    let mut junk = b"JUNK".to_vec();
    junk.extend(checkpoint(
        simple_pickle(&[2], &[1], 2),
        &f32s(&[5.0, 6.0]),
        vec![],
        false,
    ));
    assert_eq!(detect(&junk), Detected::ZipWithPrefix { offset: 4 });
    // Legacy magic in protocol 0 too.
    let legacy0 = b"L1950a86a20f9469cfc6cL\n.";
    let legacy0 = String::from_utf8_lossy(legacy0).replace(
        "1950a86a20f9469cfc6c",
        &0x1950a86a20f9469cfc6cu128.to_string(),
    );
    assert_eq!(detect(legacy0.as_bytes()), Detected::Torch(Format::Legacy));
}

#[test]
fn legacy_with_a_lying_element_count_is_an_error() {
    // Five pickles: magic, 1001, sys_info, {'w': tensor}, ['0'], then the area.
    let mut f = vec![
        0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
    ];
    f.extend([0x80, 2, b'M', 0xe9, 0x03, b'.']);
    f.extend([0x80, 2, b'}', b'.']);
    let mut obj = vec![0x80, 2, b'}', b'('];
    obj.extend(unicode("w"));
    let legacy_pid = tuple(&[
        unicode("storage"),
        global("torch", "FloatStorage"),
        unicode("0"),
        unicode("cpu"),
        int(2),
        b"N".to_vec(),
    ]);
    obj.extend(tensor(legacy_pid, 0, &[2], &[1]));
    obj.extend(b"u.");
    f.extend(obj);
    f.extend([0x80, 2, b']', b'(']);
    f.extend(unicode("0"));
    f.extend(b"e.");
    let good = {
        let mut g = f.clone();
        g.extend(2u64.to_le_bytes());
        g.extend(f32s(&[1.0, 2.0]));
        g
    };
    let c = open(good).unwrap();
    assert_eq!(c.format(), Format::Legacy);
    assert_eq!(
        &c.tensor_bytes(c.tensor("w").unwrap()).unwrap()[..],
        &f32s(&[1.0, 2.0])[..]
    );
    let mut bad = f;
    bad.extend(3u64.to_le_bytes());
    bad.extend(f32s(&[1.0, 2.0]));
    let msg = open_err(bad);
    assert!(
        msg.contains("storage '0' has 3 elements in the data area but 2"),
        "{msg}"
    );
}

#[test]
fn broken_fixtures_give_errors_not_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/torch/broken");
    let Ok(read) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in read.flatten() {
        let path = e.path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".md") || name.ends_with(".json") {
            continue;
        }
        let result = Checkpoint::open(&path);
        let must_fail = !matches!(name.as_str(), "pickle_bomb.pt");
        match (result, must_fail) {
            (Err(e), true) => {
                let msg = e.to_string();
                let expect = match name.as_str() {
                    "empty.pt" => "empty",
                    "git_lfs_pointer.pth" => "git lfs pull",
                    "html_error_page.pt" => "HTML page",
                    "prefix_junk_byte.pt" => "starts at byte 1",
                    "truncated_in_central_directory.pt" => "inside the central directory",
                    "truncated_in_storage.pt" => "ends inside protocol2/data/",
                    "no_archive_folder.pt" => "not in a subdirectory",
                    "foreign_entry.pt" => "other/readme.txt",
                    "missing_data_pkl.pt" => "data.pkl",
                    "legacy_truncated.pt" => "but the file has",
                    "deep_nesting.pt" => "nesting depth",
                    "garbage.pt" => "unrecognised",
                    _ => "",
                };
                assert!(msg.contains(expect), "{name}: {msg}");
            }
            (Ok(c), false) => assert!(c.values().len() < 10_000, "{name}"),
            (Ok(_), true) => panic!("{name} opened"),
            (Err(e), false) => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn cut_and_corrupted_fixtures_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/torch");
    for name in [
        "protocol2.pt",
        "legacy.pt",
        "torchscript.pt",
        "export.pt2",
        "dtypes.pt",
    ] {
        let Ok(data) = std::fs::read(dir.join(name)) else {
            continue;
        };
        let exercise = |bytes: Vec<u8>| {
            if let Ok(c) = open(bytes) {
                for t in c.tensors() {
                    let _ = c.tensor_bytes(t);
                    let _ = c.tensor_converted(t, netport_tensor::DType::Float32);
                }
                for p in c.pickles() {
                    let _ = c.pickle_bytes(p);
                }
            }
            let _ = detect(&data);
        };
        let step = (data.len() / 300).max(1);
        for cut in (0..data.len()).step_by(step) {
            exercise(data[..cut].to_vec());
        }
        // Flip one byte at a time (every structure: headers, pickles, JSON).
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for i in (0..data.len()).step_by(step) {
            let mut d = data.clone();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            d[i] ^= (seed as u8) | 1;
            exercise(d);
        }
    }
}

#[test]
fn pickles_of_every_protocol_are_detected_by_parsing_them() {
    use netport_torch::{Detected, detect};
    // Protocol 0: MARK, STRING, INST os.system, STOP (no PROTO opcode).
    let p0 = b"(S'id'\nios\nsystem\n.";
    assert_eq!(detect(p0), Detected::Pickle { protocol: None });
    // Protocol 1: EMPTY_DICT, STOP.
    assert_eq!(detect(b"}."), Detected::Pickle { protocol: None });
    // Text that starts with opcode bytes but is no pickle stays unknown.
    for text in [
        &b"hello world\n"[..],
        b"(this is a note)\n",
        b"I am not a pickle",
    ] {
        assert!(
            matches!(detect(text), Detected::Unknown { .. }),
            "{:?}: {:?}",
            String::from_utf8_lossy(text),
            detect(text)
        );
    }
    // Cut before its STOP, a short protocol-0 pickle is no pickle.
    assert!(matches!(
        detect(&p0[..p0.len() - 1]),
        Detected::Unknown { .. }
    ));
}

#[test]
fn npy_headers_are_bounded_and_checked() {
    use netport_torch::{Detected, detect};
    fn npy(header: &str, version: u8) -> Vec<u8> {
        let mut v = b"\x93NUMPY".to_vec();
        v.push(version);
        v.push(0);
        if version == 1 {
            v.extend((header.len() as u16).to_le_bytes());
        } else {
            v.extend((header.len() as u32).to_le_bytes());
        }
        v.extend(header.as_bytes());
        v
    }
    let plain = npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n",
        1,
    );
    let len = plain.len() as u64;
    assert_eq!(
        detect(&plain),
        Detected::Npy {
            pickled: false,
            data_offset: len
        }
    );
    let object = npy(
        "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n",
        2,
    );
    assert!(matches!(
        detect(&object),
        Detected::Npy { pickled: true, .. }
    ));
    // A structured dtype with an object field is pickled too.
    let record = npy(
        "{'descr': [('a', '<i4'), ('b', '|O')], 'fortran_order': False, 'shape': (1,), }\n",
        1,
    );
    assert!(matches!(
        detect(&record),
        Detected::Npy { pickled: true, .. }
    ));
    // A length past the end, deep nesting, an unknown version: errors.
    let mut lying = plain.clone();
    lying[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
    let deep = npy(
        &format!("{{'descr': {}'<f4'{}}}", "[".repeat(5000), "]".repeat(5000)),
        2,
    );
    let mut version = plain.clone();
    version[6] = 9;
    for (bytes, want) in [
        (lying, "runs past the end of the file"),
        (deep, "nests brackets"),
        (version, "unknown .npy format version 9"),
    ] {
        match detect(&bytes) {
            Detected::BrokenNpy { reason } => assert!(reason.contains(want), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}

/// Enough records that the record list is made on a second thread while
/// storages are located (5,000 tensors, each over its own storage).
fn many_records(missing: Option<usize>) -> Vec<u8> {
    let n = 5000;
    let keys: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let items: Vec<(&str, Vec<u8>)> = (0..n)
        .map(|i| {
            let pid = pid("FloatStorage", &keys[i], unicode("cpu"), 1);
            (names[i].as_str(), tensor(pid, 0, &[1], &[1]))
        })
        .collect();
    let mut entries = vec![entry("a/data.pkl", &dict_pickle(&items))];
    for i in (0..n).filter(|&i| Some(i) != missing) {
        entries.push(entry(&format!("a/data/{i}"), &f32s(&[i as f32])));
    }
    entries.push(entry("a/version", b"3\n"));
    zip(&entries, true)
}

#[test]
fn many_records_are_listed_and_located_as_few_are() {
    let c = open(many_records(None)).unwrap();
    let records = &c.info().records;
    assert_eq!(records.len(), 5002);
    assert_eq!(
        (
            records[0].name.as_str(),
            records[4000].name.as_str(),
            records[5001].name.as_str()
        ),
        ("data.pkl", "data/3999", "version")
    );
    assert_eq!(c.tensor_refs().len(), 5000);
    for (i, t) in c.tensor_refs().enumerate().step_by(499) {
        let r = records
            .iter()
            .find(|r| r.name == format!("data/{i}"))
            .unwrap();
        assert_eq!(t.byte_range(), Some(r.byte_range.clone()));
        assert_eq!(
            c.tensor_bytes(&t.to_tensor()).unwrap(),
            f32s(&[i as f32]).as_slice()
        );
    }
    let msg = open_err(many_records(Some(4321)));
    assert!(
        msg.contains("'data/4321'") && msg.contains("tensor 't4321'"),
        "{msg}"
    );
}
