//! The error type of `netport-caffe2`: every failure names the file (or the
//! input the caller named) and what is wrong with it, with the byte offset, or
//! the line and column of a text file, when known.

use crate::sniff::NotANet;
use std::path::PathBuf;

impl From<netport_io::IoError> for Caffe2Error {
    fn from(e: netport_io::IoError) -> Self {
        Caffe2Error::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// Everything that can go wrong reading or writing Caffe2 nets.
#[derive(Debug, thiserror::Error)]
pub enum Caffe2Error {
    /// An I/O error on a named file or directory.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The input is recognisably something other than a Caffe2 net (an empty
    /// file, an HTML page, a Git LFS pointer, a zip archive, ...).
    #[error("{what}: not a Caffe2 net: {kind}")]
    NotANet {
        /// The input, as the caller named it.
        what: String,
        /// What it is instead.
        kind: NotANet,
    },
    /// The bytes are not a valid binary `NetDef` (or exceed a decoding limit).
    /// `offset` is where the first problem starts, when it could be located.
    #[error("{what}: not a valid Caffe2 NetDef ({len} bytes){}: {reason}", at_byte(.offset))]
    Decode {
        /// The input, as the caller named it.
        what: String,
        /// Its length in bytes.
        len: u64,
        /// Where the first problem starts, when known.
        offset: Option<u64>,
        /// What the decoder said.
        reason: String,
    },
    /// A protobuf text-format file that does not parse as a `NetDef`. `line`
    /// and `column` are 1-based; `offset` is the byte offset in the file.
    #[error("{what}{}: {reason}", at_position(.position))]
    Text {
        /// The input, as the caller named it.
        what: String,
        /// Where the problem is, when known.
        position: Option<TextPosition>,
        /// What the parser said.
        reason: String,
    },
    /// A net too large for protobuf: the C++ and Python libraries refuse
    /// messages of 2 GiB or more.
    #[error(
        "{what}: the net encodes to {size} bytes, over the protobuf limit of 2147483647 bytes (2 GiB - 1)"
    )]
    TooLarge {
        /// The net, as the caller named it.
        what: String,
        /// Its encoded size in bytes.
        size: u64,
    },
    /// A model directory without one of the two nets.
    #[error("{}: no {net} found (looked for {})", .dir.display(), .tried.join(", "))]
    MissingNet {
        /// The directory.
        dir: PathBuf,
        /// Which net is missing (`init net` or `predict net`).
        net: &'static str,
        /// The file names looked for.
        tried: Vec<&'static str>,
    },
}

/// Where in a text file an error is: 1-based line and column (in characters),
/// and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextPosition {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte offset in the file.
    pub offset: usize,
}

impl TextPosition {
    /// The position of byte `offset` in `text` (clamped to the text's length
    /// and to a character boundary).
    pub(crate) fn of(text: &str, offset: usize) -> TextPosition {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        TextPosition {
            line,
            column,
            offset,
        }
    }
}

fn at_byte(offset: &Option<u64>) -> String {
    offset.map_or_else(String::new, |o| format!(" at byte {o}"))
}

fn at_position(position: &Option<TextPosition>) -> String {
    position.map_or_else(String::new, |p| format!(":{}:{}", p.line, p.column))
}

impl Caffe2Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Caffe2Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The byte offset in the input where the problem was found, if known.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Caffe2Error::Decode { offset, .. } => *offset,
            Caffe2Error::Text { position, .. } => position.map(|p| p.offset as u64),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "ab\ncé d\n";
        assert_eq!(
            TextPosition::of(text, 0),
            TextPosition {
                line: 1,
                column: 1,
                offset: 0
            }
        );
        // byte 7 is 'd' on line 2: "cé " is 4 bytes, 3 characters.
        let p = TextPosition::of(text, 7);
        assert_eq!((p.line, p.column), (2, 4));
        // inside the two-byte 'é': moved back to its start.
        let p = TextPosition::of(text, 5);
        assert_eq!((p.line, p.column, p.offset), (2, 2, 4));
        assert_eq!(TextPosition::of(text, 1000).offset, text.len());
    }

    #[test]
    fn messages_are_one_line_and_name_the_input() {
        let e = Caffe2Error::Decode {
            what: "m/init_net.pb".into(),
            len: 10,
            offset: Some(3),
            reason: "bad".into(),
        };
        assert_eq!(
            e.to_string(),
            "m/init_net.pb: not a valid Caffe2 NetDef (10 bytes) at byte 3: bad"
        );
        let e = Caffe2Error::Text {
            what: "p.pbtxt".into(),
            position: Some(TextPosition {
                line: 2,
                column: 5,
                offset: 9,
            }),
            reason: "oops".into(),
        };
        assert_eq!(e.to_string(), "p.pbtxt:2:5: oops");
        assert_eq!(e.offset(), Some(9));
    }
}
