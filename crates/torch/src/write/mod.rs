//! Writing checkpoints the way `torch.save` does, and the module tree of
//! everything that writes: [`relocate`] (map-location), [`fix`]
//! (weights_only compatibility), [`rewrite`] + [`edit`] (state-dict
//! rewrites), [`state_dict`] (the state-dict pickle), and `pickle_edit`
//! (op-by-op pickle edits shared by relocate and the legacy writer). They
//! read through [`crate::read`]; nothing in [`crate::read`] imports them.
//!
//! - [`ZipWriter`]: the zip container exactly as torch's `PyTorchStreamWriter`
//!   (miniz) lays it out (docs/formats/pytorch.md, 'Zip layout'): stored entries, local
//!   headers with zero sizes and flags `0x0808`, data aligned to 64 bytes by
//!   the `FB` + `Z…` extra field, data descriptors (24 bytes when ZIP64),
//!   ZIP64 extras as torch writes them, ZIP64 end records always.
//! - [`ZipCheckpoint`]: `data.pkl` + storages, written with torch.save's
//!   record order (`data.pkl, .format_version, .storage_alignment, byteorder,
//!   data/<key>…, version, .data/serialization_id`).
//! - [`LegacyCheckpoint`]: the pre-1.6 stacked-pickles format (docs/formats/pytorch.md, 'Legacy stacked pickles').
//! - [`rewrite_zip_to`]: copy an existing zip checkpoint record by record,
//!   replacing some records (`data.pkl`, `constants.pkl`) and copying every
//!   other record's bytes unchanged (compressed ones stay compressed).
//! - [`write_atomic`]: [`netport_io::AtomicFile`] (temporary file in the
//!   output directory, renamed into place, not fsynced);
//!   refuses to overwrite the input unless [`WriteOptions::in_place`].
//!
//! Tensor bytes are never decoded or held: they are slices of the source's
//! memory map, written in chunks while their CRC-32 is computed.
//!
//! `.data/serialization_id` is `%020u` of a hash of the record names (the
//! iteration order of a C++ `unordered_set`, not reproduced here) followed by
//! `%020u` of the CRC-32s combined in write order (reproduced). When the
//! record names are those of a source file, its name half is reused, so a
//! rewritten file carries the id torch would have written.

pub mod edit;
pub mod fix;
pub(crate) mod pickle_edit;
pub mod relocate;
pub mod report;
pub mod rewrite;
pub mod state_dict;

pub use report::ConvertReport;
pub use state_dict::StateDictPickle;

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use netport_io::COPY_STEP;

use crate::error::TorchError;
use crate::read::checkpoint::Checkpoint;
use crate::read::detect::Format;
use crate::read::zip::ZipArchive;
use crate::write::pickle_edit::{Item, analyze, apply_edits};

// ---------------------------------------------------------------------------
// CRC-32 (IEEE, as zip): crc32fast (SIMD where the processor has it).

/// Continue a CRC-32 (`crc` = 0 to start).
pub fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(crc);
    h.update(data);
    h.finalize()
}

/// CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32_update(0, data)
}

/// `c10::hash_combine`.
fn hash_combine(seed: u64, value: u64) -> u64 {
    seed ^ value
        .wrapping_add(0x9e37_79b9)
        .wrapping_add(seed << 6)
        .wrapping_add(seed >> 2)
}

/// Write `data` in chunks; pages of a mapped source are released once
/// written, so memory stays flat (see the `mapped` module).
pub fn copy_chunked<W: Write + ?Sized>(w: &mut W, data: &[u8]) -> io::Result<()> {
    for c in netport_io::chunks(data) {
        w.write_all(c)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The zip container.

/// The archive name torch gives a file written to `path`: the file name
/// without its last extension if ASCII and non-empty, else `archive`.
pub fn archive_name_for(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = match name.rfind('.') {
        Some(i) => &name[..i],
        None => name,
    };
    if stem.is_empty() || !stem.is_ascii() {
        "archive".to_owned()
    } else {
        stem.to_owned()
    }
}

struct CentralEntry {
    name: Vec<u8>,
    method: u16,
    crc: u32,
    csize: u64,
    size: u64,
    lho: u64,
}

/// A zip writer that lays records out exactly as torch's miniz writer.
pub struct ZipWriter<W: Write> {
    w: W,
    pos: u64,
    prefix: String,
    alignment: u64,
    entries: Vec<CentralEntry>,
    combined_crc: u64,
    /// Records (by index) whose phase did not fit in their own header.
    phase_misses: Vec<usize>,
    /// Records (by index, ascending) whose header gets [`PHASE_BUMP`] more
    /// padding, so that the record after them reaches its phase.
    bumps: Vec<usize>,
}

const U32_MAX: u64 = 0xFFFF_FFFF;

/// A record copied unchanged from this size on keeps its phase: its data
/// starts at the same offset modulo [`COPY_STEP`] (64 KiB) as in its
/// source, so that the kernel copies it in steps aligned in both files (the
/// copy of a 2 GiB checkpoint: 0.70 s out of step, 0.60 s in step, as `cp`;
/// see docs/performance.md, 'seventh part'). Torch's readers skip any
/// padding. The extra padding (under 64 KiB, paid once after a record whose
/// length changed, since the records after it are then in phase already)
/// is then at most 1/16 of the record.
const PHASE_MIN: u64 = 1 << 20;

/// The padding a header adds so that the next record reaches its phase when
/// its own header cannot: that happens when the phase is 1 to 32 bytes
/// (the `FB` field's 4 and a ZIP64 extra's up to 28) behind where the
/// header ends, and 64 more bytes before it close the gap (a multiple of
/// every alignment a phase is kept for).
const PHASE_BUMP: u64 = 64;

/// UTF-8 names, plus "sizes in a data descriptor" unless the record is empty.
fn flags_for(size: u64) -> u16 {
    if size == 0 { 0x0800 } else { 0x0808 }
}

impl<W: Write> ZipWriter<W> {
    /// Start an archive whose records live under `archive_name/`, with data
    /// aligned to `alignment` bytes (torch: 64).
    pub fn new(w: W, archive_name: &str, alignment: u64) -> Self {
        ZipWriter {
            w,
            pos: 0,
            prefix: format!("{archive_name}/"),
            alignment: alignment.max(1),
            entries: Vec::new(),
            combined_crc: 0,
            phase_misses: Vec::new(),
            bumps: Vec::new(),
        }
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.w.write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// The local header of a record; `phase` asks for data that starts at
    /// that offset modulo [`COPY_STEP`] (when it is a multiple of the
    /// alignment, which the data then keeps), else the data is aligned as
    /// torch aligns it.
    fn header(
        &mut self,
        name: &[u8],
        method: u16,
        size: u64,
        phase: Option<u64>,
    ) -> io::Result<()> {
        let lho = self.pos;
        let mut zip64 = Vec::new();
        if size >= U32_MAX || lho >= U32_MAX {
            let mut body = Vec::new();
            if size >= U32_MAX {
                body.extend_from_slice(&size.to_le_bytes());
                body.extend_from_slice(&0u64.to_le_bytes());
            }
            if lho >= U32_MAX {
                body.extend_from_slice(&lho.to_le_bytes());
            }
            zip64.extend_from_slice(&1u16.to_le_bytes());
            zip64.extend_from_slice(&(body.len() as u16).to_le_bytes());
            zip64.extend_from_slice(&body);
        }
        let start = lho + 30 + name.len() as u64 + 4 + zip64.len() as u64;
        let aligned = (self.alignment - start % self.alignment) % self.alignment;
        // The most padding the extra field holds: its length is a u16.
        let room = u16::MAX as u64 - 4 - zip64.len() as u64;
        let in_phase = phase
            .filter(|p| {
                COPY_STEP.is_multiple_of(self.alignment) && p.is_multiple_of(self.alignment)
            })
            .map(|p| (p % COPY_STEP + COPY_STEP - start % COPY_STEP) % COPY_STEP)
            .filter(|&pad| pad <= room);
        let index = self.entries.len();
        if phase.is_some() && in_phase.is_none() {
            self.phase_misses.push(index);
        }
        let bump = if in_phase.is_none() && self.bumps.binary_search(&index).is_ok() {
            PHASE_BUMP.max(self.alignment)
        } else {
            0
        };
        let pad = match in_phase {
            Some(pad) => pad,
            None if aligned + bump <= room => aligned + bump,
            None => aligned,
        } as usize;
        let mut h = Vec::with_capacity(30 + name.len() + zip64.len() + 4 + pad);
        h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        h.extend_from_slice(&(if method == 0 { 0u16 } else { 20 }).to_le_bytes());
        h.extend_from_slice(&flags_for(size).to_le_bytes());
        h.extend_from_slice(&method.to_le_bytes());
        h.extend_from_slice(&[0; 4 + 12]); // time, date, crc, csize, usize
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&((zip64.len() + 4 + pad) as u16).to_le_bytes());
        h.extend_from_slice(name);
        h.extend_from_slice(&zip64);
        h.extend_from_slice(b"FB");
        h.extend_from_slice(&(pad as u16).to_le_bytes());
        h.resize(h.len() + pad, b'Z');
        self.put(&h)
    }

    fn finish_entry(
        &mut self,
        name: Vec<u8>,
        method: u16,
        crc: u32,
        csize: u64,
        size: u64,
        lho: u64,
    ) -> io::Result<()> {
        if size == 0 && csize == 0 {
            // miniz writes empty records without a data descriptor (flags
            // 0x0800, all-zero header fields), so their CRC is not combined.
            self.entries.push(CentralEntry {
                name,
                method,
                crc,
                csize,
                size,
                lho,
            });
            return Ok(());
        }
        let mut d = Vec::with_capacity(24);
        d.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
        d.extend_from_slice(&crc.to_le_bytes());
        if size >= U32_MAX || lho >= U32_MAX {
            d.extend_from_slice(&csize.to_le_bytes());
            d.extend_from_slice(&size.to_le_bytes());
        } else {
            d.extend_from_slice(&(csize as u32).to_le_bytes());
            d.extend_from_slice(&(size as u32).to_le_bytes());
        }
        self.put(&d)?;
        self.combined_crc = hash_combine(self.combined_crc, crc as u64);
        self.entries.push(CentralEntry {
            name,
            method,
            crc,
            csize,
            size,
            lho,
        });
        Ok(())
    }

    fn full_name(&self, name: &str) -> io::Result<Vec<u8>> {
        let full = format!("{}{name}", self.prefix);
        if full.len() > u16::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "record name too long",
            ));
        }
        Ok(full.into_bytes())
    }

    /// Add a stored record (name without the archive prefix), streaming
    /// `data` and computing its CRC-32.
    pub fn add_stored(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        let full = self.full_name(name)?;
        let lho = self.pos;
        let size = data.len() as u64;
        self.header(&full, 0, size, None)?;
        let mut crc = 0;
        for c in netport_io::chunks(data) {
            crc = crc32_update(crc, c);
            self.put(c)?;
        }
        self.finish_entry(full, 0, crc, size, size, lho)
    }

    /// Add a record whose (possibly compressed) bytes are copied as they are;
    /// `source_offset` is where they start in the file they come from, so
    /// that a large record keeps its phase ([`COPY_STEP`]).
    pub fn add_raw(
        &mut self,
        name: &str,
        method: u16,
        crc: u32,
        size: u64,
        raw: &[u8],
        source_offset: Option<u64>,
    ) -> io::Result<()> {
        let full = self.full_name(name)?;
        let lho = self.pos;
        let phase = source_offset.filter(|_| raw.len() as u64 >= PHASE_MIN);
        self.header(&full, method, size, phase)?;
        for c in netport_io::chunks(raw) {
            self.put(c)?;
        }
        self.finish_entry(full, method, crc, raw.len() as u64, size, lho)
    }

    /// The CRC half of `.data/serialization_id` for the records so far.
    pub fn serialization_crc_part(&self) -> String {
        format!("{:020}", self.combined_crc)
    }

    /// Write the central directory and the (ZIP64) end records; returns the
    /// stream and the total size.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        let cd_offset = self.pos;
        let entries = std::mem::take(&mut self.entries);
        for e in &entries {
            let big_size = e.size >= U32_MAX || e.csize >= U32_MAX;
            let big_lho = e.lho >= U32_MAX;
            let mut extra = Vec::new();
            if big_size || big_lho {
                let mut body = Vec::new();
                if big_size {
                    body.extend_from_slice(&e.size.to_le_bytes());
                    body.extend_from_slice(&e.csize.to_le_bytes());
                }
                if big_lho {
                    body.extend_from_slice(&e.lho.to_le_bytes());
                }
                extra.extend_from_slice(&1u16.to_le_bytes());
                extra.extend_from_slice(&(body.len() as u16).to_le_bytes());
                extra.extend_from_slice(&body);
            }
            let mut h = Vec::with_capacity(46 + e.name.len() + extra.len());
            h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            h.extend_from_slice(&(if e.method == 0 { 0u16 } else { 20 }).to_le_bytes());
            h.extend_from_slice(&flags_for(e.size.max(e.csize)).to_le_bytes());
            h.extend_from_slice(&e.method.to_le_bytes());
            h.extend_from_slice(&[0; 4]);
            h.extend_from_slice(&e.crc.to_le_bytes());
            let (cs, us) = if big_size {
                (U32_MAX as u32, U32_MAX as u32)
            } else {
                (e.csize as u32, e.size as u32)
            };
            h.extend_from_slice(&cs.to_le_bytes());
            h.extend_from_slice(&us.to_le_bytes());
            h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            h.extend_from_slice(&[0; 2 + 2 + 2 + 4]);
            let lho = if big_lho {
                U32_MAX as u32
            } else {
                e.lho as u32
            };
            h.extend_from_slice(&lho.to_le_bytes());
            h.extend_from_slice(&e.name);
            h.extend_from_slice(&extra);
            self.put(&h)?;
        }
        let cd_size = self.pos - cd_offset;
        let n = entries.len() as u64;
        let eocd64 = self.pos;
        let mut t = Vec::with_capacity(56 + 20 + 22);
        t.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
        t.extend_from_slice(&44u64.to_le_bytes());
        t.extend_from_slice(&0x031Eu16.to_le_bytes());
        t.extend_from_slice(&0x2Du16.to_le_bytes());
        t.extend_from_slice(&[0; 8]);
        t.extend_from_slice(&n.to_le_bytes());
        t.extend_from_slice(&n.to_le_bytes());
        t.extend_from_slice(&cd_size.to_le_bytes());
        t.extend_from_slice(&cd_offset.to_le_bytes());
        t.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(&eocd64.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        t.extend_from_slice(&[0; 4]);
        let n16 = n.min(0xFFFF) as u16;
        t.extend_from_slice(&n16.to_le_bytes());
        t.extend_from_slice(&n16.to_le_bytes());
        t.extend_from_slice(&(cd_size.min(U32_MAX) as u32).to_le_bytes());
        t.extend_from_slice(&(cd_offset.min(U32_MAX) as u32).to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        self.put(&t)?;
        self.w.flush()?;
        Ok((self.w, self.pos))
    }
}

// ---------------------------------------------------------------------------
// torch.save-style zip checkpoints.

/// One storage to write: its key (record `data/<key>`) and its bytes
/// (typically a slice of the source's memory map).
#[derive(Debug, Clone)]
pub struct StorageBytes<'a> {
    /// Persistent-id key.
    pub key: String,
    /// Elements of the storage dtype (used by the legacy format).
    pub numel: u64,
    /// The raw bytes, copied as they are.
    pub bytes: &'a [u8],
}

/// A checkpoint to write in torch.save's zip layout.
#[derive(Debug, Clone)]
pub struct ZipCheckpoint<'a> {
    /// The `data.pkl` bytes (protocol 2 for `weights_only` loading; see
    /// [`pickle_value`] to build one from a value tree).
    pub data_pkl: Cow<'a, [u8]>,
    /// Storages in record order (torch.save: numeric key order).
    pub storages: Vec<StorageBytes<'a>>,
    /// The `byteorder` record (`little` or `big`; the storages' byte order).
    pub byteorder: String,
    /// The name half (20 digits) of `.data/serialization_id`, when known
    /// (from a source file with the same record names).
    pub serialization_name_hash: Option<String>,
}

/// Serialize a value tree as protocol 2 with `netport_pickle`'s writer.
pub fn pickle_value(
    arena: &netport_pickle::Arena,
    root: netport_pickle::ValueId,
) -> Result<Vec<u8>, TorchError> {
    netport_pickle::write(arena, root).map_err(|source| TorchError::Repickle {
        pickle: "data.pkl".into(),
        source,
    })
}

fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    }
}

fn storages_of(ckpt: &Checkpoint) -> Result<Vec<StorageBytes<'_>>, TorchError> {
    let data = ckpt.bytes();
    let mut out = Vec::new();
    for s in ckpt.storages() {
        if s.compressed {
            return Err(TorchError::Unsupported {
                what: format!("storage '{}' stored compressed", s.key),
                reason: "tensor bytes are copied in place; re-save it uncompressed".into(),
            });
        }
        if out.iter().any(|o: &StorageBytes| *o.key == *s.key) {
            continue;
        }
        let r = s.byte_range.start as usize..s.byte_range.end as usize;
        out.push(StorageBytes {
            key: s.key.to_string(),
            numel: s.numel,
            bytes: data.get(r).unwrap_or(&[]),
        });
    }
    out.sort_by(|a, b| key_order(&a.key, &b.key));
    Ok(out)
}

/// Rewrite persistent ids between the zip 5-tuple and the legacy 6-tuple
/// `(…, view_metadata=None)` at the opcode level.
pub fn convert_pids(pickle: &[u8], name: &str, to_legacy: bool) -> Result<Vec<u8>, TorchError> {
    let a = analyze(pickle, name)?;
    let mut edits: HashMap<u64, Vec<u8>> = HashMap::new();
    for pid in &a.pids {
        let t = &pid.tuple;
        match (to_legacy, t.items.len()) {
            (true, 5) => {
                if let Item::Global(g) = &t.items[1]
                    && g.1 == "UntypedStorage"
                {
                    return Err(TorchError::Unsupported {
                        what: format!(
                            "{name}: an untyped storage (persistent id at byte {}) in the legacy format",
                            t.op
                        ),
                        reason: "torch's legacy loader needs a typed storage (its dtype); dtypes such as uint16, float8 and bits are zip-only".into(),
                    });
                }
                if t.opcode != netport_pickle::Opcode::TUPLE {
                    return Err(TorchError::refused(format!(
                        "{name}: persistent id at byte {} is not built with MARK…TUPLE",
                        t.op
                    )));
                }
                edits.insert(t.op, b"Nt".to_vec());
            }
            (false, 6) => match &t.items[5] {
                Item::None(site) => {
                    edits.insert(*site, Vec::new());
                }
                _ => {
                    return Err(TorchError::Unsupported {
                        what: format!(
                            "{name}: a legacy storage view (persistent id at byte {})",
                            t.op
                        ),
                        reason: "views of storages (torch < 0.4) have no zip equivalent".into(),
                    });
                }
            },
            _ => {}
        }
    }
    if edits.is_empty() {
        return Ok(pickle.to_vec());
    }
    let mut out = apply_edits(pickle, name, &edits)?;
    out.extend_from_slice(&pickle[(a.end as usize).min(pickle.len())..]);
    Ok(out)
}

impl<'a> ZipCheckpoint<'a> {
    /// The `data.pkl` and storages of a zip or legacy checkpoint (legacy
    /// persistent ids are converted to the zip form). Pickles of protocol
    /// above 2 are re-pickled as protocol 2.
    pub fn from_checkpoint(ckpt: &'a Checkpoint) -> Result<Self, TorchError> {
        let (name, legacy) = match ckpt.format() {
            Format::Zip => ("data.pkl", false),
            Format::Legacy => ("legacy pickle #4", true),
            other => {
                return Err(TorchError::Unsupported {
                    what: format!("writing a {other} as a torch.save checkpoint"),
                    reason: "use rewrite_zip_to to copy it record by record".into(),
                });
            }
        };
        let p = ckpt
            .pickles()
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| TorchError::refused(format!("no {name}")))?;
        let mut pkl = ckpt.pickle_bytes(p)?;
        if p.protocol.is_some_and(|v| v > 2) {
            let loaded = netport_pickle::load(&pkl).map_err(|source| TorchError::Repickle {
                pickle: name.into(),
                source,
            })?;
            pkl = Cow::Owned(pickle_value(&loaded.arena, loaded.root)?);
        }
        if legacy {
            pkl = Cow::Owned(convert_pids(&pkl, name, false)?);
        }
        let names_hash = if legacy {
            None
        } else {
            ckpt.info()
                .serialization_id
                .as_deref()
                .filter(|s| s.len() == 40 && s.bytes().all(|b| b.is_ascii_digit()))
                .map(|s| s[..20].to_owned())
        };
        Ok(ZipCheckpoint {
            data_pkl: pkl,
            storages: storages_of(ckpt)?,
            byteorder: ckpt
                .info()
                .byteorder_record
                .clone()
                .unwrap_or_else(|| "little".into()),
            serialization_name_hash: names_hash,
        })
    }

    /// Write the archive (torch.save's record order) to `w`.
    pub fn write_to<W: Write>(&self, w: W, archive_name: &str) -> io::Result<(W, u64)> {
        let keys: Vec<&str> = self.storages.iter().map(|s| s.key.as_str()).collect();
        write_zip_records(
            w,
            archive_name,
            &self.data_pkl,
            &self.byteorder,
            self.serialization_name_hash.as_deref(),
            &keys,
            |i| {
                Ok::<_, io::Error>(StorageRecord {
                    bytes: Cow::Borrowed(self.storages[i].bytes),
                    copied: None,
                })
            },
        )
    }
}

/// A storage's bytes for [`write_zip_records`].
pub(crate) struct StorageRecord<'s> {
    pub bytes: Cow<'s, [u8]>,
    /// When the bytes are a whole stored record of the source, unchanged:
    /// its CRC-32 (from the central directory) and where its data starts.
    /// They are then copied as [`rewrite_zip_to`] copies records: not read
    /// for a CRC, and in phase with the source ([`COPY_STEP`]).
    pub copied: Option<(u32, u64)>,
}

/// torch.save's zip layout with the storages fetched one at a time
/// (`fetch(i)` gives the bytes of `keys[i]`), so converted storages need
/// not all be held in memory. Shared by [`ZipCheckpoint::write_to`] and
/// [`crate::write::rewrite`].
pub(crate) fn write_zip_records<'s, W: Write, E: From<io::Error>>(
    w: W,
    archive_name: &str,
    data_pkl: &[u8],
    byteorder: &str,
    serialization_name_hash: Option<&str>,
    keys: &[&str],
    mut fetch: impl FnMut(usize) -> Result<StorageRecord<'s>, E>,
) -> Result<(W, u64), E> {
    let mut z = ZipWriter::new(w, archive_name, 64);
    z.add_stored("data.pkl", data_pkl)?;
    z.add_stored(".format_version", b"1")?;
    z.add_stored(".storage_alignment", b"64")?;
    z.add_stored("byteorder", byteorder.as_bytes())?;
    for (i, key) in keys.iter().enumerate() {
        let record = fetch(i)?;
        let (name, bytes) = (format!("data/{key}"), &record.bytes);
        match record.copied {
            Some((crc, at)) => z.add_raw(&name, 0, crc, bytes.len() as u64, bytes, Some(at))?,
            None => z.add_stored(&name, bytes)?,
        }
    }
    z.add_stored("version", b"3\n")?;
    let names = serialization_name_hash
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:020}", name_hash_fallback(keys)));
    let id = format!("{names}{}", z.serialization_crc_part());
    z.add_stored(".data/serialization_id", id.as_bytes())?;
    Ok(z.finish()?)
}

/// A deterministic stand-in for the name half of the serialization id
/// (torch's depends on a C++ `unordered_set` iteration order).
fn name_hash_fallback(keys: &[&str]) -> u64 {
    let mut h = 0u64;
    for k in keys {
        h = hash_combine(h, crc32(k.as_bytes()) as u64);
    }
    h
}

// ---------------------------------------------------------------------------
// Legacy (pre-1.6) stacked pickles.

/// A checkpoint to write in the legacy stacked-pickles format.
#[derive(Debug, Clone)]
pub struct LegacyCheckpoint<'a> {
    /// Pickle #4 (the object; persistent ids are 6-tuples).
    pub object_pickle: Cow<'a, [u8]>,
    /// The storages (numel + little-endian bytes); written sorted by key as
    /// strings, like torch.
    pub storages: Vec<StorageBytes<'a>>,
}

const LEGACY_HEAD: &[u8] =
    b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e\x80\x02\x4d\xe9\x03\x2e";
const LEGACY_SYS_INFO: &[u8] = b"\x80\x02}q\x00(X\x10\x00\x00\x00protocol_versionq\x01M\xe9\x03X\r\x00\x00\x00little_endianq\x02\x88X\n\x00\x00\x00type_sizesq\x03}q\x04(X\x05\x00\x00\x00shortq\x05K\x02X\x03\x00\x00\x00intq\x06K\x04X\x04\x00\x00\x00longq\x07K\x04uu.";

/// CPython's protocol-2 pickle of a list of strings (memoized, APPENDS in
/// batches of 1000).
fn pickle_str_list(items: &[&str]) -> Vec<u8> {
    let mut out = b"\x80\x02]".to_vec();
    let mut memo = 0u64;
    let put = |out: &mut Vec<u8>, memo: &mut u64| {
        if *memo < 256 {
            out.extend_from_slice(&[b'q', *memo as u8]);
        } else {
            out.push(b'r');
            out.extend_from_slice(&(*memo as u32).to_le_bytes());
        }
        *memo += 1;
    };
    put(&mut out, &mut memo);
    for batch in items.chunks(1000) {
        if batch.len() > 1 {
            out.push(b'(');
        }
        for s in batch {
            out.push(b'X');
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            put(&mut out, &mut memo);
        }
        out.push(if batch.len() > 1 { b'e' } else { b'a' });
    }
    out.push(b'.');
    out
}

impl<'a> LegacyCheckpoint<'a> {
    /// From a zip or legacy checkpoint (zip persistent ids get their 6th
    /// element). Big-endian zip files are refused (legacy data is always
    /// little-endian).
    pub fn from_checkpoint(ckpt: &'a Checkpoint) -> Result<Self, TorchError> {
        let (name, legacy) = match ckpt.format() {
            Format::Zip => ("data.pkl", false),
            Format::Legacy => ("legacy pickle #4", true),
            other => {
                return Err(TorchError::Unsupported {
                    what: format!("writing a {other} in the legacy format"),
                    reason: "only torch.save checkpoints have a legacy form".into(),
                });
            }
        };
        if ckpt.info().byteorder == Some(netport_tensor::ByteOrder::Big) {
            return Err(TorchError::Unsupported {
                what: "a big-endian checkpoint in the legacy format".into(),
                reason: "legacy storages are always little-endian; byte swapping is not done here"
                    .into(),
            });
        }
        let p = ckpt
            .pickles()
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| TorchError::refused(format!("no {name}")))?;
        let mut pkl = ckpt.pickle_bytes(p)?;
        if p.protocol.is_some_and(|v| v > 2) {
            let loaded = netport_pickle::load(&pkl).map_err(|source| TorchError::Repickle {
                pickle: name.into(),
                source,
            })?;
            pkl = Cow::Owned(pickle_value(&loaded.arena, loaded.root)?);
        }
        if !legacy {
            pkl = Cow::Owned(convert_pids(&pkl, name, true)?);
        }
        Ok(LegacyCheckpoint {
            object_pickle: pkl,
            storages: storages_of(ckpt)?,
        })
    }

    /// Write the five pickles and the raw storage area.
    pub fn write_to<W: Write>(&self, w: W) -> io::Result<(W, u64)> {
        let storages: Vec<(&str, u64)> = self
            .storages
            .iter()
            .map(|s| (s.key.as_str(), s.numel))
            .collect();
        write_legacy_records(w, &self.object_pickle, &storages, |i| {
            Ok::<_, io::Error>(Cow::Borrowed(self.storages[i].bytes))
        })
    }
}

/// The legacy stacked pickles with the storages (`(key, numel)`) fetched one
/// at a time (`fetch(i)` for `storages[i]`); written sorted by key as
/// strings, like torch. Shared by [`LegacyCheckpoint::write_to`] and
/// [`crate::write::rewrite`].
pub(crate) fn write_legacy_records<'s, W: Write, E: From<io::Error>>(
    mut w: W,
    object_pickle: &[u8],
    storages: &[(&str, u64)],
    mut fetch: impl FnMut(usize) -> Result<Cow<'s, [u8]>, E>,
) -> Result<(W, u64), E> {
    let mut order: Vec<usize> = (0..storages.len()).collect();
    order.sort_by(|&a, &b| storages[a].0.cmp(storages[b].0));
    let keys: Vec<&str> = order.iter().map(|&i| storages[i].0).collect();
    let list = pickle_str_list(&keys);
    let mut n = 0u64;
    for part in [LEGACY_HEAD, LEGACY_SYS_INFO, object_pickle, &list] {
        w.write_all(part)?;
        n += part.len() as u64;
    }
    for i in order {
        let bytes = fetch(i)?;
        w.write_all(&storages[i].1.to_le_bytes())?;
        copy_chunked(&mut w, &bytes)?;
        n += 8 + bytes.len() as u64;
    }
    w.flush()?;
    Ok((w, n))
}

// ---------------------------------------------------------------------------
// Record-by-record rewriting.

/// Copy the zip checkpoint in `src` (parsed as `zip`) record by record into
/// `w`, with torch's layout: records named in `replacements` (names without
/// the archive prefix) get the new bytes (stored), every other record's
/// bytes are copied unchanged (compressed records stay compressed).
/// `archive_name` renames the prefix (default: the source's).
/// `.data/serialization_id` (40 digits, last record) gets its CRC half
/// recomputed, as torch would, so an unchanged file is reproduced exactly.
pub fn rewrite_zip_to<W: Write>(
    w: W,
    src: &[u8],
    zip: &ZipArchive,
    replacements: &HashMap<String, Vec<u8>>,
    archive_name: Option<&str>,
) -> Result<(W, u64), TorchError> {
    let prefix = zip.check_prefix()?.to_owned();
    for r in replacements.keys() {
        if !zip
            .entries()
            .iter()
            .any(|e| e.name == format!("{prefix}/{r}"))
        {
            return Err(TorchError::refused(format!(
                "replacement record '{r}' is not in the archive"
            )));
        }
    }
    let name = archive_name.unwrap_or(&prefix);
    let mut z = ZipWriter::new(w, name, 64);
    if zip.entries().iter().any(|e| e.compressed_size >= PHASE_MIN) {
        // Lay the archive out once into nothing (the copied records' bytes
        // are not read): a large record whose phase its own header cannot
        // reach gets it from more padding in the header before it.
        let dry = copy_records(
            ZipWriter::new(io::sink(), name, 64),
            src,
            zip,
            replacements,
            &prefix,
        )?;
        z.bumps = dry
            .phase_misses
            .iter()
            .filter_map(|&j| j.checked_sub(1))
            .collect();
    }
    Ok(copy_records(z, src, zip, replacements, &prefix)?.finish()?)
}

/// The records of [`rewrite_zip_to`], written into `z`.
fn copy_records<W: Write>(
    mut z: ZipWriter<W>,
    src: &[u8],
    zip: &ZipArchive,
    replacements: &HashMap<String, Vec<u8>>,
    prefix: &str,
) -> Result<ZipWriter<W>, TorchError> {
    let n = zip.entries().len();
    for (i, e) in zip.entries().iter().enumerate() {
        let rel = e
            .name
            .strip_prefix(&format!("{prefix}/"))
            .unwrap_or(&e.name)
            .to_owned();
        let raw = src
            .get(e.data_range().start as usize..e.data_range().end as usize)
            .ok_or_else(|| {
                TorchError::refused(format!("record '{}' is outside the file", e.name))
            })?;
        if let Some(new) = replacements.get(&rel) {
            z.add_stored(&rel, new)?;
        } else if rel == ".data/serialization_id"
            && i + 1 == n
            && e.is_stored()
            && raw.len() == 40
            && raw.iter().all(u8::is_ascii_digit)
        {
            let mut id = raw[..20].to_vec();
            id.extend_from_slice(z.serialization_crc_part().as_bytes());
            z.add_stored(&rel, &id)?;
        } else if e.flags & 1 != 0 {
            return Err(TorchError::Unsupported {
                what: format!("encrypted record '{}'", e.name),
                reason: "torch never writes encrypted records".into(),
            });
        } else {
            z.add_raw(
                &rel,
                e.method,
                e.crc32,
                e.size,
                raw,
                Some(e.data_range().start),
            )?;
        }
    }
    Ok(z)
}

// ---------------------------------------------------------------------------
// Atomic output files.

/// Where the output goes and what is allowed.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// The input file, which the output must not be unless `in_place`.
    pub input: Option<PathBuf>,
    /// Allow the output to replace the input.
    pub in_place: bool,
}

pub use netport_io::same_file;

impl WriteOptions {
    /// Refuse an output that is the input (unless in-place), or a directory.
    pub fn check_paths(&self, output: &Path) -> Result<(), TorchError> {
        if output.is_dir() {
            return Err(TorchError::refused(format!(
                "output '{}' is a directory",
                output.display()
            )));
        }
        if let Some(input) = &self.input
            && !self.in_place
            && same_file(input, output)
        {
            return Err(TorchError::refused(format!(
                "output '{}' is the input file; pass the in-place flag to replace it",
                output.display()
            )));
        }
        Ok(())
    }
}

/// Write `output` atomically with `f` ([`netport_io::AtomicFile`]: a
/// temporary file in the same folder renamed over `output`, not fsynced, as
/// cp and torch.save do not; mode 0666 less the umask). On any error the
/// temporary file is removed and `output` is untouched. Returns the size.
pub fn write_atomic<F>(output: &Path, options: &WriteOptions, f: F) -> Result<u64, TorchError>
where
    F: FnOnce(&mut BufWriter<netport_io::OutputFile>) -> Result<(), TorchError>,
{
    options.check_paths(output)?;
    // A write error from `f` (`?` on the writer) is named by the output.
    netport_io::write_with(output, f).map_err(|e| match e {
        TorchError::Write(source) => TorchError::Io {
            path: output.to_owned(),
            source,
        },
        e => e,
    })
}

/// Write a [`ZipCheckpoint`] to `output` (archive named after its stem).
pub fn write_zip_file(
    output: &Path,
    ckpt: &ZipCheckpoint,
    options: &WriteOptions,
) -> Result<u64, TorchError> {
    let name = archive_name_for(output);
    write_atomic(output, options, |w| {
        ckpt.write_to(w, &name)?;
        Ok(())
    })
}

/// Write a [`LegacyCheckpoint`] to `output`.
pub fn write_legacy_file(
    output: &Path,
    ckpt: &LegacyCheckpoint,
    options: &WriteOptions,
) -> Result<u64, TorchError> {
    write_atomic(output, options, |w| {
        ckpt.write_to(w)?;
        Ok(())
    })
}

/// Rewrite the zip checkpoint `ckpt` into `output`, replacing the named
/// records (see [`rewrite_zip_to`]).
pub fn rewrite_zip_file(
    output: &Path,
    ckpt: &Checkpoint,
    replacements: &HashMap<String, Vec<u8>>,
    options: &WriteOptions,
) -> Result<u64, TorchError> {
    let zip = ZipArchive::parse(ckpt.bytes())?;
    write_atomic(output, options, |w| {
        rewrite_zip_to(w, ckpt.bytes(), &zip, replacements, None)?;
        Ok(())
    })
}
