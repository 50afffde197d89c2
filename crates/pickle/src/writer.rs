//! A protocol-2 pickle writer for [`Value`] graphs, in the forms
//! `torch.load(weights_only=True)` accepts.
//!
//! The output uses only the opcodes CPython's protocol-2 pickler emits
//! (docs/formats/pytorch.md, 'Pickle opcodes'): PROTO, GLOBAL, BINPUT/LONG_BINPUT,
//! BINGET/LONG_BINGET, MARK, EMPTY_TUPLE, TUPLE1-3, TUPLE, EMPTY_LIST,
//! EMPTY_DICT, APPEND(S), SETITEM(S) (batches of 1000), BINUNICODE, BININT1,
//! BININT2, BININT, LONG1/LONG4, BINFLOAT, NEWTRUE, NEWFALSE, NONE, REDUCE,
//! NEWOBJ, BUILD, BINPERSID, EXT1/2/4, STOP.
//!
//! Values with no protocol-2 opcode are written the way CPython's protocol-2
//! pickler writes them, so reading the output back gives the call form:
//!
//! - `bytes` → `_codecs.encode(<latin-1 str>, 'latin1')` (also for `b''`,
//!   where CPython writes `builtins.bytes()`, which `weights_only` rejects);
//! - `bytearray` → `__builtin__.bytearray(_codecs.encode(...))`;
//! - `set` → `__builtin__.set([...])`, `frozenset` → `__builtin__.frozenset([...])`.
//!
//! Not writable in protocol 2 ([`PickleError::Unencodable`]): NEWOBJ with
//! keyword arguments, [`Value::AddItems`], [`Value::OutOfBandBuffer`],
//! `Ext(0)`, strings over 4 GiB, GLOBAL names containing a newline, a cycle
//! through a value that only exists after its children (a tuple, REDUCE,
//! NEWOBJ or persistent id that contains itself), and a
//! [`Value::Build`]/[`Value::SetItems`]/[`Value::Appends`] whose inner object
//! is also referenced elsewhere.
//!
//! Sharing is kept: every value reachable more than once is memoized with
//! BINPUT when first written and re-read with BINGET, so reading the output
//! gives an arena [`equivalent`](crate::Arena::equivalent) to the input.
//! Lists and dicts are memoized before their items, so they may contain
//! themselves. The walk is iterative.

use std::collections::{HashMap, HashSet};

use crate::error::{At, PickleError};
use crate::ops::Opcode;
use crate::value::{Arena, Value, ValueId};

const BATCH: usize = 1000;

enum Task {
    Visit(ValueId),
    Op(Opcode),
    Memo(ValueId),
    Done(ValueId),
}

struct Writer<'a> {
    arena: &'a Arena,
    out: Vec<u8>,
    shared: HashSet<ValueId>,
    memo: HashMap<ValueId, u32>,
    in_progress: HashSet<ValueId>,
    tasks: Vec<Task>,
}

/// Write the graph reachable from `root` as a protocol-2 pickle.
pub fn write(arena: &Arena, root: ValueId) -> Result<Vec<u8>, PickleError> {
    let shared = shared_values(arena, root)?;
    let mut w = Writer {
        arena,
        out: Vec::new(),
        shared,
        memo: HashMap::new(),
        in_progress: HashSet::new(),
        tasks: vec![Task::Visit(root)],
    };
    w.out.extend_from_slice(&[Opcode::PROTO as u8, 2]);
    while let Some(task) = w.tasks.pop() {
        match task {
            Task::Visit(id) => w.visit(id)?,
            Task::Op(op) => w.out.push(op as u8),
            Task::Memo(id) => w.memoize(id)?,
            Task::Done(id) => {
                w.in_progress.remove(&id);
            }
        }
    }
    w.out.push(Opcode::STOP as u8);
    Ok(w.out)
}

/// Ids reachable from `root` more than once (counting the root's own entry),
/// after checking that every reachable id is in the arena.
fn shared_values(arena: &Arena, root: ValueId) -> Result<HashSet<ValueId>, PickleError> {
    let mut count: HashMap<ValueId, u32> = HashMap::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        let c = count.entry(id).or_insert(0);
        *c = c.saturating_add(1);
        if *c > 1 {
            continue;
        }
        let value = arena.get(id).ok_or(PickleError::InvalidId {
            at: At::byte(0),
            id: id.0,
            len: arena.len(),
        })?;
        value.for_each_child(|child| stack.push(child));
    }
    Ok(count
        .into_iter()
        .filter(|&(_, c)| c > 1)
        .map(|(id, _)| id)
        .collect())
}

impl Writer<'_> {
    fn at(&self, opcode: Opcode) -> At {
        At::op(self.out.len() as u64, opcode)
    }

    fn unencodable(&self, opcode: Opcode, what: impl Into<String>) -> PickleError {
        PickleError::Unencodable {
            at: self.at(opcode),
            what: what.into(),
        }
    }

    fn op(&mut self, op: Opcode) {
        self.out.push(op as u8);
    }

    fn memoize(&mut self, id: ValueId) -> Result<(), PickleError> {
        if !self.shared.contains(&id) || self.memo.contains_key(&id) {
            return Ok(());
        }
        let index = u32::try_from(self.memo.len())
            .map_err(|_| self.unencodable(Opcode::LONG_BINPUT, "more than 2^32 memo entries"))?;
        if index < 256 {
            self.out
                .extend_from_slice(&[Opcode::BINPUT as u8, index as u8]);
        } else {
            self.op(Opcode::LONG_BINPUT);
            self.out.extend_from_slice(&index.to_le_bytes());
        }
        self.memo.insert(id, index);
        Ok(())
    }

    fn get(&mut self, index: u32) {
        if index < 256 {
            self.out
                .extend_from_slice(&[Opcode::BINGET as u8, index as u8]);
        } else {
            self.op(Opcode::LONG_BINGET);
            self.out.extend_from_slice(&index.to_le_bytes());
        }
    }

    fn int(&mut self, v: i64) {
        if (0..=0xff).contains(&v) {
            self.out
                .extend_from_slice(&[Opcode::BININT1 as u8, v as u8]);
        } else if (0..=0xffff).contains(&v) {
            self.op(Opcode::BININT2);
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if let Ok(v32) = i32::try_from(v) {
            self.op(Opcode::BININT);
            self.out.extend_from_slice(&v32.to_le_bytes());
        } else {
            let mut bytes = v.to_le_bytes().to_vec();
            crate::value::normalize_le_signed(&mut bytes);
            self.long(&bytes);
        }
    }

    fn long(&mut self, bytes: &[u8]) {
        match u8::try_from(bytes.len()) {
            Ok(n) => self.out.extend_from_slice(&[Opcode::LONG1 as u8, n]),
            Err(_) => {
                self.op(Opcode::LONG4);
                // A BigInt longer than 2^31 bytes cannot exist in memory here
                // in practice; saturate rather than wrap.
                let n = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
                self.out.extend_from_slice(&n.to_le_bytes());
            }
        }
        self.out.extend_from_slice(bytes);
    }

    fn unicode(&mut self, s: &str) -> Result<(), PickleError> {
        let n = u32::try_from(s.len())
            .map_err(|_| self.unencodable(Opcode::BINUNICODE, "a string over 4 GiB"))?;
        self.op(Opcode::BINUNICODE);
        self.out.extend_from_slice(&n.to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
        if module.contains('\n') || name.contains('\n') {
            return Err(self.unencodable(Opcode::GLOBAL, "a global name containing a newline"));
        }
        self.op(Opcode::GLOBAL);
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
        Ok(())
    }

    /// `_codecs.encode(<bytes as latin-1>, 'latin1')`, the protocol-2 form
    /// of `bytes`.
    fn bytes_reduce(&mut self, bytes: &[u8]) -> Result<(), PickleError> {
        self.global("_codecs", "encode")?;
        let latin1: String = bytes.iter().map(|&b| char::from(b)).collect();
        self.unicode(&latin1)?;
        self.unicode("latin1")?;
        self.op(Opcode::TUPLE2);
        self.op(Opcode::REDUCE);
        Ok(())
    }

    /// Tasks (in execution order) that append `items` to the list/object
    /// on the stack in batches.
    fn append_tasks(items: &[ValueId]) -> Vec<Task> {
        let mut t = Vec::with_capacity(items.len() + 2 * items.len().div_ceil(BATCH));
        for chunk in items.chunks(BATCH) {
            if chunk.len() == 1 {
                t.push(Task::Visit(chunk[0]));
                t.push(Task::Op(Opcode::APPEND));
            } else {
                t.push(Task::Op(Opcode::MARK));
                t.extend(chunk.iter().map(|&i| Task::Visit(i)));
                t.push(Task::Op(Opcode::APPENDS));
            }
        }
        t
    }

    fn setitem_tasks(items: &[(ValueId, ValueId)]) -> Vec<Task> {
        let mut t = Vec::with_capacity(2 * items.len() + 2 * items.len().div_ceil(BATCH));
        for chunk in items.chunks(BATCH) {
            let multi = chunk.len() > 1;
            if multi {
                t.push(Task::Op(Opcode::MARK));
            }
            for &(k, v) in chunk {
                t.push(Task::Visit(k));
                t.push(Task::Visit(v));
            }
            t.push(Task::Op(if multi {
                Opcode::SETITEMS
            } else {
                Opcode::SETITEM
            }));
        }
        t
    }

    /// Schedule tasks to run next, in the given order.
    fn schedule(&mut self, tasks: Vec<Task>) {
        self.tasks.extend(tasks.into_iter().rev());
    }

    fn check_inner(&self, obj: ValueId, what: &str) -> Result<(), PickleError> {
        if self.shared.contains(&obj) {
            return Err(self.unencodable(
                Opcode::BUILD,
                format!("a {what} whose inner object is also referenced elsewhere"),
            ));
        }
        Ok(())
    }

    fn visit(&mut self, id: ValueId) -> Result<(), PickleError> {
        if let Some(&index) = self.memo.get(&id) {
            self.get(index);
            return Ok(());
        }
        let arena = self.arena;
        let value = arena.get(id).ok_or(PickleError::InvalidId {
            at: self.at(Opcode::BINGET),
            id: id.0,
            len: arena.len(),
        })?;
        if self.in_progress.contains(&id) {
            return Err(self.unencodable(
                Opcode::BINGET,
                format!(
                    "a cycle through a {} (it is created after its contents)",
                    value.kind()
                ),
            ));
        }
        match value {
            Value::None => self.op(Opcode::NONE),
            Value::Bool(true) => self.op(Opcode::NEWTRUE),
            Value::Bool(false) => self.op(Opcode::NEWFALSE),
            Value::Int(v) => self.int(*v),
            Value::BigInt(b) => self.long(b.le_signed_bytes()),
            Value::Float(f) => {
                self.op(Opcode::BINFLOAT);
                self.out.extend_from_slice(&f.to_be_bytes());
            }
            Value::Str(s) => self.unicode(s)?,
            Value::Bytes(b) => self.bytes_reduce(b)?,
            Value::ByteArray(b) => {
                self.global("__builtin__", "bytearray")?;
                self.bytes_reduce(b)?;
                self.op(Opcode::TUPLE1);
                self.op(Opcode::REDUCE);
            }
            Value::Global { module, name } => self.global(module, name)?,
            Value::Ext(code) => match *code {
                0 => return Err(self.unencodable(Opcode::EXT1, "extension code 0")),
                c @ 1..=0xff => self.out.extend_from_slice(&[Opcode::EXT1 as u8, c as u8]),
                c @ 0x100..=0xffff => {
                    self.op(Opcode::EXT2);
                    self.out.extend_from_slice(&(c as u16).to_le_bytes());
                }
                c => {
                    if c > i32::MAX as u32 {
                        return Err(
                            self.unencodable(Opcode::EXT4, "an extension code above 2^31 - 1")
                        );
                    }
                    self.op(Opcode::EXT4);
                    self.out.extend_from_slice(&c.to_le_bytes());
                }
            },
            Value::OutOfBandBuffer(_) => {
                return Err(self.unencodable(Opcode::NEXT_BUFFER, "an out-of-band buffer"));
            }
            Value::Taken(_) => {
                return Err(self.unencodable(Opcode::REDUCE, "a call taken while loading"));
            }
            Value::AddItems { .. } => {
                return Err(self.unencodable(Opcode::ADDITEMS, "ADDITEMS on a non-set object"));
            }
            Value::NewObj {
                kwargs: Some(_), ..
            } => {
                return Err(self.unencodable(Opcode::NEWOBJ_EX, "NEWOBJ with keyword arguments"));
            }
            Value::List(items) => {
                self.op(Opcode::EMPTY_LIST);
                self.memoize(id)?;
                let tasks = Self::append_tasks(items);
                self.schedule(tasks);
                return Ok(());
            }
            Value::Dict(items) => {
                self.op(Opcode::EMPTY_DICT);
                self.memoize(id)?;
                let tasks = Self::setitem_tasks(items);
                self.schedule(tasks);
                return Ok(());
            }
            Value::Set(items) | Value::FrozenSet(items) => {
                let name = if matches!(value, Value::Set(_)) {
                    "set"
                } else {
                    "frozenset"
                };
                self.global("__builtin__", name)?;
                self.op(Opcode::EMPTY_LIST);
                self.in_progress.insert(id);
                let mut tasks = Self::append_tasks(items);
                tasks.extend([
                    Task::Op(Opcode::TUPLE1),
                    Task::Op(Opcode::REDUCE),
                    Task::Memo(id),
                    Task::Done(id),
                ]);
                self.schedule(tasks);
                return Ok(());
            }
            Value::Tuple(items) => {
                let closing = match items.len() {
                    0 => {
                        self.op(Opcode::EMPTY_TUPLE);
                        return self.memoize(id);
                    }
                    1 => Opcode::TUPLE1,
                    2 => Opcode::TUPLE2,
                    3 => Opcode::TUPLE3,
                    _ => {
                        self.op(Opcode::MARK);
                        Opcode::TUPLE
                    }
                };
                self.in_progress.insert(id);
                let mut tasks: Vec<Task> = items.iter().map(|&i| Task::Visit(i)).collect();
                tasks.extend([Task::Op(closing), Task::Memo(id), Task::Done(id)]);
                self.schedule(tasks);
                return Ok(());
            }
            Value::Reduce { callable, args } => {
                self.in_progress.insert(id);
                self.schedule(vec![
                    Task::Visit(*callable),
                    Task::Visit(*args),
                    Task::Op(Opcode::REDUCE),
                    Task::Memo(id),
                    Task::Done(id),
                ]);
                return Ok(());
            }
            Value::NewObj {
                cls,
                args,
                kwargs: None,
            } => {
                self.in_progress.insert(id);
                self.schedule(vec![
                    Task::Visit(*cls),
                    Task::Visit(*args),
                    Task::Op(Opcode::NEWOBJ),
                    Task::Memo(id),
                    Task::Done(id),
                ]);
                return Ok(());
            }
            Value::PersistentId(pid) => {
                self.in_progress.insert(id);
                self.schedule(vec![
                    Task::Visit(*pid),
                    Task::Op(Opcode::BINPERSID),
                    Task::Memo(id),
                    Task::Done(id),
                ]);
                return Ok(());
            }
            Value::Build { obj, state } => {
                self.check_inner(*obj, "BUILD")?;
                self.in_progress.insert(id);
                self.schedule(vec![
                    Task::Visit(*obj),
                    Task::Memo(id),
                    Task::Visit(*state),
                    Task::Op(Opcode::BUILD),
                    Task::Done(id),
                ]);
                return Ok(());
            }
            Value::SetItems { obj, items } => {
                self.check_inner(*obj, "SETITEMS")?;
                self.in_progress.insert(id);
                let mut tasks = vec![Task::Visit(*obj), Task::Memo(id)];
                tasks.extend(Self::setitem_tasks(items));
                tasks.push(Task::Done(id));
                self.schedule(tasks);
                return Ok(());
            }
            Value::Appends { obj, items } => {
                self.check_inner(*obj, "APPENDS")?;
                self.in_progress.insert(id);
                let mut tasks = vec![Task::Visit(*obj), Task::Memo(id)];
                tasks.extend(Self::append_tasks(items));
                tasks.push(Task::Done(id));
                self.schedule(tasks);
                return Ok(());
            }
        }
        self.memoize(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::load;

    #[test]
    fn recursive_list_round_trips() {
        let mut a = Arena::new();
        let l = a.push(Value::List(vec![]));
        if let Some(Value::List(items)) = a.get_mut(l) {
            items.push(l);
        }
        let bytes = write(&a, l).unwrap();
        // CPython: pickle.dumps(a, 2) for a = []; a.append(a)
        assert_eq!(bytes, b"\x80\x02]q\x00h\x00a.");
        let p = load(&bytes).unwrap();
        assert!(a.equivalent(l, &p.arena, p.root));
    }

    #[test]
    fn tuple_cycle_is_an_error() {
        let mut a = Arena::new();
        let l = a.push(Value::List(vec![]));
        let t = a.push(Value::Tuple(vec![l]));
        if let Some(Value::List(items)) = a.get_mut(l) {
            items.push(t);
        }
        // Writing the list first works (like CPython); the tuple first cannot.
        assert!(write(&a, l).is_ok());
        assert!(matches!(write(&a, t), Err(PickleError::Unencodable { .. })));
    }

    #[test]
    fn bytes_use_codecs_encode() {
        let mut a = Arena::new();
        let b = a.push(Value::Bytes(b"ab".to_vec()));
        let bytes = write(&a, b).unwrap();
        let p = load(&bytes).unwrap();
        assert_eq!(p.arena.repr(p.root, 200), "_codecs.encode('ab', 'latin1')");
    }
}
