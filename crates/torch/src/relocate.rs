//! `map-location`: torch.load's `map_location`, applied once to the file.
//!
//! Every storage's location tag (element 3 of a `('storage', type, key,
//! location, numel[, view])` persistent id) is rewritten at the opcode level:
//! the pickle is copied op by op ([`netport_pickle::Ops`] gives each op's
//! exact byte range) and only the ops that push a location string are
//! re-encoded. A tag memoized once and fetched with `BINGET` for later
//! storages is rewritten at its one definition; if the same memoized string
//! is also used for something that is not a storage tag (CPython memoizes
//! interned strings such as `'cpu'` by identity), those other uses are
//! un-shared: their `BINGET` is replaced by an inline copy of the old string.
//! Protocol-4 `FRAME` lengths are recomputed.
//!
//! Device objects (`torch.device` REDUCE with string arguments, e.g.
//! `torch.device('cuda', 0)` or TorchScript's `torch.device('cuda:0')`) are
//! not storages: they are reported, and rewritten only with
//! [`RelocateOptions::all_devices`].
//!
//! Zip checkpoints and TorchScript archives (`data.pkl`, `constants.pkl`)
//! are re-packed with [`crate::write::rewrite_zip_to`] (every other record
//! copied as it is); legacy files get pickle #4 rewritten and everything
//! else copied. `.pt2` archives are refused (their devices live in JSON).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::rc::Rc;

use netport_pickle::{Arg, Limits, Opcode, Ops};

use crate::checkpoint::Checkpoint;
use crate::detect::Format;
use crate::error::TorchError;
use crate::write::{WriteOptions, rewrite_zip_to, write_atomic};

/// Which location tags become which (exact string match, like a `dict`
/// `map_location`), or every tag to one device (like a `str` one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocationMap {
    /// Every tag becomes this one (`--to cpu`).
    pub to: Option<String>,
    /// `from -> to` pairs, exact (`--map cuda:1=cuda:0`); used when `to` is `None`.
    pub pairs: Vec<(String, String)>,
}

impl LocationMap {
    /// Every tag to `device`.
    pub fn to(device: &str) -> Self {
        LocationMap {
            to: Some(device.to_owned()),
            pairs: Vec::new(),
        }
    }

    /// Parse `from=to` pairs.
    pub fn parse_pairs<S: AsRef<str>>(pairs: &[S]) -> Result<Self, TorchError> {
        let mut out = Vec::new();
        for p in pairs {
            let p = p.as_ref();
            let (a, b) = p.split_once('=').ok_or_else(|| {
                TorchError::refused(format!("'{p}' is not FROM=TO (e.g. cuda:1=cuda:0)"))
            })?;
            out.push((a.trim().to_owned(), b.trim().to_owned()));
        }
        let map = LocationMap {
            to: None,
            pairs: out,
        };
        map.validate()?;
        Ok(map)
    }

    /// Check that every target is a plausible tag (non-empty, ASCII, no
    /// whitespace or quotes).
    pub fn validate(&self) -> Result<(), TorchError> {
        let check = |t: &str| {
            if t.is_empty()
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'-')
            {
                Err(TorchError::refused(format!(
                    "'{t}' is not a device tag (expected e.g. cpu, cuda:0)"
                )))
            } else {
                Ok(())
            }
        };
        if let Some(t) = &self.to {
            check(t)?;
        }
        for (a, b) in &self.pairs {
            check(a)?;
            check(b)?;
        }
        if self.to.is_none() && self.pairs.is_empty() {
            return Err(TorchError::refused("no location mapping given"));
        }
        Ok(())
    }

    /// The new tag for `tag`, if it changes.
    pub fn apply(&self, tag: &str) -> Option<String> {
        let new = match &self.to {
            Some(t) => Some(t.clone()),
            None => self
                .pairs
                .iter()
                .find(|(a, _)| a == tag)
                .map(|(_, b)| b.clone()),
        }?;
        (new != tag).then_some(new)
    }
}

/// Settings of [`relocate_file`].
#[derive(Debug, Clone, Default)]
pub struct RelocateOptions {
    /// The tag mapping.
    pub map: LocationMap,
    /// Also rewrite `torch.device(...)` objects (not storage tags).
    pub all_devices: bool,
    /// Where and how the output is written (in-place refusal).
    pub write: WriteOptions,
}

/// One `from -> to` line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChange {
    /// The tag as written.
    pub from: String,
    /// The new tag (`== from` for tags the map leaves alone).
    pub to: String,
    /// Distinct storages (pickle, key) carrying it.
    pub storages: usize,
}

/// A `torch.device` object found in a pickle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRef {
    /// The pickle record.
    pub pickle: String,
    /// Offset of its REDUCE in that pickle.
    pub offset: u64,
    /// The device as a tag (`cuda:0`, `cuda`).
    pub device: String,
    /// What it was rewritten to (only with `all_devices`).
    pub rewritten: Option<String>,
}

/// What [`relocate_file`] / [`relocate_pickle`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelocateReport {
    /// Storage tags, changed ones first then kept ones, by tag.
    pub changes: Vec<TagChange>,
    /// Device objects found.
    pub devices: Vec<DeviceRef>,
    /// Pickles whose bytes changed.
    pub pickles_rewritten: Vec<String>,
    /// Memoized strings that were shared with non-storage uses and so were
    /// un-shared (count of inlined fetches).
    pub unshared_uses: usize,
    /// Bytes of the output file (0 for [`relocate_pickle`]).
    pub bytes_written: u64,
}

impl RelocateReport {
    /// Storages whose tag changed.
    pub fn storages_changed(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.from != c.to)
            .map(|c| c.storages)
            .sum()
    }

    /// Human-readable lines: `9 storages: cuda:0 -> cpu`.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.changes {
            let s = if c.storages == 1 { "" } else { "s" };
            if c.from != c.to {
                out.push(format!("{} storage{s}: {} -> {}", c.storages, c.from, c.to));
            } else {
                out.push(format!("{} storage{s}: {} (kept)", c.storages, c.from));
            }
        }
        if self.storages_changed() == 0 {
            out.push("nothing to rewrite: no storage tag matched the mapping".into());
        }
        for d in &self.devices {
            match &d.rewritten {
                Some(n) => out.push(format!(
                    "device object torch.device('{}') in {} (byte {}) -> '{n}'",
                    d.device, d.pickle, d.offset
                )),
                None => out.push(format!(
                    "device object torch.device('{}') in {} (byte {}) left as is (not a storage tag; use --all-devices to rewrite)",
                    d.device, d.pickle, d.offset
                )),
            }
        }
        if self.unshared_uses > 0 {
            out.push(format!(
                "{} non-storage use(s) of a memoized tag string were given their own copy",
                self.unshared_uses
            ));
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Symbolic tracking of the pickle stack (only what persistent ids and
// torch.device calls need).

/// A string pushed on the stack: its value, the op that defined it and the
/// op that pushed this copy (the definition, a GET, or a DUP).
#[derive(Debug)]
pub(crate) struct StrItem {
    pub value: Rc<str>,
    pub def: u64,
    pub site: u64,
    pub family: StrFamily,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrFamily {
    Unicode,
    ShortUnicode,
    Unicode8,
    Unicode0,
    PyStr,
    PyStr0,
    Bytes,
}

#[derive(Debug, Clone)]
pub(crate) enum Item {
    Mark,
    Str(Rc<StrItem>),
    Tuple(Rc<TupleItem>),
    Global(Rc<(String, String)>),
    /// An int pushed by an int op at `site`.
    Int(i64, u64),
    /// NONE at `site`.
    None(u64),
    Other,
}

#[derive(Debug)]
pub(crate) struct TupleItem {
    pub items: Vec<Item>,
    /// The op that built it.
    pub op: u64,
    pub opcode: Opcode,
}

/// A persistent id `('storage', ...)` passed to BINPERSID.
#[derive(Debug)]
pub(crate) struct Pid {
    pub tuple: Rc<TupleItem>,
}

impl Pid {
    pub fn key(&self) -> Option<&str> {
        match self.tuple.items.get(2) {
            Some(Item::Str(s)) => Some(&s.value),
            _ => None,
        }
    }
    pub fn location(&self) -> Option<&Rc<StrItem>> {
        match self.tuple.items.get(3) {
            Some(Item::Str(s)) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct DeviceCall {
    pub reduce: u64,
    pub ty: Rc<StrItem>,
    /// `Some(Item::Int | Item::None)` for the two-argument form.
    pub index: Option<Item>,
}

impl DeviceCall {
    fn tag(&self) -> String {
        match &self.index {
            Some(Item::Int(i, _)) => format!("{}:{i}", self.ty.value),
            _ => self.ty.value.to_string(),
        }
    }
}

/// The result of tracking one pickle.
#[derive(Debug, Default)]
pub(crate) struct Analysis {
    pub pids: Vec<Pid>,
    pub devices: Vec<DeviceCall>,
    /// def offset -> every site that pushed a copy (including the def).
    pub sites: HashMap<u64, Vec<u64>>,
    /// defs whose copy pushed by a GET/DUP was memoized again.
    pub rememoized: HashSet<u64>,
    /// Offset just after STOP.
    pub end: u64,
}

fn perr(pickle: &str, source: netport_pickle::PickleError) -> TorchError {
    TorchError::Repickle {
        pickle: pickle.to_owned(),
        source,
    }
}

fn bad(pickle: &str, offset: u64, reason: impl Into<String>) -> TorchError {
    TorchError::refused(format!(
        "pickle '{pickle}' at byte {offset}: {}",
        reason.into()
    ))
}

/// Track the pickle in `data` (starting at 0) up to its STOP.
pub(crate) fn analyze(data: &[u8], pickle: &str) -> Result<Analysis, TorchError> {
    let mut ops = Ops::at(data, 0, &Limits::default());
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: HashMap<u64, Item> = HashMap::new();
    let mut a = Analysis::default();
    let pop_mark = |stack: &mut Vec<Item>, at: u64| -> Result<Vec<Item>, TorchError> {
        let pos = stack
            .iter()
            .rposition(|i| matches!(i, Item::Mark))
            .ok_or_else(|| bad(pickle, at, "no MARK on the stack"))?;
        let items = stack.split_off(pos + 1);
        stack.pop();
        Ok(items)
    };
    let pop = |stack: &mut Vec<Item>, at: u64| -> Result<Item, TorchError> {
        stack
            .pop()
            .ok_or_else(|| bad(pickle, at, "stack underflow"))
    };
    loop {
        let Some(op) = ops.read_op().map_err(|e| perr(pickle, e))? else {
            return Err(bad(pickle, ops.position(), "the pickle ends without STOP"));
        };
        let at = op.offset;
        use Opcode as O;
        let str_item = |value: &str, family| {
            Item::Str(Rc::new(StrItem {
                value: Rc::from(value),
                def: at,
                site: at,
                family,
            }))
        };
        let pushed = match op.opcode {
            O::STOP => {
                a.end = op.end;
                return Ok(a);
            }
            O::PROTO | O::FRAME | O::READONLY_BUFFER => None,
            O::MARK => Some(Item::Mark),
            O::BININT | O::BININT1 | O::BININT2 | O::INT => match op.arg {
                Arg::Int(i) => Some(Item::Int(i, at)),
                _ => Some(Item::Other),
            },
            O::NONE => Some(Item::None(at)),
            O::BINUNICODE | O::SHORT_BINUNICODE | O::BINUNICODE8 | O::UNICODE => {
                let family = match op.opcode {
                    O::BINUNICODE8 => StrFamily::Unicode8,
                    O::SHORT_BINUNICODE => StrFamily::ShortUnicode,
                    O::UNICODE => StrFamily::Unicode0,
                    _ => StrFamily::Unicode,
                };
                match &op.arg {
                    Arg::Str(s) => Some(str_item(s, family)),
                    _ => Some(Item::Other),
                }
            }
            O::STRING | O::BINSTRING | O::SHORT_BINSTRING | O::BINBYTES | O::SHORT_BINBYTES => {
                let family = match op.opcode {
                    O::STRING => StrFamily::PyStr0,
                    O::BINSTRING | O::SHORT_BINSTRING => StrFamily::PyStr,
                    _ => StrFamily::Bytes,
                };
                match &op.arg {
                    Arg::Bytes(b) => match std::str::from_utf8(b) {
                        Ok(s) => Some(str_item(s, family)),
                        Err(_) => Some(Item::Other),
                    },
                    _ => Some(Item::Other),
                }
            }
            O::GLOBAL => match op.arg {
                Arg::Global { module, name } => {
                    Some(Item::Global(Rc::new((module.to_owned(), name.to_owned()))))
                }
                _ => Some(Item::Other),
            },
            O::STACK_GLOBAL => {
                let name = pop(&mut stack, at)?;
                let module = pop(&mut stack, at)?;
                match (module, name) {
                    (Item::Str(m), Item::Str(n)) => Some(Item::Global(Rc::new((
                        m.value.to_string(),
                        n.value.to_string(),
                    )))),
                    _ => Some(Item::Other),
                }
            }
            O::EMPTY_TUPLE => Some(Item::Tuple(Rc::new(TupleItem {
                items: Vec::new(),
                op: at,
                opcode: op.opcode,
            }))),
            O::TUPLE | O::TUPLE1 | O::TUPLE2 | O::TUPLE3 => {
                let items = match op.opcode {
                    O::TUPLE => pop_mark(&mut stack, at)?,
                    other => {
                        let n = match other {
                            O::TUPLE1 => 1,
                            O::TUPLE2 => 2,
                            _ => 3,
                        };
                        if stack.len() < n {
                            return Err(bad(pickle, at, "stack underflow"));
                        }
                        stack.split_off(stack.len() - n)
                    }
                };
                Some(Item::Tuple(Rc::new(TupleItem {
                    items,
                    op: at,
                    opcode: op.opcode,
                })))
            }
            O::LIST | O::DICT | O::FROZENSET | O::INST | O::OBJ => {
                pop_mark(&mut stack, at)?;
                Some(Item::Other)
            }
            O::APPENDS | O::SETITEMS | O::ADDITEMS | O::POP_MARK => {
                pop_mark(&mut stack, at)?;
                None
            }
            O::POP => {
                // C semantics: POP of a MARK removes the mark.
                pop(&mut stack, at)?;
                None
            }
            O::APPEND | O::BUILD => {
                pop(&mut stack, at)?;
                None
            }
            O::SETITEM => {
                pop(&mut stack, at)?;
                pop(&mut stack, at)?;
                None
            }
            O::DUP => {
                let top = stack
                    .last()
                    .cloned()
                    .ok_or_else(|| bad(pickle, at, "DUP on an empty stack"))?;
                Some(resite(top, at, &mut a))
            }
            O::PUT | O::BINPUT | O::LONG_BINPUT | O::MEMOIZE => {
                let top = stack
                    .last()
                    .cloned()
                    .ok_or_else(|| bad(pickle, at, "memoizing an empty stack"))?;
                if let Item::Str(s) = &top
                    && s.site != s.def
                {
                    a.rememoized.insert(s.def);
                }
                let index = match op.arg {
                    Arg::Memo(i) => i,
                    _ => memo.len() as u64,
                };
                memo.insert(index, top);
                None
            }
            O::GET | O::BINGET | O::LONG_BINGET => {
                let Arg::Memo(i) = op.arg else {
                    return Err(bad(pickle, at, "bad memo index"));
                };
                let item = memo
                    .get(&i)
                    .cloned()
                    .ok_or_else(|| bad(pickle, at, format!("memo {i} was never stored")))?;
                Some(resite(item, at, &mut a))
            }
            O::BINPERSID => {
                let pid = pop(&mut stack, at)?;
                if let Item::Tuple(t) = pid
                    && (t.items.len() == 5 || t.items.len() == 6)
                    && matches!(&t.items[0], Item::Str(s) if &*s.value == "storage")
                {
                    a.pids.push(Pid { tuple: t });
                }
                Some(Item::Other)
            }
            O::REDUCE => {
                let args = pop(&mut stack, at)?;
                let callable = pop(&mut stack, at)?;
                if let (Item::Global(g), Item::Tuple(t)) = (&callable, &args)
                    && g.0 == "torch"
                    && g.1 == "device"
                {
                    match t.items.as_slice() {
                        [Item::Str(s)] => a.devices.push(DeviceCall {
                            reduce: at,
                            ty: s.clone(),
                            index: None,
                        }),
                        [Item::Str(s), idx @ (Item::Int(..) | Item::None(_))] => {
                            a.devices.push(DeviceCall {
                                reduce: at,
                                ty: s.clone(),
                                index: Some(idx.clone()),
                            })
                        }
                        _ => {}
                    }
                }
                Some(Item::Other)
            }
            O::NEWOBJ => {
                pop(&mut stack, at)?;
                pop(&mut stack, at)?;
                Some(Item::Other)
            }
            O::NEWOBJ_EX => {
                pop(&mut stack, at)?;
                pop(&mut stack, at)?;
                pop(&mut stack, at)?;
                Some(Item::Other)
            }
            // Everything else pushes one opaque value.
            _ => Some(Item::Other),
        };
        if let Some(item) = pushed {
            if let Item::Str(s) = &item
                && s.def == at
            {
                a.sites.entry(at).or_default().push(at);
            }
            stack.push(item);
        }
    }
}

/// A copy of `item` pushed again by the op at `site` (GET or DUP).
fn resite(item: Item, site: u64, a: &mut Analysis) -> Item {
    match item {
        Item::Str(s) => {
            a.sites.entry(s.def).or_default().push(site);
            Item::Str(Rc::new(StrItem {
                value: s.value.clone(),
                def: s.def,
                site,
                family: s.family,
            }))
        }
        // Ints and None fetched from the memo are not int ops: not editable.
        Item::Int(..) | Item::None(_) => Item::Other,
        other => other,
    }
}

/// Encode a string the way its defining op family does.
pub(crate) fn encode_str(family: StrFamily, value: &str) -> Vec<u8> {
    let b = value.as_bytes();
    let mut out = Vec::with_capacity(b.len() + 9);
    match family {
        StrFamily::ShortUnicode if b.len() < 256 => {
            out.push(0x8c);
            out.push(b.len() as u8);
        }
        StrFamily::Unicode | StrFamily::ShortUnicode => {
            out.push(b'X');
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        }
        StrFamily::Unicode8 => {
            out.push(0x8d);
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        }
        StrFamily::Unicode0 => {
            // Tags are ASCII without backslashes or newlines (validated), so
            // raw-unicode-escape is the identity.
            out.push(b'V');
            out.extend_from_slice(b);
            out.push(b'\n');
            return out;
        }
        StrFamily::PyStr0 => {
            out.push(b'S');
            out.push(b'\'');
            out.extend_from_slice(b);
            out.extend_from_slice(b"'\n");
            return out;
        }
        StrFamily::PyStr if b.len() < 256 => {
            out.push(b'U');
            out.push(b.len() as u8);
        }
        StrFamily::PyStr => {
            out.push(b'T');
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        }
        StrFamily::Bytes if b.len() < 256 => {
            out.push(b'C');
            out.push(b.len() as u8);
        }
        StrFamily::Bytes => {
            out.push(b'B');
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        }
    }
    out.extend_from_slice(b);
    out
}

fn encode_index(index: Option<u32>) -> Vec<u8> {
    match index {
        None => vec![b'N'],
        Some(i) if i < 256 => vec![b'K', i as u8],
        Some(i) if i < 65536 => {
            let mut v = vec![b'M'];
            v.extend_from_slice(&(i as u16).to_le_bytes());
            v
        }
        Some(i) => {
            let mut v = vec![b'J'];
            v.extend_from_slice(&(i as i32).to_le_bytes());
            v
        }
    }
}

/// Copy the pickle in `data` op by op up to STOP, replacing the ops at the
/// offsets in `edits` by the given bytes, recomputing FRAME lengths. Bytes
/// after STOP are not copied.
pub(crate) fn apply_edits(
    data: &[u8],
    pickle: &str,
    edits: &HashMap<u64, Vec<u8>>,
) -> Result<Vec<u8>, TorchError> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut ops = Ops::at(data, 0, &Limits::default());
    // (input end of the frame, output offset of its 8-byte length, output
    // offset where its content starts)
    let mut frame: Option<(u64, usize, usize)> = None;
    loop {
        let Some(op) = ops.read_op().map_err(|e| perr(pickle, e))? else {
            return Err(bad(pickle, ops.position(), "the pickle ends without STOP"));
        };
        if let Some((end, len_at, start)) = frame
            && op.offset >= end
        {
            if op.offset != end {
                return Err(bad(
                    pickle,
                    op.offset,
                    "an opcode straddles a FRAME boundary; cannot recompute frame lengths",
                ));
            }
            let n = (out.len() - start) as u64;
            out[len_at..len_at + 8].copy_from_slice(&n.to_le_bytes());
            frame = None;
        }
        if let Some((end, ..)) = frame
            && op.end > end
        {
            return Err(bad(
                pickle,
                op.offset,
                "an opcode straddles a FRAME boundary; cannot recompute frame lengths",
            ));
        }
        let range = op.offset as usize..op.end as usize;
        if op.opcode == Opcode::FRAME {
            let Arg::Uint(len) = op.arg else {
                return Err(bad(pickle, op.offset, "bad FRAME"));
            };
            out.extend_from_slice(&data[range]);
            let len_at = out.len() - 8;
            frame = Some((op.end.saturating_add(len), len_at, out.len()));
            continue;
        }
        match edits.get(&op.offset) {
            Some(bytes) => out.extend_from_slice(bytes),
            None => out.extend_from_slice(&data[range]),
        }
        if op.opcode == Opcode::STOP {
            if let Some((_, len_at, start)) = frame {
                let n = (out.len() - start) as u64;
                out[len_at..len_at + 8].copy_from_slice(&n.to_le_bytes());
            }
            return Ok(out);
        }
    }
}

/// Relocate one pickle: returns the new bytes (`None` if nothing changed)
/// and adds to `report`.
pub fn relocate_pickle(
    data: &[u8],
    pickle: &str,
    map: &LocationMap,
    all_devices: bool,
    report: &mut RelocateReport,
) -> Result<Option<Vec<u8>>, TorchError> {
    let a = analyze(data, pickle)?;
    // site -> demanded value; site -> family (for inlining).
    let mut demand: HashMap<u64, String> = HashMap::new();
    let mut int_edits: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut defs: HashMap<u64, (Rc<str>, StrFamily)> = HashMap::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for pid in &a.pids {
        let Some(loc) = pid.location() else {
            continue;
        };
        let new = map.apply(&loc.value);
        let target = new.clone().unwrap_or_else(|| loc.value.to_string());
        if new.is_some() {
            demand.insert(loc.site, target.clone());
            defs.insert(loc.def, (loc.value.clone(), loc.family));
        }
        // Count distinct storages by key (a storage referenced by several
        // tensors has one pid per reference in Python pickles).
        let key = pid.key().unwrap_or("");
        if seen.insert(key) {
            *counts.entry((loc.value.to_string(), target)).or_default() += 1;
        }
    }
    for d in &a.devices {
        let tag = d.tag();
        let new = if all_devices { map.apply(&tag) } else { None };
        if let Some(n) = &new {
            let (ty, idx) = match n.split_once(':') {
                Some((t, i)) => (t.to_owned(), i.parse::<u32>().ok()),
                None => (n.clone(), None),
            };
            match &d.index {
                // torch.device('cuda:0'): one string.
                None => {
                    demand.insert(d.ty.site, n.clone());
                }
                Some(index) => {
                    if n.split_once(':').is_some() && idx.is_none() {
                        return Err(TorchError::refused(format!(
                            "device '{n}' has a non-numeric index"
                        )));
                    }
                    demand.insert(d.ty.site, ty);
                    let changed_site = match index {
                        Item::Int(old, site) if Some(*old) != idx.map(i64::from) => Some(*site),
                        Item::None(site) if idx.is_some() => Some(*site),
                        _ => None,
                    };
                    if let Some(site) = changed_site {
                        int_edits.insert(site, encode_index(idx));
                    }
                }
            }
            defs.insert(d.ty.def, (d.ty.value.clone(), d.ty.family));
        }
        report.devices.push(DeviceRef {
            pickle: pickle.to_owned(),
            offset: d.reduce,
            device: tag,
            rewritten: new,
        });
    }
    let mut edits = int_edits;
    for (def, (old, family)) in &defs {
        let def_value = demand.get(def).map(String::as_str).unwrap_or(old);
        let mut changed = false;
        if def_value != &**old {
            edits.insert(*def, encode_str(*family, def_value));
            changed = true;
        }
        for site in a.sites.get(def).into_iter().flatten() {
            if site == def {
                continue;
            }
            let want = demand.get(site).map(String::as_str).unwrap_or(old);
            if want != def_value {
                edits.insert(*site, encode_str(*family, want));
                changed = true;
                if !demand.contains_key(site) {
                    report.unshared_uses += 1;
                }
            }
        }
        if changed && a.rememoized.contains(def) {
            return Err(bad(
                pickle,
                *def,
                "a location string is memoized under two indices; this layout is not rewritten",
            ));
        }
    }
    for ((from, to), n) in counts {
        match report
            .changes
            .iter_mut()
            .find(|c| c.from == from && c.to == to)
        {
            Some(c) => c.storages += n,
            None => report.changes.push(TagChange {
                from,
                to,
                storages: n,
            }),
        }
    }
    report
        .changes
        .sort_by_key(|c| (c.from == c.to, c.from.clone(), c.to.clone()));
    if edits.is_empty() {
        return Ok(None);
    }
    let mut out = apply_edits(data, pickle, &edits)?;
    out.extend_from_slice(&data[(a.end as usize).min(data.len())..]);
    report.pickles_rewritten.push(pickle.to_owned());
    Ok(Some(out))
}

/// Relocate a whole file: read `input`, write `output` atomically.
pub fn relocate_file(
    input: &Path,
    output: &Path,
    options: &RelocateOptions,
) -> Result<RelocateReport, TorchError> {
    options.map.validate()?;
    let mut wopts = options.write.clone();
    wopts.input = Some(input.to_owned());
    wopts.check_paths(output)?;
    let ckpt = Checkpoint::open(input)?;
    relocate_checkpoint(&ckpt, output, options, &wopts)
}

/// Relocate an opened checkpoint into `output`.
pub fn relocate_checkpoint(
    ckpt: &Checkpoint,
    output: &Path,
    options: &RelocateOptions,
    wopts: &WriteOptions,
) -> Result<RelocateReport, TorchError> {
    let mut report = RelocateReport::default();
    let data = ckpt.bytes();
    match ckpt.format() {
        Format::Zip | Format::TorchScript => {
            let zip = crate::zip::ZipArchive::parse(data)?;
            let mut replacements = HashMap::new();
            for p in ckpt.pickles() {
                if p.name != "data.pkl" && p.name != "constants.pkl" {
                    continue;
                }
                let bytes = ckpt.pickle_bytes(p)?;
                if let Some(new) = relocate_pickle(
                    &bytes,
                    &p.name,
                    &options.map,
                    options.all_devices,
                    &mut report,
                )? {
                    replacements.insert(p.name.clone(), new);
                }
            }
            report.bytes_written = write_atomic(output, wopts, |w| {
                rewrite_zip_to(w, data, &zip, &replacements, None)?;
                Ok(())
            })?;
        }
        Format::Legacy => {
            let p4 = ckpt
                .pickles()
                .iter()
                .find(|p| p.name == "legacy pickle #4")
                .ok_or_else(|| TorchError::refused("legacy file without pickle #4"))?;
            let r = p4.byte_range.start as usize..p4.byte_range.end as usize;
            let new = relocate_pickle(
                &data[r.clone()],
                &p4.name,
                &options.map,
                options.all_devices,
                &mut report,
            )?;
            report.bytes_written = write_atomic(output, wopts, |w| {
                w.write_all(&data[..r.start])?;
                match &new {
                    Some(n) => w.write_all(n)?,
                    None => w.write_all(&data[r.clone()])?,
                }
                crate::write::copy_chunked(w, &data[r.end..])?;
                Ok(())
            })?;
        }
        other => {
            return Err(TorchError::Unsupported {
                what: format!("map-location of a {} file", other.name()),
                reason: "only zip checkpoints, legacy files and TorchScript archives carry storage location tags in pickles".into(),
            });
        }
    }
    Ok(report)
}
