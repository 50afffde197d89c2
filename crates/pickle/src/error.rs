//! [`PickleError`], the one error type of the crate, and [`At`], the position
//! (byte offset and opcode) every error carries.

use std::fmt;

use crate::ops::Opcode;

/// Where an error happened: the byte offset of the opcode (absolute in the
/// slice given to the reader) and the opcode, when one was decoded.
///
/// For writer errors the offset is the length of the output written so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// Byte offset of the opcode byte.
    pub offset: u64,
    /// The opcode at that offset; `None` when the byte is not an opcode or the
    /// input ended before one.
    pub opcode: Option<Opcode>,
}

impl At {
    /// A position with a known opcode.
    pub fn op(offset: u64, opcode: Opcode) -> Self {
        At {
            offset,
            opcode: Some(opcode),
        }
    }

    /// A position without an opcode (end of input, unknown byte).
    pub fn byte(offset: u64) -> Self {
        At {
            offset,
            opcode: None,
        }
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.opcode {
            Some(op) => write!(f, "at byte {} ({})", self.offset, op.name()),
            None => write!(f, "at byte {}", self.offset),
        }
    }
}

/// Which [`Limits`](crate::Limits) field was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_depth`: nesting of containers or MARKs.
    Depth,
    /// `max_memo`: number of memo entries.
    Memo,
    /// `max_container_len`: elements in one container.
    ContainerLen,
    /// `max_work`: opcodes + elements moved + memo reads.
    Work,
    /// `max_nodes`: values in the arena.
    Nodes,
    /// `max_string_len`: bytes in one string, bytes or bytearray argument.
    StringLen,
    /// `max_int_digits`: digits in a protocol-0 decimal integer.
    IntDigits,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Depth => "nesting depth",
            Limit::Memo => "memo size",
            Limit::ContainerLen => "container length",
            Limit::Work => "total work",
            Limit::Nodes => "arena size",
            Limit::StringLen => "string length",
            Limit::IntDigits => "integer digits",
        })
    }
}

/// Everything that can go wrong while reading, running or writing a pickle.
///
/// Every variant carries an [`At`]; the `Display` text starts with it, e.g.
/// `at byte 1234 (BINUNICODE): declared length 4294967295 exceeds the 812
/// bytes that remain`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// A byte that is not a pickle opcode (protocols 0 to 5).
    #[error("{at}: unknown opcode byte 0x{byte:02x}")]
    UnknownOpcode {
        /// Position.
        at: At,
        /// The byte found.
        byte: u8,
    },
    /// A fixed-size argument runs past the end of the input.
    #[error("{at}: argument needs {needed} bytes but only {remaining} remain")]
    Truncated {
        /// Position.
        at: At,
        /// Bytes needed.
        needed: u64,
        /// Bytes left after the opcode byte.
        remaining: u64,
    },
    /// A length prefix (or FRAME length) larger than the rest of the input.
    #[error("{at}: declared length {declared} exceeds the {remaining} bytes that remain")]
    LengthExceedsInput {
        /// Position.
        at: At,
        /// The length read from the input.
        declared: u64,
        /// Bytes left after the length prefix.
        remaining: u64,
    },
    /// A signed length prefix that is negative (BINSTRING, LONG4).
    #[error("{at}: negative length {declared}")]
    NegativeLength {
        /// Position.
        at: At,
        /// The length read from the input.
        declared: i64,
    },
    /// A protocol-0 text argument without its terminating newline.
    #[error("{at}: text argument has no newline before the end of input")]
    UnterminatedLine {
        /// Position.
        at: At,
    },
    /// A malformed argument (bad number text, bad escape, bad UTF-8, ...).
    #[error("{at}: {reason}")]
    BadArgument {
        /// Position.
        at: At,
        /// What is wrong, with the offending text when short.
        reason: String,
    },
    /// PROTO with a version above 5.
    #[error("{at}: unsupported pickle protocol {version} (highest known is 5)")]
    UnsupportedProtocol {
        /// Position.
        at: At,
        /// The version byte.
        version: u8,
    },
    /// The input ended before a STOP opcode.
    #[error("{at}: input ended before STOP")]
    MissingStop {
        /// The end of the input.
        at: At,
    },
    /// An opcode needed more values than the stack (above the last MARK) holds.
    #[error("{at}: stack underflow")]
    StackUnderflow {
        /// Position.
        at: At,
    },
    /// An opcode needed a MARK and none is open.
    #[error("{at}: no MARK on the stack")]
    MissingMark {
        /// Position.
        at: At,
    },
    /// A memo read of an index that was never written.
    #[error("{at}: memo has no entry {index}")]
    MemoMissing {
        /// Position.
        at: At,
        /// The index read.
        index: u64,
    },
    /// An odd number of items for DICT / SETITEMS.
    #[error("{at}: odd number of items ({count}) for a dictionary")]
    OddItems {
        /// Position.
        at: At,
        /// Number of items between MARK and the opcode.
        count: u64,
    },
    /// STACK_GLOBAL whose module or name is not a plain string. A scanner must
    /// treat this as dangerous: the real unpickler may resolve it to anything.
    #[error(
        "{at}: STACK_GLOBAL operands are not plain strings (module is {module}, name is {name})"
    )]
    UnresolvableGlobal {
        /// Position.
        at: At,
        /// Kind of the module operand.
        module: &'static str,
        /// Kind of the name operand.
        name: &'static str,
    },
    /// EXT1/EXT2/EXT4 with code 0 or a negative EXT4 code.
    #[error("{at}: extension code {code} is not positive")]
    BadExtensionCode {
        /// Position.
        at: At,
        /// The code read.
        code: i64,
    },
    /// A [`Limits`](crate::Limits) bound was exceeded.
    #[error("{at}: {limit} limit exceeded ({value} > {max})")]
    LimitExceeded {
        /// Position.
        at: At,
        /// Which limit.
        limit: Limit,
        /// The value that would have been reached.
        value: u64,
        /// The configured maximum.
        max: u64,
    },
    /// The writer was given something protocol 2 cannot express.
    #[error("{at}: cannot write {what} in protocol 2")]
    Unencodable {
        /// Output offset and the opcode that would have been written.
        at: At,
        /// What could not be written.
        what: String,
    },
    /// The writer was given an id that is not in the arena.
    #[error("{at}: value id {id} is not in the arena ({len} values)")]
    InvalidId {
        /// Output offset.
        at: At,
        /// The id.
        id: u32,
        /// Arena length.
        len: usize,
    },
}

impl PickleError {
    /// The position of the error.
    pub fn at(&self) -> At {
        match self {
            PickleError::UnknownOpcode { at, .. }
            | PickleError::Truncated { at, .. }
            | PickleError::LengthExceedsInput { at, .. }
            | PickleError::NegativeLength { at, .. }
            | PickleError::UnterminatedLine { at }
            | PickleError::BadArgument { at, .. }
            | PickleError::UnsupportedProtocol { at, .. }
            | PickleError::MissingStop { at }
            | PickleError::StackUnderflow { at }
            | PickleError::MissingMark { at }
            | PickleError::MemoMissing { at, .. }
            | PickleError::OddItems { at, .. }
            | PickleError::UnresolvableGlobal { at, .. }
            | PickleError::BadExtensionCode { at, .. }
            | PickleError::LimitExceeded { at, .. }
            | PickleError::Unencodable { at, .. }
            | PickleError::InvalidId { at, .. } => *at,
        }
    }

    /// The same error with `base` added to its offset (for a pickle that
    /// starts at `base` in its file).
    pub fn with_offset_base(mut self, base: u64) -> Self {
        let at = match &mut self {
            PickleError::UnknownOpcode { at, .. }
            | PickleError::Truncated { at, .. }
            | PickleError::LengthExceedsInput { at, .. }
            | PickleError::NegativeLength { at, .. }
            | PickleError::UnterminatedLine { at }
            | PickleError::BadArgument { at, .. }
            | PickleError::UnsupportedProtocol { at, .. }
            | PickleError::MissingStop { at }
            | PickleError::StackUnderflow { at }
            | PickleError::MissingMark { at }
            | PickleError::MemoMissing { at, .. }
            | PickleError::OddItems { at, .. }
            | PickleError::UnresolvableGlobal { at, .. }
            | PickleError::BadExtensionCode { at, .. }
            | PickleError::LimitExceeded { at, .. }
            | PickleError::Unencodable { at, .. }
            | PickleError::InvalidId { at, .. } => at,
        };
        at.offset = at.offset.saturating_add(base);
        self
    }
}
