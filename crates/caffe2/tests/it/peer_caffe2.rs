//! Interop with the real protobuf library: the NetDefs that the Python peers
//! wrote (`cargo xtask peers`, `testdata/peers/make_peers.py`) must decode,
//! re-encode to the same bytes, match what Python recorded about them in
//! `caffe2/expected.json`, and their `.pbtxt` twins must parse to the same
//! net and be exactly what we print as text.
//!
//! Run by `cargo xtask ci`, or by hand:
//! `NETPORT_PEERS=$(cargo xtask peers --print-dir) cargo test -p netport-caffe2 -- --ignored`

use std::path::{Path, PathBuf};

fn peers_dir() -> PathBuf {
    let dir = std::env::var_os("NETPORT_PEERS")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "NETPORT_PEERS is not set: point it at the peer corpus \
             (`cargo xtask peers --print-dir`), or run `cargo xtask ci`"
            )
        });
    let dir = PathBuf::from(dir).join("caffe2");
    assert!(
        dir.is_dir(),
        "{} does not exist: run `cargo xtask peers`",
        dir.display()
    );
    dir
}

/// Files under `dir` (recursively) whose extension is `ext`, sorted.
fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The key of a file in expected.json: its path under `caffe2/`, with `/`.
fn key(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap();
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn peer_netdefs_round_trip_and_match_python() {
    let root = peers_dir();
    let expected = crate::common::read_json(&root.join("expected.json"));
    let files = expected["files"]
        .as_object()
        .expect("expected.json has a `files` object");
    let binaries = files_with_extension(&root, "pb");
    assert!(
        !binaries.is_empty(),
        "no .pb files under {}",
        root.display()
    );
    let mut keys = Vec::new();
    for path in &binaries {
        let key = key(&root, path);
        let net = crate::common::decode_and_reencode(path);
        let size = std::fs::metadata(path).unwrap().len() as usize;
        let entry = files
            .get(&key)
            .unwrap_or_else(|| panic!("{key}: not in expected.json"));
        crate::common::check_expected(&key, &net, size, entry);
        keys.push(key);
    }
    for key in files.keys() {
        assert!(
            keys.contains(key),
            "{key}: in expected.json but no such file"
        );
    }
    eprintln!(
        "{} NetDefs written by protobuf {} round-trip byte for byte",
        keys.len(),
        expected["protobuf_version"]
    );
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn peer_text_format_matches_binary() {
    let root = peers_dir();
    let texts = files_with_extension(&root, "pbtxt");
    assert!(
        !texts.is_empty(),
        "no .pbtxt files under {}",
        root.display()
    );
    for text in &texts {
        let binary = text.with_extension("pb");
        assert!(binary.is_file(), "{}: no binary twin", text.display());
        let net = crate::common::decode_and_reencode(&binary);
        crate::common::check_text(text, &net);
    }
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn peer_files_load_by_content() {
    // The file loader tells binary from text by the bytes. (The empty net is
    // refused by the loader, as every empty file is.)
    let root = peers_dir();
    for path in files_with_extension(&root, "pb")
        .into_iter()
        .chain(files_with_extension(&root, "pbtxt"))
    {
        let size = std::fs::metadata(&path).unwrap().len();
        match netport_caffe2::load_netdef_with_format(&path) {
            Ok((_, format)) => {
                let want = if path.extension().is_some_and(|e| e == "pb") {
                    netport_caffe2::NetFormat::Binary
                } else {
                    netport_caffe2::NetFormat::Text
                };
                assert_eq!(format, want, "{}", path.display());
            }
            Err(e) => assert!(size == 0, "{e}"),
        }
    }
}
