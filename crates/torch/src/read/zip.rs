//! The zip container of PyTorch checkpoints, TorchScript and `.pt2`
//! archives: a small explicit central-directory reader.
//!
//! Why not the `zip` crate: we need the absolute data offset of every entry
//! without reading it, ZIP64 fields exactly as torch's miniz writer puts them
//! (including the non-standard local ZIP64 extra, which must be ignored),
//! duplicate detection that compares names case-insensitively as miniz looks
//! them up, and errors that carry file offsets. The format is small enough
//! that an explicit parser with checked arithmetic and limits is clearer than
//! adapting a general reader.
//!
//! Rules (docs/formats/pytorch.md, 'Zip container'):
//! - the central directory is authoritative; local headers are read only to
//!   find where the data starts (`lho + 30 + name_len + extra_len`, read from
//!   the *local* header) and to check that the local name and method agree
//!   with the central directory;
//! - local sizes are ignored when bit 3 (data descriptor) is set, as torch
//!   writes 0 there;
//! - every entry's data must lie inside the file;
//! - duplicate names (ASCII case-insensitive) are rejected: miniz resolves the
//!   first, Python's `zipfile` the last, which is a scanner-evasion vector;
//! - [`ZipArchive::archive_name`] is entry #0's name up to its first `/`, and
//!   [`ZipArchive::check_prefix`] requires every entry to be under it.
//!
//! Limits: at most [`MAX_ENTRIES`] entries; the end-of-central-directory
//! record is searched in the last 65,557 bytes only.

use crate::read::checkpoint::inflate;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::ops::Range;

use compact_str::CompactString;

use crate::error::TorchError;

/// Most entries a central directory may declare.
pub const MAX_ENTRIES: u64 = 1 << 20;

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;

/// One entry of the central directory, with its data located in the file:
/// 64 bytes (a 50,000-record directory is held whole while a checkpoint's
/// objects are walked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    /// The full name as written (lossy UTF-8); up to 24 bytes held inline
    /// (`archive/data/123`), without an allocation of its own.
    pub name: CompactString,
    /// Compression method (0 = stored, 8 = deflate).
    pub method: u16,
    /// General-purpose flags (bit 0 = encrypted, bit 3 = data descriptor).
    pub flags: u16,
    /// CRC-32 from the central directory (torch may write 0).
    pub crc32: u32,
    /// Bytes of (possibly compressed) data in the file.
    pub compressed_size: u64,
    /// Bytes after decompression.
    pub size: u64,
    /// File offset of the first data byte.
    pub data_offset: u64,
    /// Bytes from the local header to the data (30 + name + extra, so at
    /// most 131,100): see [`header_offset`](Self::header_offset).
    header_len: u32,
    /// The first bytes of the data (up to 4, as stored: fewer only if the
    /// record is shorter), read with the local header so that nothing else
    /// has to touch the record to see what it is.
    head: [u8; 4],
}

const _: () = assert!(std::mem::size_of::<ZipEntry>() == 64);

impl ZipEntry {
    /// The absolute byte range of the entry's data (compressed if the entry
    /// is compressed).
    pub fn data_range(&self) -> Range<u64> {
        // Checked at parse time: data_offset + compressed_size <= file length.
        self.data_offset..self.data_offset + self.compressed_size
    }

    /// The first bytes of the data as stored (up to 4: fewer only if the
    /// record is shorter), read without touching the record's mapped pages.
    pub fn head(&self) -> &[u8] {
        // Checked at parse time: the data lies in the file.
        &self.head[..self.compressed_size.min(4) as usize]
    }

    /// File offset of the local header.
    pub fn header_offset(&self) -> u64 {
        self.data_offset - u64::from(self.header_len)
    }

    /// True if the data is stored (method 0) and not encrypted, so the bytes
    /// in the file are the record.
    pub fn is_stored(&self) -> bool {
        self.method == 0 && self.flags & 1 == 0
    }

    /// The entry's bytes within `data` (the whole archive): borrowed when
    /// stored, inflated when deflated and its size is at most `max`; an
    /// error for an encrypted entry, another method, a size over `max` or a
    /// size that does not match the central directory.
    pub fn bytes<'d>(&self, data: &'d [u8], max: u64) -> Result<Cow<'d, [u8]>, TorchError> {
        let e = self;
        let r = e.data_range();
        // Checked at parse time against the file length; empty if `data` is
        // not the archive that was parsed.
        let raw = data.get(r.start as usize..r.end as usize).unwrap_or(&[]);
        if e.flags & 1 != 0 {
            return Err(TorchError::zip(
                e.header_offset(),
                Some(&e.name),
                "the record is encrypted",
            ));
        }
        match e.method {
            0 => Ok(Cow::Borrowed(raw)),
            8 => {
                if e.size > max {
                    return Err(TorchError::zip(
                        e.header_offset(),
                        Some(&e.name),
                        format!(
                            "the record inflates to {} bytes, more than the limit of {max}",
                            e.size
                        ),
                    ));
                }
                let out = inflate(raw, &e.name, e.data_offset, e.size)?;
                if out.len() as u64 != e.size {
                    return Err(TorchError::zip(
                        e.data_offset,
                        Some(&e.name),
                        format!(
                            "inflated to {} bytes but the central directory says {}",
                            out.len(),
                            e.size
                        ),
                    ));
                }
                Ok(Cow::Owned(out))
            }
            m => Err(TorchError::zip(
                e.header_offset(),
                Some(&e.name),
                format!(
                    "unsupported compression method {m} (torch reads stored and deflated records only)"
                ),
            )),
        }
    }
}

/// A parsed central directory.
#[derive(Debug, Clone)]
pub struct ZipArchive {
    entries: Vec<ZipEntry>,
    /// Index of the first entry of every name compared ASCII
    /// case-insensitively, hashed by [`name_hash`]: [`find`](Self::find)
    /// looks a name up in one probe (a binary search of 50,000 names cost
    /// 16 comparisons, each a cache miss), with no second copy of any name.
    by_name: hashbrown::HashTable<u32>,
    /// The hasher of `by_name`.
    hasher: foldhash::fast::RandomState,
    zip64: bool,
    cd_offset: u64,
}

/// Records at least this large have their local header and first bytes
/// read through the file rather than the map (see
/// [`netport_io::read_unmapped`]); smaller ones lie close together, where
/// reading through the map is cheaper.
const UNMAPPED_HEADER_RECORD: u64 = 1 << 20;

/// The first `n` bytes of a record's data (fewer if it is shorter), read
/// through the file when the record is large so that none of its mapped
/// pages becomes resident (see [`UNMAPPED_HEADER_RECORD`]).
pub(crate) fn record_head(record: &[u8], n: usize) -> Cow<'_, [u8]> {
    let head = &record[..record.len().min(n)];
    if record.len() as u64 >= UNMAPPED_HEADER_RECORD {
        netport_io::read_unmapped(head)
    } else {
        Cow::Borrowed(head)
    }
}

fn u16_at(data: &[u8], at: u64) -> Option<u16> {
    let at = usize::try_from(at).ok()?;
    Some(u16::from_le_bytes(
        data.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(data: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    Some(u32::from_le_bytes(
        data.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(data: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    Some(u64::from_le_bytes(
        data.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn bytes_at(data: &[u8], at: u64, len: u64) -> Option<&[u8]> {
    let at = usize::try_from(at).ok()?;
    let len = usize::try_from(len).ok()?;
    data.get(at..at.checked_add(len)?)
}

/// Where the end-of-central-directory record is, if anywhere.
/// The end-of-central-directory record, searched as every zip reader does
/// (the one search of netport, shared with its sniffer).
fn find_eocd(data: &[u8]) -> Option<u64> {
    let tail_start = data.len().saturating_sub(netport_io::sniff::TAIL);
    netport_io::sniff::end_record(&data[tail_start..]).map(|at| (tail_start + at) as u64)
}

/// Two entries whose names are equal compared case-insensitively (miniz, and
/// so torch, resolves a name to the first; Python's `zipfile` to the last: a
/// known way to show a scanner one pickle and torch another).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateName {
    /// Index of the later entry in the central directory.
    pub index: u64,
    /// Its name as written.
    pub name: String,
    /// Its local header offset.
    pub header_offset: u64,
    /// The first entry's name as written.
    pub first_name: String,
    /// The first entry's local header offset.
    pub first_header_offset: u64,
}

impl DuplicateName {
    /// The error [`ZipArchive::parse`] returns for it.
    pub fn to_error(&self) -> TorchError {
        TorchError::zip(self.header_offset, Some(&self.name), self.to_string())
    }
}

impl std::fmt::Display for DuplicateName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "duplicate record name: '{}' (entry #{}) and '{}' (local header at byte {}) are the same name compared case-insensitively; torch would read the first, Python's zipfile the last",
            self.name, self.index, self.first_name, self.first_header_offset
        )
    }
}

impl ZipArchive {
    /// Parse the central directory of `data` (a whole file) and locate every
    /// entry's data.
    pub fn parse(data: &[u8]) -> Result<Self, TorchError> {
        let (archive, duplicates) = Self::parse_keeping_duplicates(data)?;
        match duplicates.first() {
            Some(d) => Err(d.to_error()),
            None => Ok(archive),
        }
    }

    /// Like [`parse`](Self::parse), but an archive with duplicate names is
    /// returned with every entry (name lookups find the first, as torch's
    /// miniz does) and the duplicates listed: a scanner must look at both.
    pub fn parse_keeping_duplicates(data: &[u8]) -> Result<(Self, Vec<DuplicateName>), TorchError> {
        let file_len = data.len() as u64;
        let eocd = find_eocd(data)
            .ok_or_else(|| TorchError::zip(file_len, None, missing_eocd_reason(data)))?;
        let mut entries_total = u64::from(u16_at(data, eocd + 10).unwrap_or(0));
        let mut cd_size = u64::from(u32_at(data, eocd + 12).unwrap_or(0));
        let mut cd_offset = u64::from(u32_at(data, eocd + 16).unwrap_or(0));
        let mut zip64 = false;
        if eocd >= 20 && u32_at(data, eocd - 20) == Some(ZIP64_LOCATOR_SIG) {
            let loc = eocd - 20;
            let z_off = u64_at(data, loc + 8).unwrap_or(u64::MAX);
            if z_off.checked_add(56).is_none_or(|end| end > loc) {
                return Err(TorchError::zip(
                    loc,
                    None,
                    format!(
                        "the ZIP64 locator points to a ZIP64 end record at byte {z_off}, which does not fit before the locator"
                    ),
                ));
            }
            if u32_at(data, z_off) != Some(ZIP64_EOCD_SIG) {
                return Err(TorchError::zip(
                    z_off,
                    None,
                    "the ZIP64 locator points here but there is no ZIP64 end-of-central-directory signature",
                ));
            }
            entries_total = u64_at(data, z_off + 32).unwrap_or(0);
            cd_size = u64_at(data, z_off + 40).unwrap_or(0);
            cd_offset = u64_at(data, z_off + 48).unwrap_or(0);
            zip64 = true;
        } else if entries_total == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
            return Err(TorchError::zip(
                eocd,
                None,
                "the end record says ZIP64 but the ZIP64 locator is missing",
            ));
        }
        let cd_end = cd_offset.saturating_add(cd_size);
        if cd_end > eocd {
            return Err(TorchError::zip(
                eocd,
                None,
                format!(
                    "the central directory ({cd_size} bytes at byte {cd_offset}) does not end before the end record at byte {eocd}; the file has {file_len} bytes"
                ),
            ));
        }
        if entries_total > MAX_ENTRIES || entries_total > cd_size / 46 {
            return Err(TorchError::zip(
                eocd,
                None,
                format!(
                    "the end record declares {entries_total} entries, which do not fit in a central directory of {cd_size} bytes (limit {MAX_ENTRIES})"
                ),
            ));
        }
        if entries_total == 0 {
            return Err(TorchError::zip(
                eocd,
                None,
                "the archive does not contain any files",
            ));
        }
        let mut entries = Vec::with_capacity(entries_total as usize);
        let mut locals = LocalHeaders::default();
        let mut pos = cd_offset;
        for i in 0..entries_total {
            let entry = parse_central(data, pos, cd_end, i, &mut locals)?;
            pos = entry.1;
            entries.push(entry.0);
        }
        // Every name is copied out: the directory's pages need not stay
        // resident (50,000 records make a 3 MB directory).
        if let Some(cd) = bytes_at(data, cd_offset, cd_end - cd_offset) {
            netport_io::release(cd);
        }
        // Entries go in in directory order, so the first of equal names is
        // the one indexed and the duplicates come out in order.
        let hasher = foldhash::fast::RandomState::default();
        let mut by_name = hashbrown::HashTable::with_capacity(entries.len());
        let mut duplicates = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let slot = by_name.entry(
                name_hash(&hasher, &e.name),
                |&j: &u32| cmp_names(&entries[j as usize].name, &e.name).is_eq(),
                |&j| name_hash(&hasher, &entries[j as usize].name),
            );
            match slot {
                hashbrown::hash_table::Entry::Occupied(first) => {
                    let first = &entries[*first.get() as usize];
                    duplicates.push(DuplicateName {
                        index: i as u64,
                        name: e.name.to_string(),
                        header_offset: e.header_offset(),
                        first_name: first.name.to_string(),
                        first_header_offset: first.header_offset(),
                    });
                }
                hashbrown::hash_table::Entry::Vacant(v) => {
                    // entries_total <= MAX_ENTRIES < u32::MAX: the index fits.
                    v.insert(i as u32);
                }
            }
        }
        Ok((
            ZipArchive {
                entries,
                by_name,
                hasher,
                zip64,
                cd_offset,
            },
            duplicates,
        ))
    }

    /// Entries in central-directory order.
    pub fn entries(&self) -> &[ZipEntry] {
        &self.entries
    }

    /// The entries, in directory order, without the name index.
    pub fn into_entries(self) -> Vec<ZipEntry> {
        self.entries
    }

    /// Whether the archive has ZIP64 end records.
    pub fn is_zip64(&self) -> bool {
        self.zip64
    }

    /// File offset of the central directory.
    pub fn central_directory_offset(&self) -> u64 {
        self.cd_offset
    }

    /// Entry #0's name up to its first `/`, as torch's reader computes the
    /// archive name; `None` if entry #0 has no `/`.
    pub fn archive_name(&self) -> Option<&str> {
        let first = self.entries.first()?;
        first.name.split_once('/').map(|(p, _)| p)
    }

    /// Require torch's layout: entry #0 is in a directory, and every entry is
    /// under that directory (case-sensitive, as `get_all_records` checks).
    /// Returns the archive name.
    pub fn check_prefix(&self) -> Result<&str, TorchError> {
        let first = self
            .entries
            .first()
            .ok_or_else(|| TorchError::zip(0, None, "the archive does not contain any files"))?;
        let Some(prefix) = self.archive_name() else {
            return Err(TorchError::zip(
                first.header_offset(),
                Some(&first.name),
                format!(
                    "file in archive is not in a subdirectory: {} (torch takes the archive name from the first entry)",
                    first.name
                ),
            ));
        };
        for e in &self.entries {
            let ok = e.name.len() > prefix.len()
                && e.name.starts_with(prefix)
                && e.name.as_bytes()[prefix.len()] == b'/';
            if !ok {
                return Err(TorchError::zip(
                    e.header_offset(),
                    Some(&e.name),
                    format!(
                        "file in archive is not in a subdirectory {prefix}/: {} (torch requires every record under the archive name taken from entry #0)",
                        e.name
                    ),
                ));
            }
        }
        Ok(prefix)
    }

    /// The entry with this full name, compared ASCII case-insensitively (as
    /// miniz looks records up).
    pub fn find(&self, name: &str) -> Option<&ZipEntry> {
        let &i = self
            .by_name
            .find(name_hash(&self.hasher, name), |&i: &u32| {
                cmp_names(&self.entries[i as usize].name, name).is_eq()
            })?;
        self.entries.get(i as usize)
    }
}

/// The hash of a name as [`cmp_names`] compares it (ASCII letters folded to
/// lower case), computed a piece at a time without a lower-cased copy.
fn name_hash(state: &foldhash::fast::RandomState, name: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = state.build_hasher();
    let mut piece = [0u8; 64];
    for chunk in name.as_bytes().chunks(piece.len()) {
        let lower = &mut piece[..chunk.len()];
        lower.copy_from_slice(chunk);
        lower.make_ascii_lowercase();
        h.write(lower);
    }
    h.finish()
}

/// Names compared as miniz looks records up: ASCII case-insensitively.
fn cmp_names(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // Names of one archive share long prefixes (`archive/data/`): skip the
    // bytes that are equal as written before comparing letters by case.
    let same = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[same..], &b[same..]);
    for (x, y) in a.iter().zip(b) {
        match x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

/// Reads local headers through the file (`pread`), never the map, a window
/// at a time: the local headers of a checkpoint of many small tensors lie
/// between all of its data, so reading them through the map would make the
/// whole file resident (and a large record's header would pull the page
/// cache's large folio around it into the process; see
/// [`netport_io::read_unmapped`]). Headers in file order, as every writer
/// puts them, are served from windows that grow to [`Self::MAX`]; a header
/// out of order costs one small read.
#[derive(Default)]
struct LocalHeaders<'d> {
    /// File offset of the window and its bytes: borrowed from the data, or
    /// (`None`) read into `buf`.
    window: Option<(u64, Option<&'d [u8]>)>,
    /// The window's bytes when read: one buffer for every window (a
    /// 50,000-record file reads ~100 of them).
    buf: Vec<u8>,
    /// Length of the next window.
    next_len: u64,
}

impl<'d> LocalHeaders<'d> {
    /// Smallest window: one page, enough for any local header of a
    /// name under 4,000 bytes.
    const MIN: u64 = 4 << 10;
    /// Largest window.
    const MAX: u64 = 1 << 20;

    /// The bytes `[at, at + len)` of `data`, fewer at the end of the file.
    fn get(&mut self, data: &'d [u8], at: u64, len: u64) -> &[u8] {
        let file_len = data.len() as u64;
        let end = at.saturating_add(len).min(file_len);
        let window_len = |w: &Option<&[u8]>, buf: &[u8]| w.unwrap_or(buf).len() as u64;
        let hit = matches!(&self.window, Some((start, w)) if at >= *start && end <= start + window_len(w, &self.buf));
        if !hit {
            // In order (just past the window): read ahead further.
            let sequential = matches!(&self.window, Some((start, w)) if at >= *start && at < start + 2 * window_len(w, &self.buf));
            self.next_len = if sequential {
                (self.next_len * 2).min(Self::MAX)
            } else {
                Self::MIN
            };
            let wend = at.saturating_add(self.next_len.max(len)).min(file_len);
            let raw = bytes_at(data, at, wend.saturating_sub(at)).unwrap_or(&[]);
            let read = netport_io::read_unmapped_into(raw, &mut self.buf);
            self.window = Some((at, (!read).then_some(raw)));
        }
        match &self.window {
            Some((start, w)) => {
                let from = (at - start) as usize;
                w.unwrap_or(&self.buf)
                    .get(from..(end - start) as usize)
                    .unwrap_or(&[])
            }
            None => &[],
        }
    }
}

/// The record whose local header is at byte 0 of `data` (where torch puts
/// `data.pkl`), read from that header alone: its name and the offset of its
/// first data byte, when it is stored (method 0, not encrypted). A guess to
/// start on before the central directory is read; [`ZipArchive::parse`]
/// is the authority, and callers check the guess against its entry.
pub(crate) fn first_stored_record(data: &[u8]) -> Option<(&str, u64)> {
    if u32_at(data, 0)? != LOCAL_SIG {
        return None;
    }
    let flags = u16_at(data, 6)?;
    let method = u16_at(data, 8)?;
    if method != 0 || flags & 1 != 0 {
        return None;
    }
    let nlen = u64::from(u16_at(data, 26)?);
    let xlen = u64::from(u16_at(data, 28)?);
    let name = std::str::from_utf8(bytes_at(data, 30, nlen)?).ok()?;
    let start = 30 + nlen + xlen;
    (start <= data.len() as u64).then_some((name, start))
}

/// Parse the central header at `pos` (entry number `index`), then its local
/// header. Returns the entry and the position of the next central header.
fn parse_central<'d>(
    data: &'d [u8],
    pos: u64,
    cd_end: u64,
    index: u64,
    locals: &mut LocalHeaders<'d>,
) -> Result<(ZipEntry, u64), TorchError> {
    let file_len = data.len() as u64;
    let err = |at: u64, name: Option<&str>, reason: String| TorchError::zip(at, name, reason);
    if pos.checked_add(46).is_none_or(|e| e > cd_end) || u32_at(data, pos) != Some(CENTRAL_SIG) {
        return Err(err(
            pos,
            None,
            format!(
                "central directory entry #{index} is missing or truncated (no PK\\x01\\x02 header here)"
            ),
        ));
    }
    let flags = u16_at(data, pos + 8).unwrap_or(0);
    let method = u16_at(data, pos + 10).unwrap_or(0);
    let crc32 = u32_at(data, pos + 16).unwrap_or(0);
    let mut csize = u64::from(u32_at(data, pos + 20).unwrap_or(0));
    let mut usize_ = u64::from(u32_at(data, pos + 24).unwrap_or(0));
    let nlen = u64::from(u16_at(data, pos + 28).unwrap_or(0));
    let xlen = u64::from(u16_at(data, pos + 30).unwrap_or(0));
    let clen = u64::from(u16_at(data, pos + 32).unwrap_or(0));
    let mut lho = u64::from(u32_at(data, pos + 42).unwrap_or(0));
    let next = pos + 46 + nlen + xlen + clen;
    if next > cd_end {
        return Err(err(
            pos,
            None,
            format!(
                "central directory entry #{index} runs past the end of the central directory at byte {cd_end}"
            ),
        ));
    }
    let name_bytes = bytes_at(data, pos + 46, nlen).unwrap_or(&[]);
    let name = CompactString::from_utf8_lossy(name_bytes);
    // ZIP64 extra: fields present only for the values that are 0xFFFFFFFF,
    // in the order usize, csize, lho.
    let extra = bytes_at(data, pos + 46 + nlen, xlen).unwrap_or(&[]);
    let needs = [
        usize_ == 0xFFFF_FFFF,
        csize == 0xFFFF_FFFF,
        lho == 0xFFFF_FFFF,
    ];
    if needs.iter().any(|&n| n) {
        let z = find_extra(extra, 0x0001).ok_or_else(|| {
            err(
                pos,
                Some(&name),
                "a size or offset is 0xFFFFFFFF but the entry has no ZIP64 extra field".into(),
            )
        })?;
        let mut at = 0usize;
        let mut take = |what: &str| -> Result<u64, TorchError> {
            let v = z
                .get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                .ok_or_else(|| {
                    err(
                        pos,
                        Some(&name),
                        format!("the ZIP64 extra field is too short for the {what}"),
                    )
                })?;
            at += 8;
            Ok(v)
        };
        if needs[0] {
            usize_ = take("uncompressed size")?;
        }
        if needs[1] {
            csize = take("compressed size")?;
        }
        if needs[2] {
            lho = take("local header offset")?;
        }
    }
    if method == 0 && csize != usize_ {
        return Err(err(
            pos,
            Some(&name),
            format!("stored entry has compressed size {csize} but uncompressed size {usize_}"),
        ));
    }
    // Local header, read through the file (see LocalHeaders).
    let local: &[u8] = match lho.checked_add(30).filter(|e| *e <= file_len) {
        Some(_) => locals.get(data, lho, 30 + name_bytes.len() as u64),
        None => &[],
    };
    if u32_at(local, 0) != Some(LOCAL_SIG) {
        return Err(err(
            lho,
            Some(&name),
            format!(
                "no local header (PK\\x03\\x04) at byte {lho}, where the central directory says it is"
            ),
        ));
    }
    let l_flags = u16_at(local, 6).unwrap_or(0);
    let l_method = u16_at(local, 8).unwrap_or(0);
    let l_csize = u32_at(local, 18).unwrap_or(0);
    let l_nlen = u64::from(u16_at(local, 26).unwrap_or(0));
    let l_xlen = u64::from(u16_at(local, 28).unwrap_or(0));
    let l_name = bytes_at(local, 30, l_nlen)
        .or_else(|| bytes_at(data, lho + 30, l_nlen))
        .ok_or_else(|| {
            err(
                lho,
                Some(&name),
                "the local header's name runs past the end of the file".into(),
            )
        })?;
    if l_name != name_bytes {
        return Err(err(
            lho,
            Some(&name),
            format!(
                "the local header names '{}' but the central directory names '{name}'",
                String::from_utf8_lossy(l_name)
            ),
        ));
    }
    if l_method != method {
        return Err(err(
            lho,
            Some(&name),
            format!(
                "the local header says method {l_method} but the central directory says {method}"
            ),
        ));
    }
    if l_flags & 8 == 0
        && l_csize != 0xFFFF_FFFF
        && csize < 0xFFFF_FFFF
        && u64::from(l_csize) != csize
    {
        return Err(err(
            lho,
            Some(&name),
            format!(
                "the local header says {l_csize} compressed bytes but the central directory says {csize}"
            ),
        ));
    }
    let data_offset = lho + 30 + l_nlen + l_xlen;
    if data_offset.checked_add(csize).is_none_or(|e| e > file_len) {
        return Err(err(
            data_offset,
            Some(&name),
            format!(
                "the data ({csize} bytes from byte {data_offset}) runs past the end of the file ({file_len} bytes)"
            ),
        ));
    }
    let mut head = [0; 4];
    let got = locals.get(data, data_offset, csize.min(4));
    head[..got.len()].copy_from_slice(got);
    // 30 + two u16 lengths: fits.
    let header_len = (30 + l_nlen + l_xlen) as u32;
    Ok((
        ZipEntry {
            name,
            method,
            flags,
            crc32,
            compressed_size: csize,
            size: usize_,
            data_offset,
            header_len,
            head,
        },
        next,
    ))
}

fn find_extra(mut extra: &[u8], id: u16) -> Option<&[u8]> {
    while extra.len() >= 4 {
        let tag = u16::from_le_bytes([extra[0], extra[1]]);
        let len = usize::from(u16::from_le_bytes([extra[2], extra[3]]));
        let body = extra.get(4..4 + len)?;
        if tag == id {
            return Some(body);
        }
        extra = &extra[4 + len..];
    }
    None
}

/// Explain a zip whose end-of-central-directory record is missing: how many
/// bytes there are and which record the file ends in, found by walking the
/// local headers (`PK\x03\x04` with a plausible name) from the start.
pub(crate) fn missing_eocd_reason(data: &[u8]) -> String {
    let len = data.len();
    let mut last: Option<(usize, String)> = None;
    let mut count = 0usize;
    let mut pos = 0usize;
    let sig = LOCAL_SIG.to_le_bytes();
    while pos + 30 <= len {
        if data[pos..pos + 4] == sig {
            let nlen = usize::from(u16::from_le_bytes([data[pos + 26], data[pos + 27]]));
            if let Some(name) = data.get(pos + 30..pos + 30 + nlen) {
                let plausible = nlen > 0
                    && name.iter().all(|&b| (0x20..0x7f).contains(&b))
                    && last
                        .as_ref()
                        .is_none_or(|(_, first)| prefix_of(first) == prefix_of_bytes(name));
                if plausible {
                    count += 1;
                    last = Some((pos, String::from_utf8_lossy(name).into_owned()));
                    pos += 30 + nlen;
                    continue;
                }
            }
        }
        pos += 1;
    }
    let central = last.as_ref().and_then(|(at, _)| {
        data[*at..]
            .windows(4)
            .position(|w| w == CENTRAL_SIG.to_le_bytes())
            .map(|p| at + p)
    });
    match (last, central) {
        (Some(_), Some(cd)) => format!(
            "the end-of-central-directory record is missing: the file has {len} bytes and ends inside the central directory (which starts at byte {cd}, after {count} local headers); the file was probably cut short while being written or copied"
        ),
        (Some((at, name)), None) => format!(
            "the end-of-central-directory record is missing: the file has {len} bytes and ends inside {name} (the last of {count} local headers, at byte {at}); the file was probably cut short while being written or copied"
        ),
        (None, _) => format!(
            "the end-of-central-directory record is missing: the file has {len} bytes and no complete local header"
        ),
    }
}

fn prefix_of(name: &str) -> &[u8] {
    prefix_of_bytes(name.as_bytes())
}

fn prefix_of_bytes(name: &[u8]) -> &[u8] {
    match name.iter().position(|&b| b == b'/') {
        Some(i) => &name[..i],
        None => name,
    }
}
