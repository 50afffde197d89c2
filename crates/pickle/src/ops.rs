//! The opcode reader: a bounded, borrowing iterator over the opcodes of a
//! pickle stream (protocols 0 to 5, every opcode CPython's `pickletools`
//! knows).
//!
//! Each [`Op`] carries its byte range, its [`Opcode`] and its decoded [`Arg`].
//! Arguments borrow from the input when the bytes are used as they are
//! (binary strings, GLOBAL names); protocol-0 text forms that need decoding
//! (escaped STRING, raw-unicode-escape UNICODE, decimal LONG) are owned.
//!
//! Every length is checked against the bytes that remain *before* anything is
//! allocated, and against [`Limits::max_string_len`](crate::Limits). Parsing
//! follows CPython's C unpickler (`Modules/_pickle.c`), which is what
//! `pickle.load` runs:
//!
//! - `INT`: `strtol(s, 0)` semantics (optional whitespace and sign, `0x` hex,
//!   leading-`0` octal, decimal); a two-character line with value 0 or 1 is a
//!   bool (`I01\n` is `True`); decimal values beyond `i64` become
//!   [`Arg::Long`].
//! - `LONG`: decimal with an optional trailing `L`.
//! - `FLOAT`: a float literal (`repr` form, `inf`, `nan`); overflow is an error.
//! - `STRING`: quoted with `'` or `"`, Python bytes escapes.
//! - `UNICODE`: raw-unicode-escape (`\uXXXX`, `\UXXXXXXXX`, other bytes latin-1).
//! - `GET`/`PUT`: decimal memo index.
//! - `PERSID`: ASCII text.
//! - `GLOBAL`/`INST`: two UTF-8 lines.
//!
//! Known divergences (exotic inputs only, never written by CPython): `INT`
//! hex/octal values beyond `i64` and `LONG`/`INT` with `_` digit separators
//! are errors here; strings that are not valid UTF-8 (lone surrogates written
//! with `surrogatepass`) are errors for the unicode opcodes.
//!
//! `FRAME` is validated (its length must fit in the input) and otherwise
//! treated like the C unpickler does: opcodes may straddle frame boundaries.

use std::borrow::Cow;
use std::ops::Range;

use crate::error::{At, Limit, PickleError};
use crate::machine::Limits;
use crate::value::decimal_to_le_signed;

macro_rules! opcodes {
    ($( $(#[$doc:meta])* $name:ident = $byte:literal, $proto:literal; )*) => {
        /// A pickle opcode. The discriminant is the opcode byte.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        #[allow(non_camel_case_types)]
        pub enum Opcode {
            $( $(#[$doc])* $name = $byte, )*
        }

        impl Opcode {
            /// Every opcode, in `pickletools.opcodes` order.
            pub const ALL: &'static [Opcode] = &[ $( Opcode::$name, )* ];

            /// The opcode of every byte value, if it is one.
            const BY_BYTE: [Option<Opcode>; 256] = {
                let mut table = [None; 256];
                $( table[$byte as usize] = Some(Opcode::$name); )*
                table
            };

            /// The opcode for a byte, if it is one.
            #[inline]
            pub fn from_byte(byte: u8) -> Option<Opcode> {
                Self::BY_BYTE[byte as usize]
            }

            /// The `pickletools` name (`"BINUNICODE"`).
            pub fn name(self) -> &'static str {
                match self {
                    $( Opcode::$name => stringify!($name), )*
                }
            }

            /// The protocol that introduced the opcode.
            pub fn protocol(self) -> u8 {
                match self {
                    $( Opcode::$name => $proto, )*
                }
            }
        }
    };
}

opcodes! {
    /// Push an int from decimal text (protocol 0; `01`/`00` are bools).
    INT = b'I', 0;
    /// Push a 4-byte signed int.
    BININT = b'J', 1;
    /// Push a 1-byte unsigned int.
    BININT1 = b'K', 1;
    /// Push a 2-byte unsigned int.
    BININT2 = b'M', 1;
    /// Push a decimal long (protocol 0).
    LONG = b'L', 0;
    /// Push a long from 1-byte length + two's complement bytes.
    LONG1 = 0x8a, 2;
    /// Push a long from 4-byte length + two's complement bytes.
    LONG4 = 0x8b, 2;
    /// Push a quoted, escaped Python 2 string.
    STRING = b'S', 0;
    /// Push a Python 2 string with a 4-byte length.
    BINSTRING = b'T', 1;
    /// Push a Python 2 string with a 1-byte length.
    SHORT_BINSTRING = b'U', 1;
    /// Push bytes with a 4-byte length.
    BINBYTES = b'B', 3;
    /// Push bytes with a 1-byte length.
    SHORT_BINBYTES = b'C', 3;
    /// Push bytes with an 8-byte length.
    BINBYTES8 = 0x8e, 4;
    /// Push a bytearray with an 8-byte length.
    BYTEARRAY8 = 0x96, 5;
    /// Push the next out-of-band buffer.
    NEXT_BUFFER = 0x97, 5;
    /// Make the top of the stack a read-only view.
    READONLY_BUFFER = 0x98, 5;
    /// Push None.
    NONE = b'N', 0;
    /// Push True.
    NEWTRUE = 0x88, 2;
    /// Push False.
    NEWFALSE = 0x89, 2;
    /// Push a raw-unicode-escape string.
    UNICODE = b'V', 0;
    /// Push a UTF-8 string with a 1-byte length.
    SHORT_BINUNICODE = 0x8c, 4;
    /// Push a UTF-8 string with a 4-byte length.
    BINUNICODE = b'X', 1;
    /// Push a UTF-8 string with an 8-byte length.
    BINUNICODE8 = 0x8d, 4;
    /// Push a float from its repr.
    FLOAT = b'F', 0;
    /// Push an 8-byte big-endian float.
    BINFLOAT = b'G', 1;
    /// Push an empty list.
    EMPTY_LIST = b']', 1;
    /// Append the top of the stack to the list below it.
    APPEND = b'a', 0;
    /// Extend the list below the mark with the items above it.
    APPENDS = b'e', 1;
    /// Build a list from the items above the mark.
    LIST = b'l', 0;
    /// Push an empty tuple.
    EMPTY_TUPLE = b')', 1;
    /// Build a tuple from the items above the mark.
    TUPLE = b't', 0;
    /// Build a 1-tuple.
    TUPLE1 = 0x85, 2;
    /// Build a 2-tuple.
    TUPLE2 = 0x86, 2;
    /// Build a 3-tuple.
    TUPLE3 = 0x87, 2;
    /// Push an empty dict.
    EMPTY_DICT = b'}', 1;
    /// Build a dict from the key/value pairs above the mark.
    DICT = b'd', 0;
    /// Set one item of the dict below key and value.
    SETITEM = b's', 0;
    /// Set the key/value pairs above the mark in the dict below it.
    SETITEMS = b'u', 1;
    /// Push an empty set.
    EMPTY_SET = 0x8f, 4;
    /// Add the items above the mark to the set below it.
    ADDITEMS = 0x90, 4;
    /// Build a frozenset from the items above the mark.
    FROZENSET = 0x91, 4;
    /// Discard the top of the stack.
    POP = b'0', 0;
    /// Duplicate the top of the stack.
    DUP = b'2', 0;
    /// Push a mark.
    MARK = b'(', 0;
    /// Discard the items above the mark, and the mark.
    POP_MARK = b'1', 1;
    /// Push a memo entry (decimal index).
    GET = b'g', 0;
    /// Push a memo entry (1-byte index).
    BINGET = b'h', 1;
    /// Push a memo entry (4-byte index).
    LONG_BINGET = b'j', 1;
    /// Store the top of the stack in the memo (decimal index).
    PUT = b'p', 0;
    /// Store the top of the stack in the memo (1-byte index).
    BINPUT = b'q', 1;
    /// Store the top of the stack in the memo (4-byte index).
    LONG_BINPUT = b'r', 1;
    /// Store the top of the stack at the next memo index.
    MEMOIZE = 0x94, 4;
    /// Push an extension-registry object (1-byte code).
    EXT1 = 0x82, 2;
    /// Push an extension-registry object (2-byte code).
    EXT2 = 0x83, 2;
    /// Push an extension-registry object (4-byte code).
    EXT4 = 0x84, 2;
    /// Push a global `module\nname\n`.
    GLOBAL = b'c', 0;
    /// Push a global from two strings on the stack.
    STACK_GLOBAL = 0x93, 4;
    /// Call a callable with an argument tuple.
    REDUCE = b'R', 0;
    /// Update an object with a state.
    BUILD = b'b', 0;
    /// Instantiate `module\nname\n` with the items above the mark.
    INST = b'i', 0;
    /// Instantiate the first item above the mark with the others.
    OBJ = b'o', 1;
    /// `cls.__new__(cls, *args)`.
    NEWOBJ = 0x81, 2;
    /// `cls.__new__(cls, *args, **kwargs)`.
    NEWOBJ_EX = 0x92, 4;
    /// Protocol version.
    PROTO = 0x80, 2;
    /// End of the pickle.
    STOP = b'.', 0;
    /// A frame length (protocol 4).
    FRAME = 0x95, 4;
    /// Persistent id from an ASCII line.
    PERSID = b'P', 0;
    /// Persistent id from the top of the stack.
    BINPERSID = b'Q', 1;
}

/// The decoded argument of an [`Op`].
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    /// No argument.
    None,
    /// BININT, BININT1, BININT2, and INT values that fit in `i64`.
    Int(i64),
    /// INT written as `01` / `00` (protocol-0 booleans).
    Bool(bool),
    /// LONG, LONG1, LONG4, and INT beyond `i64`: little-endian two's
    /// complement bytes (empty means 0).
    Long(Cow<'a, [u8]>),
    /// FLOAT and BINFLOAT.
    Float(f64),
    /// STRING, BINSTRING, SHORT_BINSTRING, BINBYTES, SHORT_BINBYTES,
    /// BINBYTES8, BYTEARRAY8.
    Bytes(Cow<'a, [u8]>),
    /// UNICODE, BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, PERSID.
    Str(Cow<'a, str>),
    /// GLOBAL and INST.
    Global {
        /// Module line.
        module: &'a str,
        /// Name line.
        name: &'a str,
    },
    /// GET, BINGET, LONG_BINGET, PUT, BINPUT, LONG_BINPUT: memo index.
    Memo(u64),
    /// PROTO version, FRAME length, EXT1/EXT2/EXT4 code (EXT4 is read as
    /// signed, like CPython; negative codes are kept as their `u32` bits and
    /// rejected by the machine).
    Uint(u64),
}

/// One opcode with its position and argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Op<'a> {
    /// Offset of the opcode byte.
    pub offset: u64,
    /// Offset just after the argument.
    pub end: u64,
    /// The opcode.
    pub opcode: Opcode,
    /// The decoded argument.
    pub arg: Arg<'a>,
}

impl Op<'_> {
    /// The bytes of the opcode and its argument, as a range of the input.
    pub fn range(&self) -> Range<u64> {
        self.offset..self.end
    }

    /// The position of this op, for errors.
    pub fn at(&self) -> At {
        At::op(self.offset, self.opcode)
    }
}

/// Bytes a pass over the ops reads between two reports of what it has
/// passed ([`Ops::memo_reads`], [`Taker::passed`](crate::Taker::passed)).
pub(crate) const PASSED: usize = 1 << 20;

/// Iterator over the [`Op`]s of a byte slice.
///
/// It does not stop at STOP (stacked pickles continue); it ends at the end of
/// the input, or after yielding the first error.
#[derive(Debug, Clone)]
pub struct Ops<'a> {
    data: &'a [u8],
    pos: usize,
    max_string_len: u64,
    max_int_digits: usize,
    failed: bool,
}

impl<'a> Ops<'a> {
    /// Read from the start of `data` with default [`Limits`].
    pub fn new(data: &'a [u8]) -> Self {
        Ops::at(data, 0, &Limits::default())
    }

    /// Read from `offset` (offsets in ops and errors stay absolute in `data`),
    /// with the string and integer limits of `limits`.
    pub fn at(data: &'a [u8], offset: usize, limits: &Limits) -> Self {
        Ops {
            data,
            pos: offset.min(data.len()),
            max_string_len: limits.max_string_len,
            max_int_digits: limits.max_int_digits,
            failed: false,
        }
    }

    /// The offset of the next opcode.
    pub fn position(&self) -> u64 {
        self.pos as u64
    }

    /// Read one op at the current position; `Ok(None)` at the end of input.
    #[inline]
    pub fn read_op(&mut self) -> Result<Option<Op<'a>>, PickleError> {
        let Some(&byte) = self.data.get(self.pos) else {
            return Ok(None);
        };
        let offset = self.pos as u64;
        let opcode = Opcode::from_byte(byte).ok_or(PickleError::UnknownOpcode {
            at: At::byte(offset),
            byte,
        })?;
        let mut r = Reader {
            data: self.data,
            pos: self.pos + 1,
            at: At::op(offset, opcode),
            max_string_len: self.max_string_len,
            max_int_digits: self.max_int_digits,
        };
        let arg = r.arg(opcode)?;
        self.pos = r.pos;
        Ok(Some(Op {
            offset,
            end: r.pos as u64,
            opcode,
            arg,
        }))
    }
}

impl Ops<'_> {
    /// Call `read` with the index of every GET, BINGET and LONG_BINGET from
    /// here to the STOP; `None` if the ops do not reach a STOP. Ops are
    /// delimited exactly as [`read_op`](Self::read_op) delimits them, but
    /// the binary opcodes are skipped by their lengths without decoding
    /// their arguments (no UTF-8 check, no integer): a pass over a 5 MB
    /// pickle in a few milliseconds. An argument that `read_op` would reject
    /// is the run's error to report, at the same op.
    ///
    /// `passed` is given the bytes read so far, [`PASSED`] or more at a
    /// time, each once.
    pub(crate) fn memo_reads(
        mut self,
        mut read: impl FnMut(u64),
        passed: &mut dyn FnMut(&[u8]),
    ) -> Option<()> {
        use Opcode::*;
        let data = self.data;
        let mut reported = self.pos;
        let len_at = |at: usize, n: usize| -> Option<u64> {
            let b = data.get(at..at.checked_add(n)?)?;
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(b);
            Some(u64::from_le_bytes(w))
        };
        loop {
            if self.pos - reported >= PASSED {
                passed(&data[reported..self.pos]);
                reported = self.pos;
            }
            let opcode = Opcode::from_byte(*data.get(self.pos)?)?;
            let p = self.pos + 1;
            // Bytes of argument after the opcode, when known from them.
            let arg: Option<u64> = match opcode {
                STOP => return Some(()),
                BINGET => {
                    read(len_at(p, 1)?);
                    Some(1)
                }
                LONG_BINGET => {
                    read(len_at(p, 4)?);
                    Some(4)
                }
                BININT1 | BINPUT | EXT1 | PROTO => Some(1),
                BININT2 | EXT2 => Some(2),
                BININT | LONG_BINPUT | EXT4 => Some(4),
                BINFLOAT => Some(8),
                SHORT_BINUNICODE | SHORT_BINBYTES | SHORT_BINSTRING | LONG1 => {
                    Some(1 + len_at(p, 1)?)
                }
                BINUNICODE | BINBYTES => Some(4 + len_at(p, 4)?),
                // Signed lengths: a negative one is an error of the run.
                BINSTRING | LONG4 => Some(4 + u64::from(u32::try_from(len_at(p, 4)? as i32).ok()?)),
                BINUNICODE8 | BINBYTES8 | BYTEARRAY8 => 8u64.checked_add(len_at(p, 8)?),
                NEXT_BUFFER | READONLY_BUFFER | NONE | NEWTRUE | NEWFALSE | EMPTY_LIST | APPEND
                | APPENDS | LIST | EMPTY_TUPLE | TUPLE | TUPLE1 | TUPLE2 | TUPLE3 | EMPTY_DICT
                | DICT | SETITEM | SETITEMS | EMPTY_SET | ADDITEMS | FROZENSET | POP | DUP
                | MARK | POP_MARK | MEMOIZE | STACK_GLOBAL | REDUCE | BUILD | OBJ | NEWOBJ
                | NEWOBJ_EX | BINPERSID => Some(0),
                // Text lines and FRAME: decoded as the run decodes them.
                INT | LONG | STRING | UNICODE | FLOAT | GET | PUT | GLOBAL | INST | PERSID
                | FRAME => None,
            };
            match arg {
                Some(n) => {
                    let end = usize::try_from(n).ok().and_then(|n| p.checked_add(n))?;
                    if end > data.len() {
                        return None;
                    }
                    self.pos = end;
                }
                None => {
                    let op = self.read_op().ok()??;
                    if let (GET, Arg::Memo(i)) = (op.opcode, &op.arg) {
                        read(*i);
                    }
                }
            }
        }
    }
}

impl<'a> Iterator for Ops<'a> {
    type Item = Result<Op<'a>, PickleError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.read_op() {
            Ok(Some(op)) => Some(Ok(op)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Cursor for one opcode's argument.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    at: At,
    max_string_len: u64,
    max_int_digits: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn bad(&self, reason: impl Into<String>) -> PickleError {
        PickleError::BadArgument {
            at: self.at,
            reason: reason.into(),
        }
    }

    #[inline]
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let remaining = self.remaining();
        match self.data.get(self.pos..self.pos.saturating_add(N)) {
            Some(s) => {
                let mut out = [0u8; N];
                out.copy_from_slice(s);
                self.pos += N;
                Ok(out)
            }
            None => Err(PickleError::Truncated {
                at: self.at,
                needed: N as u64,
                remaining: remaining as u64,
            }),
        }
    }

    /// A slice of a declared length, checked against the input and the limit
    /// before it is taken.
    #[inline]
    fn counted(&mut self, declared: u64) -> Result<&'a [u8], PickleError> {
        let remaining = self.remaining() as u64;
        if declared > remaining {
            return Err(PickleError::LengthExceedsInput {
                at: self.at,
                declared,
                remaining,
            });
        }
        if declared > self.max_string_len {
            return Err(PickleError::LimitExceeded {
                at: self.at,
                limit: Limit::StringLen,
                value: declared,
                max: self.max_string_len,
            });
        }
        // declared <= remaining <= usize::MAX, so the cast is exact.
        let n = declared as usize;
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A line without its `\n`.
    fn line(&mut self) -> Result<&'a [u8], PickleError> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None => Err(PickleError::UnterminatedLine { at: self.at }),
        }
    }

    fn utf8_line(&mut self, what: &str) -> Result<&'a str, PickleError> {
        let line = self.line()?;
        std::str::from_utf8(line).map_err(|_| self.bad(format!("{what} is not valid UTF-8")))
    }

    fn utf8(&self, bytes: &'a [u8]) -> Result<&'a str, PickleError> {
        std::str::from_utf8(bytes).map_err(|e| {
            self.bad(format!(
                "string is not valid UTF-8 (invalid byte at argument offset {})",
                e.valid_up_to()
            ))
        })
    }

    #[inline]
    fn arg(&mut self, opcode: Opcode) -> Result<Arg<'a>, PickleError> {
        use Opcode::*;
        Ok(match opcode {
            INT => self.int_line()?,
            BININT => Arg::Int(i32::from_le_bytes(self.fixed::<4>()?).into()),
            BININT1 => Arg::Int(self.fixed::<1>()?[0].into()),
            BININT2 => Arg::Int(u16::from_le_bytes(self.fixed::<2>()?).into()),
            LONG => self.long_line()?,
            LONG1 => {
                let n = self.fixed::<1>()?[0];
                Arg::Long(Cow::Borrowed(self.counted(n.into())?))
            }
            LONG4 => {
                let n = i32::from_le_bytes(self.fixed::<4>()?);
                if n < 0 {
                    return Err(PickleError::NegativeLength {
                        at: self.at,
                        declared: n.into(),
                    });
                }
                Arg::Long(Cow::Borrowed(self.counted(n as u64)?))
            }
            STRING => self.string_line()?,
            BINSTRING => {
                let n = i32::from_le_bytes(self.fixed::<4>()?);
                if n < 0 {
                    return Err(PickleError::NegativeLength {
                        at: self.at,
                        declared: n.into(),
                    });
                }
                Arg::Bytes(Cow::Borrowed(self.counted(n as u64)?))
            }
            SHORT_BINSTRING | SHORT_BINBYTES => {
                let n = self.fixed::<1>()?[0];
                Arg::Bytes(Cow::Borrowed(self.counted(n.into())?))
            }
            BINBYTES => {
                let n = u32::from_le_bytes(self.fixed::<4>()?);
                Arg::Bytes(Cow::Borrowed(self.counted(n.into())?))
            }
            BINBYTES8 | BYTEARRAY8 => {
                let n = u64::from_le_bytes(self.fixed::<8>()?);
                Arg::Bytes(Cow::Borrowed(self.counted(n)?))
            }
            UNICODE => {
                let line = self.line()?;
                Arg::Str(Cow::Owned(self.raw_unicode_escape(line)?))
            }
            SHORT_BINUNICODE => {
                let n = self.fixed::<1>()?[0];
                let s = self.counted(n.into())?;
                Arg::Str(Cow::Borrowed(self.utf8(s)?))
            }
            BINUNICODE => {
                let n = u32::from_le_bytes(self.fixed::<4>()?);
                let s = self.counted(n.into())?;
                Arg::Str(Cow::Borrowed(self.utf8(s)?))
            }
            BINUNICODE8 => {
                let n = u64::from_le_bytes(self.fixed::<8>()?);
                let s = self.counted(n)?;
                Arg::Str(Cow::Borrowed(self.utf8(s)?))
            }
            FLOAT => self.float_line()?,
            BINFLOAT => Arg::Float(f64::from_be_bytes(self.fixed::<8>()?)),
            GET | PUT => Arg::Memo(self.memo_line()?),
            BINGET | BINPUT => Arg::Memo(self.fixed::<1>()?[0].into()),
            LONG_BINGET | LONG_BINPUT => Arg::Memo(u32::from_le_bytes(self.fixed::<4>()?).into()),
            EXT1 => Arg::Uint(self.fixed::<1>()?[0].into()),
            EXT2 => Arg::Uint(u16::from_le_bytes(self.fixed::<2>()?).into()),
            EXT4 => Arg::Uint(u32::from_le_bytes(self.fixed::<4>()?).into()),
            PROTO => Arg::Uint(self.fixed::<1>()?[0].into()),
            FRAME => {
                let n = u64::from_le_bytes(self.fixed::<8>()?);
                let remaining = self.remaining() as u64;
                if n > remaining {
                    return Err(PickleError::LengthExceedsInput {
                        at: self.at,
                        declared: n,
                        remaining,
                    });
                }
                Arg::Uint(n)
            }
            GLOBAL | INST => {
                let module = self.utf8_line("module name")?;
                let name = self.utf8_line("global name")?;
                Arg::Global { module, name }
            }
            PERSID => {
                let line = self.line()?;
                if !line.is_ascii() {
                    return Err(self.bad("persistent id is not ASCII"));
                }
                Arg::Str(Cow::Borrowed(self.utf8(line)?))
            }
            NEXT_BUFFER | READONLY_BUFFER | NONE | NEWTRUE | NEWFALSE | EMPTY_LIST | APPEND
            | APPENDS | LIST | EMPTY_TUPLE | TUPLE | TUPLE1 | TUPLE2 | TUPLE3 | EMPTY_DICT
            | DICT | SETITEM | SETITEMS | EMPTY_SET | ADDITEMS | FROZENSET | POP | DUP | MARK
            | POP_MARK | MEMOIZE | STACK_GLOBAL | REDUCE | BUILD | OBJ | NEWOBJ | NEWOBJ_EX
            | STOP | BINPERSID => Arg::None,
        })
    }

    /// Shorten text for an error message.
    fn show(text: &[u8]) -> String {
        let cut = &text[..text.len().min(40)];
        let mut s = String::from_utf8_lossy(cut).escape_debug().to_string();
        if text.len() > cut.len() {
            s.push('…');
        }
        s
    }

    fn check_digits(&self, n: usize) -> Result<(), PickleError> {
        if n > self.max_int_digits {
            return Err(PickleError::LimitExceeded {
                at: self.at,
                limit: Limit::IntDigits,
                value: n as u64,
                max: self.max_int_digits as u64,
            });
        }
        Ok(())
    }

    /// `INT`: CPython `load_int` (`strtol(s, &end, 0)`, bool for 2-char 0/1).
    fn int_line(&mut self) -> Result<Arg<'a>, PickleError> {
        let line = self.line()?;
        // C stops at a NUL as well as at the newline.
        let text = match line.iter().position(|&b| b == 0) {
            Some(n) => &line[..n],
            None => line,
        };
        let c_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
        let mut i = text.iter().take_while(|b| c_space(b)).count();
        let mut negative = false;
        if let Some(&s) = text.get(i)
            && (s == b'+' || s == b'-')
        {
            negative = s == b'-';
            i += 1;
        }
        let (radix, start) = match (text.get(i), text.get(i + 1), text.get(i + 2)) {
            (Some(b'0'), Some(b'x' | b'X'), Some(h)) if h.is_ascii_hexdigit() => (16u32, i + 2),
            (Some(b'0'), _, _) => (8, i),
            _ => (10, i),
        };
        let digits = &text[start..];
        if digits.is_empty() {
            // strtol consumed nothing: the end pointer is the start of the line,
            // accepted only when the line is empty.
            if text.is_empty() {
                return Ok(Arg::Int(0));
            }
            return Err(self.bad(format!(
                "INT argument {:?} is not a number",
                Self::show(line)
            )));
        }
        let valid = |b: &u8| (*b as char).is_digit(radix);
        if !digits.iter().all(valid) {
            return Err(self.bad(format!(
                "INT argument {:?} is not a number",
                Self::show(line)
            )));
        }
        self.check_digits(digits.len())?;
        let mut value: i128 = 0;
        let mut overflow = false;
        for &d in digits {
            let dv = (d as char).to_digit(radix).unwrap_or(0) as i128;
            value = value * radix as i128 + dv;
            if value > i64::MAX as i128 + 1 {
                overflow = true;
                break;
            }
        }
        if negative {
            value = -value;
        }
        if !overflow && value >= i64::MIN as i128 && value <= i64::MAX as i128 {
            let v = value as i64;
            if line.len() == 2 && (v == 0 || v == 1) {
                return Ok(Arg::Bool(v == 1));
            }
            return Ok(Arg::Int(v));
        }
        if radix != 10 {
            return Err(self.bad(format!(
                "INT argument {:?}: non-decimal values beyond 64 bits are not supported",
                Self::show(line)
            )));
        }
        Ok(Arg::Long(Cow::Owned(decimal_to_le_signed(
            negative, digits,
        ))))
    }

    /// `LONG`: decimal, optional trailing `L`, surrounding whitespace allowed.
    fn long_line(&mut self) -> Result<Arg<'a>, PickleError> {
        let line = self.line()?;
        let mut text = line;
        if let Some((b'L', head)) = text.split_last() {
            text = head;
        }
        let text = text.trim_ascii();
        let (negative, digits) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, text),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(self.bad(format!(
                "LONG argument {:?} is not a decimal integer",
                Self::show(line)
            )));
        }
        self.check_digits(digits.len())?;
        Ok(Arg::Long(Cow::Owned(decimal_to_le_signed(
            negative, digits,
        ))))
    }

    /// `FLOAT`: `PyOS_string_to_double`, overflow is an error.
    fn float_line(&mut self) -> Result<Arg<'a>, PickleError> {
        let line = self.line()?;
        let bad = |s: &Self| {
            s.bad(format!(
                "FLOAT argument {:?} is not a float",
                Self::show(line)
            ))
        };
        let text = std::str::from_utf8(line).map_err(|_| bad(self))?;
        if !text.is_ascii()
            || text.contains('_')
            || text.starts_with(|c: char| c.is_ascii_whitespace())
        {
            return Err(bad(self));
        }
        let value: f64 = text.parse().map_err(|_| bad(self))?;
        if value.is_infinite() && !text.to_ascii_lowercase().contains("inf") {
            return Err(self.bad(format!("FLOAT argument {:?} overflows", Self::show(line))));
        }
        Ok(Arg::Float(value))
    }

    /// `GET`/`PUT`: a decimal memo index.
    fn memo_line(&mut self) -> Result<u64, PickleError> {
        let line = self.line()?;
        let text = line.trim_ascii();
        let digits = text.strip_prefix(b"+").unwrap_or(text);
        let mut value: u64 = 0;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(self.bad(format!(
                "memo index {:?} is not a non-negative decimal",
                Self::show(line)
            )));
        }
        for &d in digits {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(d - b'0')))
                .ok_or_else(|| {
                    self.bad(format!("memo index {:?} is too large", Self::show(line)))
                })?;
        }
        Ok(value)
    }

    /// `STRING`: quoted, then `codecs.escape_decode`.
    fn string_line(&mut self) -> Result<Arg<'a>, PickleError> {
        let line = self.line()?;
        let inner = match line {
            [q, inner @ .., last] if q == last && (*q == b'\'' || *q == b'"') => inner,
            _ => return Err(self.bad("the STRING opcode argument must be quoted")),
        };
        if !inner.contains(&b'\\') {
            return Ok(Arg::Bytes(Cow::Borrowed(inner)));
        }
        let mut out = Vec::with_capacity(inner.len());
        let mut i = 0;
        while i < inner.len() {
            let b = inner[i];
            i += 1;
            if b != b'\\' {
                out.push(b);
                continue;
            }
            let Some(&e) = inner.get(i) else {
                return Err(self.bad("trailing \\ in STRING argument"));
            };
            i += 1;
            match e {
                b'\n' => {}
                b'\\' => out.push(b'\\'),
                b'\'' => out.push(b'\''),
                b'"' => out.push(b'"'),
                b'a' => out.push(0x07),
                b'b' => out.push(0x08),
                b'f' => out.push(0x0c),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'v' => out.push(0x0b),
                b'0'..=b'7' => {
                    let mut v = u32::from(e - b'0');
                    for _ in 0..2 {
                        match inner.get(i) {
                            Some(&d @ b'0'..=b'7') => {
                                v = v * 8 + u32::from(d - b'0');
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    // Python keeps the low 8 bits of octal escapes above \377.
                    out.push((v & 0xff) as u8);
                }
                b'x' => {
                    let hex = inner
                        .get(i..i + 2)
                        .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                    let Some(hex) = hex else {
                        return Err(self.bad(format!("invalid \\x escape at position {}", i - 2)));
                    };
                    let v = hex.iter().fold(0u8, |acc, &h| {
                        acc.wrapping_mul(16)
                            .wrapping_add((h as char).to_digit(16).unwrap_or(0) as u8)
                    });
                    out.push(v);
                    i += 2;
                }
                other => {
                    // Unknown escapes keep the backslash (DeprecationWarning in Python).
                    out.push(b'\\');
                    out.push(other);
                }
            }
        }
        Ok(Arg::Bytes(Cow::Owned(out)))
    }

    /// `raw-unicode-escape` decoding (CPython `_PyUnicode_DecodeRawUnicodeEscape`).
    fn raw_unicode_escape(&self, line: &[u8]) -> Result<String, PickleError> {
        let mut out = String::with_capacity(line.len());
        let mut i = 0;
        while i < line.len() {
            let b = line[i];
            if b != b'\\' {
                out.push(char::from(b));
                i += 1;
                continue;
            }
            let start = i;
            while i < line.len() && line[i] == b'\\' {
                out.push('\\');
                i += 1;
            }
            let odd = (i - start) % 2 == 1;
            let count = match line.get(i) {
                Some(b'u') if odd => 4,
                Some(b'U') if odd => 8,
                _ => continue,
            };
            out.pop();
            i += 1;
            let hex = line
                .get(i..i + count)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .ok_or_else(|| {
                    self.bad(format!(
                        "truncated \\{}XXXX escape at position {}",
                        if count == 4 { 'u' } else { 'U' },
                        start
                    ))
                })?;
            let code = hex.iter().fold(0u32, |acc, &h| {
                acc.wrapping_mul(16) + (h as char).to_digit(16).unwrap_or(0)
            });
            let c = char::from_u32(code).ok_or_else(|| {
                self.bad(format!(
                    "escape at position {start} is U+{code:X}, not a Unicode scalar value"
                ))
            })?;
            out.push(c);
            i += count;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Result<Op<'_>, PickleError> {
        Ops::new(bytes).next().expect("one op")
    }

    #[test]
    fn every_opcode_round_trips_its_byte() {
        assert_eq!(Opcode::ALL.len(), 68);
        for &op in Opcode::ALL {
            assert_eq!(Opcode::from_byte(op as u8), Some(op));
        }
        let known = (0..=255u8)
            .filter(|&b| Opcode::from_byte(b).is_some())
            .count();
        assert_eq!(known, 68);
    }

    #[test]
    fn int_text_forms() {
        assert_eq!(one(b"I01\n").unwrap().arg, Arg::Bool(true));
        assert_eq!(one(b"I00\n").unwrap().arg, Arg::Bool(false));
        assert_eq!(one(b"I1\n").unwrap().arg, Arg::Int(1));
        assert_eq!(one(b"I-42\n").unwrap().arg, Arg::Int(-42));
        assert_eq!(one(b"I010\n").unwrap().arg, Arg::Int(8));
        assert_eq!(one(b"I0x1f\n").unwrap().arg, Arg::Int(31));
        assert_eq!(one(b"I\n").unwrap().arg, Arg::Int(0));
        // 2**64 is beyond i64: a long, little-endian two's complement.
        assert_eq!(
            one(b"I18446744073709551616\n").unwrap().arg,
            Arg::Long(Cow::Owned(vec![0, 0, 0, 0, 0, 0, 0, 0, 1]))
        );
        assert!(matches!(
            one(b"Iabc\n"),
            Err(PickleError::BadArgument { .. })
        ));
        assert!(matches!(
            one(b"I12"),
            Err(PickleError::UnterminatedLine { .. })
        ));
    }

    #[test]
    fn long_and_float_text() {
        assert_eq!(
            one(b"L-1L\n").unwrap().arg,
            Arg::Long(Cow::Owned(vec![0xff]))
        );
        assert_eq!(one(b"L0L\n").unwrap().arg, Arg::Long(Cow::Owned(vec![])));
        assert_eq!(
            one(b"L255\n").unwrap().arg,
            Arg::Long(Cow::Owned(vec![0xff, 0]))
        );
        assert_eq!(one(b"F0.1\n").unwrap().arg, Arg::Float(0.1));
        assert_eq!(one(b"F-inf\n").unwrap().arg, Arg::Float(f64::NEG_INFINITY));
        assert!(matches!(
            one(b"F1e400\n"),
            Err(PickleError::BadArgument { .. })
        ));
        assert!(matches!(one(b"Fx\n"), Err(PickleError::BadArgument { .. })));
    }

    #[test]
    fn string_escapes() {
        let op = one(b"S'a\\n\\x41\\101\\'\\q'\n").unwrap();
        assert_eq!(op.arg, Arg::Bytes(Cow::Owned(b"a\nAA'\\q".to_vec())));
        assert!(matches!(
            one(b"Sabc\n"),
            Err(PickleError::BadArgument { .. })
        ));
        assert!(matches!(
            one(b"S'\\x4'\n"),
            Err(PickleError::BadArgument { .. })
        ));
    }

    #[test]
    fn raw_unicode_escape() {
        let op = one(b"V\\u20ac\\\\u0041\xe9\\U0001F600\n").unwrap();
        assert_eq!(op.arg, Arg::Str(Cow::Owned("€\\\\u0041é😀".to_string())));
        assert!(matches!(
            one(b"V\\ud800\n"),
            Err(PickleError::BadArgument { .. })
        ));
        assert!(matches!(
            one(b"V\\u12\n"),
            Err(PickleError::BadArgument { .. })
        ));
    }

    #[test]
    fn lying_lengths_fail_before_allocation() {
        let e = one(b"X\xff\xff\xff\xffabc").unwrap_err();
        assert_eq!(
            e.to_string(),
            "at byte 0 (BINUNICODE): declared length 4294967295 exceeds the 3 bytes that remain"
        );
        let e = one(b"\x8e\xff\xff\xff\xff\xff\xff\xff\xff").unwrap_err();
        assert!(matches!(
            e,
            PickleError::LengthExceedsInput {
                declared: u64::MAX,
                ..
            }
        ));
        let e = one(b"\x95\x10\0\0\0\0\0\0\0N.").unwrap_err();
        assert!(matches!(
            e,
            PickleError::LengthExceedsInput {
                declared: 16,
                remaining: 2,
                ..
            }
        ));
        assert!(matches!(
            one(b"T\xff\xff\xff\xff"),
            Err(PickleError::NegativeLength { .. })
        ));
        assert!(matches!(
            one(b"\x8b\xff\xff\xff\xff"),
            Err(PickleError::NegativeLength { .. })
        ));
        assert!(matches!(
            one(b"J\x01\x02"),
            Err(PickleError::Truncated {
                needed: 4,
                remaining: 2,
                ..
            })
        ));
    }

    #[test]
    fn ranges_cover_the_input() {
        let data = b"\x80\x02]q\x00(K\x01X\x01\x00\x00\x00ae.";
        let ops: Vec<_> = Ops::new(data).collect::<Result<_, _>>().unwrap();
        let mut pos = 0;
        for op in &ops {
            assert_eq!(op.offset, pos);
            pos = op.end;
        }
        assert_eq!(pos, data.len() as u64);
        assert_eq!(ops[5].arg, Arg::Str(Cow::Borrowed("a")));
    }

    #[test]
    fn unknown_opcode_reports_byte() {
        let e = Ops::new(b"N\xff").nth(1).unwrap().unwrap_err();
        assert_eq!(e.to_string(), "at byte 1: unknown opcode byte 0xff");
    }
}
