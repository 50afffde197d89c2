//! Telling from its first bytes what a file is: a binary protobuf net, a
//! protobuf text-format net, or something users mistake for a model (an empty
//! file, an HTML error page saved by a download, a Git LFS pointer, a zip or
//! gzip archive, a pickle, a JSON document). Never decodes anything: cheap
//! enough for format detection in the CLI, and the source of the one-line
//! "this is not a net" errors of the loaders.
//!
//! Most of the recognised prefixes cannot start a valid binary `NetDef`: `<`
//! is an end-group key, `v` and `\x1f` have invalid wire types, and
//! `PK\x03\x04` has field number 0 after its first field. A pickle's
//! `\x80\x02` and JSON's `{` are valid keys (field 32, and a group of field
//! 15, neither of which `NetDef` has), so such files could decode as a net
//! made only of unknown fields; they are refused as what they are instead.

use std::fmt;

/// How many leading bytes [`sniff`] looks at to decide text or binary.
pub const SNIFF_WINDOW: usize = 4096;

/// What [`sniff`] concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniff {
    /// Not text, and none of the known non-net formats: maybe a binary
    /// `NetDef` (only decoding can tell).
    Binary,
    /// Text whose first token could start a protobuf text-format message
    /// (a field name), or only whitespace and `#` comments.
    Text,
    /// Recognisably not a Caffe2 net.
    NotANet(NotANet),
}

/// Files that are recognisably not Caffe2 nets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotANet {
    /// Zero bytes. (Protobuf reads that as an empty `NetDef`, but an empty
    /// model file is a failed download or write.)
    Empty,
    /// A Git LFS pointer (the repository was cloned without `git lfs`), with
    /// the object id and size it names.
    GitLfsPointer {
        oid: Option<String>,
        size: Option<u64>,
    },
    /// An HTML or XML page, typically an error or login page.
    Html,
    /// A zip archive (PyTorch checkpoints and TorchScript files are zips).
    Zip,
    /// gzip-compressed data (e.g. a `.tar.gz` download).
    Gzip,
    /// A Python pickle (e.g. a legacy PyTorch checkpoint).
    Pickle { protocol: u8 },
    /// A JSON document.
    Json,
}

impl fmt::Display for NotANet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotANet::Empty => f.write_str("the file is empty (0 bytes), not a Caffe2 net"),
            NotANet::GitLfsPointer { oid, size } => {
                write!(
                    f,
                    "a Git LFS pointer file, not the model itself (oid {}, size {} bytes); run `git lfs pull` to fetch the real file",
                    oid.as_deref().unwrap_or("?"),
                    size.map_or_else(|| "?".to_string(), |s| s.to_string())
                )
            }
            NotANet::Html => f.write_str(
                "an HTML or XML page, not a Caffe2 net: probably an error or login page saved by a download",
            ),
            NotANet::Zip => f.write_str(
                "a zip archive (a PyTorch checkpoint or TorchScript file?), not a Caffe2 net",
            ),
            NotANet::Gzip => {
                f.write_str("gzip-compressed data, not a Caffe2 net: decompress it first")
            }
            NotANet::Pickle { protocol } => write!(
                f,
                "a Python pickle (protocol {protocol}), e.g. a legacy PyTorch checkpoint, not a Caffe2 net"
            ),
            NotANet::Json => f.write_str("a JSON document, not a Caffe2 net"),
        }
    }
}

const LFS_PREFIX: &[u8] = b"version https://git-lfs.github.com/spec/";

/// Classifies `data` from its first [`SNIFF_WINDOW`] bytes (the whole input
/// for a Git LFS pointer, which is small). Never fails.
pub fn sniff(data: &[u8]) -> Sniff {
    if data.is_empty() {
        return Sniff::NotANet(NotANet::Empty);
    }
    if data.starts_with(LFS_PREFIX) {
        return Sniff::NotANet(lfs_pointer(data));
    }
    if data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06") {
        return Sniff::NotANet(NotANet::Zip);
    }
    if data.starts_with(b"\x1f\x8b") {
        return Sniff::NotANet(NotANet::Gzip);
    }
    if data.len() >= 2 && data[0] == 0x80 && (2..=5).contains(&data[1]) {
        return Sniff::NotANet(NotANet::Pickle { protocol: data[1] });
    }
    match text_start(data) {
        None => Sniff::Binary,
        Some(TextStart::Nothing | TextStart::Identifier(_) | TextStart::Bracket) => Sniff::Text,
        Some(TextStart::Angle) => Sniff::NotANet(NotANet::Html),
        Some(TextStart::Brace) => Sniff::NotANet(NotANet::Json),
        Some(TextStart::Other) => Sniff::Binary,
    }
}

/// The first significant token of a text-looking input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextStart<'a> {
    /// Only whitespace and comments.
    Nothing,
    /// A field name (`[A-Za-z_][A-Za-z0-9_]*`).
    Identifier(&'a str),
    /// `[`: an extension or `Any` field name in text format (or a JSON array).
    Bracket,
    /// `<`
    Angle,
    /// `{`
    Brace,
    /// Anything else (a digit, a quote, ...).
    Other,
}

/// `Some` if the first [`SNIFF_WINDOW`] bytes of `data` look like text (valid
/// UTF-8, no control characters but whitespace), with its first token after
/// an optional byte order mark, whitespace and `#` comments.
pub(crate) fn text_start(data: &[u8]) -> Option<TextStart<'_>> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let window = &data[..data.len().min(SNIFF_WINDOW)];
    let text = match std::str::from_utf8(window) {
        Ok(text) => text,
        // A multi-byte character cut by the window's end is fine.
        Err(e) if e.error_len().is_none() && window.len() == SNIFF_WINDOW => {
            std::str::from_utf8(&window[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    if text
        .bytes()
        .any(|b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)) || b == 0x7f)
    {
        return None;
    }
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        match rest.strip_prefix('#') {
            Some(comment) => rest = comment.find('\n').map_or("", |i| &comment[i..]),
            None => break,
        }
    }
    let Some(first) = rest.chars().next() else {
        return Some(TextStart::Nothing);
    };
    Some(match first {
        'A'..='Z' | 'a'..='z' | '_' => {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            TextStart::Identifier(&rest[..end])
        }
        '[' => TextStart::Bracket,
        '<' => TextStart::Angle,
        '{' => TextStart::Brace,
        _ => TextStart::Other,
    })
}

/// Reads `oid` and `size` from a Git LFS pointer file.
fn lfs_pointer(data: &[u8]) -> NotANet {
    let text = String::from_utf8_lossy(&data[..data.len().min(1024)]);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
    };
    NotANet::GitLfsPointer {
        oid: field("oid "),
        size: field("size ").and_then(|s| s.parse().ok()),
    }
}

/// The names of `NetDef`'s fields, which a text-format `NetDef` starts with.
pub(crate) const NETDEF_FIELD_NAMES: &[&str] = &[
    "name",
    "op",
    "type",
    "num_workers",
    "device_option",
    "arg",
    "external_input",
    "external_output",
    "partition_info",
];

/// True if `data` starts with the key of a `NetDef` field with that field's
/// wire type (every field is length-delimited except `num_workers`, a varint).
/// Real binary nets always do: protobuf writes fields in number order and
/// every net has at least one of them.
pub(crate) fn starts_like_binary_netdef(data: &[u8]) -> bool {
    // NetDef's field numbers are below 16: their keys are one byte.
    match data.first() {
        Some(&key) if key < 0x80 => match (key >> 3, key & 7) {
            (4, wire) => wire == 0,
            (1..=9, wire) => wire == 2,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_what_is_not_a_net() {
        assert_eq!(sniff(b""), Sniff::NotANet(NotANet::Empty));
        let lfs = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 6181001\n";
        assert_eq!(
            sniff(lfs),
            Sniff::NotANet(NotANet::GitLfsPointer {
                oid: Some("sha256:4d7a".into()),
                size: Some(6181001)
            })
        );
        assert_eq!(
            sniff(b"\n\n<!DOCTYPE html>\n<html><body>404</body></html>"),
            Sniff::NotANet(NotANet::Html)
        );
        assert_eq!(
            sniff(b"<?xml version=\"1.0\"?><Error/>"),
            Sniff::NotANet(NotANet::Html)
        );
        assert_eq!(
            sniff(b"PK\x03\x04\x14\x00\x00\x00"),
            Sniff::NotANet(NotANet::Zip)
        );
        assert_eq!(sniff(b"\x1f\x8b\x08\x00"), Sniff::NotANet(NotANet::Gzip));
        assert_eq!(
            sniff(b"\x80\x02}q\x00"),
            Sniff::NotANet(NotANet::Pickle { protocol: 2 })
        );
        assert_eq!(sniff(b"  {\"a\": 1}"), Sniff::NotANet(NotANet::Json));
    }

    #[test]
    fn tells_text_from_binary() {
        assert_eq!(sniff(b"name: \"x\"\nop {\n}\n"), Sniff::Text);
        assert_eq!(
            sniff(b"\xef\xbb\xbf# comment\n\n  op { type: \"Relu\" }"),
            Sniff::Text
        );
        assert_eq!(sniff(b"# only a comment\n   \n"), Sniff::Text);
        assert_eq!(sniff(b"\n"), Sniff::Text);
        // A binary net: name "x" then an op.
        assert_eq!(sniff(b"\n\x01x\x12\x00"), Sniff::Binary);
        // Text that is not text format goes to the decoder, which explains.
        assert_eq!(sniff(b"404 Not Found"), Sniff::Binary);
        // Invalid UTF-8.
        assert_eq!(sniff(b"name: \"\xff\""), Sniff::Binary);
    }

    #[test]
    fn a_character_cut_by_the_window_is_still_text() {
        let mut data = b"name: \"".to_vec();
        while data.len() < SNIFF_WINDOW - 1 {
            data.push(b'a');
        }
        data.extend_from_slice("é\"".as_bytes()); // 'é' straddles the window end
        assert_eq!(sniff(&data), Sniff::Text);
        // ...but not a broken character inside the window.
        data[10] = 0xc3;
        assert_eq!(sniff(&data), Sniff::Binary);
    }

    #[test]
    fn netdef_keys() {
        assert!(starts_like_binary_netdef(b"\x0a\x01x")); // name
        assert!(starts_like_binary_netdef(b"\x12\x00")); // op
        assert!(starts_like_binary_netdef(b"\x20\x01")); // num_workers
        assert!(!starts_like_binary_netdef(b"\x08\x07")); // ONNX ir_version
        assert!(!starts_like_binary_netdef(b"\x22\x00")); // num_workers as bytes
        assert!(!starts_like_binary_netdef(b"\x52\x00")); // field 10
        assert!(!starts_like_binary_netdef(b""));
        for name in NETDEF_FIELD_NAMES {
            assert!(
                crate::text::netdef_descriptor()
                    .get_field_by_name(name)
                    .is_some(),
                "{name}"
            );
        }
        assert_eq!(
            crate::text::netdef_descriptor().fields().count(),
            NETDEF_FIELD_NAMES.len()
        );
    }
}
