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
//!
//! Better still is not to touch the pages at all: bytes that go to an
//! output file unchanged are copied by the kernel, file to file
//! ([`copy_mapped`], `copy_file_range(2)` on Linux), when the slice being
//! written lies in a live [`Mapped`] region. Nothing is read into the
//! process, so the copy costs no resident memory and no page faults; the
//! atomic output file ([`crate::OutputFile`]) does this for every large
//! write, so no writer has to know.

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

/// The step of the kernel's file-to-file copy: Linux copies between files
/// of a file system without reflinks through a pipe of 16 pages (64 KiB).
/// A copy runs fastest when its steps start at multiples of this in both
/// files: [`copy_mapped`] therefore first copies up to the next multiple in
/// the source, and writers that copy large ranges unchanged place them at
/// the same offset modulo this as in their source (the torch zip writer's
/// padding), so that the output is on the same steps. Measured on a 2 GiB
/// checkpoint, steps across blocks took 0.70 s where aligned ones took
/// 0.60 s, as `cp` did (docs/performance.md, 'seventh part').
pub const COPY_STEP: u64 = 64 << 10;

/// Live read-only mappings: (start address, length, the map).
static LIVE: Mutex<Vec<(usize, usize, Weak<Region>)>> = Mutex::new(Vec::new());

/// A mapping and the file it maps (kept open for [`copy_mapped`]).
#[derive(Debug)]
struct Region {
    map: Mmap,
    file: std::fs::File,
}

/// A read-only file mapping known to [`release`] and [`copy_mapped`]. An
/// empty file gives an empty value without a mapping.
#[derive(Debug, Clone)]
pub struct Mapped(Option<Arc<Region>>);

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
        let map = unsafe { Mmap::map(file) }?;
        let region = Arc::new(Region {
            map,
            file: file.try_clone()?,
        });
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|(_, _, w)| w.strong_count() > 0);
        live.push((
            region.map.as_ptr() as usize,
            region.map.len(),
            Arc::downgrade(&region),
        ));
        Ok(Mapped(Some(region)))
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
            Some(r) => &r.map,
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
        let Some(region) = &self.0 else { return };
        // The last clone unregisters the map.
        if Arc::strong_count(region) > 1 {
            return;
        }
        let start = region.map.as_ptr() as usize;
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|(s, _, w)| *s != start && w.strong_count() > 0);
    }
}

/// The live region that holds all of `data`, if any.
fn region_of(data: &[u8]) -> Option<Arc<Region>> {
    let (addr, len) = (data.as_ptr() as usize, data.len());
    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.iter()
        .find(|(s, l, _)| addr >= *s && addr + len <= s + l)
        .and_then(|(_, _, w)| w.upgrade())
}

/// Drops the process's hold on the whole pages of `data` if it lies in a
/// live [`Mapped`] region; does nothing for any other memory.
pub fn release(data: &[u8]) {
    const PAGE: usize = 4096;
    let (addr, len) = (data.as_ptr() as usize, data.len());
    let Some(region) = region_of(data) else {
        return;
    };
    let map = &region.map;
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

/// The bytes of `data`, read from its file with `pread` when `data` lies in
/// a live [`Mapped`] region, so that no page of the map is touched; borrowed
/// otherwise (heap bytes, or a failed read, which the map then reports).
///
/// For small reads far apart in a big mapped file (the local header of
/// every large zip record, the first bytes of every storage): Linux maps a
/// whole large folio of the page cache (up to 2 MiB) on a fault, and those
/// pages stay resident until the map goes, so a few bytes read through
/// the map from each of 256 records can cost hundreds of MiB of RSS.
pub fn read_unmapped(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    let mut buf = Vec::new();
    if read_unmapped_into(data, &mut buf) {
        Cow::Owned(buf)
    } else {
        Cow::Borrowed(data)
    }
}

/// [`read_unmapped`] into `buf` (replacing its contents, reusing its
/// memory): `true` when `buf` now holds the bytes of `data`, `false` when
/// `data` is to be used as it is (not mapped, or the read failed).
///
/// For a loop of such reads: one buffer serves them all, where a new one
/// each time would leave the allocator's heap holding the freed ones.
pub fn read_unmapped_into(data: &[u8], buf: &mut Vec<u8>) -> bool {
    let Some(region) = region_of(data) else {
        return false;
    };
    let offset = (data.as_ptr() as usize - region.map.as_ptr() as usize) as u64;
    buf.clear();
    buf.resize(data.len(), 0);
    read_at(&region.file, buf, offset).is_ok()
}

#[cfg(unix)]
fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_at(_file: &std::fs::File, _buf: &mut [u8], _offset: u64) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Copies `data` to `out` at its current position in the kernel, file to
/// file, if `data` lies in a live [`Mapped`] region: `Some(bytes copied)`
/// (the pages of the map are never touched, so nothing becomes resident in
/// this process), `Some(Err)` on an I/O error, and `None` when the bytes
/// are not mapped or the kernel cannot copy between these two files (the
/// caller then writes them the ordinary way). May copy fewer bytes than
/// asked, as `write` may: a copy that starts off a [`COPY_STEP`] of the
/// source and runs past the next one stops there, so the next call starts
/// on a step.
pub fn copy_mapped(data: &[u8], out: &std::fs::File) -> Option<std::io::Result<usize>> {
    if data.is_empty() {
        return None;
    }
    let region = region_of(data)?;
    let offset = (data.as_ptr() as usize - region.map.as_ptr() as usize) as u64;
    kernel_copy(&region.file, offset, out, first_step(offset, data.len()))
}

/// How much of `len` bytes at `offset` to copy first: up to the next
/// [`COPY_STEP`] when the range runs past it, else all of it.
fn first_step(offset: u64, len: usize) -> usize {
    let to_step = (COPY_STEP - offset % COPY_STEP) % COPY_STEP;
    if to_step != 0 && (len as u64) > to_step {
        to_step as usize
    } else {
        len
    }
}

#[cfg(target_os = "linux")]
fn kernel_copy(
    src: &std::fs::File,
    offset: u64,
    out: &std::fs::File,
    len: usize,
) -> Option<std::io::Result<usize>> {
    use std::os::fd::AsRawFd;
    let mut off_in = libc::loff_t::try_from(offset).ok()?;
    // SAFETY: both descriptors are open files owned by live values; the
    // input offset is a valid pointer to a local; a NULL output offset
    // writes at (and advances) the output's position, as write(2) does.
    let n = unsafe {
        libc::copy_file_range(
            src.as_raw_fd(),
            &mut off_in,
            out.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            0,
        )
    };
    if n > 0 {
        return Some(Ok(n as usize));
    }
    if n == 0 {
        // End of the source file: it shrank under its map.
        return Some(Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the input file ends before the mapped bytes being copied",
        )));
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        // Not supported for these files (kernel, file systems, special
        // files): write the bytes the ordinary way.
        Some(
            libc::ENOSYS
            | libc::EXDEV
            | libc::EINVAL
            | libc::EOPNOTSUPP
            | libc::EPERM
            | libc::EBADF
            | libc::ETXTBSY,
        ) => None,
        _ => Some(Err(e)),
    }
}

#[cfg(not(target_os = "linux"))]
fn kernel_copy(
    _src: &std::fs::File,
    _offset: u64,
    _out: &std::fs::File,
    _len: usize,
) -> Option<std::io::Result<usize>> {
    None
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

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len().div_ceil(CHUNK);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Chunks<'_> {}

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

    #[test]
    fn kernel_copies_start_on_steps() {
        let step = COPY_STEP as usize;
        // Off a step and past the next one: up to it.
        assert_eq!(first_step(1000, 2 * step), step - 1000);
        assert_eq!(first_step(COPY_STEP + 64, step), step - 64);
        // On a step, or ending before the next one: all of it.
        assert_eq!(first_step(0, 3 * step), 3 * step);
        assert_eq!(first_step(5 * COPY_STEP, 7), 7);
        assert_eq!(first_step(1000, step - 1000), step - 1000);
        assert_eq!(first_step(1000, 10), 10);
    }

    #[test]
    fn mapped_bytes_are_copied_by_the_kernel_into_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in");
        let data: Vec<u8> = (0..(CHUNK + 12_345))
            .map(|i| (i * 31 % 253) as u8)
            .collect();
        std::fs::write(&p, &data).unwrap();
        let m = map_file(&p).unwrap();
        // An unaligned slice in the middle of the map, then heap bytes.
        let slice = &m[4097..CHUNK + 100];
        let out = dir.path().join("out");
        let mut f = crate::AtomicFile::create(&out).unwrap();
        std::io::Write::write_all(&mut f, b"head").unwrap();
        for c in chunks(slice) {
            std::io::Write::write_all(&mut f, c).unwrap();
        }
        std::io::Write::write_all(&mut f, &data[..70_000]).unwrap();
        f.commit().unwrap();
        let mut want = b"head".to_vec();
        want.extend_from_slice(&data[4097..CHUNK + 100]);
        want.extend_from_slice(&data[..70_000]);
        assert_eq!(std::fs::read(&out).unwrap(), want);
        // On Linux the kernel does copy (same file system).
        let sink = std::fs::File::create(dir.path().join("sink")).unwrap();
        let copied = copy_mapped(&m[..70_000], &sink);
        if cfg!(target_os = "linux") {
            assert!(matches!(copied, Some(Ok(n)) if n > 0), "{copied:?}");
        }
        assert!(copy_mapped(&data[..70_000], &sink).is_none(), "heap bytes");
        // A copy off a step stops at the next one; the rest starts on it.
        let step = COPY_STEP as usize;
        let copied = copy_mapped(&m[1000..step + 5000], &sink);
        if cfg!(target_os = "linux") {
            assert!(
                matches!(copied, Some(Ok(n)) if n == step - 1000),
                "{copied:?}"
            );
            let copied = copy_mapped(&m[step..step + 5000], &sink);
            assert!(matches!(copied, Some(Ok(5000))), "{copied:?}");
        }
        // Small reads through the file, not the map.
        let read = read_unmapped(&m[CHUNK..CHUNK + 30]);
        assert!(matches!(read, std::borrow::Cow::Owned(_)) || !cfg!(unix));
        assert_eq!(&read[..], &data[CHUNK..CHUNK + 30]);
        assert!(matches!(
            read_unmapped(&data[..4]),
            std::borrow::Cow::Borrowed(_)
        ));
        // One buffer for reads of other lengths: replaced, not appended to.
        let mut buf = b"left over from before".to_vec();
        for (at, len) in [(CHUNK, 30), (7, 3), (CHUNK + 1, 4000)] {
            let read = read_unmapped_into(&m[at..at + len], &mut buf);
            assert_eq!(read, cfg!(unix));
            if read {
                assert_eq!(buf, &data[at..at + len]);
            }
        }
        assert!(!read_unmapped_into(&data[..4], &mut buf), "heap bytes");
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
