//! Read-only memory maps of inputs, and copying from them with flat memory.
//!
//! Inputs are mapped read-only, so reading a tensor copies nothing. But a
//! page of a mapping, once touched, stays resident in the process until the
//! mapping goes away: copying a 20 GB checkpoint through its map would leave
//! 20 GB resident (shared page cache, but charged to the process's RSS and
//! its cgroup). [`chunks`] therefore tells the kernel, after each chunk has
//! been used, that the process no longer needs those pages
//! (`MADV_DONTNEED`). On a read-only file mapping that only drops the
//! process's page-table entries: a later read faults the same bytes in again
//! from the file, so no data can change. It is applied only to memory that
//! lies inside a live [`Mapped`] region, never to heap memory.

// The workspace denies `unsafe`; mapping a file is the one place netport
// needs it (memmap2's `Mmap::map` and `madvise` are `unsafe` because another
// process may change a mapped file: see docs/threat-model.md, 'Memory maps').
// Every `unsafe` block here says why it is sound.
#![allow(unsafe_code)]

use std::ops::Deref;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use memmap2::{Mmap, UncheckedAdvice};

use crate::IoError;

/// Size of one copy step of [`chunks`].
pub const CHUNK: usize = 4 << 20;

/// Live read-only mappings: (start address, length, the map).
static LIVE: Mutex<Vec<(usize, usize, Weak<Mmap>)>> = Mutex::new(Vec::new());

/// A read-only file mapping known to [`release`]. An empty file gives an
/// empty value without a mapping.
#[derive(Debug, Clone)]
pub struct Mapped(Option<Arc<Mmap>>);

impl Mapped {
    /// Maps `file` read-only.
    ///
    /// # Safety
    /// As for [`Mmap::map`]: the file must not be truncated or modified by
    /// another process while mapped (a truncation makes reads fault). netport
    /// never writes to its inputs; docs/threat-model.md states the risk.
    pub unsafe fn map(file: &std::fs::File) -> std::io::Result<Self> {
        if file.metadata()?.len() == 0 {
            return Ok(Mapped(None));
        }
        // SAFETY: forwarded to the caller.
        let map = Arc::new(unsafe { Mmap::map(file) }?);
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|(_, _, w)| w.strong_count() > 0);
        live.push((map.as_ptr() as usize, map.len(), Arc::downgrade(&map)));
        Ok(Mapped(Some(map)))
    }
}

/// Opens and maps the file at `path` read-only (see [`Mapped::map`] for the
/// one risk of mapping: another process truncating the file meanwhile).
pub fn map_file(path: impl AsRef<Path>) -> Result<Mapped, IoError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| IoError::new(path, e))?;
    // SAFETY: read-only map of an input netport never writes; the risk of
    // another process changing it is documented in docs/threat-model.md.
    unsafe { Mapped::map(&file) }.map_err(|e| IoError::new(path, e))
}

impl Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Some(m) => m,
            None => &[],
        }
    }
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        let Some(map) = &self.0 else { return };
        // The last clone unregisters the map.
        if Arc::strong_count(map) > 1 {
            return;
        }
        let start = map.as_ptr() as usize;
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|(s, _, w)| *s != start && w.strong_count() > 0);
    }
}

/// Drops the process's hold on the whole pages of `data` if it lies in a
/// live [`Mapped`] region; does nothing for any other memory.
pub fn release(data: &[u8]) {
    const PAGE: usize = 4096;
    let (addr, len) = (data.as_ptr() as usize, data.len());
    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(map) = live
        .iter()
        .find(|(s, l, _)| addr >= *s && addr + len <= s + l)
        .and_then(|(_, _, w)| w.upgrade())
    else {
        return;
    };
    drop(live);
    let base = map.as_ptr() as usize;
    // Whole pages only, relative to the (page-aligned) start of the map.
    let first = (addr - base).next_multiple_of(PAGE);
    let end = (addr - base + len) / PAGE * PAGE;
    if end > first {
        // SAFETY: the range lies inside a read-only file mapping that is
        // alive (we hold an Arc); DONTNEED there only drops page-table
        // entries, and the bytes read back unchanged from the file.
        let _ =
            unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, first, end - first) };
    }
}

/// `data` in [`CHUNK`]-sized pieces; each piece's mapped pages are released
/// when the next one is asked for (or when the iterator is dropped), so a
/// copy loop over a mapped input keeps memory flat.
pub fn chunks(data: &[u8]) -> Chunks<'_> {
    Chunks {
        rest: data,
        last: None,
    }
}

/// The iterator of [`chunks`].
#[derive(Debug)]
pub struct Chunks<'a> {
    rest: &'a [u8],
    last: Option<&'a [u8]>,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if let Some(done) = self.last.take() {
            release(done);
        }
        if self.rest.is_empty() {
            return None;
        }
        let (c, rest) = self.rest.split_at(self.rest.len().min(CHUNK));
        self.rest = rest;
        self.last = Some(c);
        Some(c)
    }
}

impl Drop for Chunks<'_> {
    fn drop(&mut self) {
        if let Some(done) = self.last.take() {
            release(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_reads_and_releases() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..(CHUNK * 2 + 5)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let m = map_file(&p).unwrap();
        let mut copied = Vec::new();
        for c in chunks(&m) {
            copied.extend_from_slice(c);
        }
        // Released pages read back unchanged.
        assert_eq!(copied, data);
        assert_eq!(&m[..], &data[..]);
        release(&data); // heap memory: ignored
        let empty = dir.path().join("e");
        std::fs::write(&empty, b"").unwrap();
        assert!(map_file(&empty).unwrap().is_empty());
        let e = map_file(dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }
}

/// The bytes of an input: a read-only map of a file, or bytes a caller
/// already holds. Readers keep one of these and borrow from it.
#[derive(Debug)]
pub enum Input {
    /// A mapped file ([`map_file`]).
    Mapped(Mapped),
    /// Bytes in memory.
    Owned(Vec<u8>),
}

impl Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Input::Mapped(m) => m,
            Input::Owned(v) => v,
        }
    }
}
