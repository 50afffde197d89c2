//! The one "what is this file" sniffer of netport: every format crate and
//! the CLI ask it first, so that a file users mistake for a model (an empty
//! file, a Git LFS pointer, an HTML page saved by a download, a gzip or tar
//! archive, a JSON document, a truncated file) is named the same way, with
//! the same message, whatever command opened it.
//!
//! It reads a bounded amount of any file, as zip readers do: the first
//! [`HEAD`] bytes, the last [`TAIL`] bytes (where a zip's end-of-central-
//! directory record lives: 22 bytes plus a comment of at most 65,535, and
//! the 20-byte ZIP64 locator and 56-byte ZIP64 end record before it), and 4
//! bytes to confirm where a zip with bytes before it starts
//! ([`MAX_SNIFF_BYTES`] in all), never the whole file. It decodes nothing:
//! a format crate confirms a verdict with its own parser.
//!
//! Pickles: [`Sniffed::Pickle`] is given for files starting with the PROTO
//! opcode (protocol 2 and later). Protocol 0 and 1 pickles start with an
//! ordinary opcode that is also a printable character, so they would be
//! mistaken for text; [`could_be_pickle`] is the place that says "maybe a
//! pickle" from the first byte, for a pickle parser to confirm.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::IoError;

/// Bytes read from the start of a file.
pub const HEAD: usize = 4096;

/// Bytes read from the end of a file: the zip end record with the longest
/// comment (22 + 65,535), the ZIP64 locator (20) and ZIP64 end record (56).
pub const TAIL: usize = 22 + 65_535 + 20 + 56;

/// The most bytes [`sniff_reader`] reads from any input.
pub const MAX_SNIFF_BYTES: u64 = (HEAD + TAIL + 4) as u64;

/// Largest safetensors header taken as one (the reference implementation's
/// limit, 100 MB).
pub const MAX_SAFETENSORS_HEADER: u64 = 100_000_000;

const LOCAL_SIG: &[u8; 4] = b"PK\x03\x04";
const EOCD_SIG: &[u8; 4] = b"PK\x05\x06";
const ZIP64_LOCATOR_SIG: &[u8; 4] = b"PK\x06\x07";
const ZIP64_EOCD_SIG: &[u8; 4] = b"PK\x06\x06";
const LFS_PREFIXES: [&[u8]; 2] = [
    b"version https://git-lfs.github.com/spec/",
    b"version https://hawser.github.com/spec/",
];

/// What a file looks like from its head and tail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sniffed {
    /// Zero bytes.
    Empty,
    /// A Git LFS pointer (the repository was cloned without `git lfs`), with
    /// the object id and size it names.
    GitLfsPointer {
        /// The `oid` line's value (`sha256:...`), if present.
        oid: Option<String>,
        /// The real file's size, if present.
        size: Option<u64>,
    },
    /// An HTML or XML page, typically an error or login page saved by a
    /// download.
    Html,
    /// A zip archive whose first local header is at `offset` (0 for a plain
    /// zip; more when bytes come before it, found through the end record).
    Zip {
        /// File offset of the first local header.
        offset: u64,
    },
    /// Starts like a zip (`PK\x03\x04`) but has no end-of-central-directory
    /// record in its last [`TAIL`] bytes: cut short.
    TruncatedZip {
        /// The file's size.
        len: u64,
    },
    /// gzip-compressed data.
    Gzip,
    /// A tar archive (`ustar` at byte 257).
    Tar,
    /// A safetensors file: an 8-byte little-endian header length, then JSON.
    Safetensors {
        /// The declared header length.
        header_len: u64,
    },
    /// A safetensors header length that reaches past the end of the file.
    TruncatedSafetensors {
        /// The declared header length.
        header_len: u64,
        /// The file's size.
        len: u64,
    },
    /// A Python pickle starting with the PROTO opcode.
    Pickle {
        /// The protocol PROTO names (2 to 5).
        protocol: u8,
    },
    /// A JSON document (an object or array).
    Json,
    /// Text whose first token could start a protobuf text-format message
    /// (a field name or `[`), or only whitespace and `#` comments.
    ProtobufText,
    /// Other text (no control characters but whitespace).
    Text,
    /// Binary data that starts with a valid protobuf key: maybe a protobuf
    /// message (ONNX models start with field 1, Caffe2 nets with 1 to 9).
    Protobuf {
        /// The first field's number.
        field: u64,
        /// Its wire type (0, 1, 2 or 5).
        wire_type: u8,
    },
    /// None of the above.
    Unknown {
        /// The first 16 bytes, for messages.
        head: Vec<u8>,
    },
}

impl fmt::Display for Sniffed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sniffed::Empty => f.write_str("the file is empty (0 bytes)"),
            Sniffed::GitLfsPointer { oid, size } => {
                f.write_str("a Git LFS pointer file, not the model itself")?;
                match (oid, size) {
                    (Some(oid), Some(size)) => write!(f, " (oid {oid}, size {size} bytes)")?,
                    (Some(oid), None) => write!(f, " (oid {oid})")?,
                    (None, Some(size)) => write!(f, " (size {size} bytes)")?,
                    (None, None) => {}
                }
                f.write_str("; run `git lfs pull` to fetch the real file")
            }
            Sniffed::Html => f.write_str(
                "an HTML page (or XML), probably an error or login page saved by a download",
            ),
            Sniffed::Zip { offset: 0 } => f.write_str("a zip archive"),
            Sniffed::Zip { offset } => {
                write!(f, "a zip archive that starts at byte {offset}, not 0")
            }
            Sniffed::TruncatedZip { len } => write!(
                f,
                "a zip archive cut short: no end-of-central-directory record in the last bytes of its {len}"
            ),
            Sniffed::Gzip => f.write_str("gzip-compressed data; decompress it first"),
            Sniffed::Tar => f.write_str("a tar archive; unpack it first"),
            Sniffed::Safetensors { header_len } => {
                write!(f, "a safetensors file (header of {header_len} bytes)")
            }
            Sniffed::TruncatedSafetensors { header_len, len } => write!(
                f,
                "a safetensors file cut short: its header of {header_len} bytes does not fit in its {len} bytes"
            ),
            Sniffed::Pickle { protocol } => write!(f, "a Python pickle (protocol {protocol})"),
            Sniffed::Json => f.write_str("a JSON document"),
            Sniffed::ProtobufText => f.write_str("text, possibly protobuf text format"),
            Sniffed::Text => f.write_str("a text file"),
            Sniffed::Protobuf { field, wire_type } => write!(
                f,
                "binary data that may be protobuf (first field {field}, wire type {wire_type})"
            ),
            Sniffed::Unknown { head } => {
                f.write_str("unrecognised content; first bytes:")?;
                for b in head {
                    write!(f, " {b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl Sniffed {
    /// True for the files users mistake for a model: empty, LFS pointer,
    /// HTML, gzip, tar, JSON, truncated zip or safetensors. A format
    /// crate refuses these with this value's message, whatever it reads.
    pub fn is_not_a_model(&self) -> bool {
        matches!(
            self,
            Sniffed::Empty
                | Sniffed::GitLfsPointer { .. }
                | Sniffed::Html
                | Sniffed::Gzip
                | Sniffed::Tar
                | Sniffed::Json
                | Sniffed::TruncatedZip { .. }
                | Sniffed::TruncatedSafetensors { .. }
        )
    }
}

/// Sniffs the file at `path` (at most [`MAX_SNIFF_BYTES`] read).
pub fn sniff_file(path: impl AsRef<Path>) -> Result<Sniffed, IoError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| IoError::new(path, e))?;
    sniff_reader(file).map_err(|e| IoError::new(path, e))
}

/// Sniffs bytes in memory (or a memory map: only the head and tail pages
/// are touched).
pub fn sniff_bytes(data: &[u8]) -> Sniffed {
    sniff_reader(io::Cursor::new(data)).expect("reading memory cannot fail")
}

/// Sniffs a seekable input, reading at most [`MAX_SNIFF_BYTES`]: its first
/// [`HEAD`] bytes, its last [`TAIL`], and 4 bytes where the end record says
/// a prefixed zip starts.
pub fn sniff_reader<R: Read + Seek>(mut r: R) -> io::Result<Sniffed> {
    let len = r.seek(SeekFrom::End(0))?;
    r.seek(SeekFrom::Start(0))?;
    let head = read_up_to(&mut r, HEAD)?;
    let tail_len = len.min(TAIL as u64);
    let tail = if len <= HEAD as u64 {
        head.clone()
    } else {
        r.seek(SeekFrom::Start(len - tail_len))?;
        read_up_to(&mut r, tail_len as usize)?
    };
    if let Some(verdict) = sniff_parts(&head, &tail, len) {
        return Ok(verdict);
    }
    // Not recognised from the head: a zip with bytes before it?
    if let Some(offset) = prefixed_zip_start(&tail, len) {
        r.seek(SeekFrom::Start(offset))?;
        if read_up_to(&mut r, 4)? == LOCAL_SIG {
            return Ok(Sniffed::Zip { offset });
        }
    }
    Ok(guess(&head))
}

fn read_up_to(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The verdicts decided by the head alone (and the tail for zips that start
/// at byte 0); `None` leaves the prefixed-zip search and [`guess`].
fn sniff_parts(head: &[u8], tail: &[u8], len: u64) -> Option<Sniffed> {
    if len == 0 {
        return Some(Sniffed::Empty);
    }
    if head.starts_with(LOCAL_SIG) || head.starts_with(EOCD_SIG) {
        return Some(match end_record(tail) {
            Some(_) => Sniffed::Zip { offset: 0 },
            None => Sniffed::TruncatedZip { len },
        });
    }
    if LFS_PREFIXES.iter().any(|p| head.starts_with(p)) {
        return Some(lfs_pointer(head));
    }
    if head.starts_with(b"\x1f\x8b") {
        return Some(Sniffed::Gzip);
    }
    if head.get(257..262) == Some(b"ustar") {
        return Some(Sniffed::Tar);
    }
    if is_html(head) {
        return Some(Sniffed::Html);
    }
    if let Some(n) = head.get(..8) {
        let n = u64::from_le_bytes(n.try_into().expect("8 bytes"));
        if head.get(8) == Some(&b'{') && (2..=MAX_SAFETENSORS_HEADER).contains(&n) {
            return Some(if n + 8 <= len {
                Sniffed::Safetensors { header_len: n }
            } else {
                Sniffed::TruncatedSafetensors { header_len: n, len }
            });
        }
    }
    if head.len() >= 2 && head[0] == 0x80 && head[1] <= 5 {
        return Some(Sniffed::Pickle { protocol: head[1] });
    }
    None
}

/// Text and protobuf guesses, and the fallback.
fn guess(head: &[u8]) -> Sniffed {
    match text_start(head) {
        Some(TextStart::Nothing | TextStart::Identifier(_) | TextStart::Bracket) => {
            return Sniffed::ProtobufText;
        }
        Some(TextStart::Brace) => return Sniffed::Json,
        Some(TextStart::Angle | TextStart::Other) => return Sniffed::Text,
        None => {}
    }
    if let Some((key, _)) = varint(head)
        && key >> 3 >= 1
        && matches!(key & 7, 0 | 1 | 2 | 5)
    {
        return Sniffed::Protobuf {
            field: key >> 3,
            wire_type: (key & 7) as u8,
        };
    }
    Sniffed::Unknown {
        head: head[..head.len().min(16)].to_vec(),
    }
}

/// "Maybe a pickle", from the first byte alone: PROTO, or an opcode a
/// protocol 0 or 1 pickle may start with (`(` MARK, `L` LONG, `I` INT,
/// `}` EMPTY_DICT, `]` EMPTY_LIST, `c` GLOBAL, ...). The hook for pickles of
/// any protocol: a pickle parser must confirm.
pub fn could_be_pickle(head: &[u8]) -> bool {
    matches!(
        head.first(),
        Some(
            0x80 | b'('
                | b'L'
                | b'I'
                | b'}'
                | b']'
                | b')'
                | b'c'
                | b'N'
                | b'S'
                | b'V'
                | b'F'
                | b'G'
                | b'J'
                | b'K'
                | b'M'
                | b'X'
                | b'U'
                | b'T'
                | b'B'
                | b'C'
        )
    )
}

/// A protobuf varint at the start of `data`: (value, bytes used).
fn varint(data: &[u8]) -> Option<(u64, usize)> {
    let mut used = 0;
    crate::varint::get(data, &mut used).map(|v| (v, used))
}

/// HTML or XML: after a byte order mark and whitespace, `<` followed by
/// `!` (doctype, comment), `?` (XML declaration) or a letter (a tag).
fn is_html(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let head = head.trim_ascii_start();
    head.first() == Some(&b'<')
        && head
            .get(1)
            .is_some_and(|&c| c == b'!' || c == b'?' || c.is_ascii_alphabetic())
}

/// Reads `oid` and `size` from a Git LFS pointer file.
fn lfs_pointer(head: &[u8]) -> Sniffed {
    let text = String::from_utf8_lossy(&head[..head.len().min(1024)]);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
    };
    Sniffed::GitLfsPointer {
        oid: field("oid "),
        size: field("size ").and_then(|s| s.parse().ok()),
    }
}

/// The offset in `tail` (the last bytes of a file) of the zip end-of-central-
/// directory record: the last `PK\x05\x06` whose comment ends within the
/// file, searched in the last 22 + 65,535 bytes as zip readers do.
pub fn end_record(tail: &[u8]) -> Option<usize> {
    let len = tail.len();
    if len < 22 {
        return None;
    }
    let lowest = len.saturating_sub(22 + 65_535);
    let mut pos = len - 22;
    loop {
        if &tail[pos..pos + 4] == EOCD_SIG {
            let comment = usize::from(u16::from_le_bytes([tail[pos + 20], tail[pos + 21]]));
            if pos + 22 + comment <= len {
                return Some(pos);
            }
        }
        if pos == lowest {
            return None;
        }
        pos -= 1;
    }
}

/// Where a zip that does not start at byte 0 starts, from its end record
/// (or ZIP64 end record): the central directory ends where the end record
/// (or ZIP64 end record) begins, and its recorded offset counts from the
/// archive's start, so the difference is the length of the prefix.
fn prefixed_zip_start(tail: &[u8], len: u64) -> Option<u64> {
    let eocd = end_record(tail)?;
    let tail_start = len - tail.len() as u64;
    let u32_at = |at: usize| -> Option<u64> {
        Some(u64::from(u32::from_le_bytes(
            tail.get(at..at + 4)?.try_into().ok()?,
        )))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(tail.get(at..at + 8)?.try_into().ok()?))
    };
    let (cd_end, cd_size, cd_offset) = if eocd >= 76
        && tail.get(eocd - 20..eocd - 16) == Some(ZIP64_LOCATOR_SIG)
        && tail.get(eocd - 76..eocd - 72) == Some(ZIP64_EOCD_SIG)
    {
        let z = eocd - 76;
        (tail_start + z as u64, u64_at(z + 40)?, u64_at(z + 48)?)
    } else {
        (
            tail_start + eocd as u64,
            u32_at(eocd + 12)?,
            u32_at(eocd + 16)?,
        )
    };
    let offset = cd_end.checked_sub(cd_size)?.checked_sub(cd_offset)?;
    (offset > 0 && offset < len).then_some(offset)
}

/// The first significant token of a text-looking input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextStart<'a> {
    /// Only whitespace and `#` comments.
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

/// `Some` if the first [`HEAD`] bytes of `data` look like text (valid
/// UTF-8, no control characters but whitespace), with its first token after
/// an optional byte order mark, whitespace and `#` comments.
pub fn text_start(data: &[u8]) -> Option<TextStart<'_>> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let window = &data[..data.len().min(HEAD)];
    let text = match std::str::from_utf8(window) {
        Ok(text) => text,
        // A multi-byte character cut by the window's end is fine.
        Err(e) if e.error_len().is_none() && window.len() == HEAD => {
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
