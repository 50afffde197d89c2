//! The per-pickle safety scan: every global a pickle references (resolved
//! through the stack and the memo), its classification, whether
//! `torch.load(weights_only=True)` would accept the pickle, nested pickle
//! payloads, and an overall [`ScanVerdict`].
//!
//! [`scan`] never panics and never fails: a broken pickle gives the findings
//! up to the break plus [`PickleScan::error`].
//!
//! # How it reads
//!
//! A symbolic run of CPython's C unpickler on the engine the
//! [`Machine`](crate::Machine) runs (one stack, MARK, memo and [`Limits`]
//! implementation: both fail on the same pickles at the same offset with the
//! same error, except that a STACK_GLOBAL of non-strings is a finding here
//! and an error there), where each stack slot knows only
//! what a scanner needs: literal strings (with the byte range they came
//! from), literal bytes, tuples (their items), globals, and the Python type
//! of everything else. Work is linear in the input: each opcode pushes at
//! most one value and no container content is copied.
//!
//! - GLOBAL and INST give a named global. STACK_GLOBAL pops its two operands;
//!   when both are literal strings (any string opcode, pushed directly or read
//!   back from the memo) the global is named, otherwise it is
//!   [`GlobalRef::Unresolvable`] (classified [`GlobalClass::Dangerous`]). A
//!   string that was mutated (BUILD, SETITEMS, ... on it) is no longer a
//!   literal. EXT1/2/4 give [`GlobalRef::Extension`], classified
//!   [`GlobalClass::Dangerous`]: the unpickler imports whatever
//!   `copyreg.add_extension` registered for the code in the loading process
//!   (empty in a bare CPython, but any imported module can fill it), so the
//!   pickle alone cannot say what it is.
//! - Protocols 0 and 1 need no PROTO: GLOBAL + REDUCE, INST (a named global
//!   called with the items above the MARK) and OBJ (the first item above
//!   the MARK called with the others) are all calls ([`GlobalUses::called`]).
//!   [`parses_to_stop`] says cheaply whether a byte slice is a pickle of any
//!   protocol that reaches STOP.
//! - Names are mapped from Python 2 like `find_class` (`__builtin__` →
//!   `builtins`, [`python3_name`]) and classified by [`classify`], which also
//!   handles dotted names (`os` + `path.join`, `builtins` + `getattr.__call__`):
//!   the deny rules match their first component, the allow rules never match
//!   a dotted name.
//! - After an error that CPython would also raise (stack underflow, missing
//!   memo entry, ...) or a [`Limits`] violation, the rest of the pickle is
//!   read without a stack up to STOP: GLOBAL/INST are still named,
//!   STACK_GLOBAL is unresolvable, and those findings have
//!   [`GlobalFinding::after_error`] set. They count in the verdict. A reader
//!   error (truncation, unknown opcode byte, bad argument) ends the scan.
//!
//! # `weights_only` emulation
//!
//! [`WeightsOnly`] replays torch 2.15 `torch/_weights_only_unpickler.py`
//! (docs/formats/pytorch.md, 'weights_only: opcodes') on the same run:
//!
//! - Opcodes: only [`TORCH_OPCODES`]; any other byte is
//!   `Unsupported operand <byte>` (FRAME is 149, so protocol 4/5 pickles fail).
//! - GLOBAL: a module in `sys`/`os`/`posix`/`nt` is refused
//!   (`Trying to load unsupported GLOBAL ... whose module ... is blocked.`);
//!   a `module.name` outside the 144-entry allowlist is
//!   `Unsupported global: GLOBAL ...` (torch's text, including its
//!   `builtins.` stripping); the DTensor classes get their own message.
//! - REDUCE only on an allowlisted global; NEWOBJ only on one; BUILD only on
//!   a `Tensor`, `Parameter`, `OrderedDict` or an instance of an allowlisted
//!   class; APPEND/APPENDS only on a `list`; SETITEM/SETITEMS only on a
//!   `dict`, `OrderedDict` or `Counter`; BINPERSID only with a tuple whose
//!   first item is `'storage'`, or an int; SHORT_BINSTRING must be UTF-8.
//!
//! [`WeightsOnly::all_blockers`] goes on past the first blocker as if it had
//! been fixed (a refused global as if the user had allowlisted it, an
//! unsupported opcode with CPython's meaning), so it lists everything that
//! stands between the pickle and a `weights_only` load. Each
//! [`Blocker::torch_error`] is the text after `WeightsUnpickler error: ` in
//! torch's message, when it can be predicted.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::ops::Range;

use crate::engine::{Call, Core, Domain, Extend, Id, Seq};
use crate::error::{At, PickleError};
use crate::globals::{ALLOWED, GlobalClass, Names, classify, python3_name};
use crate::machine::Limits;
use crate::ops::{Arg, Op, Opcode, Ops};

/// The opcodes `torch/_weights_only_unpickler.py` implements (torch 2.15;
/// docs/formats/pytorch.md, 'weights_only: opcodes'). Any other opcode byte is
/// `UnpicklingError("Unsupported operand <byte>")`.
pub const TORCH_OPCODES: &[Opcode] = &[
    Opcode::GLOBAL,
    Opcode::NEWOBJ,
    Opcode::REDUCE,
    Opcode::BUILD,
    Opcode::APPEND,
    Opcode::APPENDS,
    Opcode::SETITEM,
    Opcode::SETITEMS,
    Opcode::MARK,
    Opcode::TUPLE,
    Opcode::TUPLE1,
    Opcode::TUPLE2,
    Opcode::TUPLE3,
    Opcode::NONE,
    Opcode::NEWFALSE,
    Opcode::NEWTRUE,
    Opcode::EMPTY_TUPLE,
    Opcode::EMPTY_LIST,
    Opcode::EMPTY_DICT,
    Opcode::EMPTY_SET,
    Opcode::BININT,
    Opcode::BININT1,
    Opcode::BININT2,
    Opcode::BINFLOAT,
    Opcode::BINUNICODE,
    Opcode::SHORT_BINSTRING,
    Opcode::BINPERSID,
    Opcode::BINGET,
    Opcode::LONG_BINGET,
    Opcode::BINPUT,
    Opcode::LONG_BINPUT,
    Opcode::LONG1,
    Opcode::PROTO,
    Opcode::STOP,
];

/// Modules `torch.load(weights_only=True)` refuses even when allowlisted.
const TORCH_BLOCKED_MODULES: &[&str] = &["sys", "os", "posix", "nt"];

/// Globals for which `weights_only` says DTensor support must be imported.
const TORCH_DTENSOR: &[&str] = &[
    "torch.distributed.device_mesh.DeviceMesh",
    "torch.distributed.tensor._dtensor_spec.DTensorSpec",
    "torch.distributed.tensor._dtensor_spec.TensorMeta",
    "torch.distributed.tensor.DTensor",
    "torch.distributed.tensor.placement_types.Partial",
    "torch.distributed.tensor.placement_types.Replicate",
    "torch.distributed.tensor.placement_types.Shard",
];

/// Callables whose bytes argument is a whole serialized file that the
/// container layer should scan in turn.
const NESTED_LOADERS: &[(&str, NestedKind)] = &[
    ("torch.storage._load_from_bytes", NestedKind::TorchSave),
    ("pickle.loads", NestedKind::Pickle),
    ("pickle._loads", NestedKind::Pickle),
    ("_pickle.loads", NestedKind::Pickle),
    ("dill.loads", NestedKind::Pickle),
    ("dill._dill.loads", NestedKind::Pickle),
    ("cloudpickle.loads", NestedKind::Pickle),
    ("numpy.loads", NestedKind::Pickle),
];

/// At most this many distinct blockers are kept; the rest are counted in
/// [`WeightsOnly::omitted`].
const MAX_BLOCKERS: usize = 256;

/// Everything [`scan`] found in one pickle. Offsets are absolute: the
/// position in the input plus `offset_base`.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleScan {
    /// `offset_base`: where the pickle starts.
    pub start: u64,
    /// Version of the first PROTO opcode, if any.
    pub protocol: Option<u8>,
    /// How often each opcode occurs (opcodes read, in byte order; zero counts
    /// left out).
    pub opcodes: Vec<(Opcode, u64)>,
    /// Offset of the STOP opcode, when the pickle ended properly.
    pub stop: Option<u64>,
    /// Offset just after STOP (where a stacked pickle would start).
    pub end: Option<u64>,
    /// The first error (reader, machine or limit), with absolute offsets.
    pub error: Option<PickleError>,
    /// Every distinct global, in order of first appearance.
    pub globals: Vec<GlobalFinding>,
    /// Nested payloads to scan recursively.
    pub payloads: Vec<NestedPayload>,
    /// Would `torch.load(weights_only=True)` accept this pickle?
    pub weights_only: WeightsOnly,
    /// The overall verdict.
    pub verdict: ScanVerdict,
}

impl PickleScan {
    /// The `torch.serialization.add_safe_globals([...])` line for every
    /// [`GlobalClass::BenignNotAllowlisted`] global, if there are any.
    pub fn add_safe_globals(&self) -> Option<String> {
        let mut names: Vec<String> = Vec::new();
        for g in &self.globals {
            if g.class == GlobalClass::BenignNotAllowlisted
                && let Some(n) = g.python_name()
                && !names.contains(&n)
            {
                names.push(n);
            }
        }
        if names.is_empty() {
            return None;
        }
        Some(format!(
            "torch.serialization.add_safe_globals([{}])",
            names.join(", ")
        ))
    }

    /// The worst class among the globals, if there is any global.
    pub fn worst_class(&self) -> Option<GlobalClass> {
        self.globals.iter().map(|g| g.class).max()
    }
}

/// The overall verdict of a pickle, from best to worst; the worst that
/// applies wins (the enum is ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScanVerdict {
    /// Every global is [`GlobalClass::Allowed`] and
    /// `torch.load(weights_only=True)` loads it.
    Safe,
    /// Every global is allowed, but `weights_only=True` still refuses the
    /// pickle (an opcode outside its subset such as FRAME, a semantic
    /// restriction, or a broken pickle); see [`WeightsOnly::first_blocker`].
    WeightsOnlyIncompatible,
    /// The worst global is [`GlobalClass::BenignNotAllowlisted`]:
    /// `torch.serialization.add_safe_globals` would be needed
    /// ([`PickleScan::add_safe_globals`]).
    NeedsAllowlist,
    /// A global is [`GlobalClass::Unknown`].
    Suspicious,
    /// A global is [`GlobalClass::Dangerous`], unresolvable, or an extension
    /// code.
    Dangerous,
}

impl fmt::Display for ScanVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScanVerdict::Safe => "safe",
            ScanVerdict::WeightsOnlyIncompatible => "weights-only-incompatible",
            ScanVerdict::NeedsAllowlist => "needs-allowlist",
            ScanVerdict::Suspicious => "suspicious",
            ScanVerdict::Dangerous => "dangerous",
        })
    }
}

/// What a global reference names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GlobalRef {
    /// A `module` and `name` as written in the pickle (GLOBAL, INST, or a
    /// STACK_GLOBAL whose operands are literal strings).
    Named {
        /// Module as written.
        module: String,
        /// Name as written (may be dotted).
        name: String,
    },
    /// A STACK_GLOBAL whose operands are not both literal strings, or that
    /// was read after an error (no stack to resolve it).
    Unresolvable {
        /// What the module operand is (`"str"`, `"int"`, `"object"`, ...,
        /// or `"unknown"` after an error).
        module: &'static str,
        /// What the name operand is.
        name: &'static str,
    },
    /// EXT1/EXT2/EXT4: an entry of the `copyreg` extension registry.
    Extension {
        /// The extension code.
        code: u32,
    },
}

/// How a global was used (may be several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GlobalUses {
    /// Called by REDUCE, INST or OBJ.
    pub called: bool,
    /// Instantiated by NEWOBJ or NEWOBJ_EX.
    pub instantiated: bool,
    /// The global itself, or an object it made, is a BUILD target.
    pub built: bool,
}

/// One distinct global of a pickle.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalFinding {
    /// Offset of the first opcode that introduced it.
    pub offset: u64,
    /// That opcode (GLOBAL, INST, STACK_GLOBAL, EXT1, EXT2 or EXT4).
    pub opcode: Opcode,
    /// What it names.
    pub reference: GlobalRef,
    /// The Python 3 `(module, name)` that `find_class` would import (Python 2
    /// names mapped), for named globals.
    pub resolved: Option<(String, String)>,
    /// The classification.
    pub class: GlobalClass,
    /// The rule behind the classification.
    pub source: &'static str,
    /// How many opcodes introduced it.
    pub occurrences: u64,
    /// How it was used.
    pub uses: GlobalUses,
    /// Every occurrence came after an error (read without a stack).
    pub after_error: bool,
}

impl GlobalFinding {
    /// The resolved `module.name`, or a description of an unnamed reference.
    pub fn full_name(&self) -> String {
        match (&self.resolved, &self.reference) {
            (Some((m, n)), _) => format!("{m}.{n}"),
            (None, GlobalRef::Unresolvable { module, name }) => {
                format!("<unresolvable STACK_GLOBAL: module is {module}, name is {name}>")
            }
            (None, GlobalRef::Extension { code }) => format!("<extension code {code}>"),
            (None, GlobalRef::Named { module, name }) => format!("{module}.{name}"),
        }
    }

    /// The name as Python source for `add_safe_globals` (`argparse.Namespace`;
    /// builtins without their module, as torch prints them).
    pub fn python_name(&self) -> Option<String> {
        let (m, n) = self.resolved.as_ref()?;
        Some(torch_display_path(&format!("{m}.{n}")))
    }
}

/// What a nested payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NestedKind {
    /// A whole `torch.save` file (zip or legacy), e.g. the argument of
    /// `torch.storage._load_from_bytes`.
    TorchSave,
    /// A plain pickle (`pickle.loads` and friends).
    Pickle,
}

/// How the payload bytes are stored in the pickle.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PayloadEncoding {
    /// A bytes (or Python 2 string) argument: the value is the bytes.
    Bytes,
    /// `_codecs.encode(text, 'latin1')` (how protocols 0-2 write `bytes`):
    /// each character of the text is one byte.
    Latin1,
    /// `_codecs.encode(text, 'utf-8')`: the UTF-8 text is the value.
    Utf8,
    /// `_codecs.encode(text, <codec>)` with another codec: not decoded.
    Other(String),
}

/// Where the bytes of a nested payload are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadSource {
    /// Offset of the opcode that pushed the string or bytes.
    pub op_offset: u64,
    /// Byte range of that opcode's argument.
    pub range: Range<u64>,
    /// How to turn the argument into the payload.
    pub encoding: PayloadEncoding,
    /// `range` holds exactly the payload bytes (no decoding needed).
    pub exact: bool,
}

/// A call that loads a serialized file from a bytes argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedPayload {
    /// Offset of the REDUCE (or INST/OBJ/NEWOBJ) that makes the call.
    pub call_offset: u64,
    /// The callable, `module.name`.
    pub callable: String,
    /// What the payload is.
    pub kind: NestedKind,
    /// Where its bytes are; `None` when the argument is not a literal.
    pub source: Option<PayloadSource>,
}

impl NestedPayload {
    /// The payload bytes, from the pickle given to [`scan`] and the same
    /// `offset_base`. `None` when there is no literal source, or it cannot be
    /// decoded (another codec, a character above U+00FF for latin-1).
    pub fn bytes<'d>(&self, pickle: &'d [u8], offset_base: u64) -> Option<Cow<'d, [u8]>> {
        let src = self.source.as_ref()?;
        let rel = |x: u64| x.checked_sub(offset_base).map(|v| v as usize);
        if src.exact {
            let (s, e) = (rel(src.range.start)?, rel(src.range.end)?);
            return pickle.get(s..e).map(Cow::Borrowed);
        }
        let op = Ops::at(pickle, rel(src.op_offset)?, &Limits::default())
            .read_op()
            .ok()??;
        match (&src.encoding, op.arg) {
            (PayloadEncoding::Bytes, Arg::Bytes(b)) => Some(Cow::Owned(b.into_owned())),
            (PayloadEncoding::Bytes | PayloadEncoding::Utf8, Arg::Str(s)) => {
                Some(Cow::Owned(s.into_owned().into_bytes()))
            }
            (PayloadEncoding::Utf8, Arg::Bytes(b)) => Some(Cow::Owned(b.into_owned())),
            (PayloadEncoding::Latin1, Arg::Str(s)) => s
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect::<Option<Vec<u8>>>()
                .map(Cow::Owned),
            (PayloadEncoding::Latin1, Arg::Bytes(b)) => std::str::from_utf8(&b)
                .ok()?
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect::<Option<Vec<u8>>>()
                .map(Cow::Owned),
            _ => None,
        }
    }
}

/// Why `weights_only=True` would refuse the pickle at some point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockerKind {
    /// An opcode outside [`TORCH_OPCODES`].
    UnsupportedOpcode,
    /// A global of `sys`, `os`, `posix` or `nt`.
    BlockedModule,
    /// A global outside the allowlist.
    UnsupportedGlobal,
    /// A DTensor class (needs `torch.distributed.tensor` imported).
    DTensor,
    /// REDUCE of something that is not an allowlisted global.
    Reduce,
    /// NEWOBJ of something that is not an allowlisted class.
    NewObj,
    /// REDUCE/NEWOBJ of an allowlisted object that cannot be called
    /// (a dtype, a qscheme, a legacy storage type).
    NotCallable,
    /// BUILD on an object torch does not build.
    Build,
    /// APPEND/APPENDS on something that is not a list.
    Append,
    /// SETITEM/SETITEMS on something that is not a dict.
    SetItem,
    /// BINPERSID with an id that is not a storage tuple or an int.
    PersistentId,
    /// SHORT_BINSTRING that is not UTF-8.
    StringNotUtf8,
    /// The pickle is broken (see [`PickleScan::error`]).
    Malformed,
}

/// One reason `weights_only=True` refuses the pickle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// Offset of the first opcode where it happens.
    pub offset: u64,
    /// That opcode, when it is one.
    pub opcode: Option<Opcode>,
    /// The kind.
    pub kind: BlockerKind,
    /// What is wrong, in our words.
    pub reason: String,
    /// What torch prints after `WeightsUnpickler error: `, when predictable
    /// (`Unsupported operand 149`).
    pub torch_error: Option<String>,
    /// How many opcodes hit this same blocker.
    pub occurrences: u64,
}

/// The `torch.load(weights_only=True)` emulation result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeightsOnly {
    /// torch would load the pickle: it ended with STOP, nothing blocks.
    pub loads: bool,
    /// Distinct blockers in stream order; the first is what torch reports.
    pub all_blockers: Vec<Blocker>,
    /// Distinct blockers beyond the first 256, not kept.
    pub omitted: u64,
}

impl WeightsOnly {
    /// The blocker torch would stop at.
    pub fn first_blocker(&self) -> Option<&Blocker> {
        self.all_blockers.first()
    }
}

/// Scan the pickle at the start of `data` up to its STOP. `offset_base` is
/// added to every reported offset (the pickle's position in its file).
/// Never panics; a broken pickle gives what was found before the break and
/// [`PickleScan::error`].
pub fn scan(data: &[u8], offset_base: u64, limits: &Limits) -> PickleScan {
    let mut core = Core::new(limits, Scanner::new(data, offset_base));
    run(&mut core, data, limits);
    core.into_domain().finish()
}

/// Whether `data` starts with a pickle that CPython's unpickler reads up to
/// its STOP, of any protocol (0 and 1 have no PROTO and may start with any
/// opcode: `(`, `c`, `}`, `]`, `N`, `I`, `S`, `V`, ...). `Ok` is the offset
/// just after STOP (where a stacked pickle would start); `Err` is the first
/// error, with its offset, exactly as [`Machine::load`](crate::Machine::load)
/// would report it (the same engine, without building values).
///
/// Cheap: one pass, no strings copied, one byte per value. A detector can
/// call it on any file: text that is not a pickle fails within a few bytes
/// (an unknown opcode byte, a line that is not an argument, a missing STOP).
/// Note that reaching STOP is not needed for harm: CPython runs each REDUCE,
/// INST, OBJ, NEWOBJ and BUILD as it reads it, so a pickle that breaks later
/// has already run what came before; [`scan()`](fn@scan) reports those calls.
pub fn parses_to_stop(data: &[u8], limits: &Limits) -> Result<u64, PickleError> {
    let mut ops = Ops::at(data, 0, limits);
    let mut core = Core::new(limits, Probe::default());
    loop {
        let op = ops.read_op()?.ok_or(PickleError::MissingStop {
            at: At::byte(ops.position()),
        })?;
        if core.step(&op)?.is_some() {
            return Ok(op.end);
        }
    }
}

/// The domain of [`parses_to_stop`]: per value only its kind (the
/// [`Value::kind`](crate::Value::kind) of the value the machine would
/// build), which is what STACK_GLOBAL checks, like CPython, and names in its
/// error.
#[derive(Default)]
struct Probe {
    kinds: Vec<&'static str>,
}

impl Probe {
    fn kind(&self, id: Id) -> &'static str {
        self.kinds.get(id as usize).copied().unwrap_or("unknown")
    }

    fn set(&mut self, id: Id, kind: &'static str) {
        if let Some(k) = self.kinds.get_mut(id as usize) {
            *k = kind;
        }
    }
}

impl<'a> Domain<'a> for Probe {
    type Value = &'static str;

    fn store(&mut self, kind: &'static str) {
        self.kinds.push(kind);
    }

    fn store_at(&mut self, id: Id, kind: &'static str) {
        if let Some(slot) = self.kinds.get_mut(id as usize) {
            *slot = kind;
        }
    }

    fn take(&mut self, id: Id) -> &'static str {
        self.kind(id)
    }

    fn protocol(&mut self, _version: u8) {}

    fn literal(&mut self, op: &Op<'a>) -> &'static str {
        use Opcode::*;
        match (op.opcode, &op.arg) {
            (NONE, _) => "None",
            (NEWTRUE | NEWFALSE, _) | (_, Arg::Bool(_)) => "bool",
            (_, Arg::Int(_) | Arg::Long(_)) => "int",
            (_, Arg::Float(_)) => "float",
            (STRING | BINSTRING | SHORT_BINSTRING, Arg::Bytes(b)) => {
                if std::str::from_utf8(b).is_ok() {
                    "str"
                } else {
                    "bytes"
                }
            }
            (BYTEARRAY8, _) => "bytearray",
            (_, Arg::Bytes(_)) => "bytes",
            (_, Arg::Str(_)) => "str",
            (EMPTY_LIST, _) => "list",
            (EMPTY_TUPLE, _) => "tuple",
            (EMPTY_DICT, _) => "dict",
            (EMPTY_SET, _) => "set",
            (NEXT_BUFFER, _) => "out-of-band buffer",
            _ => "unknown",
        }
    }

    fn sequence(&mut self, kind: Seq, _items: Vec<Id>) -> &'static str {
        match kind {
            Seq::List => "list",
            Seq::Tuple => "tuple",
            Seq::FrozenSet => "frozenset",
        }
    }

    fn dict(&mut self, _pairs: Vec<(Id, Id)>) -> &'static str {
        "dict"
    }

    fn persistent_id(&mut self, _at: At, _pid: Id) -> &'static str {
        "persistent id"
    }

    fn global(&mut self, _at: At, _module: &str, _name: &str) -> &'static str {
        "global"
    }

    fn stack_global(&mut self, at: At, module: Id, name: Id) -> Result<&'static str, PickleError> {
        match (self.kind(module), self.kind(name)) {
            ("str", "str") => Ok("global"),
            (module, name) => Err(PickleError::UnresolvableGlobal { at, module, name }),
        }
    }

    fn extension(&mut self, _at: At, _code: u32) -> &'static str {
        "extension"
    }

    fn call(&mut self, _: At, kind: Call, _: Id, _: Id, _: Option<Id>) -> &'static str {
        match kind {
            Call::Reduce | Call::Inst | Call::Obj => "reduce",
            Call::NewObj | Call::NewObjEx => "newobj",
        }
    }

    fn extend(&mut self, _at: At, kind: Extend, target: Id, items: Vec<Id>, moved: Option<Id>) {
        if items.is_empty() || moved.is_none() {
            return;
        }
        let wrapper = match kind {
            Extend::Append | Extend::Appends => "appends",
            Extend::SetItem | Extend::SetItems => "setitems",
            Extend::AddItems => "additems",
        };
        self.set(target, wrapper);
    }

    fn build(&mut self, _at: At, target: Id, _state: Id, _moved: Id) {
        self.set(target, "build");
    }
}

/// `torch`'s rendering of a global in its messages: `builtins.X` is `X`.
fn torch_display_path(full_path: &str) -> String {
    match full_path.strip_prefix("builtins") {
        Some(rest) => match rest.strip_prefix('.') {
            Some(r) => r.to_string(),
            None => format!("builtins{rest}"),
        },
        None => full_path.to_string(),
    }
}

fn torch_allowed(full_path: &str) -> bool {
    ALLOWED.iter().any(|r| match r.names {
        Names::Only(names) => full_path
            .strip_prefix(r.module)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|n| names.contains(&n)),
        Names::All => false,
    })
}

/// A Python type for the `weights_only` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    /// A known type (`dict`, `torch.Tensor`), as `type(x).__qualname__` path.
    Py(&'static str),
    /// Not any type torch accepts, but its name is not predictable.
    Other,
    /// Could be anything (an object from a user-allowlisted global): no check.
    Unknown,
}

impl Ty {
    fn render(self) -> Option<String> {
        match self {
            Ty::Py(n) => Some(format!("<class '{n}'>")),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ty::Py(n) => n,
            Ty::Other => "object",
            Ty::Unknown => "unknown",
        }
    }
}

const NONE_T: Ty = Ty::Py("NoneType");
const BOOL_T: Ty = Ty::Py("bool");
const INT_T: Ty = Ty::Py("int");
const FLOAT_T: Ty = Ty::Py("float");
const STR_T: Ty = Ty::Py("str");
const BYTES_T: Ty = Ty::Py("bytes");
const BYTEARRAY_T: Ty = Ty::Py("bytearray");
const TUPLE_T: Ty = Ty::Py("tuple");
const LIST_T: Ty = Ty::Py("list");
const DICT_T: Ty = Ty::Py("dict");
const SET_T: Ty = Ty::Py("set");
const FROZENSET_T: Ty = Ty::Py("frozenset");
const STORAGE_T: Ty = Ty::Py("torch.storage.TypedStorage");

/// Types BUILD accepts: Tensor, Parameter, OrderedDict, and the classes of
/// the default allowlist.
const BUILD_OK: &[&str] = &[
    "torch.Tensor",
    "torch.nn.parameter.Parameter",
    "collections.OrderedDict",
    "collections.Counter",
    "torch.Size",
    "torch.device",
    "bytearray",
    "set",
    "complex",
    "torch.storage.TypedStorage",
    "torch.storage.UntypedStorage",
];

const SETITEM_OK: &[&str] = &["dict", "collections.OrderedDict", "collections.Counter"];

/// The type of an allowlisted global object itself.
fn allowed_global_type(path: &str) -> Ty {
    match path {
        "collections.OrderedDict"
        | "collections.Counter"
        | "torch.Size"
        | "torch.device"
        | "builtins.bytearray"
        | "builtins.set"
        | "builtins.complex"
        | "torch.storage.TypedStorage"
        | "torch.storage.UntypedStorage" => Ty::Py("type"),
        "_codecs.encode" => Ty::Py("builtin_function_or_method"),
        p if p.starts_with("torch._utils._rebuild_")
            || p == "torch._tensor._rebuild_from_type_v2"
            || p == "torch.serialization._get_layout" =>
        {
            Ty::Py("function")
        }
        p if p.ends_with("Storage") => Ty::Py("torch.serialization.StorageType"),
        p if p.starts_with("torch.per_") => Ty::Py("torch.qscheme"),
        p if p.ends_with("Tensor") || p == "torch.nn.parameter.Parameter" => Ty::Other,
        _ => Ty::Py("torch.dtype"),
    }
}

/// Information about one value on the symbolic stack.
#[derive(Debug, Clone)]
enum Sym<'a> {
    /// A value of a type, content not tracked.
    Val(Ty),
    /// An int literal.
    Int(i64),
    /// A literal string.
    Str { text: Cow<'a, str>, src: Src },
    /// Bytes (or bytearray) with a literal source, if known.
    Bytes {
        ty: Ty,
        src: Option<(Src, PayloadEncoding)>,
    },
    /// A tuple and its items.
    Tuple(Vec<u32>),
    /// A named global (index into the findings) and its `weights_only` status.
    Global { finding: usize, wo: WoGlobal },
    /// An object we cannot name (unresolvable global, extension).
    Opaque { finding: usize },
    /// An object made by a call, with the finding of the callable.
    Obj { ty: Ty, origin: Option<usize> },
}

/// `weights_only` status of a global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WoGlobal {
    /// In the default allowlist.
    Allowed,
    /// Refused (a blocker was recorded); later checks treat it as if the
    /// user had allowlisted it.
    User,
}

/// Where a string or bytes value came from (offsets relative to the input).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Src {
    op_offset: u64,
    range: Range<u64>,
    /// The argument bytes are the value's bytes (no escapes decoded).
    exact: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum BlockerKey {
    Opcode(u8),
    Other(BlockerKind, String),
}

/// The scan's [`Domain`]: symbolic values ([`Sym`]), findings, blockers.
struct Scanner<'a> {
    data: &'a [u8],
    base: u64,
    syms: Vec<Sym<'a>>,
    histogram: [u64; 256],
    protocol: Option<u8>,
    stop: Option<u64>,
    end: Option<u64>,
    error: Option<PickleError>,
    findings: Vec<GlobalFinding>,
    finding_index: HashMap<GlobalRef, usize>,
    payloads: Vec<NestedPayload>,
    blockers: Vec<Blocker>,
    blocker_index: HashMap<BlockerKey, usize>,
    omitted: u64,
    /// The `weights_only` emulation stopped (the pickle broke).
    wo_dead: bool,
    /// Reading without a stack after an error.
    linear: bool,
}

/// Run the pickle at the start of `data` through the shared engine, then
/// (after an engine error) without a stack up to STOP.
fn run<'a>(core: &mut Core<'_, 'a, Scanner<'a>>, data: &'a [u8], limits: &Limits) {
    let mut ops = Ops::at(data, 0, limits);
    loop {
        let s = &mut core.domain;
        let pos = ops.position();
        let op = match ops.read_op() {
            Ok(Some(op)) => op,
            Ok(None) => {
                s.fail(PickleError::MissingStop { at: At::byte(pos) });
                return;
            }
            Err(e) => {
                // torch checks the opcode byte before reading its argument.
                if let Some(&byte) = data.get(pos as usize) {
                    s.wo_opcode(pos, byte);
                }
                s.fail(e);
                return;
            }
        };
        s.histogram[op.opcode as usize] += 1;
        if s.linear {
            if s.linear_step(&op) {
                return;
            }
            continue;
        }
        s.wo_opcode(op.offset, op.opcode as u8);
        let result = core.step(&op);
        let s = &mut core.domain;
        match result {
            Ok(None) => {}
            Ok(Some(_)) => {
                s.stop = Some(op.offset.saturating_add(s.base));
                s.end = Some(op.end.saturating_add(s.base));
                return;
            }
            Err(e) => {
                s.fail(e);
                if op.opcode == Opcode::STOP {
                    s.stop = Some(op.offset.saturating_add(s.base));
                    s.end = Some(op.end.saturating_add(s.base));
                    return;
                }
                s.linear = true;
            }
        }
    }
}

impl<'a> Scanner<'a> {
    fn new(data: &'a [u8], base: u64) -> Self {
        Scanner {
            data,
            base,
            syms: Vec::new(),
            histogram: [0; 256],
            protocol: None,
            stop: None,
            end: None,
            error: None,
            findings: Vec::new(),
            finding_index: HashMap::new(),
            payloads: Vec::new(),
            blockers: Vec::new(),
            blocker_index: HashMap::new(),
            omitted: 0,
            wo_dead: false,
            linear: false,
        }
    }

    fn finish(self) -> PickleScan {
        let opcodes = Opcode::ALL
            .iter()
            .copied()
            .filter(|o| self.histogram[*o as usize] > 0)
            .map(|o| (o, self.histogram[o as usize]))
            .collect::<Vec<_>>();
        let mut opcodes = opcodes;
        opcodes.sort_by_key(|(o, _)| *o as u8);
        let weights_only = WeightsOnly {
            loads: self.blockers.is_empty()
                && self.omitted == 0
                && self.error.is_none()
                && self.stop.is_some(),
            all_blockers: self.blockers,
            omitted: self.omitted,
        };
        let verdict = match self.findings.iter().map(|g| g.class).max() {
            Some(GlobalClass::Dangerous) => ScanVerdict::Dangerous,
            Some(GlobalClass::Unknown) => ScanVerdict::Suspicious,
            Some(GlobalClass::BenignNotAllowlisted) => ScanVerdict::NeedsAllowlist,
            _ if weights_only.loads => ScanVerdict::Safe,
            _ => ScanVerdict::WeightsOnlyIncompatible,
        };
        PickleScan {
            start: self.base,
            protocol: self.protocol,
            opcodes,
            stop: self.stop,
            end: self.end,
            error: self.error,
            globals: self.findings,
            payloads: self.payloads,
            weights_only,
            verdict,
        }
    }

    // ---- errors and blockers ----

    fn fail(&mut self, e: PickleError) {
        let e = e.with_offset_base(self.base);
        if !self.wo_dead {
            self.wo_dead = true;
            let at = e.at();
            self.block_at(
                at.offset,
                at.opcode,
                BlockerKey::Other(BlockerKind::Malformed, String::new()),
                BlockerKind::Malformed,
                format!("the pickle is broken: {e}"),
                None,
            );
        }
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Record a blocker at an absolute offset.
    fn block_at(
        &mut self,
        offset: u64,
        opcode: Option<Opcode>,
        key: BlockerKey,
        kind: BlockerKind,
        reason: String,
        torch_error: Option<String>,
    ) {
        match self.blocker_index.entry(key) {
            Entry::Occupied(e) => self.blockers[*e.get()].occurrences += 1,
            Entry::Vacant(e) => {
                if self.blockers.len() >= MAX_BLOCKERS {
                    self.omitted += 1;
                    return;
                }
                e.insert(self.blockers.len());
                self.blockers.push(Blocker {
                    offset,
                    opcode,
                    kind,
                    reason,
                    torch_error,
                    occurrences: 1,
                });
            }
        }
    }

    /// Record a semantic blocker at `at` (relative).
    fn block(&mut self, at: At, kind: BlockerKind, reason: String, torch_error: Option<String>) {
        if self.wo_dead {
            return;
        }
        let key = BlockerKey::Other(kind, torch_error.clone().unwrap_or_else(|| reason.clone()));
        self.block_at(
            at.offset.saturating_add(self.base),
            at.opcode,
            key,
            kind,
            reason,
            torch_error,
        );
    }

    fn wo_opcode(&mut self, offset: u64, byte: u8) {
        if self.wo_dead || TORCH_OPCODES.iter().any(|o| *o as u8 == byte) {
            return;
        }
        let opcode = Opcode::from_byte(byte);
        let reason = match opcode {
            Some(o) => format!("opcode {} (byte {byte}) is not supported", o.name()),
            None => format!("byte {byte} is not an opcode"),
        };
        self.block_at(
            offset.saturating_add(self.base),
            opcode,
            BlockerKey::Opcode(byte),
            BlockerKind::UnsupportedOpcode,
            reason,
            Some(format!("Unsupported operand {byte}")),
        );
    }

    // ---- findings ----

    fn find(&mut self, at: At, reference: GlobalRef, after_error: bool) -> usize {
        match self.finding_index.entry(reference) {
            Entry::Occupied(e) => {
                let g = &mut self.findings[*e.get()];
                g.occurrences += 1;
                g.after_error &= after_error;
                *e.get()
            }
            Entry::Vacant(e) => {
                let reference = e.key().clone();
                let (resolved, class, source) = match &reference {
                    GlobalRef::Named { module, name } => {
                        let (m, n) = python3_name(module, name);
                        let v = classify(module, name);
                        (Some((m.into_owned(), n.into_owned())), v.class, v.source)
                    }
                    GlobalRef::Unresolvable { .. } => (
                        None,
                        GlobalClass::Dangerous,
                        "STACK_GLOBAL operands are not literal strings: the unpickler may import anything (docs/formats/pytorch.md, 'Scanner bypass classes' 1)",
                    ),
                    GlobalRef::Extension { .. } => (
                        None,
                        GlobalClass::Dangerous,
                        "copyreg extension code: the unpickler imports whatever `copyreg.add_extension` registered for it in the loading process, which any imported module can fill; it cannot be named from the pickle",
                    ),
                };
                let i = self.findings.len();
                e.insert(i);
                self.findings.push(GlobalFinding {
                    offset: at.offset.saturating_add(self.base),
                    opcode: at.opcode.unwrap_or(Opcode::GLOBAL),
                    reference,
                    resolved,
                    class,
                    source,
                    occurrences: 1,
                    uses: GlobalUses::default(),
                    after_error,
                });
                i
            }
        }
    }

    /// A named global: finding, then torch's GLOBAL check.
    fn named_global(&mut self, at: At, module: &str, name: &str) -> Sym<'a> {
        let finding = self.find(
            at,
            GlobalRef::Named {
                module: module.to_owned(),
                name: name.to_owned(),
            },
            false,
        );
        let (m, n) = python3_name(module, name);
        let full_path = format!("{m}.{n}");
        let wo = if TORCH_BLOCKED_MODULES.contains(&m.as_ref()) {
            self.block(
                at,
                BlockerKind::BlockedModule,
                format!("module {m} can never be allowlisted"),
                Some(format!(
                    "Trying to load unsupported GLOBAL {full_path} whose module {m} is blocked."
                )),
            );
            WoGlobal::User
        } else if torch_allowed(&full_path) {
            WoGlobal::Allowed
        } else if TORCH_DTENSOR.contains(&full_path.as_str()) {
            self.block(
                at,
                BlockerKind::DTensor,
                format!("{full_path} needs torch.distributed.tensor imported"),
                Some("``torch.distributed.tensor`` must be imported to load DTensors".into()),
            );
            WoGlobal::User
        } else {
            let shown = torch_display_path(&full_path);
            self.block(
                at,
                BlockerKind::UnsupportedGlobal,
                format!("{full_path} is not in the weights_only allowlist"),
                Some(format!(
                    "Unsupported global: GLOBAL {shown} was not an allowed global by default. \
                     Please use `torch.serialization.add_safe_globals([{shown}])` or the \
                     `torch.serialization.safe_globals([{shown}])` context manager to allowlist \
                     this global if you trust this class/function."
                )),
            );
            WoGlobal::User
        };
        Sym::Global { finding, wo }
    }

    /// After an error: no stack, only the names.
    fn linear_step(&mut self, op: &Op<'_>) -> bool {
        let at = op.at();
        match (op.opcode, &op.arg) {
            (Opcode::GLOBAL | Opcode::INST, Arg::Global { module, name }) => {
                self.find(
                    at,
                    GlobalRef::Named {
                        module: (*module).to_owned(),
                        name: (*name).to_owned(),
                    },
                    true,
                );
            }
            (Opcode::STACK_GLOBAL, _) => {
                self.find(
                    at,
                    GlobalRef::Unresolvable {
                        module: "unknown",
                        name: "unknown",
                    },
                    true,
                );
            }
            (Opcode::EXT1 | Opcode::EXT2 | Opcode::EXT4, Arg::Uint(code)) => {
                self.find(at, GlobalRef::Extension { code: *code as u32 }, true);
            }
            (Opcode::STOP, _) => {
                self.stop = Some(op.offset.saturating_add(self.base));
                self.end = Some(op.end.saturating_add(self.base));
                return true;
            }
            _ => {}
        }
        false
    }

    // ---- the symbolic machine ----

    fn sym_ty(&self, id: u32) -> Ty {
        match self.syms.get(id as usize) {
            Some(Sym::Val(t)) | Some(Sym::Obj { ty: t, .. }) | Some(Sym::Bytes { ty: t, .. }) => *t,
            Some(Sym::Int(_)) => INT_T,
            Some(Sym::Str { .. }) => STR_T,
            Some(Sym::Tuple(_)) => TUPLE_T,
            Some(Sym::Global { finding, wo }) => match wo {
                WoGlobal::Allowed => self.findings[*finding]
                    .resolved
                    .as_ref()
                    .map(|(m, n)| allowed_global_type(&format!("{m}.{n}")))
                    .unwrap_or(Ty::Unknown),
                WoGlobal::User => Ty::Unknown,
            },
            Some(Sym::Opaque { .. }) | None => Ty::Unknown,
        }
    }

    /// Python `str()` of a value, when simple.
    fn py_str(&self, id: u32) -> Option<String> {
        match self.syms.get(id as usize)? {
            Sym::Str { text, .. } => Some(text.to_string()),
            Sym::Int(v) => Some(v.to_string()),
            Sym::Val(t) if *t == NONE_T => Some("None".into()),
            _ => None,
        }
    }

    fn kind_name(&self, id: u32) -> &'static str {
        match self.syms.get(id as usize) {
            Some(Sym::Global { .. }) => "global",
            Some(Sym::Opaque { .. }) => "unresolvable object",
            Some(Sym::Obj { .. }) => "object",
            _ => self.sym_ty(id).name(),
        }
    }

    fn src_of(op: &Op<'_>, borrowed_len: Option<usize>) -> Src {
        match borrowed_len {
            Some(len) => {
                // Borrowed arguments end at the op's end, except STRING's
                // closing quote and newline.
                let end = if op.opcode == Opcode::STRING {
                    op.end.saturating_sub(2)
                } else {
                    op.end
                };
                Src {
                    op_offset: op.offset,
                    range: end.saturating_sub(len as u64)..end,
                    exact: true,
                }
            }
            None => Src {
                op_offset: op.offset,
                range: (op.offset + 1)..op.end.saturating_sub(1).max(op.offset + 1),
                exact: false,
            },
        }
    }

    /// After an in-place mutation of `target`: a literal is no longer one.
    fn mutated(&mut self, target: u32, built: bool) {
        let ty = self.sym_ty(target);
        let Some(sym) = self.syms.get_mut(target as usize) else {
            return;
        };
        let mark = match sym {
            Sym::Global { finding, .. } | Sym::Opaque { finding } => Some(*finding),
            Sym::Obj { origin, .. } => *origin,
            _ => None,
        };
        match sym {
            Sym::Str { .. } | Sym::Int(_) | Sym::Bytes { .. } | Sym::Tuple(_) => {
                *sym = Sym::Obj { ty, origin: None };
            }
            _ => {}
        }
        if built && let Some(f) = mark {
            self.findings[f].uses.built = true;
        }
    }

    fn wo_build(&mut self, at: At, target: u32) {
        let ty = self.sym_ty(target);
        let ok = match ty {
            Ty::Py(n) => BUILD_OK.contains(&n),
            Ty::Other => false,
            Ty::Unknown => true,
        };
        if !ok {
            self.block(
                at,
                BlockerKind::Build,
                format!("BUILD on a {}", ty.name()),
                ty.render().map(|t| {
                    format!(
                        "Can only build Tensor, Parameter, OrderedDict or types allowlisted via `add_safe_globals`, but got {t}"
                    )
                }),
            );
        }
    }

    fn wo_persistent_id(&mut self, at: At, pid: u32) {
        let ty = self.sym_ty(pid);
        match &self.syms[pid as usize] {
            Sym::Tuple(items) => {
                let Some(&first) = items.first() else {
                    return;
                };
                let ok = match &self.syms[first as usize] {
                    Sym::Str { text, .. } => Some(text.as_ref() == "storage"),
                    Sym::Bytes {
                        src: Some((src, PayloadEncoding::Bytes)),
                        ..
                    } if src.exact => Some(
                        self.data
                            .get(src.range.start as usize..src.range.end as usize)
                            == Some(b"storage".as_slice()),
                    ),
                    _ => match self.sym_ty(first) {
                        Ty::Unknown => None,
                        _ => Some(false),
                    },
                };
                if ok == Some(false) {
                    let t = self.sym_ty(first);
                    self.block(
                        at,
                        BlockerKind::PersistentId,
                        "persistent id is not a storage".into(),
                        t.render().map(|t| {
                            format!("Only persistent_load of storage is allowed, but got {t}")
                        }),
                    );
                }
            }
            _ if ty == INT_T || ty == TUPLE_T || ty == Ty::Unknown => {}
            _ => self.block(
                at,
                BlockerKind::PersistentId,
                format!("persistent id is a {}, not a tuple or int", ty.name()),
                ty.render()
                    .map(|t| format!("persistent_load id must be tuple or int, but got {t}")),
            ),
        }
    }

    /// A call (REDUCE, NEWOBJ, INST, OBJ): uses, `weights_only` checks,
    /// nested payloads, and the result.
    fn call(&mut self, at: At, callable: u32, args: &[u32], kind: Call) -> Sym<'a> {
        let (finding, wo) = match &self.syms[callable as usize] {
            Sym::Global { finding, wo } => (Some(*finding), Some(*wo)),
            Sym::Opaque { finding } => (Some(*finding), None),
            _ => (None, None),
        };
        if let Some(f) = finding {
            let uses = &mut self.findings[f].uses;
            match kind {
                Call::NewObj | Call::NewObjEx => uses.instantiated = true,
                _ => uses.called = true,
            }
        }
        let path = finding
            .and_then(|f| self.findings[f].resolved.as_ref())
            .map(|(m, n)| format!("{m}.{n}"));
        // weights_only: REDUCE and NEWOBJ need an allowlisted global.
        let opaque = matches!(self.syms[callable as usize], Sym::Opaque { .. });
        if matches!(kind, Call::Reduce | Call::NewObj) && wo.is_none() && !opaque {
            let shown = self.py_str(callable);
            let (k, reason, msg) = if kind == Call::Reduce {
                (
                    BlockerKind::Reduce,
                    format!("REDUCE of a {}", self.kind_name(callable)),
                    shown.map(|s| format!("Trying to call reduce for unrecognized function {s}")),
                )
            } else {
                (
                    BlockerKind::NewObj,
                    format!("NEWOBJ of a {}", self.kind_name(callable)),
                    shown.map(|s| {
                        format!(
                            "Can only create new object for nn.Parameter or classes allowlisted via `add_safe_globals` but got {s}"
                        )
                    }),
                )
            };
            self.block(at, k, reason, msg);
        }
        // Nested payloads.
        if let Some(p) = &path
            && let Some(&(_, nk)) = NESTED_LOADERS.iter().find(|(n, _)| n == p)
        {
            let source = args.first().and_then(|&a| match &self.syms[a as usize] {
                Sym::Bytes {
                    src: Some((s, e)), ..
                } => Some((s.clone(), e.clone())),
                Sym::Str { src, .. } => Some((src.clone(), PayloadEncoding::Bytes)),
                _ => None,
            });
            let source = source.map(|(s, encoding)| self.payload_source(s, encoding));
            self.payloads.push(NestedPayload {
                call_offset: at.offset.saturating_add(self.base),
                callable: p.clone(),
                kind: nk,
                source,
            });
        }
        // The result.
        let Some(p) = path else {
            return Sym::Obj {
                ty: Ty::Unknown,
                origin: finding,
            };
        };
        match p.as_str() {
            "_codecs.encode" => {
                if let Some(&a0) = args.first()
                    && let Sym::Str { src, .. } = &self.syms[a0 as usize]
                {
                    let codec = match args.get(1).map(|&a| &self.syms[a as usize]) {
                        Some(Sym::Str { text, .. }) => text.to_ascii_lowercase().replace('_', "-"),
                        None => "utf-8".into(),
                        _ => String::from("?"),
                    };
                    let enc = match codec.as_str() {
                        "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" | "l1" => {
                            PayloadEncoding::Latin1
                        }
                        "utf-8" | "utf8" => PayloadEncoding::Utf8,
                        other => PayloadEncoding::Other(other.to_string()),
                    };
                    return Sym::Bytes {
                        ty: BYTES_T,
                        src: Some((src.clone(), enc)),
                    };
                }
            }
            "builtins.bytearray" => {
                if let Some(&a0) = args.first()
                    && let Sym::Bytes { src, .. } = &self.syms[a0 as usize]
                {
                    return Sym::Bytes {
                        ty: BYTEARRAY_T,
                        src: src.clone(),
                    };
                }
            }
            _ => {}
        }
        let ty = match wo {
            Some(WoGlobal::Allowed) => match allowed_call_result(&p, |i| {
                args.get(i).and_then(|&a| match &self.syms[a as usize] {
                    Sym::Global { finding, .. } => self.findings[*finding]
                        .resolved
                        .as_ref()
                        .map(|(m, n)| format!("{m}.{n}")),
                    _ => None,
                })
            }) {
                Some(ty) => ty,
                None => {
                    if matches!(kind, Call::Reduce | Call::NewObj) {
                        self.block(
                            at,
                            BlockerKind::NotCallable,
                            format!("{p} is allowlisted but cannot be called"),
                            None,
                        );
                    }
                    Ty::Unknown
                }
            },
            _ => Ty::Unknown,
        };
        Sym::Obj {
            ty,
            origin: finding,
        }
    }

    fn payload_source(&self, src: Src, encoding: PayloadEncoding) -> PayloadSource {
        let exact = src.exact
            && match &encoding {
                PayloadEncoding::Bytes | PayloadEncoding::Utf8 => true,
                PayloadEncoding::Latin1 => self
                    .data
                    .get(src.range.start as usize..src.range.end as usize)
                    .is_some_and(|b| b.is_ascii()),
                PayloadEncoding::Other(_) => false,
            };
        PayloadSource {
            op_offset: src.op_offset.saturating_add(self.base),
            range: (src.range.start.saturating_add(self.base))
                ..(src.range.end.saturating_add(self.base)),
            encoding,
            exact,
        }
    }
}

impl<'a> Domain<'a> for Scanner<'a> {
    type Value = Sym<'a>;

    fn store(&mut self, value: Sym<'a>) {
        self.syms.push(value);
    }

    fn store_at(&mut self, id: Id, value: Sym<'a>) {
        if let Some(slot) = self.syms.get_mut(id as usize) {
            *slot = value;
        }
    }

    /// The scan keeps what it knows at the target itself (see
    /// [`Scanner::mutated`]); the moved-out content is never looked at.
    fn take(&mut self, _id: Id) -> Sym<'a> {
        Sym::Val(Ty::Unknown)
    }

    fn protocol(&mut self, version: u8) {
        self.protocol.get_or_insert(version);
    }

    fn literal(&mut self, op: &Op<'a>) -> Sym<'a> {
        use Opcode::*;
        let at = op.at();
        match (op.opcode, &op.arg) {
            (NONE, _) => Sym::Val(NONE_T),
            (NEWTRUE | NEWFALSE, _) | (_, Arg::Bool(_)) => Sym::Val(BOOL_T),
            (EMPTY_LIST, _) => Sym::Val(LIST_T),
            (EMPTY_TUPLE, _) => Sym::Tuple(Vec::new()),
            (EMPTY_DICT, _) => Sym::Val(DICT_T),
            (EMPTY_SET, _) => Sym::Val(SET_T),
            (NEXT_BUFFER, _) => Sym::Val(Ty::Py("pickle.PickleBuffer")),
            (_, Arg::Int(v)) => Sym::Int(*v),
            (_, Arg::Long(_)) => Sym::Val(INT_T),
            (_, Arg::Float(_)) => Sym::Val(FLOAT_T),
            (STRING | BINSTRING | SHORT_BINSTRING, Arg::Bytes(b)) => {
                let borrowed = matches!(b, Cow::Borrowed(_)).then_some(b.len());
                let src = Self::src_of(op, borrowed);
                let text = match b {
                    Cow::Borrowed(s) => std::str::from_utf8(s).ok().map(Cow::Borrowed),
                    Cow::Owned(v) => std::str::from_utf8(v)
                        .ok()
                        .map(|t| Cow::Owned(t.to_owned())),
                };
                match text {
                    Some(text) => Sym::Str { text, src },
                    None => {
                        if op.opcode == SHORT_BINSTRING {
                            self.block(
                                at,
                                BlockerKind::StringNotUtf8,
                                "a Python 2 string is not UTF-8 (torch decodes it as UTF-8)".into(),
                                None,
                            );
                        }
                        Sym::Bytes {
                            ty: BYTES_T,
                            src: Some((src, PayloadEncoding::Bytes)),
                        }
                    }
                }
            }
            (_, Arg::Bytes(b)) => {
                let borrowed = matches!(b, Cow::Borrowed(_)).then_some(b.len());
                let src = Self::src_of(op, borrowed);
                let ty = if op.opcode == BYTEARRAY8 {
                    BYTEARRAY_T
                } else {
                    BYTES_T
                };
                Sym::Bytes {
                    ty,
                    src: Some((src, PayloadEncoding::Bytes)),
                }
            }
            (_, Arg::Str(s)) => {
                let borrowed = matches!(s, Cow::Borrowed(_)).then_some(s.len());
                let src = Self::src_of(op, borrowed);
                Sym::Str {
                    text: s.clone(),
                    src,
                }
            }
            _ => Sym::Val(Ty::Unknown),
        }
    }

    fn sequence(&mut self, kind: Seq, items: Vec<Id>) -> Sym<'a> {
        match kind {
            Seq::List => Sym::Val(LIST_T),
            Seq::Tuple => Sym::Tuple(items),
            Seq::FrozenSet => Sym::Val(FROZENSET_T),
        }
    }

    fn dict(&mut self, _pairs: Vec<(Id, Id)>) -> Sym<'a> {
        Sym::Val(DICT_T)
    }

    fn persistent_id(&mut self, at: At, pid: Id) -> Sym<'a> {
        if at.opcode == Some(Opcode::BINPERSID) {
            self.wo_persistent_id(at, pid);
        }
        Sym::Val(STORAGE_T)
    }

    fn global(&mut self, at: At, module: &str, name: &str) -> Sym<'a> {
        self.named_global(at, module, name)
    }

    fn stack_global(&mut self, at: At, module: Id, name: Id) -> Result<Sym<'a>, PickleError> {
        Ok(
            match (self.syms.get(module as usize), self.syms.get(name as usize)) {
                (Some(Sym::Str { text: m, .. }), Some(Sym::Str { text: n, .. })) => {
                    let (m, n) = (m.clone(), n.clone());
                    self.named_global(at, &m, &n)
                }
                _ => {
                    let reference = GlobalRef::Unresolvable {
                        module: self.kind_name(module),
                        name: self.kind_name(name),
                    };
                    let finding = self.find(at, reference, false);
                    Sym::Opaque { finding }
                }
            },
        )
    }

    fn extension(&mut self, at: At, code: u32) -> Sym<'a> {
        let finding = self.find(at, GlobalRef::Extension { code }, false);
        Sym::Opaque { finding }
    }

    fn call(&mut self, at: At, kind: Call, callable: Id, args: Id, _kwargs: Option<Id>) -> Sym<'a> {
        let items = match self.syms.get(args as usize) {
            Some(Sym::Tuple(items)) => items.clone(),
            _ => Vec::new(),
        };
        self.call(at, callable, &items, kind)
    }

    fn extend(&mut self, at: At, kind: Extend, target: Id, items: Vec<Id>, _moved: Option<Id>) {
        let what = kind.name();
        let ty = self.sym_ty(target);
        let own = match kind {
            Extend::Append | Extend::Appends => {
                if !matches!(ty, Ty::Unknown) && ty != LIST_T {
                    self.block(
                        at,
                        BlockerKind::Append,
                        format!("{what} on a {} (torch only appends to lists)", ty.name()),
                        ty.render()
                            .map(|t| format!("Can only append to lists, but got {t}")),
                    );
                }
                ty == LIST_T
            }
            Extend::SetItem | Extend::SetItems => {
                let ok = match ty {
                    Ty::Py(n) => SETITEM_OK.contains(&n),
                    Ty::Other => false,
                    Ty::Unknown => true,
                };
                if !ok {
                    self.block(
                        at,
                        BlockerKind::SetItem,
                        format!("{what} on a {} (torch only sets items of dicts)", ty.name()),
                        ty.render().map(|t| {
                            format!(
                                "Can only {what} for dict, collections.OrderedDict, collections.Counter, but got {t}"
                            )
                        }),
                    );
                }
                matches!(ty, Ty::Py(n) if SETITEM_OK.contains(&n))
            }
            Extend::AddItems => ty == SET_T,
        };
        if !items.is_empty() && !own {
            self.mutated(target, false);
        }
    }

    fn build(&mut self, at: At, target: Id, _state: Id, _moved: Id) {
        self.wo_build(at, target);
        self.mutated(target, true);
    }
}

/// The type of what an allowlisted global returns when called, or `None`
/// when it cannot be called. `arg` gives the resolved path of a global
/// argument (for `_rebuild_from_type_v2`'s `new_type`).
fn allowed_call_result(path: &str, arg: impl Fn(usize) -> Option<String>) -> Option<Ty> {
    Some(match path {
        "collections.OrderedDict" => Ty::Py("collections.OrderedDict"),
        "collections.Counter" => Ty::Py("collections.Counter"),
        "torch.nn.parameter.Parameter"
        | "torch._utils._rebuild_parameter"
        | "torch._utils._rebuild_parameter_with_state" => Ty::Py("torch.nn.parameter.Parameter"),
        "torch.serialization._get_layout" => Ty::Py("torch.layout"),
        "torch.Size" => Ty::Py("torch.Size"),
        "torch.Tensor" => Ty::Py("torch.Tensor"),
        "torch.device" => Ty::Py("torch.device"),
        "_codecs.encode" => BYTES_T,
        "builtins.bytearray" => BYTEARRAY_T,
        "builtins.set" => SET_T,
        "builtins.complex" => Ty::Py("complex"),
        "torch.storage.TypedStorage" => STORAGE_T,
        "torch.storage.UntypedStorage" => Ty::Py("torch.storage.UntypedStorage"),
        "torch._utils._rebuild_wrapper_subclass" => Ty::Unknown,
        "torch._tensor._rebuild_from_type_v2" => match arg(1).as_deref() {
            Some("torch.Tensor") => Ty::Py("torch.Tensor"),
            Some("torch.nn.parameter.Parameter") => Ty::Py("torch.nn.parameter.Parameter"),
            _ => Ty::Unknown,
        },
        p if p.starts_with("torch._utils._rebuild_") => Ty::Py("torch.Tensor"),
        p if p.ends_with("Tensor") => Ty::Py("torch.Tensor"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_display_path_strips_builtins_like_torch() {
        assert_eq!(torch_display_path("builtins.eval"), "eval");
        assert_eq!(torch_display_path("builtinsx.y"), "builtinsx.y");
        assert_eq!(
            torch_display_path("argparse.Namespace"),
            "argparse.Namespace"
        );
    }

    #[test]
    fn allowlist_lookup_is_by_full_path() {
        assert!(torch_allowed("torch._utils._rebuild_tensor_v2"));
        assert!(torch_allowed("torch.storage.TypedStorage"));
        assert!(torch_allowed("builtins.set"));
        assert!(!torch_allowed("builtins.frozenset"));
        assert!(!torch_allowed("torch._utils._rebuild_nested_tensor"));
        assert_eq!(TORCH_OPCODES.len(), 34);
    }
}
