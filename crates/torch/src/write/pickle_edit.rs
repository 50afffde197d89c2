//! Opcode-level pickle analysis and in-place edits, shared by the writers
//! that change a pickle without re-serialising it (`relocate`, the legacy
//! writer's persistent-id conversion): the symbolic tracking of the pickle
//! stack (only what persistent ids and `torch.device` calls need), and the
//! copy of a pickle op by op with some ops re-encoded.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use netport_pickle::{Arg, Limits, Opcode, Ops};

use crate::error::TorchError;

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
    pub(crate) fn tag(&self) -> String {
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

pub(crate) fn perr(pickle: &str, source: netport_pickle::PickleError) -> TorchError {
    TorchError::Repickle {
        pickle: pickle.to_owned(),
        source,
    }
}

pub(crate) fn bad(pickle: &str, offset: u64, reason: impl Into<String>) -> TorchError {
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

pub(crate) fn encode_index(index: Option<u32>) -> Vec<u8> {
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
