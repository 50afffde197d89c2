//! The machine: runs the ops of one pickle into an [`Arena`] without
//! executing or importing anything.
//!
//! It is CPython's C unpickler (`Modules/_pickle.c`) with every call made
//! symbolic: GLOBAL/STACK_GLOBAL push [`Value::Global`], REDUCE/INST/OBJ push
//! [`Value::Reduce`], NEWOBJ/NEWOBJ_EX push [`Value::NewObj`], BUILD wraps the
//! object in [`Value::Build`], persistent ids become [`Value::PersistentId`],
//! EXT1/2/4 [`Value::Ext`], NEXT_BUFFER [`Value::OutOfBandBuffer`]. Stack and
//! MARK rules follow C (`POP` on an empty segment removes the MARK; items
//! below the last MARK cannot be popped; an empty APPENDS/SETITEMS/ADDITEMS
//! is a no-op). Extra values left on the stack at STOP are ignored, as in
//! CPython.
//!
//! STACK_GLOBAL whose operands are not plain strings is
//! [`PickleError::UnresolvableGlobal`].
//!
//! All work is bounded by [`Limits`]; the cost of a pickle is linear in its
//! length. [`Machine::load`] returns the offset after STOP so stacked pickles
//! (PyTorch's legacy format writes five) can be read one after another.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::error::{At, Limit, PickleError};
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
    /// Maximum number of elements (or key/value pairs) in one container.
    /// Default 16,777,216 (2^24).
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
        let mut state = State::new(&self.limits);
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
            if let Some(root) = state.step(&op)? {
                return Ok(Pickle {
                    arena: state.arena,
                    root,
                    start,
                    end: op.end,
                    protocol: state.protocol,
                    work: state.work,
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

struct State<'l> {
    limits: &'l Limits,
    arena: Arena,
    /// Build-time depth of each node (1 for scalars).
    depth: Vec<u32>,
    stack: Vec<ValueId>,
    marks: Vec<usize>,
    memo: HashMap<u64, ValueId>,
    work: u64,
    protocol: Option<u8>,
    buffers: u64,
    max_nodes: usize,
}

impl<'l> State<'l> {
    fn new(limits: &'l Limits) -> Self {
        State {
            limits,
            arena: Arena::new(),
            depth: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            work: 0,
            protocol: None,
            buffers: 0,
            max_nodes: limits.max_nodes.min(u32::MAX as usize),
        }
    }

    fn limit(at: At, limit: Limit, value: u64, max: u64) -> PickleError {
        PickleError::LimitExceeded {
            at,
            limit,
            value,
            max,
        }
    }

    fn charge(&mut self, at: At, units: u64) -> Result<(), PickleError> {
        self.work = self.work.saturating_add(units);
        if self.work > self.limits.max_work {
            return Err(Self::limit(
                at,
                Limit::Work,
                self.work,
                self.limits.max_work,
            ));
        }
        Ok(())
    }

    fn check_depth(&self, at: At, depth: u32) -> Result<(), PickleError> {
        if depth as usize > self.limits.max_depth {
            return Err(Self::limit(
                at,
                Limit::Depth,
                depth.into(),
                self.limits.max_depth as u64,
            ));
        }
        Ok(())
    }

    fn check_len(&self, at: At, len: usize) -> Result<(), PickleError> {
        if len > self.limits.max_container_len {
            return Err(Self::limit(
                at,
                Limit::ContainerLen,
                len as u64,
                self.limits.max_container_len as u64,
            ));
        }
        Ok(())
    }

    fn depth_of(&self, id: ValueId) -> u32 {
        self.depth.get(id.index()).copied().unwrap_or(1)
    }

    /// Add a node whose depth is one more than its deepest child.
    fn alloc(&mut self, at: At, value: Value) -> Result<ValueId, PickleError> {
        if self.arena.len() >= self.max_nodes {
            return Err(Self::limit(
                at,
                Limit::Nodes,
                self.arena.len() as u64 + 1,
                self.max_nodes as u64,
            ));
        }
        let mut d = 0u32;
        value.for_each_child(|c| d = d.max(self.depth_of(c)));
        let d = d.saturating_add(1);
        self.check_depth(at, d)?;
        self.depth.push(d);
        Ok(self.arena.push(value))
    }

    fn push_new(&mut self, at: At, value: Value) -> Result<(), PickleError> {
        let id = self.alloc(at, value)?;
        self.stack.push(id);
        Ok(())
    }

    /// Bottom of the current stack segment (the last MARK, or 0).
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self, at: At) -> Result<ValueId, PickleError> {
        if self.stack.len() <= self.fence() {
            return Err(PickleError::StackUnderflow { at });
        }
        self.stack.pop().ok_or(PickleError::StackUnderflow { at })
    }

    fn top(&self, at: At) -> Result<ValueId, PickleError> {
        if self.stack.len() <= self.fence() {
            return Err(PickleError::StackUnderflow { at });
        }
        self.stack
            .last()
            .copied()
            .ok_or(PickleError::StackUnderflow { at })
    }

    /// Pop the last MARK and return the stack length it recorded.
    fn pop_mark(&mut self, at: At) -> Result<usize, PickleError> {
        let m = self.marks.pop().ok_or(PickleError::MissingMark { at })?;
        // Marks never exceed the stack length: items below a MARK cannot be
        // popped while it is open.
        Ok(m.min(self.stack.len()))
    }

    /// Pop the last MARK and the items above it.
    fn take_marked(&mut self, at: At) -> Result<Vec<ValueId>, PickleError> {
        let m = self.pop_mark(at)?;
        let items = self.stack.split_off(m);
        self.charge(at, items.len() as u64)?;
        self.check_len(at, items.len())?;
        Ok(items)
    }

    fn pairs(at: At, items: Vec<ValueId>) -> Result<Vec<(ValueId, ValueId)>, PickleError> {
        if items.len() % 2 != 0 {
            return Err(PickleError::OddItems {
                at,
                count: items.len() as u64,
            });
        }
        Ok(items.chunks_exact(2).map(|c| (c[0], c[1])).collect())
    }

    /// Raise the depth of `target` after `children` were added to it.
    fn deepen(
        &mut self,
        at: At,
        target: ValueId,
        children: impl Iterator<Item = ValueId>,
    ) -> Result<(), PickleError> {
        let mut d = self.depth_of(target);
        for c in children {
            if c != target {
                d = d.max(self.depth_of(c).saturating_add(1));
            }
        }
        self.check_depth(at, d)?;
        if let Some(slot) = self.depth.get_mut(target.index()) {
            *slot = d;
        }
        Ok(())
    }

    /// Move the content of `target` to a new node and return its id; the
    /// caller then stores a wrapper at `target`, so identity is kept.
    fn move_out(&mut self, at: At, target: ValueId) -> Result<ValueId, PickleError> {
        if self.arena.len() >= self.max_nodes {
            return Err(Self::limit(
                at,
                Limit::Nodes,
                self.arena.len() as u64 + 1,
                self.max_nodes as u64,
            ));
        }
        let old = match self.arena.values_mut().get_mut(target.index()) {
            Some(slot) => std::mem::replace(slot, Value::None),
            None => return Err(PickleError::StackUnderflow { at }),
        };
        let d = self.depth_of(target);
        self.depth.push(d);
        Ok(self.arena.push(old))
    }

    fn set(&mut self, target: ValueId, value: Value) {
        if let Some(slot) = self.arena.values_mut().get_mut(target.index()) {
            *slot = value;
        }
    }

    /// APPEND/APPENDS: items are appended to the object at `stack[x - 1]`
    /// (`do_append` in C).
    fn append(&mut self, at: At, x: usize) -> Result<(), PickleError> {
        let len = self.stack.len();
        if x > len || x <= self.fence() {
            return Err(PickleError::StackUnderflow { at });
        }
        if x == len {
            return Ok(());
        }
        let target = self.stack[x - 1];
        let items = self.stack.split_off(x);
        self.charge(at, items.len() as u64)?;
        self.deepen(at, target, items.iter().copied())?;
        match self.arena.values_mut().get_mut(target.index()) {
            Some(Value::List(list)) | Some(Value::Appends { items: list, .. }) => {
                let n = list.len().saturating_add(items.len());
                if n > self.limits.max_container_len {
                    return Err(Self::limit(
                        at,
                        Limit::ContainerLen,
                        n as u64,
                        self.limits.max_container_len as u64,
                    ));
                }
                list.extend(items);
                Ok(())
            }
            _ => {
                self.check_len(at, items.len())?;
                let obj = self.move_out(at, target)?;
                self.set(target, Value::Appends { obj, items });
                Ok(())
            }
        }
    }

    /// SETITEM/SETITEMS (`do_setitems` in C).
    fn setitems(&mut self, at: At, x: usize) -> Result<(), PickleError> {
        let len = self.stack.len();
        if x > len || x <= self.fence() {
            return Err(PickleError::StackUnderflow { at });
        }
        if (len - x) % 2 != 0 {
            return Err(PickleError::OddItems {
                at,
                count: (len - x) as u64,
            });
        }
        if x == len {
            return Ok(());
        }
        let target = self.stack[x - 1];
        let items = self.stack.split_off(x);
        self.charge(at, items.len() as u64)?;
        self.deepen(at, target, items.iter().copied())?;
        let pairs = Self::pairs(at, items)?;
        match self.arena.values_mut().get_mut(target.index()) {
            Some(Value::Dict(dict)) | Some(Value::SetItems { items: dict, .. }) => {
                let n = dict.len().saturating_add(pairs.len());
                if n > self.limits.max_container_len {
                    return Err(Self::limit(
                        at,
                        Limit::ContainerLen,
                        n as u64,
                        self.limits.max_container_len as u64,
                    ));
                }
                dict.extend(pairs);
                Ok(())
            }
            _ => {
                self.check_len(at, pairs.len())?;
                let obj = self.move_out(at, target)?;
                self.set(target, Value::SetItems { obj, items: pairs });
                Ok(())
            }
        }
    }

    fn additems(&mut self, at: At) -> Result<(), PickleError> {
        let x = self.pop_mark(at)?;
        let len = self.stack.len();
        if x > len || x <= self.fence() {
            return Err(PickleError::StackUnderflow { at });
        }
        if x == len {
            return Ok(());
        }
        let target = self.stack[x - 1];
        let items = self.stack.split_off(x);
        self.charge(at, items.len() as u64)?;
        self.deepen(at, target, items.iter().copied())?;
        match self.arena.values_mut().get_mut(target.index()) {
            Some(Value::Set(set)) | Some(Value::AddItems { items: set, .. }) => {
                let n = set.len().saturating_add(items.len());
                if n > self.limits.max_container_len {
                    return Err(Self::limit(
                        at,
                        Limit::ContainerLen,
                        n as u64,
                        self.limits.max_container_len as u64,
                    ));
                }
                set.extend(items);
                Ok(())
            }
            _ => {
                self.check_len(at, items.len())?;
                let obj = self.move_out(at, target)?;
                self.set(target, Value::AddItems { obj, items });
                Ok(())
            }
        }
    }

    fn memo_put(&mut self, at: At, index: u64) -> Result<(), PickleError> {
        let top = self.top(at)?;
        let len = self.memo.len();
        match self.memo.entry(index) {
            Entry::Occupied(mut e) => {
                e.insert(top);
            }
            Entry::Vacant(e) => {
                if len >= self.limits.max_memo {
                    return Err(Self::limit(
                        at,
                        Limit::Memo,
                        len as u64 + 1,
                        self.limits.max_memo as u64,
                    ));
                }
                e.insert(top);
            }
        }
        Ok(())
    }

    fn memo_get(&mut self, at: At, index: u64) -> Result<(), PickleError> {
        self.charge(at, 1)?;
        let id = *self
            .memo
            .get(&index)
            .ok_or(PickleError::MemoMissing { at, index })?;
        self.stack.push(id);
        Ok(())
    }

    fn str_value(s: &[u8]) -> Value {
        match std::str::from_utf8(s) {
            Ok(t) => Value::Str(t.to_owned()),
            Err(_) => Value::Bytes(s.to_vec()),
        }
    }

    /// Run one op; `Some(root)` at STOP.
    fn step(&mut self, op: &Op<'_>) -> Result<Option<ValueId>, PickleError> {
        use Opcode::*;
        let at = op.at();
        self.charge(at, 1)?;
        match (op.opcode, &op.arg) {
            (PROTO, Arg::Uint(v)) => {
                let version = (*v).min(255) as u8;
                if version > 5 {
                    return Err(PickleError::UnsupportedProtocol { at, version });
                }
                self.protocol = Some(version);
            }
            (FRAME, _) => {}
            (STOP, _) => return self.pop(at).map(Some),
            (MARK, _) => {
                if self.marks.len() >= self.limits.max_depth {
                    return Err(Self::limit(
                        at,
                        Limit::Depth,
                        self.marks.len() as u64 + 1,
                        self.limits.max_depth as u64,
                    ));
                }
                self.marks.push(self.stack.len());
            }
            (POP, _) => {
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop(at)?;
                }
            }
            (POP_MARK, _) => {
                let m = self.pop_mark(at)?;
                self.stack.truncate(m);
            }
            (DUP, _) => {
                let top = self.top(at)?;
                self.stack.push(top);
            }
            (NONE, _) => self.push_new(at, Value::None)?,
            (NEWTRUE, _) => self.push_new(at, Value::Bool(true))?,
            (NEWFALSE, _) => self.push_new(at, Value::Bool(false))?,
            (_, Arg::Int(v)) => self.push_new(at, Value::Int(*v))?,
            (_, Arg::Bool(b)) => self.push_new(at, Value::Bool(*b))?,
            (_, Arg::Long(bytes)) => self.push_new(at, int_from_le_signed(bytes))?,
            (_, Arg::Float(f)) => self.push_new(at, Value::Float(*f))?,
            (STRING | BINSTRING | SHORT_BINSTRING, Arg::Bytes(b)) => {
                self.push_new(at, Self::str_value(b))?
            }
            (BYTEARRAY8, Arg::Bytes(b)) => self.push_new(at, Value::ByteArray(b.to_vec()))?,
            (_, Arg::Bytes(b)) => self.push_new(at, Value::Bytes(b.to_vec()))?,
            (PERSID, Arg::Str(s)) => {
                let pid = self.alloc(at, Value::Str(s.to_string()))?;
                self.push_new(at, Value::PersistentId(pid))?;
            }
            (_, Arg::Str(s)) => self.push_new(at, Value::Str(s.to_string()))?,
            (BINPERSID, _) => {
                let pid = self.pop(at)?;
                self.push_new(at, Value::PersistentId(pid))?;
            }
            (NEXT_BUFFER, _) => {
                let index = self.buffers;
                self.buffers += 1;
                self.push_new(at, Value::OutOfBandBuffer(index))?;
            }
            (READONLY_BUFFER, _) => {
                self.top(at)?;
            }
            (EMPTY_LIST, _) => self.push_new(at, Value::List(Vec::new()))?,
            (EMPTY_TUPLE, _) => self.push_new(at, Value::Tuple(Vec::new()))?,
            (EMPTY_DICT, _) => self.push_new(at, Value::Dict(Vec::new()))?,
            (EMPTY_SET, _) => self.push_new(at, Value::Set(Vec::new()))?,
            (LIST, _) => {
                let items = self.take_marked(at)?;
                self.push_new(at, Value::List(items))?;
            }
            (TUPLE, _) => {
                let items = self.take_marked(at)?;
                self.push_new(at, Value::Tuple(items))?;
            }
            (FROZENSET, _) => {
                let items = self.take_marked(at)?;
                self.push_new(at, Value::FrozenSet(items))?;
            }
            (DICT, _) => {
                let items = self.take_marked(at)?;
                let pairs = Self::pairs(at, items)?;
                self.push_new(at, Value::Dict(pairs))?;
            }
            (TUPLE1 | TUPLE2 | TUPLE3, _) => {
                let n = match op.opcode {
                    TUPLE1 => 1,
                    TUPLE2 => 2,
                    _ => 3,
                };
                if self.stack.len() < self.fence() + n {
                    return Err(PickleError::StackUnderflow { at });
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.charge(at, n as u64)?;
                self.push_new(at, Value::Tuple(items))?;
            }
            (APPEND, _) => {
                let x = self.stack.len().saturating_sub(1);
                if self.stack.is_empty() {
                    return Err(PickleError::StackUnderflow { at });
                }
                self.append(at, x)?;
            }
            (APPENDS, _) => {
                let x = self.pop_mark(at)?;
                self.append(at, x)?;
            }
            (SETITEM, _) => {
                if self.stack.len() < 2 {
                    return Err(PickleError::StackUnderflow { at });
                }
                self.setitems(at, self.stack.len() - 2)?;
            }
            (SETITEMS, _) => {
                let x = self.pop_mark(at)?;
                self.setitems(at, x)?;
            }
            (ADDITEMS, _) => self.additems(at)?,
            (GLOBAL, Arg::Global { module, name }) => self.push_new(
                at,
                Value::Global {
                    module: (*module).to_owned(),
                    name: (*name).to_owned(),
                },
            )?,
            (STACK_GLOBAL, _) => {
                let name = self.pop(at)?;
                let module = self.pop(at)?;
                match (&self.arena[module], &self.arena[name]) {
                    (Value::Str(m), Value::Str(n)) => {
                        let g = Value::Global {
                            module: m.clone(),
                            name: n.clone(),
                        };
                        self.push_new(at, g)?;
                    }
                    (m, n) => {
                        return Err(PickleError::UnresolvableGlobal {
                            at,
                            module: m.kind(),
                            name: n.kind(),
                        });
                    }
                }
            }
            (INST, Arg::Global { module, name }) => {
                let items = self.take_marked(at)?;
                let callable = self.alloc(
                    at,
                    Value::Global {
                        module: (*module).to_owned(),
                        name: (*name).to_owned(),
                    },
                )?;
                let args = self.alloc(at, Value::Tuple(items))?;
                self.push_new(at, Value::Reduce { callable, args })?;
            }
            (OBJ, _) => {
                let mut items = self.take_marked(at)?;
                if items.is_empty() {
                    return Err(PickleError::StackUnderflow { at });
                }
                let callable = items.remove(0);
                let args = self.alloc(at, Value::Tuple(items))?;
                self.push_new(at, Value::Reduce { callable, args })?;
            }
            (REDUCE, _) => {
                let args = self.pop(at)?;
                let callable = self.pop(at)?;
                self.push_new(at, Value::Reduce { callable, args })?;
            }
            (NEWOBJ, _) => {
                let args = self.pop(at)?;
                let cls = self.pop(at)?;
                self.push_new(
                    at,
                    Value::NewObj {
                        cls,
                        args,
                        kwargs: None,
                    },
                )?;
            }
            (NEWOBJ_EX, _) => {
                let kwargs = self.pop(at)?;
                let args = self.pop(at)?;
                let cls = self.pop(at)?;
                self.push_new(
                    at,
                    Value::NewObj {
                        cls,
                        args,
                        kwargs: Some(kwargs),
                    },
                )?;
            }
            (BUILD, _) => {
                let state = self.pop(at)?;
                let target = self.top(at)?;
                self.deepen(at, target, std::iter::once(state))?;
                let obj = self.move_out(at, target)?;
                self.set(target, Value::Build { obj, state });
            }
            (EXT1 | EXT2 | EXT4, Arg::Uint(code)) => {
                // CPython reads EXT4 as a signed 32-bit value.
                let signed = if op.opcode == EXT4 {
                    i64::from(*code as u32 as i32)
                } else {
                    *code as i64
                };
                if signed <= 0 {
                    return Err(PickleError::BadExtensionCode { at, code: signed });
                }
                self.push_new(at, Value::Ext(signed as u32))?;
            }
            (GET | BINGET | LONG_BINGET, Arg::Memo(i)) => self.memo_get(at, *i)?,
            (PUT | BINPUT | LONG_BINPUT, Arg::Memo(i)) => self.memo_put(at, *i)?,
            (MEMOIZE, _) => self.memo_put(at, self.memo.len() as u64)?,
            (opcode, arg) => {
                // The reader pairs every opcode with its argument kind; this
                // arm is reached only if that pairing changes.
                return Err(PickleError::BadArgument {
                    at,
                    reason: format!("unexpected argument {arg:?} for {}", opcode.name()),
                });
            }
        }
        Ok(None)
    }
}
