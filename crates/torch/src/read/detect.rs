//! What a file is, from its bytes alone: the PyTorch formats this crate reads
//! and the things users mistake for checkpoints.
//!
//! The order follows `torch.load` (docs/formats/pytorch.md, 'Detection'): a zip only when
//! the file starts with `PK\x03\x04` (a zip with bytes before it is reported
//! as such, because torch would not read it); then tar (`ustar` at byte
//! 257); then a pickle whose first value is the legacy magic number.

use std::fmt;

use netport_pickle::{Limits, Machine, PickleError, Value};

use netport_io::Sniffed;

use crate::read::zip::ZipArchive;

/// The legacy magic number `0x1950a86a20f9469cfc6c` as little-endian two's
/// complement bytes (how the pickle machine stores a big int).
pub(crate) const LEGACY_MAGIC_LE: [u8; 10] =
    [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// A PyTorch file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `torch.save` zip checkpoint (torch >= 1.6): `data.pkl` + `data/<key>`.
    Zip,
    /// `torch.jit.save` archive: a zip with `constants.pkl`.
    TorchScript,
    /// `torch.export.save` archive (torch >= 2.8): `archive_format` = `pt2`.
    Pt2,
    /// Legacy stacked pickles (`_use_new_zipfile_serialization=False`).
    Legacy,
    /// Legacy tar (torch <= 0.1.x). Detected only.
    LegacyTar,
}

impl Format {
    /// A short name: `zip`, `torchscript`, `pt2`, `legacy`, `legacy-tar`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::TorchScript => "torchscript",
            Format::Pt2 => "pt2",
            Format::Legacy => "legacy",
            Format::LegacyTar => "legacy-tar",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Zip => "PyTorch zip checkpoint",
            Format::TorchScript => "TorchScript archive",
            Format::Pt2 => "torch.export .pt2 archive",
            Format::Legacy => "legacy PyTorch checkpoint (stacked pickles)",
            Format::LegacyTar => "legacy PyTorch tar checkpoint (torch <= 0.1)",
        })
    }
}

/// What [`detect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Detected {
    /// A PyTorch format.
    Torch(Format),
    /// A safetensors file: 8-byte little-endian header length, then JSON.
    Safetensors {
        /// The declared header length.
        header_len: u64,
    },
    /// A Git LFS pointer instead of the real file.
    GitLfsPointer {
        /// The `oid` line's value (`sha256:...`), if present.
        oid: Option<String>,
        /// The real file's size, if present.
        size: Option<u64>,
    },
    /// An HTML (or XML) page, e.g. a download that saved a web page.
    Html,
    /// Zero bytes.
    Empty,
    /// A zip that starts with `PK\x03\x04` but whose central directory
    /// cannot be read (truncated, corrupt).
    BrokenZip {
        /// What is wrong and where.
        reason: String,
    },
    /// A zip whose first local header is not at byte 0.
    ZipWithPrefix {
        /// Offset of the first `PK\x03\x04`.
        offset: u64,
    },
    /// A readable zip that is none of the PyTorch archives.
    OtherZip {
        /// Why it is not a checkpoint.
        reason: String,
    },
    /// The pre-2.8 `torch.export.save` zip (no archive directory,
    /// `serialized_exported_program.json`).
    LegacyExportZip,
    /// A file starting with `PYTORCH1` (preview-release format).
    PreviewRelease,
    /// A pickle whose first value is not the legacy magic number: the file
    /// parses as a pickle of any protocol (0 and 1 have no PROTO opcode and
    /// may start with any opcode) up to its STOP, possibly followed by more.
    Pickle {
        /// The PROTO version, if any (none for protocols 0 and 1).
        protocol: Option<u8>,
    },
    /// A NumPy `.npy` array (`\x93NUMPY` magic).
    Npy {
        /// The array is stored as a pickle (an object dtype):
        /// `numpy.load(allow_pickle=True)` unpickles it.
        pickled: bool,
        /// Where the array data (or the pickle) starts.
        data_offset: u64,
    },
    /// A file with the `.npy` magic whose header cannot be read.
    BrokenNpy {
        /// What is wrong.
        reason: String,
    },
    /// Something else [`netport_io::sniff`] recognises and no model is: a
    /// gzip or JSON file, a truncated safetensors file, ...
    Other(Sniffed),
    /// None of the above.
    Unknown {
        /// The first bytes, for the message.
        head: Vec<u8>,
    },
}

impl Detected {
    /// The PyTorch format, if it is one.
    pub fn format(&self) -> Option<Format> {
        match self {
            Detected::Torch(f) => Some(*f),
            _ => None,
        }
    }
}

impl fmt::Display for Detected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detected::Torch(format) => write!(f, "{format}"),
            Detected::Safetensors { header_len } => write!(
                f,
                "{}; read it as safetensors, not with torch.load",
                Sniffed::Safetensors {
                    header_len: *header_len
                }
            ),
            Detected::GitLfsPointer { oid, size } => write!(
                f,
                "{}",
                Sniffed::GitLfsPointer {
                    oid: oid.clone(),
                    size: *size
                }
            ),
            Detected::Html => write!(f, "{}", Sniffed::Html),
            Detected::Empty => write!(f, "{}", Sniffed::Empty),
            Detected::Other(sniffed) => write!(f, "{sniffed}"),
            Detected::BrokenZip { reason } => write!(f, "a damaged zip: {reason}"),
            Detected::ZipWithPrefix { offset } => write!(
                f,
                "{}; torch.load requires PK\\x03\\x04 at byte 0 and would treat this file as a legacy checkpoint and fail",
                Sniffed::Zip { offset: *offset }
            ),
            Detected::OtherZip { reason } => {
                write!(f, "a zip archive but not a PyTorch one: {reason}")
            }
            Detected::LegacyExportZip => write!(
                f,
                "a pre-2.8 torch.export archive (serialized_exported_program.json), which this reader does not support"
            ),
            Detected::PreviewRelease => write!(
                f,
                "a file from the PyTorch preview release (PYTORCH1), which torch itself no longer reads"
            ),
            Detected::Pickle { protocol } => match protocol {
                Some(p) => write!(
                    f,
                    "a plain pickle (protocol {p}) without PyTorch's legacy magic number (written by pickle.dump, not torch.save)"
                ),
                None => write!(
                    f,
                    "a plain pickle (protocol 0 or 1, no PROTO opcode) without PyTorch's legacy magic number (written by pickle.dump, not torch.save)"
                ),
            },
            Detected::Npy { pickled: true, .. } => write!(
                f,
                "a NumPy .npy object array, stored as a pickle (numpy.load(allow_pickle=True) runs it)"
            ),
            Detected::Npy { pickled: false, .. } => write!(f, "a NumPy .npy array"),
            Detected::BrokenNpy { reason } => write!(f, "a damaged NumPy .npy file: {reason}"),
            Detected::Unknown { head } => write!(f, "{}", Sniffed::Unknown { head: head.clone() }),
        }
    }
}

/// Classify `data` (a whole file, usually a map). Only the head and the
/// tail are looked at ([`netport_io::sniff`]), and the central directory of
/// a zip: never every byte.
pub fn detect(data: &[u8]) -> Detected {
    if data.starts_with(b"PK\x03\x04") {
        // Duplicate names do not change what the archive is: the loaders
        // refuse them, the scanner reports them and looks at every entry.
        return match ZipArchive::parse_keeping_duplicates(data) {
            Ok((zip, _)) => classify_zip(&zip, data),
            Err(e) => Detected::BrokenZip {
                reason: e.to_string(),
            },
        };
    }
    if data.starts_with(b"PYTORCH1") {
        return Detected::PreviewRelease;
    }
    if data.starts_with(netport_tensor::npy::MAGIC) {
        // Before the pickle test: 0x93 is also the STACK_GLOBAL opcode.
        return match npy_header(data) {
            Ok((pickled, data_offset)) => Detected::Npy {
                pickled,
                data_offset,
            },
            Err(reason) => Detected::BrokenNpy { reason },
        };
    }
    let head = &data[..data.len().min(netport_io::sniff::HEAD)];
    match netport_io::sniff_bytes(data) {
        Sniffed::Empty => Detected::Empty,
        Sniffed::Tar => Detected::Torch(Format::LegacyTar),
        Sniffed::GitLfsPointer { oid, size } => Detected::GitLfsPointer { oid, size },
        Sniffed::Html => Detected::Html,
        Sniffed::Safetensors { header_len } => Detected::Safetensors { header_len },
        Sniffed::Zip { offset } => Detected::ZipWithPrefix { offset },
        Sniffed::Pickle { protocol } if !is_legacy_magic(head) => Detected::Pickle {
            protocol: Some(protocol),
        },
        // A legacy checkpoint whose first pickle may be of any protocol.
        _ if netport_io::sniff::could_be_pickle(head) && is_legacy_magic(head) => {
            Detected::Torch(Format::Legacy)
        }
        // Pickles of any protocol: a file is one when it parses as one.
        other => match pickle_head(data) {
            Some(protocol) => Detected::Pickle { protocol },
            None if other.is_not_a_model() => Detected::Other(other),
            None => Detected::Unknown {
                head: data[..data.len().min(16)].to_vec(),
            },
        },
    }
}

/// Reads a `.npy` header ([`netport_tensor::npy::read_header`]): whether the
/// array is pickled (an object dtype anywhere in it) and where the data
/// starts.
pub(crate) fn npy_header(data: &[u8]) -> Result<(bool, u64), String> {
    match netport_tensor::npy::read_header(data) {
        Ok(h) => Ok((h.pickled, h.data_offset)),
        Err(netport_tensor::TensorError::Npy { reason }) => Err(reason),
        Err(e) => Err(e.to_string()),
    }
}

/// Largest head of a file parsed to tell whether it is a pickle.
const PICKLE_WINDOW: usize = 1 << 20;

/// Whether `data` is a pickle of any protocol, and its PROTO version: it
/// parses (with the pickle engine, which executes nothing) up to a STOP, or,
/// for a file longer than the window, without an error up to the window's
/// end. A file that starts with PROTO 2-5 counts as a pickle whatever
/// follows, so that a damaged one is still scanned.
pub(crate) fn pickle_head(data: &[u8]) -> Option<Option<u8>> {
    if data.len() >= 2 && data[0] == 0x80 && (2..=5).contains(&data[1]) {
        return Some(Some(data[1]));
    }
    // Without PROTO at byte 0 there is no PROTO at all (protocol 0 or 1).
    let head = &data[..data.len().min(PICKLE_WINDOW)];
    match netport_pickle::parses_to_stop(head, &Limits::default()) {
        Ok(_) => Some(None),
        Err(PickleError::Truncated { .. } | PickleError::LengthExceedsInput { .. })
            if head.len() < data.len() =>
        {
            Some(None)
        }
        Err(_) => None,
    }
}

/// Classify a parsed zip: TorchScript, `.pt2`, zip checkpoint or other.
pub(crate) fn classify_zip(zip: &ZipArchive, data: &[u8]) -> Detected {
    let Some(prefix) = zip.archive_name() else {
        if zip.find("serialized_exported_program.json").is_some() {
            return Detected::LegacyExportZip;
        }
        let name = zip.entries().first().map(|e| e.name.as_str()).unwrap_or("");
        return Detected::OtherZip {
            reason: format!("its first entry '{name}' is not in a directory"),
        };
    };
    let rec = |r: &str| zip.find(&format!("{prefix}/{r}"));
    if let Some(e) = rec("archive_format") {
        let range = e.data_range();
        let bytes = data
            .get(range.start as usize..range.end as usize)
            .unwrap_or(&[]);
        if e.is_stored() && bytes.trim_ascii() == b"pt2" {
            return Detected::Torch(Format::Pt2);
        }
    }
    if rec("constants.pkl").is_some() {
        return Detected::Torch(Format::TorchScript);
    }
    if rec("data.pkl").is_some() {
        return Detected::Torch(Format::Zip);
    }
    Detected::OtherZip {
        reason: format!("it has no '{prefix}/data.pkl'"),
    }
}

fn is_legacy_magic(data: &[u8]) -> bool {
    let limits = Limits {
        max_work: 4096,
        max_nodes: 1024,
        max_string_len: 4096,
        ..Limits::default()
    };
    let head = &data[..data.len().min(4096)];
    match Machine::new(limits).load(head, 0) {
        Ok(p) => {
            matches!(p.arena.get(p.root), Some(Value::BigInt(b)) if b.le_signed_bytes() == LEGACY_MAGIC_LE)
        }
        Err(_) => false,
    }
}
