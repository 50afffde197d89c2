//! File plumbing shared by every netport format crate, so that each job is
//! done one way: atomic output files ([`AtomicFile`]), read-only memory maps
//! whose copied pages are released ([`Mapped`], [`chunks`]), [`same_file`],
//! the one "what is this file" sniffer ([`sniff`]) with one set of
//! messages, [`transform_ahead`] for writes that must change every byte, and
//! LEB128 integers ([`varint`]).
//!
//! This is a base crate: format crates (torch, safetensors, onnx, caffe2)
//! may depend on it, it depends on none of them.

mod atomic;
mod map;
mod pipeline;
pub mod sniff;
pub mod varint;

use std::path::{Path, PathBuf};

pub use atomic::{
    AtomicFile, Durability, Finished, OutputFile, bytes_written, write_file, write_with,
};
pub use map::{
    CHUNK, COPY_STEP, Chunks, Input, Mapped, chunks, copy_mapped, map_file, read_unmapped,
    read_unmapped_into, release,
};
pub use pipeline::transform_ahead;
pub use sniff::{Sniffed, sniff_bytes, sniff_file};

/// An I/O error on a named file: `<path>: <the operating system's error>`.
/// The message includes the error, so it is not also given as
/// [`Error::source`](std::error::Error::source) (a reporter printing the
/// chain would say it twice).
#[derive(Debug)]
pub struct IoError {
    /// The file or folder the operation was on.
    pub path: PathBuf,
    /// The operating system's error.
    pub source: std::io::Error,
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for IoError {}

impl IoError {
    /// `source`, on `path`.
    pub fn new(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IoError {
            path: path.into(),
            source,
        }
    }
}

/// True if both paths exist and are the same file (same device and inode on
/// Unix, so another spelling of a path or a hard link counts; canonical
/// paths elsewhere).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
        false
    }
    #[cfg(not(unix))]
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// The folder a file `path` lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_file_sees_links_and_spellings() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"x").unwrap();
        let b = dir.path().join("b");
        std::fs::hard_link(&a, &b).unwrap();
        let c = dir.path().join("c");
        std::fs::write(&c, b"x").unwrap();
        assert!(same_file(&a, &b));
        assert!(same_file(&a, &dir.path().join(".").join("a")));
        assert!(!same_file(&a, &c));
        assert!(!same_file(&a, &dir.path().join("missing")));
        assert_eq!(parent_dir(Path::new("x.pt")), Path::new("."));
        assert_eq!(parent_dir(Path::new("d/x.pt")), Path::new("d"));
    }

    #[test]
    fn io_errors_name_the_file_once() {
        let e = IoError::new("m.pt", std::io::Error::other("disk full"));
        assert_eq!(e.to_string(), "m.pt: disk full");
        // Not repeated by a reporter that prints the chain.
        assert!(std::error::Error::source(&e).is_none());
    }
}
