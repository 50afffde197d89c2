//! Memory-mapped inputs, and copying from them with flat memory.
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

use std::ops::Deref;
use std::sync::{Arc, Mutex, Weak};

use memmap2::{Mmap, UncheckedAdvice};

/// Size of one copy step.
pub(crate) const CHUNK: usize = 4 << 20;

/// Live read-only mappings: (start address, length, the map).
static LIVE: Mutex<Vec<(usize, usize, Weak<Mmap>)>> = Mutex::new(Vec::new());

/// A read-only file mapping registered for [`chunks`].
pub(crate) struct Mapped(Arc<Mmap>);

impl Mapped {
    /// Maps `file` read-only.
    ///
    /// # Safety
    /// As for [`Mmap::map`]: the file must not be truncated or modified by
    /// another process while mapped (a truncation makes reads fault). netport
    /// never writes to its inputs.
    pub(crate) unsafe fn map(file: &std::fs::File) -> std::io::Result<Self> {
        // SAFETY: forwarded to the caller.
        let map = Arc::new(unsafe { Mmap::map(file) }?);
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|(_, _, w)| w.strong_count() > 0);
        live.push((map.as_ptr() as usize, map.len(), Arc::downgrade(&map)));
        Ok(Mapped(map))
    }
}

impl Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        let start = self.0.as_ptr() as usize;
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|(s, _, w)| *s != start && w.strong_count() > 0);
    }
}

/// Drops the process's hold on the whole pages of `data` if it lies in a
/// live mapping; does nothing for any other memory.
pub(crate) fn release(data: &[u8]) {
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
pub(crate) fn chunks(data: &[u8]) -> Chunks<'_> {
    Chunks {
        rest: data,
        last: None,
    }
}

/// The iterator of [`chunks`].
pub(crate) struct Chunks<'a> {
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
