//! A Python pickle reader that never executes or imports anything, for
//! PyTorch checkpoints and pickle scanners.
//!
//! - [`ops`]: [`Ops`], a bounded iterator over the [`Op`]s of a byte slice
//!   (protocols 0 to 5, all 68 opcodes of `pickletools`), with byte ranges and
//!   decoded, borrowed arguments.
//! - [`machine`]: [`Machine`] runs one pickle into an [`Arena`] of [`Value`]s
//!   under [`Limits`]; globals and calls stay symbolic; memo sharing and
//!   in-place mutation are exact; [`Pickle::end`] is where a stacked pickle
//!   starts; [`Machine::load_with`] lets a [`Taker`] take calls over as
//!   they are made, freeing their arguments.
//! - [`value`]: the value model ([`Value`], [`ValueId`], [`Arena`], [`BigInt`]).
//! - [`globals`]: [`classify`] a `(module, name)` as allowed by
//!   `torch.load(weights_only=True)`, benign, dangerous or unknown.
//! - [`scan`](mod@scan): [`scan()`](fn@scan) one pickle for a safety verdict: every
//!   global (resolved through stack and memo) with its offset and class,
//!   `torch.load(weights_only=True)` compatibility with torch's predicted
//!   error, nested payloads to scan recursively; [`parses_to_stop`]: is
//!   this byte slice a pickle (any protocol) that reaches STOP?
//! - [`writer`]: [`write()`](fn@write) a value graph as a protocol-2 pickle.
//! - [`repr`](mod@repr): Python's `repr` of floats, str and bytes, exactly as
//!   CPython prints them.
//! - [`error`]: [`PickleError`], which always names the byte offset and opcode.
//!
//! ```
//! use netport_pickle::{load, Value};
//!
//! // pickle.dumps({'a': [1, 2]}, protocol=2)
//! let data = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01]q\x02(K\x01K\x02es.";
//! let p = load(data)?;
//! assert_eq!(p.arena.repr(p.root, 100), "{'a': [1, 2]}");
//! assert!(matches!(p.arena[p.root], Value::Dict(_)));
//! assert_eq!(p.end, data.len() as u64);
//! # Ok::<(), netport_pickle::PickleError>(())
//! ```

mod chunked;
mod engine;
pub mod error;
pub mod globals;
pub mod machine;
pub mod ops;
pub mod repr;
pub mod scan;
pub mod value;
pub mod writer;

pub use error::{At, Limit, PickleError};
pub use globals::{GlobalClass, Verdict, classify};
pub use machine::{Limits, Machine, Pickle, Taker, load};
pub use ops::{Arg, Op, Opcode, Ops};
pub use scan::{
    Blocker, BlockerKind, GlobalFinding, GlobalRef, GlobalUses, NestedKind, NestedPayload,
    PayloadEncoding, PayloadSource, PickleScan, ScanVerdict, WeightsOnly, parses_to_stop, scan,
};
pub use value::{Arena, BigInt, CompactString, Value, ValueId};
pub use writer::write;
