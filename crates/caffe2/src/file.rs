//! `NetDef` files: loading binary or text nets (told apart by their bytes,
//! never by their names), recognising nets for the CLI's format detection,
//! and atomic saving (netport's one atomic writer: a temporary file in the
//! same directory renamed over the target, so a reader never sees a
//! half-written net).

use crate::binary::{decode_netdef, encode_netdef};
use crate::error::Caffe2Error;
use crate::proto::NetDef;
use crate::sniff::{
    NETDEF_FIELD_NAMES, Sniff, TextStart, sniff, starts_like_binary_netdef, text_start,
};
use crate::text::{netdef_to_text, parse_netdef_text};
use bytes::Bytes;
use std::fs;
use std::io::Write;
use std::path::Path;

/// The two encodings of a `NetDef` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetFormat {
    /// Binary protobuf (`.pb`).
    Binary,
    /// Protobuf text format (`.pbtxt`).
    Text,
}

/// Reads a `NetDef` file, binary or text. Empty files and files that are
/// recognisably not nets (see [`crate::sniff()`]) are refused with a one-line
/// reason.
pub fn load_netdef(path: impl AsRef<Path>) -> Result<NetDef, Caffe2Error> {
    load_netdef_with_format(path).map(|(net, _)| net)
}

/// Like [`load_netdef`], also saying which encoding the file had.
pub fn load_netdef_with_format(path: impl AsRef<Path>) -> Result<(NetDef, NetFormat), Caffe2Error> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|e| Caffe2Error::io(path, e))?;
    read_netdef(Bytes::from(bytes), &path.display().to_string())
}

/// Decodes a `NetDef` from bytes that may be binary or text format, as
/// [`sniff`] decides. Text that fails to parse is tried as binary before its
/// error is reported (a binary net whose first bytes happen to be printable).
/// Unlike [`decode_netdef`], empty input is refused as [`crate::NotANet::Empty`].
pub fn read_netdef(bytes: Bytes, what: &str) -> Result<(NetDef, NetFormat), Caffe2Error> {
    match sniff(&bytes) {
        Sniff::NotANet(kind) => Err(Caffe2Error::NotANet {
            what: what.to_string(),
            kind,
        }),
        Sniff::Binary => decode_netdef(bytes, what).map(|net| (net, NetFormat::Binary)),
        Sniff::Text => {
            let text_error = match std::str::from_utf8(&bytes) {
                Ok(text) => match parse_netdef_text(text.trim_start_matches('\u{feff}'), what) {
                    Ok(net) => return Ok((net, NetFormat::Text)),
                    Err(e) => e,
                },
                Err(e) => Caffe2Error::Text {
                    what: what.to_string(),
                    position: None,
                    reason: format!(
                        "text looks like protobuf text format but is not UTF-8 at byte {}",
                        e.valid_up_to()
                    ),
                },
            };
            match decode_netdef(bytes, what) {
                Ok(net) => Ok((net, NetFormat::Binary)),
                Err(_) => Err(text_error),
            }
        }
    }
}

/// For format detection: `None` if `bytes` do not look like a Caffe2 net at
/// all, else the result of reading them as one. A binary net is recognised by
/// its first key (one of `NetDef`'s fields with the right wire type, as every
/// net written by protobuf starts); a text net by its first token (a `NetDef`
/// field name). Files that [`sniff`] recognises as something else (empty,
/// HTML, LFS pointer, ...) give `None`; [`sniff`] tells what they are.
pub fn sniff_net(bytes: &Bytes, what: &str) -> Option<Result<NetDef, Caffe2Error>> {
    let recognised = match sniff(bytes) {
        Sniff::NotANet(_) => false,
        Sniff::Binary => starts_like_binary_netdef(bytes),
        Sniff::Text => {
            matches!(text_start(bytes), Some(TextStart::Identifier(name)) if NETDEF_FIELD_NAMES.contains(&name))
        }
    };
    recognised.then(|| read_netdef(bytes.clone(), what).map(|(net, _)| net))
}

/// Writes `net` as a binary `.pb` file, atomically.
pub fn save_netdef(net: &NetDef, path: impl AsRef<Path>) -> Result<(), Caffe2Error> {
    let path = path.as_ref();
    let bytes = encode_netdef(net).map_err(|e| with_what(e, path))?;
    write_atomic(&[(path, &bytes)])
}

/// Writes `net` as a protobuf text-format file (as Python protobuf writes
/// it), atomically.
pub fn save_netdef_text(net: &NetDef, path: impl AsRef<Path>) -> Result<(), Caffe2Error> {
    let path = path.as_ref();
    let text = netdef_to_text(net).map_err(|e| with_what(e, path))?;
    write_atomic(&[(path, text.as_bytes())])
}

/// Names `path` in an encoding error that named the net.
fn with_what(error: Caffe2Error, path: &Path) -> Caffe2Error {
    match error {
        Caffe2Error::TooLarge { size, .. } => Caffe2Error::TooLarge {
            what: path.display().to_string(),
            size,
        },
        Caffe2Error::Decode {
            len,
            offset,
            reason,
            ..
        } => Caffe2Error::Decode {
            what: path.display().to_string(),
            len,
            offset,
            reason,
        },
        other => other,
    }
}

/// Writes each `(path, contents)` atomically ([`netport_io::AtomicFile`]:
/// mode 0666 less the umask, not fsynced), and only when every file is
/// complete renames them into place, so that a failure while writing leaves
/// every target untouched and no temporary file behind. (The renames
/// themselves are atomic one by one, not as a group.)
pub(crate) fn write_atomic(files: &[(&Path, &[u8])]) -> Result<(), Caffe2Error> {
    let mut finished = Vec::with_capacity(files.len());
    for &(path, contents) in files {
        let mut file = netport_io::AtomicFile::create(path)?;
        file.write_all(contents)
            .map_err(|e| Caffe2Error::io(path, e))?;
        finished.push(file.finish()?);
    }
    for file in finished {
        file.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::OperatorDef;
    use std::fs::File;

    fn net() -> NetDef {
        NetDef {
            name: Some("n".into()),
            op: vec![OperatorDef {
                r#type: Some("Relu".into()),
                input: vec!["x".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn only_file_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn saves_and_loads_binary_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let pb = dir.path().join("net.pb");
        let txt = dir.path().join("net.pbtxt");
        save_netdef(&net(), &pb).unwrap();
        save_netdef_text(&net(), &txt).unwrap();
        assert_eq!(
            load_netdef_with_format(&pb).unwrap(),
            (net(), NetFormat::Binary)
        );
        assert_eq!(
            load_netdef_with_format(&txt).unwrap(),
            (net(), NetFormat::Text)
        );
        // Overwriting replaces the file; no temporary files are left.
        save_netdef(&NetDef::default(), &pb).unwrap();
        assert_eq!(fs::read(&pb).unwrap(), b"");
        assert_eq!(only_file_names(dir.path()), ["net.pb", "net.pbtxt"]);
        // A text file named .pb is still read as text.
        let mislabelled = dir.path().join("text.pb");
        fs::copy(&txt, &mislabelled).unwrap();
        assert_eq!(
            load_netdef_with_format(&mislabelled).unwrap().1,
            NetFormat::Text
        );
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("init_net.pb");
        fs::write(&empty, b"").unwrap();
        let e = load_netdef(&empty).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: not a Caffe2 net: the file is empty (0 bytes)",
                empty.display()
            )
        );
        let missing = dir.path().join("missing.pb");
        let e = load_netdef(&missing).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", missing.display())), "{e}");
        let bad_text = dir.path().join("bad.pbtxt");
        fs::write(&bad_text, "name: \"x\"\nop { nope: 1 }\n").unwrap();
        let e = load_netdef(&bad_text).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:2:6: ", bad_text.display())),
            "{e}"
        );
    }

    #[test]
    fn a_failed_write_leaves_the_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("net.pb");
        fs::write(&target, b"old").unwrap();
        // The second file's directory does not exist: nothing is renamed.
        let missing = dir.path().join("no/such/dir/x.pb");
        let r = write_atomic(&[(&target, b"new"), (&missing, b"new")]);
        assert!(r.is_err());
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(only_file_names(dir.path()), ["net.pb"]);
    }

    #[cfg(unix)]
    #[test]
    fn binary_and_text_outputs_get_plain_create_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let probe = dir.path().join("probe");
        File::create(&probe).unwrap();
        let want = mode(&probe);
        fs::remove_file(&probe).unwrap();
        let pb = dir.path().join("net.pb");
        let txt = dir.path().join("net.pbtxt");
        save_netdef(&net(), &pb).unwrap();
        save_netdef_text(&net(), &txt).unwrap();
        assert_eq!(mode(&pb), want);
        assert_eq!(mode(&txt), want);
    }

    #[test]
    fn failed_saves_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // Destinations that are folders with files in them: written, then
        // the rename fails.
        for name in ["net.pb", "net.pbtxt"] {
            let blocked = dir.path().join(name);
            fs::create_dir(&blocked).unwrap();
            fs::write(blocked.join("keep"), b"x").unwrap();
        }
        let e = save_netdef(&net(), dir.path().join("net.pb")).unwrap_err();
        assert!(e.to_string().contains("net.pb"), "{e}");
        let e = save_netdef_text(&net(), dir.path().join("net.pbtxt")).unwrap_err();
        assert!(e.to_string().contains("net.pbtxt"), "{e}");
        // An unwritable destination (no such folder).
        assert!(save_netdef(&net(), dir.path().join("no/such/net.pb")).is_err());
        assert_eq!(only_file_names(dir.path()), ["net.pb", "net.pbtxt"]);
    }

    #[test]
    fn sniff_net_recognises_nets_only() {
        let binary = Bytes::from(crate::encode_netdef(&net()).unwrap());
        assert_eq!(sniff_net(&binary, "x").unwrap().unwrap(), net());
        let text = Bytes::from(netdef_to_text(&net()).unwrap());
        assert_eq!(sniff_net(&text, "x").unwrap().unwrap(), net());
        // Recognised but broken: an error naming the input.
        let broken = binary.slice(..binary.len() - 1);
        let e = sniff_net(&broken, "b.pb").unwrap().unwrap_err();
        assert!(e.to_string().starts_with("b.pb: "), "{e}");
        // An ONNX model starts with ir_version (a varint, key 0x08).
        assert!(sniff_net(&Bytes::from_static(b"\x08\x07\x12\x04onnx"), "m").is_none());
        assert!(sniff_net(&Bytes::new(), "m").is_none());
        assert!(sniff_net(&Bytes::from_static(b"<html>"), "m").is_none());
        assert!(sniff_net(&Bytes::from_static(b"ir_version: 7"), "m").is_none());
    }
}
