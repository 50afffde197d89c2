//! The one pickle stack machine that both readers run: the stack, MARKs, the
//! memo, every [`Limits`] bound and the opcode dispatch over [`Op`]s. What a
//! value *is* belongs to a [`Domain`]: the [`Machine`](crate::Machine) builds
//! [`Value`](crate::Value)s in an arena, the [`scan`](crate::scan()) builds
//! symbolic values and records globals. Both therefore fail on the same
//! pickles at the same byte offset with the same error.
//!
//! The rules are CPython's C unpickler (`Modules/_pickle.c`): `POP` on an
//! empty segment removes the MARK; items below the last MARK cannot be
//! popped; an empty APPENDS/SETITEMS/ADDITEMS is a no-op; extra values left
//! on the stack at STOP are ignored.
//!
//! The core keeps, for every value id, the facts the limits need whatever the
//! domain stores: its depth (for `max_depth`), whether it is a list, dict or
//! set (or an object wrapped after APPEND/SETITEM/ADDITEMS) and its length
//! (for `max_container_len`). Ids are dense and handed out by the core only,
//! so `max_nodes` counts the same values for every domain.

use std::collections::HashMap;
use std::marker::PhantomData;

use crate::chunked::Chunked;
use crate::error::{At, Limit, PickleError};
use crate::machine::Limits;
use crate::ops::{Arg, Op, Opcode};

/// A value id: the index of the value in its domain's storage.
pub(crate) type Id = u32;

/// A container built from the items above a MARK (or TUPLE1/2/3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seq {
    List,
    Tuple,
    FrozenSet,
}

/// The opcodes that call or instantiate something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Reduce,
    NewObj,
    NewObjEx,
    Inst,
    Obj,
}

/// The opcodes that add items to an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extend {
    Append,
    Appends,
    SetItem,
    SetItems,
    AddItems,
}

impl Extend {
    /// Items come in key/value pairs.
    fn pairs(self) -> bool {
        matches!(self, Extend::SetItem | Extend::SetItems)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Extend::Append => "APPEND",
            Extend::Appends => "APPENDS",
            Extend::SetItem => "SETITEM",
            Extend::SetItems => "SETITEMS",
            Extend::AddItems => "ADDITEMS",
        }
    }
}

/// What a reader makes of the values: the hooks the core calls once it has
/// moved the stack, checked every limit and handed out the ids. Hooks are
/// called in stream order; a hook never sees an id that was not stored.
pub(crate) trait Domain<'a> {
    /// One value.
    type Value;
    /// Store the value of the next id (ids count up from 0 in store order).
    fn store(&mut self, value: Self::Value);
    /// Store the value of an id that [`Domain::free`] emptied earlier (the
    /// core hands freed ids out again).
    fn store_at(&mut self, id: Id, value: Self::Value);
    /// REDUCE's chance to take the call over: a value that stands for
    /// `callable(*args)` on its own, or `None` to make the call with
    /// [`Domain::call`]. When it takes the call, the core frees `callable`
    /// and `args` and everything only they hold ([`Domain::free`]).
    fn take_call(&mut self, at: At, callable: Id, args: Id) -> Option<Self::Value> {
        let _ = (at, callable, args);
        None
    }
    /// Drop the value of `id` (nothing refers to it any more) and append
    /// the ids it refers to, for the core to free in turn when nothing else
    /// holds them. Only called after [`Domain::take_call`] took a call.
    fn free(&mut self, id: Id, children: &mut Vec<Id>) {
        let _ = (id, children);
    }
    /// An empty buffer for the items of a new container (one that
    /// [`Domain::free`] gave back, when the domain keeps them).
    fn buffer(&mut self) -> Vec<Id> {
        Vec::new()
    }
    /// The content of `id`, moved out before a wrapper replaces it (BUILD,
    /// or APPEND/SETITEM/ADDITEMS on an object that is not a list, dict or
    /// set); the core stores it under a new id that `build`/`extend` get.
    fn take(&mut self, id: Id) -> Self::Value;
    /// A valid PROTO version.
    fn protocol(&mut self, version: u8);
    /// An op that pushes a value made from its argument alone: NONE,
    /// NEWTRUE/NEWFALSE, ints, floats, strings, bytes, EMPTY_LIST/TUPLE/
    /// DICT/SET, NEXT_BUFFER, and PERSID's text.
    fn literal(&mut self, op: &Op<'a>) -> Self::Value;
    /// LIST, TUPLE, TUPLE1/2/3, FROZENSET, and the argument tuple of INST/OBJ.
    fn sequence(&mut self, kind: Seq, items: Vec<Id>) -> Self::Value;
    /// DICT.
    fn dict(&mut self, pairs: Vec<(Id, Id)>) -> Self::Value;
    /// BINPERSID, or PERSID (`pid` is its text), `at.opcode` says which.
    fn persistent_id(&mut self, at: At, pid: Id) -> Self::Value;
    /// GLOBAL, and the callable of INST.
    fn global(&mut self, at: At, module: &str, name: &str) -> Self::Value;
    /// STACK_GLOBAL with its two operands.
    fn stack_global(&mut self, at: At, module: Id, name: Id) -> Result<Self::Value, PickleError>;
    /// EXT1/EXT2/EXT4 with a valid (positive) code.
    fn extension(&mut self, at: At, code: u32) -> Self::Value;
    /// REDUCE, NEWOBJ, NEWOBJ_EX, INST and OBJ; `args` is the argument
    /// (a tuple in valid pickles; for INST and OBJ a tuple the core built).
    fn call(
        &mut self,
        at: At,
        kind: Call,
        callable: Id,
        args: Id,
        kwargs: Option<Id>,
    ) -> Self::Value;
    /// APPEND(S), SETITEM(S) (`items` are key, value, key, value, ...) or
    /// ADDITEMS into `target`. `items` is empty for an empty segment (a
    /// no-op in CPython). `moved` is the new id of the target's old content
    /// when it is not a list, dict or set (or an object already wrapped by
    /// the same kind of opcode): the target becomes a wrapper.
    fn extend(&mut self, at: At, kind: Extend, target: Id, items: Vec<Id>, moved: Option<Id>);
    /// BUILD: `target` becomes a wrapper of its old content (`moved`) and
    /// `state`.
    fn build(&mut self, at: At, target: Id, state: Id, moved: Id);
}

/// What the limits need to know about one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    List,
    Dict,
    Set,
    /// An object that APPEND/APPENDS wrapped (CPython calls its `extend`).
    Appends,
    /// An object that SETITEM/SETITEMS wrapped.
    SetItems,
    /// An object that ADDITEMS wrapped.
    AddItems,
    Other,
    /// A freed id, waiting to be handed out again.
    Free,
}

/// 12 bytes per value: `len` fits a `u32` because the core clamps
/// [`Limits::max_container_len`] to `u32::MAX`.
#[derive(Debug, Clone, Copy)]
struct Meta {
    /// Build-time depth (1 for scalars), raised by mutations.
    depth: u32,
    shape: Shape,
    /// The value may be reached from more than one place: it was
    /// duplicated (DUP) or put in a memo entry that a GET reads. A taken
    /// call never frees it.
    shared: bool,
    /// Elements (pairs for dicts) when `shape` is a container.
    len: u32,
}

impl Meta {
    fn new(depth: u32, shape: Shape, len: usize) -> Meta {
        // Every len here passed check_len (at most u32::MAX).
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        Meta {
            depth,
            shape,
            shared: false,
            len,
        }
    }
}

/// The memo indices the pickle from `offset` reads; `passed` is given the
/// bytes read, a part at a time ([`Ops::memo_reads`](crate::ops::Ops::memo_reads)).
pub(crate) fn memo_reads(
    data: &[u8],
    offset: usize,
    limits: &Limits,
    passed: &mut dyn FnMut(&[u8]),
) -> Option<MemoReads> {
    let mut reads = Memo::default();
    crate::ops::Ops::at(data, offset, limits).memo_reads(|i| reads.insert(i, 0), passed)?;
    Some(MemoReads(reads))
}

/// The memo indices a pickle reads (GET, BINGET, LONG_BINGET), from a pass
/// over its ops before it runs ([`memo_reads`]): a value put only under
/// indices that are never read is held by nothing but its container. Kept
/// as a [`Memo`], so a lying index costs no memory here either.
#[derive(Default)]
pub(crate) struct MemoReads(Memo);

impl MemoReads {
    pub(crate) fn contains(&self, index: u64) -> bool {
        self.0.contains(index)
    }
}

/// The memo. Picklers number their entries 0, 1, 2, ... (MEMOIZE and the
/// PUTs that pickle writes), so those live in a vector indexed by number; an
/// index far from the others (a hand-written PUT 4000000000) goes to a map,
/// so a lying index costs no memory.
#[derive(Default)]
struct Memo {
    /// `Memo::FREE` where no entry is (ids are below `u32::MAX`, the core's
    /// bound on the number of values).
    dense: Vec<Id>,
    sparse: HashMap<u64, Id>,
    len: usize,
}

impl Memo {
    /// How far past the current end (and past twice the entry count) an
    /// index may lie and still go to the vector.
    const GAP: u64 = 64;
    /// A dense slot without an entry.
    const FREE: Id = Id::MAX;

    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: u64) -> Option<Id> {
        match usize::try_from(index).ok().and_then(|i| self.dense.get(i)) {
            Some(&id) if id != Self::FREE => Some(id),
            _ => self.sparse.get(&index).copied(),
        }
    }

    fn contains(&self, index: u64) -> bool {
        self.get(index).is_some()
    }

    fn insert(&mut self, index: u64, id: Id) {
        // The vector stays within twice the entries (plus a gap): a pickle
        // that numbers its entries sparsely fills the map instead.
        let bound = (self.dense.len() as u64 + Self::GAP).min(2 * self.len as u64 + Self::GAP);
        if index < bound && !self.sparse.contains_key(&index) {
            let i = index as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, Self::FREE);
            }
            if std::mem::replace(&mut self.dense[i], id) == Self::FREE {
                self.len += 1;
            }
        } else if self.sparse.insert(index, id).is_none() {
            self.len += 1;
        }
    }
}

/// The stack machine over one [`Domain`].
pub(crate) struct Core<'l, 'a, D> {
    limits: &'l Limits,
    pub(crate) domain: D,
    meta: Chunked<Meta>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: Memo,
    /// Which memo indices are read; `None`: treat every one as read.
    reads: Option<MemoReads>,
    /// Ids freed after a taken call, handed out again first.
    free: Vec<Id>,
    /// Values made so far, freed ones included (what `max_nodes` bounds,
    /// the same count for every domain).
    made: usize,
    work: u64,
    max_nodes: usize,
    /// [`Limits::max_container_len`], at most `u32::MAX`.
    max_len: usize,
    data: PhantomData<&'a [u8]>,
}

impl<'l, 'a, D: Domain<'a>> Core<'l, 'a, D> {
    pub(crate) fn new(limits: &'l Limits, domain: D) -> Self {
        Core {
            limits,
            domain,
            meta: Chunked::default(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: Memo::default(),
            reads: None,
            free: Vec::new(),
            made: 0,
            work: 0,
            max_nodes: limits.max_nodes.min(u32::MAX as usize),
            max_len: limits.max_container_len.min(u32::MAX as usize),
            data: PhantomData,
        }
    }

    /// Tell the core which memo indices the pickle reads ([`memo_reads`]),
    /// so that values put only under unread indices can be freed when a
    /// call that holds them is taken.
    pub(crate) fn with_memo_reads(mut self, reads: Option<MemoReads>) -> Self {
        self.reads = reads;
        self
    }

    /// Total work spent so far (see [`Limits::max_work`]).
    pub(crate) fn work(&self) -> u64 {
        self.work
    }

    pub(crate) fn into_domain(self) -> D {
        self.domain
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
        if len > self.max_len {
            return Err(Self::limit(
                at,
                Limit::ContainerLen,
                len as u64,
                self.max_len as u64,
            ));
        }
        Ok(())
    }

    fn check_nodes(&self, at: At) -> Result<(), PickleError> {
        if self.made >= self.max_nodes {
            return Err(Self::limit(
                at,
                Limit::Nodes,
                self.made as u64 + 1,
                self.max_nodes as u64,
            ));
        }
        Ok(())
    }

    fn depth_of(&self, id: Id) -> u32 {
        self.meta.get(id as usize).map_or(1, |m| m.depth)
    }

    /// Check that one more value, with these children, fits the limits;
    /// its depth.
    fn reserve(&self, at: At, children: &[Id]) -> Result<u32, PickleError> {
        self.check_nodes(at)?;
        let d = children
            .iter()
            .map(|&c| self.depth_of(c))
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        self.check_depth(at, d)?;
        Ok(d)
    }

    /// Store a value that [`Self::reserve`] admitted.
    fn commit(&mut self, depth: u32, shape: Shape, len: usize, value: D::Value) -> Id {
        self.made += 1;
        if let Some(id) = self.free.pop()
            && let Some(m) = self.meta.get_mut(id as usize)
        {
            *m = Meta::new(depth, shape, len);
            self.domain.store_at(id, value);
            return id;
        }
        self.meta.push(Meta::new(depth, shape, len));
        self.domain.store(value);
        // meta.len() <= made <= max_nodes <= u32::MAX: the cast is exact.
        (self.meta.len() - 1) as Id
    }

    /// Mark `id` as reachable from more than one place.
    fn share(&mut self, id: Id) {
        if let Some(m) = self.meta.get_mut(id as usize) {
            m.shared = true;
        }
    }

    /// Free `root` and what only it holds, after a taken call: every value
    /// not [`Meta::shared`] has exactly one holder (a second one needs DUP
    /// or a memo read, which share it), so nothing else refers to them.
    fn release(&mut self, root: Id) {
        // The ids to look at go on the free list's end, past `start`, and
        // are replaced there by those that are freed: no other buffer.
        let start = self.free.len();
        self.free.push(root);
        let mut next = start;
        while next < self.free.len() {
            let id = self.free[next];
            let freed = match self.meta.get_mut(id as usize) {
                Some(m) if !m.shared && m.shape != Shape::Free => {
                    *m = Meta::new(0, Shape::Free, 0);
                    true
                }
                _ => false,
            };
            if freed {
                // Its children go to the end, to be looked at in turn.
                self.domain.free(id, &mut self.free);
                next += 1;
            } else {
                self.free.swap_remove(next);
            }
        }
    }

    /// Reserve, make and store a value without children-dependent shape.
    fn alloc(
        &mut self,
        at: At,
        children: &[Id],
        make: impl FnOnce(&mut D) -> D::Value,
    ) -> Result<Id, PickleError> {
        let d = self.reserve(at, children)?;
        let v = make(&mut self.domain);
        Ok(self.commit(d, Shape::Other, 0, v))
    }

    fn push(
        &mut self,
        at: At,
        children: &[Id],
        make: impl FnOnce(&mut D) -> D::Value,
    ) -> Result<(), PickleError> {
        let id = self.alloc(at, children, make)?;
        self.stack.push(id);
        Ok(())
    }

    /// Bottom of the current stack segment (the last MARK, or 0).
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self, at: At) -> Result<Id, PickleError> {
        if self.stack.len() <= self.fence() {
            return Err(PickleError::StackUnderflow { at });
        }
        self.stack.pop().ok_or(PickleError::StackUnderflow { at })
    }

    fn top(&self, at: At) -> Result<Id, PickleError> {
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
    fn take_marked(&mut self, at: At) -> Result<Vec<Id>, PickleError> {
        let m = self.pop_mark(at)?;
        let mut items = self.domain.buffer();
        items.extend(self.stack.drain(m..));
        self.charge(at, items.len() as u64)?;
        self.check_len(at, items.len())?;
        Ok(items)
    }

    /// Raise the depth of `target` after `children` were added to it.
    fn deepen(&mut self, at: At, target: Id, children: &[Id]) -> Result<(), PickleError> {
        let mut d = self.depth_of(target);
        for &c in children {
            if c != target {
                d = d.max(self.depth_of(c).saturating_add(1));
            }
        }
        self.check_depth(at, d)?;
        if let Some(m) = self.meta.get_mut(target as usize) {
            m.depth = d;
        }
        Ok(())
    }

    /// Move the content of `target` to a new id, which is returned; the
    /// target becomes a wrapper of `shape` holding `len` elements.
    fn move_out(
        &mut self,
        at: At,
        target: Id,
        shape: Shape,
        len: usize,
    ) -> Result<Id, PickleError> {
        self.check_nodes(at)?;
        let Some(&old) = self.meta.get(target as usize) else {
            return Err(PickleError::StackUnderflow { at });
        };
        let value = self.domain.take(target);
        let moved = self.commit(old.depth, old.shape, old.len as usize, value);
        if let Some(m) = self.meta.get_mut(target as usize) {
            *m = Meta {
                shape,
                len: Meta::new(0, shape, len).len,
                ..*m
            };
        }
        Ok(moved)
    }

    /// APPEND(S), SETITEM(S), ADDITEMS: the items from `x` up go into the
    /// object at `x - 1` (`do_append` / `do_setitems` in C).
    fn extend(&mut self, at: At, kind: Extend, x: usize) -> Result<(), PickleError> {
        let len = self.stack.len();
        if x > len || x <= self.fence() {
            return Err(PickleError::StackUnderflow { at });
        }
        if kind.pairs() && !(len - x).is_multiple_of(2) {
            return Err(PickleError::OddItems {
                at,
                count: (len - x) as u64,
            });
        }
        let target = self.stack[x - 1];
        if x == len {
            self.domain.extend(at, kind, target, Vec::new(), None);
            return Ok(());
        }
        let items = self.stack.split_off(x);
        self.charge(at, items.len() as u64)?;
        self.deepen(at, target, &items)?;
        let n = if kind.pairs() {
            items.len() / 2
        } else {
            items.len()
        };
        let (own, wrapper) = match kind {
            Extend::Append | Extend::Appends => (Shape::List, Shape::Appends),
            Extend::SetItem | Extend::SetItems => (Shape::Dict, Shape::SetItems),
            Extend::AddItems => (Shape::Set, Shape::AddItems),
        };
        let meta = self.meta.get(target as usize).copied();
        let moved = match meta {
            Some(m) if m.shape == own || m.shape == wrapper => {
                let total = (m.len as usize).saturating_add(n);
                self.check_len(at, total)?;
                if let Some(m) = self.meta.get_mut(target as usize) {
                    m.len = Meta::new(0, m.shape, total).len;
                }
                None
            }
            _ => {
                self.check_len(at, n)?;
                Some(self.move_out(at, target, wrapper, n)?)
            }
        };
        self.domain.extend(at, kind, target, items, moved);
        Ok(())
    }

    fn memo_put(&mut self, at: At, index: u64) -> Result<(), PickleError> {
        let top = self.top(at)?;
        let len = self.memo.len();
        if !self.memo.contains(index) && len >= self.limits.max_memo {
            return Err(Self::limit(
                at,
                Limit::Memo,
                len as u64 + 1,
                self.limits.max_memo as u64,
            ));
        }
        self.memo.insert(index, top);
        if self.reads.as_ref().is_none_or(|r| r.contains(index)) {
            self.share(top);
        }
        Ok(())
    }

    fn memo_get(&mut self, at: At, index: u64) -> Result<(), PickleError> {
        self.charge(at, 1)?;
        let id = self
            .memo
            .get(index)
            .ok_or(PickleError::MemoMissing { at, index })?;
        self.stack.push(id);
        Ok(())
    }

    /// A container of `kind` from `items`.
    fn sequence(&mut self, at: At, kind: Seq, items: Vec<Id>) -> Result<Id, PickleError> {
        let d = self.reserve(at, &items)?;
        let (shape, len) = match kind {
            Seq::List => (Shape::List, items.len()),
            _ => (Shape::Other, 0),
        };
        let v = self.domain.sequence(kind, items);
        Ok(self.commit(d, shape, len, v))
    }

    /// Run one op; `Some(root)` at STOP.
    pub(crate) fn step(&mut self, op: &Op<'a>) -> Result<Option<Id>, PickleError> {
        use Opcode::*;
        let at = op.at();
        self.charge(at, 1)?;
        match (op.opcode, &op.arg) {
            (PROTO, Arg::Uint(v)) => {
                let version = (*v).min(255) as u8;
                if version > 5 {
                    return Err(PickleError::UnsupportedProtocol { at, version });
                }
                self.domain.protocol(version);
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
                self.share(top);
                self.stack.push(top);
            }
            (READONLY_BUFFER, _) => {
                self.top(at)?;
            }
            (PERSID, Arg::Str(_)) => {
                let pid = self.alloc(at, &[], |d| d.literal(op))?;
                self.push(at, &[pid], |d| d.persistent_id(at, pid))?;
            }
            (BINPERSID, _) => {
                let pid = self.pop(at)?;
                self.push(at, &[pid], |d| d.persistent_id(at, pid))?;
            }
            (EMPTY_LIST | EMPTY_DICT | EMPTY_SET, _) => {
                let d = self.reserve(at, &[])?;
                let shape = match op.opcode {
                    EMPTY_LIST => Shape::List,
                    EMPTY_DICT => Shape::Dict,
                    _ => Shape::Set,
                };
                let v = self.domain.literal(op);
                let id = self.commit(d, shape, 0, v);
                self.stack.push(id);
            }
            (NONE | NEWTRUE | NEWFALSE | EMPTY_TUPLE | NEXT_BUFFER, _)
            | (
                _,
                Arg::Int(_)
                | Arg::Bool(_)
                | Arg::Long(_)
                | Arg::Float(_)
                | Arg::Bytes(_)
                | Arg::Str(_),
            ) => self.push(at, &[], |d| d.literal(op))?,
            (LIST | TUPLE | FROZENSET, _) => {
                let items = self.take_marked(at)?;
                let kind = match op.opcode {
                    LIST => Seq::List,
                    TUPLE => Seq::Tuple,
                    _ => Seq::FrozenSet,
                };
                let id = self.sequence(at, kind, items)?;
                self.stack.push(id);
            }
            (DICT, _) => {
                let items = self.take_marked(at)?;
                if items.len() % 2 != 0 {
                    return Err(PickleError::OddItems {
                        at,
                        count: items.len() as u64,
                    });
                }
                let d = self.reserve(at, &items)?;
                let pairs: Vec<(Id, Id)> = items.chunks_exact(2).map(|c| (c[0], c[1])).collect();
                let len = pairs.len();
                let v = self.domain.dict(pairs);
                let id = self.commit(d, Shape::Dict, len, v);
                self.stack.push(id);
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
                let mut items = self.domain.buffer();
                items.extend(self.stack.drain(self.stack.len() - n..));
                self.charge(at, n as u64)?;
                let id = self.sequence(at, Seq::Tuple, items)?;
                self.stack.push(id);
            }
            (APPEND, _) => {
                if self.stack.is_empty() {
                    return Err(PickleError::StackUnderflow { at });
                }
                self.extend(at, Extend::Append, self.stack.len() - 1)?;
            }
            (APPENDS, _) => {
                let x = self.pop_mark(at)?;
                self.extend(at, Extend::Appends, x)?;
            }
            (SETITEM, _) => {
                if self.stack.len() < 2 {
                    return Err(PickleError::StackUnderflow { at });
                }
                self.extend(at, Extend::SetItem, self.stack.len() - 2)?;
            }
            (SETITEMS, _) => {
                let x = self.pop_mark(at)?;
                self.extend(at, Extend::SetItems, x)?;
            }
            (ADDITEMS, _) => {
                let x = self.pop_mark(at)?;
                self.extend(at, Extend::AddItems, x)?;
            }
            (GLOBAL, Arg::Global { module, name }) => {
                self.push(at, &[], |d| d.global(at, module, name))?
            }
            (STACK_GLOBAL, _) => {
                let name = self.pop(at)?;
                let module = self.pop(at)?;
                let v = self.domain.stack_global(at, module, name)?;
                let d = self.reserve(at, &[])?;
                let id = self.commit(d, Shape::Other, 0, v);
                self.stack.push(id);
            }
            (INST, Arg::Global { module, name }) => {
                let items = self.take_marked(at)?;
                let callable = self.alloc(at, &[], |d| d.global(at, module, name))?;
                let args = self.sequence(at, Seq::Tuple, items)?;
                self.push(at, &[callable, args], |d| {
                    d.call(at, Call::Inst, callable, args, None)
                })?;
            }
            (OBJ, _) => {
                let mut items = self.take_marked(at)?;
                if items.is_empty() {
                    return Err(PickleError::StackUnderflow { at });
                }
                let callable = items.remove(0);
                let args = self.sequence(at, Seq::Tuple, items)?;
                self.push(at, &[callable, args], |d| {
                    d.call(at, Call::Obj, callable, args, None)
                })?;
            }
            (REDUCE, _) => {
                let args = self.pop(at)?;
                let callable = self.pop(at)?;
                let d = self.reserve(at, &[callable, args])?;
                let value = match self.domain.take_call(at, callable, args) {
                    Some(v) => {
                        self.release(callable);
                        self.release(args);
                        v
                    }
                    None => self.domain.call(at, Call::Reduce, callable, args, None),
                };
                let id = self.commit(d, Shape::Other, 0, value);
                self.stack.push(id);
            }
            (NEWOBJ, _) => {
                let args = self.pop(at)?;
                let callable = self.pop(at)?;
                self.push(at, &[callable, args], |d| {
                    d.call(at, Call::NewObj, callable, args, None)
                })?;
            }
            (NEWOBJ_EX, _) => {
                let kwargs = self.pop(at)?;
                let args = self.pop(at)?;
                let cls = self.pop(at)?;
                self.push(at, &[cls, args, kwargs], |d| {
                    d.call(at, Call::NewObjEx, cls, args, Some(kwargs))
                })?;
            }
            (BUILD, _) => {
                let state = self.pop(at)?;
                let target = self.top(at)?;
                self.deepen(at, target, &[state])?;
                let moved = self.move_out(at, target, Shape::Other, 0)?;
                self.domain.build(at, target, state, moved);
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
                self.push(at, &[], |d| d.extension(at, signed as u32))?;
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

#[cfg(test)]
mod memo_tests {
    use super::*;

    #[test]
    fn dense_and_sparse_indices_behave_as_one_map() {
        let mut m = Memo::default();
        let ids: Vec<Id> = vec![10, 11, 12, 13];
        m.insert(0, ids[0]);
        m.insert(1, ids[1]);
        // A lying index goes to the map: the vector does not grow to it.
        m.insert(4_000_000_000, ids[2]);
        assert!(m.dense.len() <= 2 * m.len() + Memo::GAP as usize);
        assert_eq!(m.get(4_000_000_000), Some(ids[2]));
        // An index stored in the map before the vector reached it is found.
        m.insert(100, ids[3]);
        for i in 2..100 {
            m.insert(i, ids[0]);
        }
        assert_eq!(m.get(100), Some(ids[3]));
        assert_eq!(m.len(), 102);
        // Overwriting does not count twice.
        m.insert(1, ids[3]);
        m.insert(100, ids[1]);
        assert_eq!(
            (m.get(1), m.get(100), m.len()),
            (Some(ids[3]), Some(ids[1]), 102)
        );
        assert_eq!(m.get(101), None);
        assert!(!m.contains(5_000));
    }
}
