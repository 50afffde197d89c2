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

use crate::engine::{Call, Core, Domain, Extend, Id, Seq};
use crate::error::{At, PickleError};
use crate::ops::{Arg, Op, Opcode, Ops};
use crate::value::{Arena, Value, ValueId, int_from_le_signed};

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
        let mut ops = Ops::at(data, offset, &self.limits);
        let mut core = Core::new(&self.limits, Values::default());
        let start = ops.position();
        loop {
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

/// The machine's [`Domain`]: values in an [`Arena`], ids are [`ValueId`]s.
#[derive(Default)]
struct Values {
    arena: Arena,
    protocol: Option<u8>,
    buffers: u64,
}

impl Values {
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
            Ok(t) => Value::Str(t.to_owned()),
            Err(_) => Value::Bytes(s.to_vec()),
        }
    }
}

impl<'a> Domain<'a> for Values {
    type Value = Value;

    fn store(&mut self, value: Value) {
        self.arena.push(value);
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
            (_, Arg::Str(s)) => Value::Str(s.to_string()),
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
                module: Arc::new(m.clone()),
                name: Arc::new(n.clone()),
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
