//! The machine: runs the ops of one pickle into an [`Arena`] without
//! executing or importing anything.
//!
//! It runs the shared stack machine (the private `engine` module, the same
//! one the [`scan`](crate::scan()) runs, so both fail at the same offset)
//! with every call made symbolic: GLOBAL/STACK_GLOBAL push [`Value::Global`],
//! REDUCE/INST/OBJ push [`Value::Reduce`], NEWOBJ/NEWOBJ_EX push
//! [`Value::NewObj`], BUILD wraps the object in [`Value::Build`], persistent
//! ids become [`Value::PersistentId`], EXT1/2/4 [`Value::Ext`], NEXT_BUFFER
//! [`Value::OutOfBandBuffer`]. Stack and MARK rules follow CPython's C
//! unpickler (`Modules/_pickle.c`).
//!
//! STACK_GLOBAL whose operands are not plain strings is
//! [`PickleError::UnresolvableGlobal`].
//!
//! All work is bounded by [`Limits`]; the cost of a pickle is linear in its
//! length. [`Machine::load`] returns the offset after STOP so stacked pickles
//! (PyTorch's legacy format writes five) can be read one after another.

use std::sync::Arc;

use crate::engine::{Call, Core, Domain, Extend, Id, MemoReads, Seq, memo_reads};
use crate::error::{At, PickleError};
use crate::ops::{Arg, Op, Opcode, Ops, PASSED};
use crate::value::{Arena, CompactString, Value, ValueId, int_from_le_signed};

/// Bounds on the work and memory of one load. Every violation is
/// [`PickleError::LimitExceeded`] with the offset and opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting: open MARKs, and the depth of a value at the time it
    /// is built or mutated (a tuple of a tuple of ... counts every level).
    /// Default 1,000.
    pub max_depth: usize,
    /// Maximum number of memo entries. Default 4,194,304 (2^22).
    pub max_memo: usize,
    /// Maximum number of elements (or key/value pairs) in one container
    /// (clamped to `u32::MAX`). Default 16,777,216 (2^24).
    pub max_container_len: usize,
    /// Maximum total work: 1 per opcode, plus 1 per element moved into a
    /// container, plus 1 per memo read. Default 268,435,456 (2^28).
    pub max_work: u64,
    /// Maximum number of values in the arena (clamped to `u32::MAX`).
    /// Default 16,777,216 (2^24).
    pub max_nodes: usize,
    /// Maximum length of one string, bytes or bytearray argument, on top of the
    /// rule that no declared length may exceed the rest of the input.
    /// Default 2 GiB.
    pub max_string_len: u64,
    /// Maximum digits of a protocol-0 decimal INT/LONG (CPython's
    /// `sys.int_info.default_max_str_digits`). Default 4,300.
    pub max_int_digits: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 1_000,
            max_memo: 1 << 22,
            max_container_len: 1 << 24,
            max_work: 1 << 28,
            max_nodes: 1 << 24,
            max_string_len: 1 << 31,
            max_int_digits: 4_300,
        }
    }
}

/// One loaded pickle.
#[derive(Debug, Clone, PartialEq)]
pub struct Pickle {
    /// Every value the pickle created.
    pub arena: Arena,
    /// The value STOP returned.
    pub root: ValueId,
    /// Offset of the first opcode.
    pub start: u64,
    /// Offset just after STOP (where a stacked pickle would start).
    pub end: u64,
    /// The version of the PROTO opcode, if any.
    pub protocol: Option<u8>,
    /// Total work spent (see [`Limits::max_work`]).
    pub work: u64,
}

/// The non-executing unpickler.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    limits: Limits,
}

impl Machine {
    /// A machine with these limits.
    pub fn new(limits: Limits) -> Self {
        Machine { limits }
    }

    /// The limits in use.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Run the pickle that starts at `offset` in `data` up to its STOP.
    /// Offsets in the result and in errors are absolute in `data`.
    pub fn load(&self, data: &[u8], offset: usize) -> Result<Pickle, PickleError> {
        self.run(data, offset, Values::default(), None)
    }

    /// Like [`load`](Self::load), offering every REDUCE to `taker` as it
    /// runs. A call the taker takes becomes [`Value::Taken`], and its
    /// callable and arguments, with everything only they hold, are freed
    /// at once: their ids are handed out again (their slots read
    /// [`Value::None`] until then). A value stays when something else may
    /// still reach it: one duplicated by DUP, or put in a memo entry that
    /// the pickle reads later (a first pass over the ops finds those).
    ///
    /// So a reader that recognises the calls it cares about (a tensor
    /// rebuild) holds one value per such call instead of its whole argument
    /// tree, and the arena stays as large as what is still reachable.
    /// Errors, limits and work are those of [`load`](Self::load).
    pub fn load_with(
        &self,
        data: &[u8],
        offset: usize,
        taker: &mut dyn Taker,
    ) -> Result<Pickle, PickleError> {
        let reads = memo_reads(data, offset, &self.limits, &mut |b| taker.passed(b));
        let values = Values {
            taker: Some(taker),
            ..Values::default()
        };
        self.run(data, offset, values, reads)
    }

    /// Run to STOP; `reads` are the memo indices the pickle reads, when
    /// values may be freed ([`load_with`](Self::load_with)).
    fn run(
        &self,
        data: &[u8],
        offset: usize,
        values: Values,
        reads: Option<MemoReads>,
    ) -> Result<Pickle, PickleError> {
        let mut ops = Ops::at(data, offset, &self.limits);
        let mut core = Core::new(&self.limits, values).with_memo_reads(reads);
        let start = ops.position();
        // Positions are within `data`.
        let at = |p: u64| usize::try_from(p).unwrap_or(usize::MAX).min(data.len());
        let mut reported = at(start);
        loop {
            let pos = at(ops.position());
            if pos - reported >= PASSED {
                if let Some(t) = core.domain.taker.as_mut() {
                    t.passed(&data[reported..pos]);
                }
                reported = pos;
            }
            let op = match ops.read_op()? {
                Some(op) => op,
                None => {
                    return Err(PickleError::MissingStop {
                        at: At::byte(ops.position()),
                    });
                }
            };
            if let Some(root) = core.step(&op)? {
                let work = core.work();
                let values = core.into_domain();
                return Ok(Pickle {
                    arena: values.arena,
                    root: ValueId(root),
                    start,
                    end: op.end,
                    protocol: values.protocol,
                    work,
                });
            }
        }
    }

    /// Run consecutive pickles from the start of `data` to its end.
    pub fn load_all(&self, data: &[u8]) -> Result<Vec<Pickle>, PickleError> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos < data.len() {
            let p = self.load(data, pos)?;
            // end > start because STOP is at least one byte; the cast is exact
            // because end <= data.len().
            pos = p.end as usize;
            out.push(p);
        }
        Ok(out)
    }
}

/// Run one pickle from the start of `data` with default [`Limits`].
pub fn load(data: &[u8]) -> Result<Pickle, PickleError> {
    Machine::default().load(data, 0)
}

/// A reader that takes calls over while a pickle runs
/// ([`Machine::load_with`]).
pub trait Taker {
    /// `callable(*args)` is about to be made (REDUCE), with `arena` as the
    /// pickle has built it so far. Return `Some(n)` to take the call: it
    /// becomes [`Value::Taken`]`(n)` and its callable and arguments are
    /// freed, so the taker must keep whatever it needs of them. `None`
    /// leaves the call as [`Value::Reduce`].
    fn take(&mut self, arena: &Arena, callable: ValueId, args: ValueId) -> Option<u32>;

    /// The machine is done with `bytes`, a part of the data it was given,
    /// for its current pass: first the pass over the ops that finds the
    /// memo reads, then the run. Only the run reads them again, and nothing
    /// after the run, so a reader of a mapped file may drop their pages
    /// (`netport_io::release`). Called in order with parts of at least
    /// 1 MiB; the last part of each pass is not reported. Does nothing by
    /// default.
    fn passed(&mut self, bytes: &[u8]) {
        let _ = bytes;
    }
}

/// The machine's [`Domain`]: values in an [`Arena`], ids are [`ValueId`]s.
#[derive(Default)]
struct Values<'t> {
    arena: Arena,
    protocol: Option<u8>,
    buffers: u64,
    taker: Option<&'t mut dyn Taker>,
    /// Small item lists of freed values, for new ones: a pickle of tensors
    /// frees and makes the same few shapes over and over. (Strings need no
    /// such pool: the short ones are held inline.)
    vecs: Vec<Vec<Id>>,
}

impl Values<'_> {
    /// Buffers kept for reuse, at most.
    const POOL: usize = 64;
    /// Largest capacity (items or bytes) of a kept buffer.
    const POOLED: usize = 64;

    fn ids(items: Vec<Id>) -> Vec<ValueId> {
        items.into_iter().map(ValueId).collect()
    }

    /// Replace the value at `target`.
    fn set(&mut self, target: Id, value: Value) {
        if let Some(slot) = self.arena.get_mut(ValueId(target)) {
            *slot = value;
        }
    }

    /// A Python 2 string: `str` when it is UTF-8 (torch reads them with
    /// `encoding='utf-8'`), bytes otherwise.
    fn str_value(s: &[u8]) -> Value {
        match std::str::from_utf8(s) {
            Ok(t) => Value::Str(t.into()),
            Err(_) => Value::Bytes(s.to_vec()),
        }
    }
}

impl<'a> Domain<'a> for Values<'_> {
    type Value = Value;

    fn store(&mut self, value: Value) {
        self.arena.push(value);
    }

    fn store_at(&mut self, id: Id, value: Value) {
        self.set(id, value);
    }

    fn take_call(&mut self, _at: At, callable: Id, args: Id) -> Option<Value> {
        let taker = self.taker.as_mut()?;
        taker
            .take(&self.arena, ValueId(callable), ValueId(args))
            .map(Value::Taken)
    }

    fn free(&mut self, id: Id, children: &mut Vec<Id>) {
        if let Some(slot) = self.arena.get_mut(ValueId(id)) {
            let value = std::mem::replace(slot, Value::None);
            value.for_each_child(|c| children.push(c.0));
            match value {
                Value::Tuple(items) | Value::List(items)
                    if items.capacity() <= Self::POOLED && self.vecs.len() < Self::POOL =>
                {
                    let mut v: Vec<Id> = items.into_iter().map(|i| i.0).collect();
                    v.clear();
                    self.vecs.push(v);
                }
                _ => {}
            }
        }
    }

    fn buffer(&mut self) -> Vec<Id> {
        self.vecs.pop().unwrap_or_default()
    }

    fn take(&mut self, id: Id) -> Value {
        match self.arena.get_mut(ValueId(id)) {
            Some(slot) => std::mem::replace(slot, Value::None),
            None => Value::None,
        }
    }

    fn protocol(&mut self, version: u8) {
        self.protocol = Some(version);
    }

    fn literal(&mut self, op: &Op<'a>) -> Value {
        use Opcode::*;
        match (op.opcode, &op.arg) {
            (NEWTRUE, _) => Value::Bool(true),
            (NEWFALSE, _) => Value::Bool(false),
            (EMPTY_LIST, _) => Value::List(Vec::new()),
            (EMPTY_TUPLE, _) => Value::Tuple(Vec::new()),
            (EMPTY_DICT, _) => Value::Dict(Vec::new()),
            (EMPTY_SET, _) => Value::Set(Vec::new()),
            (NEXT_BUFFER, _) => {
                let index = self.buffers;
                self.buffers += 1;
                Value::OutOfBandBuffer(index)
            }
            (_, Arg::Int(v)) => Value::Int(*v),
            (_, Arg::Bool(b)) => Value::Bool(*b),
            (_, Arg::Long(bytes)) => int_from_le_signed(bytes),
            (_, Arg::Float(f)) => Value::Float(*f),
            (STRING | BINSTRING | SHORT_BINSTRING, Arg::Bytes(b)) => Self::str_value(b),
            (BYTEARRAY8, Arg::Bytes(b)) => Value::ByteArray(b.to_vec()),
            (_, Arg::Bytes(b)) => Value::Bytes(b.to_vec()),
            (_, Arg::Str(s)) => Value::Str(CompactString::new(s)),
            _ => Value::None,
        }
    }

    fn sequence(&mut self, kind: Seq, items: Vec<Id>) -> Value {
        let items = Self::ids(items);
        match kind {
            Seq::List => Value::List(items),
            Seq::Tuple => Value::Tuple(items),
            Seq::FrozenSet => Value::FrozenSet(items),
        }
    }

    fn dict(&mut self, pairs: Vec<(Id, Id)>) -> Value {
        Value::Dict(
            pairs
                .into_iter()
                .map(|(k, v)| (ValueId(k), ValueId(v)))
                .collect(),
        )
    }

    fn persistent_id(&mut self, _at: At, pid: Id) -> Value {
        Value::PersistentId(ValueId(pid))
    }

    fn global(&mut self, _at: At, module: &str, name: &str) -> Value {
        Value::Global {
            module: Arc::new(module.to_owned()),
            name: Arc::new(name.to_owned()),
        }
    }

    fn stack_global(&mut self, at: At, module: Id, name: Id) -> Result<Value, PickleError> {
        let kind = |id: Id| self.arena.get(ValueId(id)).map_or("unknown", Value::kind);
        match (
            self.arena.get(ValueId(module)),
            self.arena.get(ValueId(name)),
        ) {
            (Some(Value::Str(m)), Some(Value::Str(n))) => Ok(Value::Global {
                module: Arc::new(m.to_string()),
                name: Arc::new(n.to_string()),
            }),
            _ => Err(PickleError::UnresolvableGlobal {
                at,
                module: kind(module),
                name: kind(name),
            }),
        }
    }

    fn extension(&mut self, _at: At, code: u32) -> Value {
        Value::Ext(code)
    }

    fn call(&mut self, _at: At, kind: Call, callable: Id, args: Id, kwargs: Option<Id>) -> Value {
        let (callable, args) = (ValueId(callable), ValueId(args));
        match kind {
            Call::Reduce | Call::Inst | Call::Obj => Value::Reduce { callable, args },
            Call::NewObj | Call::NewObjEx => Value::NewObj {
                cls: callable,
                args,
                kwargs: kwargs.map(ValueId),
            },
        }
    }

    fn extend(&mut self, _at: At, kind: Extend, target: Id, items: Vec<Id>, moved: Option<Id>) {
        if items.is_empty() {
            return;
        }
        let pairs = || -> Vec<(ValueId, ValueId)> {
            items
                .chunks_exact(2)
                .map(|c| (ValueId(c[0]), ValueId(c[1])))
                .collect()
        };
        if let Some(obj) = moved {
            let obj = ValueId(obj);
            let wrapper = match kind {
                Extend::Append | Extend::Appends => Value::Appends {
                    obj,
                    items: Self::ids(items),
                },
                Extend::SetItem | Extend::SetItems => Value::SetItems {
                    obj,
                    items: pairs(),
                },
                Extend::AddItems => Value::AddItems {
                    obj,
                    items: Self::ids(items),
                },
            };
            self.set(target, wrapper);
            return;
        }
        match self.arena.get_mut(ValueId(target)) {
            Some(Value::List(list) | Value::Appends { items: list, .. })
            | Some(Value::Set(list) | Value::AddItems { items: list, .. }) => {
                list.extend(items.into_iter().map(ValueId));
            }
            Some(Value::Dict(dict) | Value::SetItems { items: dict, .. }) => {
                dict.extend(
                    items
                        .chunks_exact(2)
                        .map(|c| (ValueId(c[0]), ValueId(c[1]))),
                );
            }
            _ => {}
        }
    }

    fn build(&mut self, _at: At, target: Id, state: Id, moved: Id) {
        self.set(
            target,
            Value::Build {
                obj: ValueId(moved),
                state: ValueId(state),
            },
        );
    }
}

#[cfg(test)]
mod take_tests {
    use super::*;

    /// Takes every call of `x.f` and `x.g`, numbering them.
    struct TakeF(u32);

    impl Taker for TakeF {
        fn take(&mut self, arena: &Arena, callable: ValueId, args: ValueId) -> Option<u32> {
            match arena.get(callable)? {
                Value::Global { module, name }
                    if module.as_str() == "x" && name.as_str() != "h" =>
                {
                    assert!(matches!(arena.get(args)?, Value::Tuple(_)));
                    self.0 += 1;
                    Some(self.0 - 1)
                }
                _ => None,
            }
        }
    }

    // [x.f(1, 2), x.g((5,)) memo 2, memo 2 again, x.f itself (memo 1),
    //  x.h(7) (not taken), x.f(((9,), (9,))) with (9,) DUP'd]
    const PICKLE: &[u8] = b"\x80\x02]q\x00(cx\nf\nq\x01K\x01K\x02\x86Rcx\ng\nK\x05\x85\x85Rq\x02h\x02h\x01cx\nh\nK\x07\x85Rh\x01K\x09\x852\x86\x85Re.";

    /// Records what the machine says it has passed.
    #[derive(Default)]
    struct Passed(Vec<(usize, usize)>, usize);

    impl Taker for Passed {
        fn take(&mut self, _: &Arena, _: ValueId, _: ValueId) -> Option<u32> {
            None
        }

        fn passed(&mut self, bytes: &[u8]) {
            let start = bytes.as_ptr() as usize - self.1;
            self.0.push((start, start + bytes.len()));
        }
    }

    #[test]
    fn both_passes_report_what_they_have_read_in_order() {
        // A list of 3,000 strings of 1,000 bytes: ~3 MB, after 5 bytes of
        // something else (the pickle starts at offset 5).
        let mut data = b"junk!\x80\x02](".to_vec();
        for _ in 0..3000 {
            data.push(b'X');
            data.extend_from_slice(&1000u32.to_le_bytes());
            data.extend_from_slice(&[b'a'; 1000]);
        }
        data.extend_from_slice(b"e.");
        let mut taker = Passed(Vec::new(), data.as_ptr() as usize);
        let p = Machine::default().load_with(&data, 5, &mut taker).unwrap();
        assert!(matches!(p.arena.get(p.root), Some(Value::List(l)) if l.len() == 3000));
        // Two passes, each from the pickle's start, in parts of at least
        // 1 MiB back to back, none past the data.
        let parts = &taker.0;
        let restart = parts.iter().skip(1).position(|&(s, _)| s == 5).unwrap() + 1;
        for pass in [&parts[..restart], &parts[restart..]] {
            assert_eq!(pass[0].0, 5);
            assert!(pass.len() >= 2, "{parts:?}");
            for w in pass.windows(2) {
                assert_eq!(w[0].1, w[1].0, "{parts:?}");
            }
            assert!(
                pass.iter()
                    .all(|&(s, e)| e - s >= PASSED && e <= data.len())
            );
        }
    }

    #[test]
    fn taken_calls_free_what_only_they_held() {
        let plain = load(PICKLE).unwrap();
        let mut taker = TakeF(0);
        let taken = Machine::default().load_with(PICKLE, 0, &mut taker).unwrap();
        assert_eq!((taken.end, taken.work), (plain.end, plain.work));
        let Value::List(items) = &taken.arena[taken.root] else {
            panic!("{:?}", taken.arena[taken.root]);
        };
        let kinds: Vec<_> = items.iter().map(|&i| taken.arena[i].clone()).collect();
        assert!(matches!(kinds[0], Value::Taken(0)));
        assert!(matches!(kinds[1], Value::Taken(1)));
        // The memo read gives the same taken value.
        assert_eq!(items[1], items[2]);
        // x.f is read again from the memo: not freed by the first call.
        assert!(matches!(&kinds[3], Value::Global { name, .. } if name.as_str() == "f"));
        assert!(matches!(kinds[4], Value::Reduce { .. }));
        assert!(matches!(kinds[5], Value::Taken(2)));
        // The DUP'd tuple (9,) is kept (a DUP'd value may be held twice);
        // the tuple that held it is freed.
        let nine = |v: &Value| matches!(v, Value::Tuple(t) if t.len() == 1 && matches!(taken.arena[t[0]], Value::Int(9)));
        assert!(taken.arena.values().any(nine));
        assert!(
            !taken
                .arena
                .values()
                .any(|v| matches!(v, Value::Tuple(t) if t.len() == 2))
        );
        assert_eq!(taker.0, 3);
        // The freed ids were handed out again: fewer slots than values made.
        assert!(
            taken.arena.len() < plain.arena.len(),
            "{} slots, {} without taking",
            taken.arena.len(),
            plain.arena.len()
        );
    }

    #[test]
    fn memo_reads_are_found_without_decoding_strings() {
        let reads = crate::engine::memo_reads(PICKLE, 0, &Limits::default(), &mut |_| {}).unwrap();
        let read: Vec<u64> = (0..4).filter(|&i| reads.contains(i)).collect();
        assert_eq!(read, [1, 2]);
        // Invalid UTF-8 in a counted string: skipped by length all the same
        // (the run reports it); a truncated pickle has no reads.
        let bad = b"\x80\x02X\x02\x00\x00\x00\xff\xffq\x00h\x00.";
        assert!(
            crate::engine::memo_reads(bad, 0, &Limits::default(), &mut |_| {})
                .unwrap()
                .contains(0)
        );
        assert!(load(bad).is_err());
        assert!(
            crate::engine::memo_reads(&PICKLE[..20], 0, &Limits::default(), &mut |_| {}).is_none()
        );
    }
}
