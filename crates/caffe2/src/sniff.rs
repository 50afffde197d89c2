//! Telling from its first bytes what a file is: a binary protobuf net, a
//! protobuf text-format net, or something users mistake for a model (an empty
//! file, an HTML error page saved by a download, a Git LFS pointer, a zip or
//! gzip archive, a pickle, a JSON document, a safetensors file). The
//! verdicts and their messages are netport's one sniffer's
//! ([`netport_io::sniff`]); this module only sorts them for a net reader.
//! Never decodes anything: cheap enough for format detection in the CLI,
//! and the source of the one-line "not a Caffe2 net" errors of the loaders.
//!
//! Most of the recognised prefixes cannot start a valid binary `NetDef`: `<`
//! is an end-group key, `v` and `\x1f` have invalid wire types, and
//! `PK\x03\x04` has field number 0 after its first field. A pickle's
//! `\x80\x02` and JSON's `{` are valid keys (field 32, and a group of field
//! 15, neither of which `NetDef` has), so such files could decode as a net
//! made only of unknown fields; they are refused as what they are instead.

pub use netport_io::sniff::{HEAD as SNIFF_WINDOW, TextStart, text_start};

/// Files that are recognisably not Caffe2 nets: the verdicts of netport's
/// one sniffer ([`netport_io::Sniffed`]), with its messages.
pub type NotANet = netport_io::Sniffed;

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

/// Classifies `data` from its first [`SNIFF_WINDOW`] bytes and, for zips,
/// its last bytes ([`netport_io::sniff_bytes`]). Never fails.
pub fn sniff(data: &[u8]) -> Sniff {
    use netport_io::Sniffed;
    match netport_io::sniff_bytes(data) {
        Sniffed::ProtobufText => Sniff::Text,
        // Text that is not text format goes to the decoder, which explains.
        Sniffed::Text | Sniffed::Protobuf { .. } | Sniffed::Unknown { .. } => Sniff::Binary,
        other => Sniff::NotANet(other),
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
            Sniff::NotANet(NotANet::TruncatedZip { len: 8 })
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
