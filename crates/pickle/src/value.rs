//! The value model: an [`Arena`] of [`Value`]s addressed by [`ValueId`].
//!
//! A pickle memo lets one object appear many times, and `APPEND`, `SETITEM`,
//! `ADDITEMS` and `BUILD` mutate an object after it was memoized and
//! referenced. The arena mirrors Python's object identity exactly: every object
//! the unpickler would create is one arena node; a memo read, DUP or shared
//! reference is the same [`ValueId`] again; mutation is applied to the node in
//! place, so every holder of the id sees it. Cycles (`a = []; a.append(a)`)
//! are ids that point back. A "billion laughs" pickle that references one
//! list 2^30 times costs one id per reference written in the input, never an
//! expansion.
//!
//! Mutation of an object that is not the matching container (SETITEMS on the
//! result of `OrderedDict()`, BUILD on anything) wraps the node in place: its
//! old content moves to a new node and the original id becomes
//! [`Value::SetItems`] / [`Value::Appends`] / [`Value::AddItems`] /
//! [`Value::Build`] pointing at it, so identity is kept and the order of
//! mutations is explicit.
//!
//! Nothing here recurses over the graph without a bound: [`Arena::equivalent`]
//! is iterative, [`Arena::repr`] stops at a depth and a length.

use std::collections::HashMap;

pub use compact_str::CompactString;
use std::fmt::Write as _;
use std::ops::Index;
use std::sync::Arc;

use crate::chunked::Chunked;
use crate::repr;

/// Index of a [`Value`] in an [`Arena`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl ValueId {
    /// The index into [`Arena::values`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An integer outside `i64`, as minimal little-endian two's complement bytes
/// (the LONG1/LONG4 encoding). The machine only produces it for values that do
/// not fit in `i64`; smaller values are [`Value::Int`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BigInt {
    bytes: Vec<u8>,
}

impl BigInt {
    /// From little-endian two's complement bytes (any length; redundant sign
    /// bytes are removed; empty is 0).
    pub fn from_le_signed(bytes: &[u8]) -> Self {
        let mut bytes = bytes.to_vec();
        normalize_le_signed(&mut bytes);
        BigInt { bytes }
    }

    /// Minimal little-endian two's complement bytes (empty for 0).
    pub fn le_signed_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the value is negative.
    pub fn is_negative(&self) -> bool {
        self.bytes.last().is_some_and(|b| b & 0x80 != 0)
    }

    /// The value, if it fits in `i64`.
    pub fn to_i64(&self) -> Option<i64> {
        if self.bytes.len() > 8 {
            return None;
        }
        let fill = if self.is_negative() { 0xff } else { 0 };
        let mut b = [fill; 8];
        b[..self.bytes.len()].copy_from_slice(&self.bytes);
        Some(i64::from_le_bytes(b))
    }

    /// Decimal text (quadratic in the length; callers bound the length).
    pub fn to_decimal(&self) -> String {
        let negative = self.is_negative();
        let mut mag = self.bytes.clone();
        if negative {
            // Two's complement negation gives the magnitude.
            let mut carry = true;
            for b in &mut mag {
                let (v, c) = (!*b).overflowing_add(u8::from(carry));
                *b = v;
                carry = c;
            }
        }
        // Little-endian u32 limbs.
        let mut limbs: Vec<u32> = mag
            .chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(w)
            })
            .collect();
        let mut chunks = Vec::new();
        while limbs.iter().any(|&l| l != 0) {
            let mut rem: u64 = 0;
            for limb in limbs.iter_mut().rev() {
                let cur = (rem << 32) | u64::from(*limb);
                *limb = (cur / 1_000_000_000) as u32;
                rem = cur % 1_000_000_000;
            }
            chunks.push(rem as u32);
            while limbs.last() == Some(&0) {
                limbs.pop();
            }
        }
        let mut s = String::new();
        if negative {
            s.push('-');
        }
        match chunks.split_last() {
            None => s.push('0'),
            Some((top, rest)) => {
                let _ = write!(s, "{top}");
                for c in rest.iter().rev() {
                    let _ = write!(s, "{c:09}");
                }
            }
        }
        s
    }
}

/// Remove redundant sign-extension bytes from little-endian two's complement.
pub(crate) fn normalize_le_signed(bytes: &mut Vec<u8>) {
    while let Some(&last) = bytes.last() {
        let prev_high = bytes.len() >= 2 && bytes[bytes.len() - 2] & 0x80 != 0;
        // A trailing 0x00 is redundant when the byte below it is
        // non-negative (or it is the only byte: zero is empty); a trailing
        // 0xff when the byte below it is negative.
        let redundant = (last == 0x00 && !prev_high) || (last == 0xff && prev_high);
        if redundant {
            bytes.pop();
        } else {
            break;
        }
    }
}

/// Decimal digits (ASCII, already validated) to minimal little-endian two's
/// complement bytes.
pub(crate) fn decimal_to_le_signed(negative: bool, digits: &[u8]) -> Vec<u8> {
    let mut limbs: Vec<u32> = Vec::new();
    for chunk in digits.chunks(9) {
        let mut mul: u64 = 1;
        let mut add: u64 = 0;
        for &d in chunk {
            mul *= 10;
            add = add * 10 + u64::from(d.wrapping_sub(b'0') % 10);
        }
        let mut carry = add;
        for limb in &mut limbs {
            let v = u64::from(*limb) * mul + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            limbs.push(carry as u32);
        }
    }
    let mut bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
    bytes.push(0);
    if negative {
        let mut carry = true;
        for b in &mut bytes {
            let (v, c) = (!*b).overflowing_add(u8::from(carry));
            *b = v;
            carry = c;
        }
    }
    normalize_le_signed(&mut bytes);
    bytes
}

/// An integer value from little-endian two's complement bytes: [`Value::Int`]
/// when it fits in `i64`, else [`Value::BigInt`].
pub fn int_from_le_signed(bytes: &[u8]) -> Value {
    let big = BigInt::from_le_signed(bytes);
    match big.to_i64() {
        Some(v) => Value::Int(v),
        None => Value::BigInt(big),
    }
}

/// One Python object, symbolically. Children are [`ValueId`]s in the same
/// [`Arena`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An int that fits in `i64`.
    Int(i64),
    /// An int that does not.
    BigInt(BigInt),
    /// A float.
    Float(f64),
    /// A `str` (also a Python 2 `str` from STRING/BINSTRING/SHORT_BINSTRING
    /// when it is valid UTF-8, as `torch.load`'s `encoding='utf-8'` reads it).
    /// Up to 24 bytes are held inline, without an allocation of their own:
    /// most names and state-dict keys (`layer1.0.conv1.weight`).
    Str(CompactString),
    /// `bytes` (and Python 2 `str` that is not valid UTF-8).
    Bytes(Vec<u8>),
    /// `bytearray` (BYTEARRAY8).
    ByteArray(Vec<u8>),
    /// A list.
    List(Vec<ValueId>),
    /// A tuple.
    Tuple(Vec<ValueId>),
    /// A dict as ordered key/value pairs. Keys may be any value; duplicate
    /// keys are kept in order (Python keeps the last value).
    Dict(Vec<(ValueId, ValueId)>),
    /// A set, items in insertion order, duplicates kept.
    Set(Vec<ValueId>),
    /// A frozenset, items in order, duplicates kept.
    FrozenSet(Vec<ValueId>),
    /// A global reference (GLOBAL, STACK_GLOBAL, INST), never resolved. The
    /// names are as written (`__builtin__` in protocol 2 is not mapped),
    /// behind thin shared pointers: a pickle names few globals, and every
    /// [`Value`] is as large as its largest variant (32 bytes: a `Vec` and
    /// an id), while an arena holds one value per pickled object.
    Global {
        /// Module.
        module: Arc<String>,
        /// Qualified name.
        name: Arc<String>,
    },
    /// `callable(*args)`: REDUCE, and INST/OBJ (which CPython turns into
    /// the same call).
    Reduce {
        /// The callable.
        callable: ValueId,
        /// The argument (a tuple in valid pickles).
        args: ValueId,
    },
    /// `cls.__new__(cls, *args, **kwargs)`: NEWOBJ (`kwargs` is `None`) and
    /// NEWOBJ_EX.
    NewObj {
        /// The class.
        cls: ValueId,
        /// Positional arguments.
        args: ValueId,
        /// Keyword arguments (NEWOBJ_EX only).
        kwargs: Option<ValueId>,
    },
    /// `obj` after BUILD with `state` (`__setstate__` or `__dict__` update).
    Build {
        /// The object before BUILD.
        obj: ValueId,
        /// The state.
        state: ValueId,
    },
    /// `obj` after SETITEM/SETITEMS when `obj` is not a [`Value::Dict`]
    /// (e.g. `OrderedDict()`).
    SetItems {
        /// The object before the items were set.
        obj: ValueId,
        /// Key/value pairs in order.
        items: Vec<(ValueId, ValueId)>,
    },
    /// `obj` after APPEND/APPENDS when `obj` is not a [`Value::List`].
    Appends {
        /// The object before the items were appended.
        obj: ValueId,
        /// Items in order.
        items: Vec<ValueId>,
    },
    /// `obj` after ADDITEMS when `obj` is not a [`Value::Set`].
    AddItems {
        /// The object before the items were added.
        obj: ValueId,
        /// Items in order.
        items: Vec<ValueId>,
    },
    /// What `persistent_load(pid)` returns (BINPERSID, PERSID).
    PersistentId(ValueId),
    /// An object from the `copyreg` extension registry (EXT1/EXT2/EXT4),
    /// kept symbolic: the registry is process state we do not have.
    Ext(u32),
    /// An out-of-band buffer (NEXT_BUFFER, protocol 5), numbered from 0 in
    /// stream order. The buffers live outside the pickle, so only the index
    /// is known. READONLY_BUFFER leaves the stack unchanged.
    OutOfBandBuffer(u64),
    /// A call (REDUCE) that a [`Taker`](crate::Taker) took over while the
    /// pickle ran ([`Machine::load_with`](crate::Machine::load_with)): the
    /// taker's number for it. Its callable and arguments are not in the
    /// arena; what they said is the taker's.
    Taken(u32),
}

impl Value {
    /// A short name of the variant, for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::ByteArray(_) => "bytearray",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Set(_) => "set",
            Value::FrozenSet(_) => "frozenset",
            Value::Global { .. } => "global",
            Value::Reduce { .. } => "reduce",
            Value::NewObj { .. } => "newobj",
            Value::Build { .. } => "build",
            Value::SetItems { .. } => "setitems",
            Value::Appends { .. } => "appends",
            Value::AddItems { .. } => "additems",
            Value::PersistentId(_) => "persistent id",
            Value::Ext(_) => "extension",
            Value::OutOfBandBuffer(_) => "out-of-band buffer",
            Value::Taken(_) => "taken call",
        }
    }

    /// Call `f` on every child id, in pickle order.
    pub fn for_each_child(&self, mut f: impl FnMut(ValueId)) {
        match self {
            Value::None
            | Value::Bool(_)
            | Value::Int(_)
            | Value::BigInt(_)
            | Value::Float(_)
            | Value::Str(_)
            | Value::Bytes(_)
            | Value::ByteArray(_)
            | Value::Global { .. }
            | Value::Ext(_)
            | Value::OutOfBandBuffer(_)
            | Value::Taken(_) => {}
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => items.iter().copied().for_each(f),
            Value::Dict(pairs) => pairs.iter().for_each(|&(k, v)| {
                f(k);
                f(v)
            }),
            Value::Reduce { callable, args } => {
                f(*callable);
                f(*args)
            }
            Value::NewObj { cls, args, kwargs } => {
                f(*cls);
                f(*args);
                if let Some(k) = kwargs {
                    f(*k)
                }
            }
            Value::Build { obj, state } => {
                f(*obj);
                f(*state)
            }
            Value::SetItems { obj, items } => {
                f(*obj);
                items.iter().for_each(|&(k, v)| {
                    f(k);
                    f(v)
                })
            }
            Value::Appends { obj, items } | Value::AddItems { obj, items } => {
                f(*obj);
                items.iter().copied().for_each(f)
            }
            Value::PersistentId(pid) => f(*pid),
        }
    }

    /// Shallow equality: same variant and same scalar content, ignoring child
    /// ids but not child counts.
    fn shallow_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::BigInt(a), Value::BigInt(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) | (Value::ByteArray(a), Value::ByteArray(b)) => {
                a == b
            }
            (Value::List(a), Value::List(b))
            | (Value::Tuple(a), Value::Tuple(b))
            | (Value::Set(a), Value::Set(b))
            | (Value::FrozenSet(a), Value::FrozenSet(b)) => a.len() == b.len(),
            (Value::Dict(a), Value::Dict(b)) => a.len() == b.len(),
            (
                Value::Global {
                    module: m1,
                    name: n1,
                },
                Value::Global {
                    module: m2,
                    name: n2,
                },
            ) => m1 == m2 && n1 == n2,
            (Value::Reduce { .. }, Value::Reduce { .. }) => true,
            (Value::NewObj { kwargs: k1, .. }, Value::NewObj { kwargs: k2, .. }) => {
                k1.is_some() == k2.is_some()
            }
            (Value::Build { .. }, Value::Build { .. }) => true,
            (Value::SetItems { items: a, .. }, Value::SetItems { items: b, .. }) => {
                a.len() == b.len()
            }
            (Value::Appends { items: a, .. }, Value::Appends { items: b, .. })
            | (Value::AddItems { items: a, .. }, Value::AddItems { items: b, .. }) => {
                a.len() == b.len()
            }
            (Value::PersistentId(_), Value::PersistentId(_)) => true,
            (Value::Ext(a), Value::Ext(b)) => a == b,
            (Value::OutOfBandBuffer(a), Value::OutOfBandBuffer(b)) => a == b,
            (Value::Taken(a), Value::Taken(b)) => a == b,
            _ => false,
        }
    }
}

/// The values of one pickle (or of a value tree built by hand for the writer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Arena {
    /// In chunks that never move: the arena of a large pickle is neither
    /// copied nor over-reserved as it grows.
    values: Chunked<Value>,
}

impl Arena {
    /// An empty arena.
    pub fn new() -> Self {
        Arena::default()
    }

    /// Add a value and return its id.
    ///
    /// # Panics
    /// If the arena already holds `u32::MAX` values (the machine stops far
    /// earlier, at [`Limits::max_nodes`](crate::Limits)).
    pub fn push(&mut self, value: Value) -> ValueId {
        let id = u32::try_from(self.values.len()).expect("arena holds at most u32::MAX values");
        self.values.push(value);
        ValueId(id)
    }

    /// The value with this id, if it is in the arena.
    pub fn get(&self, id: ValueId) -> Option<&Value> {
        self.values.get(id.index())
    }

    /// Mutable access, for building trees by hand.
    pub fn get_mut(&mut self, id: ValueId) -> Option<&mut Value> {
        self.values.get_mut(id.index())
    }

    /// All values in id order (the `n`th is the value of `ValueId(n)`).
    pub fn values(&self) -> impl ExactSizeIterator<Item = &Value> + Clone + '_ {
        self.values.iter()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the arena is empty.
    pub fn is_empty(&self) -> bool {
        self.values.len() == 0
    }

    /// Whether the graph reachable from `a` here and from `b` in `other` is the
    /// same object graph: same values and the same sharing and cycles (a
    /// bijection between the reachable ids). Iterative; ids that are not in
    /// their arena compare unequal.
    pub fn equivalent(&self, a: ValueId, other: &Arena, b: ValueId) -> bool {
        let mut fwd: HashMap<ValueId, ValueId> = HashMap::new();
        let mut back: HashMap<ValueId, ValueId> = HashMap::new();
        let mut work = vec![(a, b)];
        while let Some((x, y)) = work.pop() {
            match (fwd.get(&x), back.get(&y)) {
                (Some(&fy), Some(&bx)) if fy == y && bx == x => continue,
                (None, None) => {}
                _ => return false,
            }
            fwd.insert(x, y);
            back.insert(y, x);
            let (Some(vx), Some(vy)) = (self.get(x), other.get(y)) else {
                return false;
            };
            if !vx.shallow_eq(vy) {
                return false;
            }
            let mut cx = Vec::new();
            let mut cy = Vec::new();
            vx.for_each_child(|c| cx.push(c));
            vy.for_each_child(|c| cy.push(c));
            if cx.len() != cy.len() {
                return false;
            }
            work.extend(cx.into_iter().zip(cy));
        }
        true
    }

    /// A Python-like rendering of the value, for messages and tests. Shared
    /// values are rendered at every use; a value inside itself is `[...]`,
    /// `{...}` or `...`. Stops at depth 64 (`…`) and after about `max_chars`
    /// characters (`…`).
    pub fn repr(&self, id: ValueId, max_chars: usize) -> String {
        let mut out = String::new();
        let mut path = Vec::new();
        self.repr_into(id, &mut out, &mut path, max_chars);
        out
    }

    fn repr_into(&self, id: ValueId, out: &mut String, path: &mut Vec<ValueId>, max: usize) {
        if out.len() >= max || path.len() >= 64 {
            out.push('…');
            return;
        }
        let Some(v) = self.get(id) else {
            let _ = write!(out, "<invalid id {}>", id.0);
            return;
        };
        if path.contains(&id) {
            out.push_str(match v {
                Value::List(_) => "[...]",
                Value::Dict(_) => "{...}",
                _ => "...",
            });
            return;
        }
        path.push(id);
        let seq = |this: &Self, out: &mut String, path: &mut Vec<ValueId>, items: &[ValueId]| {
            for (i, &c) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                this.repr_into(c, out, path, max);
            }
        };
        let pairs = |this: &Self,
                     out: &mut String,
                     path: &mut Vec<ValueId>,
                     items: &[(ValueId, ValueId)]| {
            out.push('{');
            for (i, &(k, v)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                this.repr_into(k, out, path, max);
                out.push_str(": ");
                this.repr_into(v, out, path, max);
            }
            out.push('}');
        };
        match v {
            Value::None => out.push_str("None"),
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::BigInt(b) if b.le_signed_bytes().len() <= 256 => out.push_str(&b.to_decimal()),
            Value::BigInt(b) => {
                let _ = write!(out, "<int of {} bytes>", b.le_signed_bytes().len());
            }
            Value::Float(f) => repr::write_float(out, *f),
            Value::Str(s) => {
                if !repr::write_string(out, s, max) {
                    out.push('…');
                }
            }
            Value::Bytes(b) => {
                if !repr::write_bytes(out, b, max) {
                    out.push('…');
                }
            }
            Value::ByteArray(b) => {
                out.push_str("bytearray(");
                if !repr::write_bytes(out, b, max) {
                    out.push('…');
                }
                out.push(')');
            }
            Value::List(items) => {
                out.push('[');
                seq(self, out, path, items);
                out.push(']');
            }
            Value::Tuple(items) => {
                out.push('(');
                seq(self, out, path, items);
                if items.len() == 1 {
                    out.push(',');
                }
                out.push(')');
            }
            Value::Dict(items) => pairs(self, out, path, items),
            Value::Set(items) if items.is_empty() => out.push_str("set()"),
            Value::Set(items) => {
                out.push('{');
                seq(self, out, path, items);
                out.push('}');
            }
            Value::FrozenSet(items) => {
                out.push_str("frozenset(");
                if !items.is_empty() {
                    out.push('{');
                    seq(self, out, path, items);
                    out.push('}');
                }
                out.push(')');
            }
            Value::Global { module, name } => {
                let _ = write!(out, "{module}.{name}");
            }
            Value::Reduce { callable, args } => {
                self.repr_into(*callable, out, path, max);
                self.args_repr(*args, out, path, max);
            }
            Value::NewObj { cls, args, kwargs } => {
                self.repr_into(*cls, out, path, max);
                out.push_str(".__new__");
                self.args_repr(*args, out, path, max);
                if let Some(k) = kwargs {
                    out.push_str("(**");
                    self.repr_into(*k, out, path, max);
                    out.push(')');
                }
            }
            Value::Build { obj, state } => {
                self.repr_into(*obj, out, path, max);
                out.push_str(".__setstate__(");
                self.repr_into(*state, out, path, max);
                out.push(')');
            }
            Value::SetItems { obj, items } => {
                self.repr_into(*obj, out, path, max);
                out.push_str(".update(");
                pairs(self, out, path, items);
                out.push(')');
            }
            Value::Appends { obj, items } => {
                self.repr_into(*obj, out, path, max);
                out.push_str(".extend([");
                seq(self, out, path, items);
                out.push_str("])");
            }
            Value::AddItems { obj, items } => {
                self.repr_into(*obj, out, path, max);
                out.push_str(".add_items({");
                seq(self, out, path, items);
                out.push_str("})");
            }
            Value::PersistentId(pid) => {
                out.push_str("persistent_id(");
                self.repr_into(*pid, out, path, max);
                out.push(')');
            }
            Value::Ext(code) => {
                let _ = write!(out, "ext({code})");
            }
            Value::OutOfBandBuffer(i) => {
                let _ = write!(out, "out_of_band_buffer({i})");
            }
            Value::Taken(n) => {
                let _ = write!(out, "taken({n})");
            }
        }
        path.pop();
    }

    /// `(a, b)` for a tuple of arguments, `(*x)` otherwise.
    fn args_repr(&self, args: ValueId, out: &mut String, path: &mut Vec<ValueId>, max: usize) {
        match self.get(args) {
            Some(Value::Tuple(items)) if !path.contains(&args) => {
                path.push(args);
                out.push('(');
                for (i, &c) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    self.repr_into(c, out, path, max);
                }
                out.push(')');
                path.pop();
            }
            _ => {
                out.push_str("(*");
                self.repr_into(args, out, path, max);
                out.push(')');
            }
        }
    }
}

impl Index<ValueId> for Arena {
    type Output = Value;

    /// # Panics
    /// If `id` is not in this arena (use [`Arena::get`] for ids of unknown
    /// origin).
    fn index(&self, id: ValueId) -> &Value {
        match self.values.get(id.index()) {
            Some(v) => v,
            None => panic!(
                "{id:?} is not in this arena of {} values",
                self.values.len()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_conversion() {
        assert_eq!(decimal_to_le_signed(false, b"0"), Vec::<u8>::new());
        assert_eq!(decimal_to_le_signed(false, b"127"), vec![0x7f]);
        assert_eq!(decimal_to_le_signed(false, b"128"), vec![0x80, 0]);
        assert_eq!(decimal_to_le_signed(true, b"128"), vec![0x80]);
        assert_eq!(decimal_to_le_signed(true, b"129"), vec![0x7f, 0xff]);
        assert_eq!(decimal_to_le_signed(true, b"1"), vec![0xff]);
        let big = b"123456789012345678901234567890";
        let bytes = decimal_to_le_signed(true, big);
        assert_eq!(
            BigInt::from_le_signed(&bytes).to_decimal(),
            "-123456789012345678901234567890"
        );
        assert_eq!(
            BigInt::from_le_signed(&[0xff, 0xff, 0xff]).to_i64(),
            Some(-1)
        );
        assert_eq!(
            BigInt::from_le_signed(&[0x00, 0x00]).le_signed_bytes(),
            &[] as &[u8]
        );
    }

    /// An arena holds one value per pickled object (15 per tensor of a
    /// state dict saved by torch), so every byte of [`Value`] counts: no variant may
    /// carry more than a `Vec` and an id.
    #[test]
    fn a_value_takes_at_most_32_bytes() {
        assert!(
            std::mem::size_of::<Value>() <= 32,
            "{}",
            std::mem::size_of::<Value>()
        );
    }

    #[test]
    fn equivalence_sees_sharing() {
        let mut a = Arena::new();
        let x = a.push(Value::Int(1));
        let root_a = a.push(Value::List(vec![x, x]));
        let mut b = Arena::new();
        let y1 = b.push(Value::Int(1));
        let y2 = b.push(Value::Int(1));
        let root_b = b.push(Value::List(vec![y1, y2]));
        assert!(!a.equivalent(root_a, &b, root_b));
        assert!(a.equivalent(root_a, &a.clone(), root_a));
        assert_eq!(a.repr(root_a, 100), b.repr(root_b, 100));
    }
}
