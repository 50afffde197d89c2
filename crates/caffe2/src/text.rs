//! Protobuf text format (`predict_net.pbtxt`) for `NetDef`s.
//!
//! Parsing uses prost-reflect's text-format parser with the committed
//! descriptor set (`generated/caffe2.fds.bin`, written by `cargo xtask
//! codegen` from `proto/caffe2.proto`): text -> `DynamicMessage` -> bytes ->
//! [`NetDef`]. prost-reflect's parser has no nesting limit of its own, so the
//! text is first scanned for braces and refused past 100 nested messages
//! (prost's binary limit); the binary decode that follows applies prost's
//! limits again. The old spelling `cuda_gpu_id` of `DeviceOption.device_id`
//! (field 2, renamed upstream in 2018 and still found in model zoo files) is
//! accepted.
//!
//! Writing goes the other way (`NetDef` -> bytes -> `DynamicMessage`) and
//! prints the fields the way Python protobuf's `text_format.MessageToString`
//! does, so that our `.pbtxt` files are the ones Caffe2 users know, byte for
//! byte: fields in number order, one `name: value` line per element of a
//! repeated field, nested messages as `name {` ... `}` indented by two spaces,
//! strings and bytes C-escaped with octal escapes for non-printable and
//! non-ASCII bytes, floats in the shortest form that reads back as the same
//! `f32` (`1e-05`, `3.4028235e+38`, `1.0`), doubles as Python's `repr`.
//! (prost-reflect's own printer writes lists as `[a, b]` and floats without
//! exponents, e.g. 1e-30 as 31 digits; both parse, but diff badly against
//! files written by Caffe2.)

use crate::error::{Caffe2Error, TextPosition};
use crate::floats::{LazyFloats, LazyNetDef};
use crate::proto::{Argument, NetDef, OperatorDef};
use crate::wire::RECURSION_LIMIT;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MapKey, MessageDescriptor, Value};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::OnceLock;

/// The encoded `FileDescriptorSet` of `proto/caffe2.proto`.
const DESCRIPTOR_SET: &[u8] = include_bytes!("generated/caffe2.fds.bin");

/// The descriptor pool of the Caffe2 schema.
pub fn descriptor_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(DESCRIPTOR_SET).expect(
            "the committed generated/caffe2.fds.bin is a valid descriptor set (unit tested)",
        )
    })
}

/// The descriptor of a message of the Caffe2 schema, e.g. `caffe2.NetDef`.
pub(crate) fn descriptor(full_name: &str) -> MessageDescriptor {
    descriptor_pool()
        .get_message_by_name(full_name)
        .unwrap_or_else(|| panic!("{full_name} is in proto/caffe2.proto"))
}

/// The descriptor of `caffe2.NetDef`.
pub(crate) fn netdef_descriptor() -> MessageDescriptor {
    descriptor("caffe2.NetDef")
}

/// Parses a protobuf text-format `NetDef`. `what` names the input in errors
/// (a path, "stdin"); errors carry the line and column.
pub fn parse_netdef_text(text: &str, what: &str) -> Result<NetDef, Caffe2Error> {
    let text_err = |offset: Option<usize>, reason: String| Caffe2Error::Text {
        what: what.to_string(),
        position: offset.map(|o| TextPosition::of(text, o)),
        reason,
    };
    let prepared = prepare(text).map_err(|(offset, reason)| text_err(Some(offset), reason))?;
    let parsed = with_deep_stack(|| {
        let message =
            DynamicMessage::parse_text_format(netdef_descriptor(), &prepared).map_err(|e| {
                let offset = miette::Diagnostic::labels(&e)
                    .and_then(|mut labels| labels.next())
                    .map(|label| label.offset())
                    // Errors without a span are "reached end of input".
                    .unwrap_or(text.len());
                (Some(offset), e.to_string())
            })?;
        let bytes = message.encode_to_vec();
        // Cannot fail: the message was built against the same schema and its
        // nesting is bounded by `prepare`. Reported rather than unwrapped anyway.
        NetDef::decode(bytes.as_slice()).map_err(|e| (None, e.to_string()))
    });
    match parsed {
        Ok(Ok(net)) => Ok(net),
        Ok(Err((offset, reason))) => Err(text_err(offset, reason)),
        Err(e) => Err(text_err(None, format!("text-format parser: {e}"))),
    }
}

/// Stack for the recursive parts of text handling: prost-reflect's parser,
/// `DynamicMessage` encoding and decoding. At 100 nested messages they need
/// about 4 MiB in a debug build (250 KiB optimised), more than a default
/// 2 MiB thread has, so they run on a thread of their own with this much.
const DEEP_STACK: usize = 16 << 20;

/// Runs `f` on a scoped thread with a [`DEEP_STACK`]-byte stack. A panic in
/// `f` (a bug in a dependency, never expected) becomes an error rather than
/// taking the caller down, as does failing to start the thread.
fn with_deep_stack<T: Send>(f: impl FnOnce() -> T + Send) -> std::io::Result<T> {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("netport-caffe2-text".into())
            .stack_size(DEEP_STACK)
            .spawn_scoped(scope, f)?;
        handle
            .join()
            .map_err(|_| std::io::Error::other("panicked (a bug: please report it)"))
    })
}

/// Scans `text` like the text-format lexer (strings, `#` comments) to bound
/// the nesting of `{}`/`<>` and to rename the legacy field `cuda_gpu_id` to
/// `device_id` (padded with spaces to keep every byte offset). Returns the
/// text to parse, or the offset and reason of an error.
fn prepare(text: &str) -> Result<Cow<'_, str>, (usize, String)> {
    const LEGACY: &str = "cuda_gpu_id";
    const RENAMED: &str = "device_id  ";
    let bytes = text.as_bytes();
    let mut depth: u32 = 0;
    let mut legacy = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' | b'<' => {
                depth += 1;
                if depth > RECURSION_LIMIT {
                    return Err((
                        i,
                        format!(
                            "messages nested more than {RECURSION_LIMIT} deep (protobuf recursion limit)"
                        ),
                    ));
                }
            }
            b'}' | b'>' => depth = depth.saturating_sub(1),
            b'A'..=b'Z' | b'a'..=b'z' | b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let after_dot = start > 0 && bytes[start - 1] == b'.';
                if &text[start..i] == LEGACY && !after_dot {
                    legacy.push(start);
                }
                continue;
            }
            // Numbers (with their exponents and suffixes) are skipped whole,
            // so `1e5f` is not read as an identifier.
            b'0'..=b'9' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'_'))
                {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if legacy.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    let mut renamed = text.to_string();
    for start in legacy {
        renamed.replace_range(start..start + LEGACY.len(), RENAMED);
    }
    Ok(Cow::Owned(renamed))
}

/// Prints `net` in protobuf text format, as Python's
/// `text_format.MessageToString(net)` does (see the module docs).
///
/// Fails only for a net nested more than 100 messages deep, which no decoder
/// of this crate produces but code can build.
pub fn netdef_to_text(net: &NetDef) -> Result<String, Caffe2Error> {
    let mut out = Vec::new();
    print_net(net, &[], &mut out, std::path::Path::new(""))?;
    // Cannot fail: the printer writes `str`s only.
    String::from_utf8(out).map_err(|e| Caffe2Error::Decode {
        what: net_what(net),
        len: net.encoded_len() as u64,
        offset: None,
        reason: format!("text-format printer: {e}"),
    })
}

/// Writes the text form of `net` to `out`, the bytes [`netdef_to_text`]
/// prints for the whole net ([`LazyNetDef::into_netdef`]), but one op at a
/// time, and each lazy `floats` argument a piece at a time from the input
/// ([`LazyFloats::write_le`]): memory is the net's structure and one piece,
/// not the weights' text (10 to 15 bytes a float). `path` names `out` in I/O
/// errors. Fields are printed in number order, so the net's name, then its
/// ops, then the fields after them, is the order the whole-net printer uses;
/// inside an op with lazy floats the same holds for the op's and the
/// argument's fields.
pub fn write_netdef_text(
    net: &LazyNetDef,
    out: &mut (dyn std::io::Write + Send),
    path: &std::path::Path,
) -> Result<(), Caffe2Error> {
    print_net(&net.net, &net.floats, out, path)
}

fn net_what(net: &NetDef) -> String {
    format!("net {:?}", net.name.as_deref().unwrap_or(""))
}

/// The one printer behind [`netdef_to_text`] and [`write_netdef_text`], on a
/// thread with a deep stack; `lazy` lists the arguments whose floats are
/// still in the input, in op order.
fn print_net(
    net: &NetDef,
    lazy: &[(usize, usize, LazyFloats)],
    out: &mut (dyn std::io::Write + Send),
    path: &std::path::Path,
) -> Result<(), Caffe2Error> {
    let printed = with_deep_stack(|| write_lazy(net, lazy, out));
    let error = |reason: String| Caffe2Error::Decode {
        what: net_what(net),
        len: net.encoded_len() as u64,
        offset: None,
        reason,
    };
    match printed {
        Ok(Ok(())) => Ok(()),
        Ok(Err(TextWriteError::Io(e))) => Err(Caffe2Error::io(path, e)),
        Ok(Err(TextWriteError::Decode(reason))) => Err(error(reason)),
        Err(e) => Err(error(format!("text-format printer: {e}"))),
    }
}

enum TextWriteError {
    Io(std::io::Error),
    Decode(String),
}

fn write_lazy(
    net: &NetDef,
    lazy: &[(usize, usize, LazyFloats)],
    out: &mut dyn std::io::Write,
) -> Result<(), TextWriteError> {
    let mut text = String::new();
    let flush = |text: &mut String, out: &mut dyn std::io::Write| {
        let r = out.write_all(text.as_bytes());
        text.clear();
        r.map_err(TextWriteError::Io)
    };
    let head = NetDef {
        name: net.name.clone(),
        ..Default::default()
    };
    print_prost(&mut text, &head, "caffe2.NetDef", 0)?;
    flush(&mut text, out)?;
    let mut lazy = lazy.iter().peekable();
    for (i, op) in net.op.iter().enumerate() {
        text.push_str("op {\n");
        if lazy.peek().is_none_or(|(o, _, _)| *o != i) {
            print_prost(&mut text, op, "caffe2.OperatorDef", 2)?;
        } else {
            // Fields 1-4 (input, output, name, type), the arguments (5),
            // then the rest (6-12).
            let before = OperatorDef {
                input: op.input.clone(),
                output: op.output.clone(),
                name: op.name.clone(),
                r#type: op.r#type.clone(),
                ..Default::default()
            };
            print_prost(&mut text, &before, "caffe2.OperatorDef", 2)?;
            for (j, arg) in op.arg.iter().enumerate() {
                text.push_str("  arg {\n");
                match lazy.next_if(|(o, a, _)| *o == i && *a == j) {
                    None => print_prost(&mut text, arg, "caffe2.Argument", 4)?,
                    Some((_, _, floats)) => {
                        // Fields 1-4 (name, f, i, s), the floats (5), the rest.
                        let before = Argument {
                            name: arg.name.clone(),
                            f: arg.f,
                            i: arg.i,
                            s: arg.s.clone(),
                            ..Default::default()
                        };
                        print_prost(&mut text, &before, "caffe2.Argument", 4)?;
                        flush(&mut text, out)?;
                        write_floats(floats, out)?;
                        let after = Argument {
                            name: None,
                            f: None,
                            i: None,
                            s: None,
                            floats: Vec::new(),
                            ..arg.clone()
                        };
                        print_prost(&mut text, &after, "caffe2.Argument", 4)?;
                    }
                }
                text.push_str("  }\n");
            }
            let after = OperatorDef {
                input: Vec::new(),
                output: Vec::new(),
                name: None,
                r#type: None,
                arg: Vec::new(),
                ..op.clone()
            };
            print_prost(&mut text, &after, "caffe2.OperatorDef", 2)?;
        }
        text.push_str("}\n");
        flush(&mut text, out)?;
    }
    // Every field but the name and the ops, listed so that the ops (the
    // bulk of a net) are not copied.
    let tail = NetDef {
        name: None,
        op: Vec::new(),
        r#type: net.r#type.clone(),
        num_workers: net.num_workers,
        device_option: net.device_option.clone(),
        arg: net.arg.clone(),
        external_input: net.external_input.clone(),
        external_output: net.external_output.clone(),
        partition_info: net.partition_info.clone(),
    };
    print_prost(&mut text, &tail, "caffe2.NetDef", 0)?;
    flush(&mut text, out)
}

/// Prints `floats` as `    floats: X` lines, a piece of the input at a time.
fn write_floats(floats: &LazyFloats, out: &mut dyn std::io::Write) -> Result<(), TextWriteError> {
    let mut text = String::new();
    let mut sci = String::new();
    let written = floats.write_le(&mut |le: &[u8]| {
        // 16 Ki floats (about 256 KiB of text) at a time.
        for piece in le.chunks(64 << 10) {
            text.clear();
            for c in piece.chunks_exact(4) {
                let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                sci.clear();
                let _ = write!(sci, "{v:e}");
                text.push_str("    floats: ");
                format_float(&mut text, f64::from(v), &sci);
                text.push('\n');
            }
            out.write_all(text.as_bytes()).map_err(TextWriteError::Io)?;
        }
        Ok(())
    })?;
    if written != floats.len() {
        return Err(TextWriteError::Decode(format!(
            "a floats argument holds {} floats, but only {written} records could be read",
            floats.len()
        )));
    }
    Ok(())
}

/// Prints the fields of a prost message of the schema (`full_name`) at
/// `indent`, as [`print_message`] does.
fn print_prost<M: Message>(
    out: &mut String,
    message: &M,
    full_name: &str,
    indent: usize,
) -> Result<(), TextWriteError> {
    let bytes = message.encode_to_vec();
    let dynamic = DynamicMessage::decode(descriptor(full_name), bytes.as_slice())
        .map_err(|e| TextWriteError::Decode(format!("cannot be printed as text: {e}")))?;
    print_message(out, &dynamic, indent);
    Ok(())
}

fn print_message(out: &mut String, message: &DynamicMessage, indent: usize) {
    let mut fields: Vec<_> = message.fields().collect();
    fields.sort_by_key(|(field, _)| field.number());
    for (field, value) in fields {
        let kind = field.kind();
        match value {
            Value::List(items) => {
                for item in items {
                    print_field(out, field.name(), item, &kind, indent);
                }
            }
            Value::Map(entries) => {
                let entry = kind.as_message().cloned();
                let mut entries: Vec<_> = entries.iter().collect();
                entries.sort_by(|a, b| map_key_order(a.0, b.0));
                for (key, value) in entries {
                    pad(out, indent);
                    let _ = writeln!(out, "{} {{", field.name());
                    let key_value = map_key_value(key);
                    let (key_kind, value_kind) = match &entry {
                        Some(entry) => (
                            entry.map_entry_key_field().kind(),
                            entry.map_entry_value_field().kind(),
                        ),
                        None => (Kind::String, Kind::String),
                    };
                    print_field(out, "key", &key_value, &key_kind, indent + 2);
                    print_field(out, "value", value, &value_kind, indent + 2);
                    pad(out, indent);
                    out.push_str("}\n");
                }
            }
            value => print_field(out, field.name(), value, &kind, indent),
        }
    }
}

fn print_field(out: &mut String, name: &str, value: &Value, kind: &Kind, indent: usize) {
    pad(out, indent);
    out.push_str(name);
    if let Value::Message(message) = value {
        out.push_str(" {\n");
        print_message(out, message, indent + 2);
        pad(out, indent);
        out.push_str("}\n");
        return;
    }
    out.push_str(": ");
    match value {
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::I32(v) => {
            let _ = write!(out, "{v}");
        }
        Value::I64(v) => {
            let _ = write!(out, "{v}");
        }
        Value::U32(v) => {
            let _ = write!(out, "{v}");
        }
        Value::U64(v) => {
            let _ = write!(out, "{v}");
        }
        Value::F32(v) => format_float(out, f64::from(*v), &format!("{v:e}")),
        Value::F64(v) => format_float(out, *v, &format!("{v:e}")),
        Value::String(s) => escape(out, s.as_bytes()),
        Value::Bytes(b) => escape(out, b),
        Value::EnumNumber(n) => {
            match kind.as_enum().and_then(|e| e.get_value(*n)) {
                Some(v) => out.push_str(v.name()),
                None => {
                    let _ = write!(out, "{n}");
                }
            };
        }
        // Handled by the callers; printed defensively rather than panicking.
        Value::Message(_) | Value::List(_) | Value::Map(_) => out.push_str("\"\""),
    }
    out.push('\n');
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Writes a float as Python's `repr` writes the shortest decimal that reads
/// back as the same value: fixed notation for exponents -4..=15 (always with
/// a fractional part, `1.0`), else `d.ddde±XX`. `sci` is Rust's `{:e}` form of
/// the value (shortest round-trip digits of the original `f32` or `f64`).
fn format_float(out: &mut String, value: f64, sci: &str) {
    if value.is_nan() {
        out.push_str("nan");
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "inf" } else { "-inf" });
        return;
    }
    let (negative, sci) = match sci.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sci),
    };
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exponent) {
        if exponent >= 0 {
            let int_len = exponent as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exponent - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        );
    }
}

/// Python's `text_encoding.CEscape(value, as_utf8=False)`, in double quotes.
fn escape(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'"' => out.push_str("\\\""),
            b'\'' => out.push_str("\\'"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out.push('"');
}

fn map_key_value(key: &MapKey) -> Value {
    match key {
        MapKey::Bool(v) => Value::Bool(*v),
        MapKey::I32(v) => Value::I32(*v),
        MapKey::I64(v) => Value::I64(*v),
        MapKey::U32(v) => Value::U32(*v),
        MapKey::U64(v) => Value::U64(*v),
        MapKey::String(v) => Value::String(v.clone()),
    }
}

fn map_key_order(a: &MapKey, b: &MapKey) -> std::cmp::Ordering {
    match (a, b) {
        (MapKey::Bool(a), MapKey::Bool(b)) => a.cmp(b),
        (MapKey::I32(a), MapKey::I32(b)) => a.cmp(b),
        (MapKey::I64(a), MapKey::I64(b)) => a.cmp(b),
        (MapKey::U32(a), MapKey::U32(b)) => a.cmp(b),
        (MapKey::U64(a), MapKey::U64(b)) => a.cmp(b),
        (MapKey::String(a), MapKey::String(b)) => a.cmp(b),
        _ => std::cmp::Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Argument, DeviceOption, OperatorDef, TensorProto};

    fn float_text(v: f32) -> String {
        let mut s = String::new();
        format_float(&mut s, f64::from(v), &format!("{v:e}"));
        s
    }

    fn double_text(v: f64) -> String {
        let mut s = String::new();
        format_float(&mut s, v, &format!("{v:e}"));
        s
    }

    #[test]
    fn descriptor_set_is_valid() {
        let pool = descriptor_pool();
        for name in [
            "NetDef",
            "OperatorDef",
            "Argument",
            "TensorProto",
            "PlanDef",
        ] {
            assert!(
                pool.get_message_by_name(&format!("caffe2.{name}"))
                    .is_some()
            );
        }
    }

    #[test]
    fn floats_print_like_python() {
        // Expected strings are what Python protobuf writes for these f32s.
        for (v, expected) in [
            (0.5f32, "0.5"),
            (1.0, "1.0"),
            (-2.25, "-2.25"),
            (100.0, "100.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e-30, "1e-30"),
            (f32::MAX, "3.4028235e+38"),
            (1e-5, "1e-05"),
            (1e-7, "1e-07"),
            (0.0001, "0.0001"),
            (0.1, "0.1"),
            (-0.21118912, "-0.21118912"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456790.0, "123456790.0"),
            (f32::INFINITY, "inf"),
            (f32::NEG_INFINITY, "-inf"),
            (f32::NAN, "nan"),
            (1.0e-45, "1e-45"),
        ] {
            assert_eq!(float_text(v), expected, "{v:e}");
        }
        assert_eq!(double_text(0.1), "0.1");
        assert_eq!(double_text(-1e300), "-1e+300");
        assert_eq!(double_text(9.999999747378752e-06), "9.999999747378752e-06");
    }

    #[test]
    fn bytes_escape_like_python() {
        let mut s = String::new();
        escape(&mut s, b"\x00\xff\x80binary\t\n\r\"'\\ caf\xc3\xa9\x7f");
        assert_eq!(s, r#""\000\377\200binary\t\n\r\"\'\\ caf\303\251\177""#);
    }

    fn sample() -> NetDef {
        NetDef {
            name: Some("n".into()),
            op: vec![
                OperatorDef {
                    output: vec!["w".into()],
                    r#type: Some("GivenTensorFill".into()),
                    arg: vec![
                        Argument {
                            name: Some("values".into()),
                            floats: vec![0.5, -1e-30],
                            ..Default::default()
                        },
                        Argument {
                            name: Some("shape".into()),
                            ints: vec![2],
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                OperatorDef {
                    r#type: Some("Empty".into()),
                    name: Some(String::new()),
                    arg: vec![Argument {
                        name: Some("t".into()),
                        t: Some(TensorProto {
                            dims: vec![1],
                            data_type: Some(10),
                            int64_data: vec![-5],
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            device_option: Some(DeviceOption {
                device_type: Some(0),
                device_id: Some(0),
                ..Default::default()
            }),
            external_output: vec!["w".into()],
            ..Default::default()
        }
    }

    #[test]
    fn prints_like_python_text_format() {
        let expected = "\
name: \"n\"
op {
  output: \"w\"
  type: \"GivenTensorFill\"
  arg {
    name: \"values\"
    floats: 0.5
    floats: -1e-30
  }
  arg {
    name: \"shape\"
    ints: 2
  }
}
op {
  name: \"\"
  type: \"Empty\"
  arg {
    name: \"t\"
    t {
      dims: 1
      data_type: INT64
      int64_data: -5
    }
  }
}
device_option {
  device_type: 0
  device_id: 0
}
external_output: \"w\"
";
        assert_eq!(netdef_to_text(&sample()).unwrap(), expected);
        assert_eq!(netdef_to_text(&NetDef::default()).unwrap(), "");
    }

    #[test]
    fn streamed_text_equals_the_whole_net_text() {
        // Large floats arguments (left lazy in the input) in several
        // positions: first argument, between others, with fields after the
        // floats, and in two ops; special values among them.
        let big = |seed: u32| -> Vec<f32> {
            let mut v: Vec<f32> = (0..3000u32)
                .map(|k| ((k.wrapping_mul(2654435761) ^ seed) as f32 - 2e9) * 1e-9)
                .collect();
            v[1] = f32::NAN;
            v[2] = f32::NEG_INFINITY;
            v[3] = 1e-45;
            v[4] = -0.0;
            v
        };
        let mut net = sample();
        net.op[0].arg[0].floats = big(1);
        net.op.push(OperatorDef {
            input: vec!["x".into()],
            output: vec!["y".into()],
            r#type: Some("Custom".into()),
            arg: vec![
                Argument {
                    name: Some("small".into()),
                    floats: vec![1.0, 2.0],
                    ..Default::default()
                },
                Argument {
                    name: Some("mixed".into()),
                    f: Some(0.25),
                    floats: big(2),
                    ints: vec![7, 8],
                    n: Some(NetDef {
                        name: Some("inner".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            engine: Some("e".into()),
            control_input: vec!["c".into()],
            ..Default::default()
        });
        net.external_input = vec!["x".into()];
        let bytes = bytes::Bytes::from(net.encode_to_vec());
        let lazy = crate::floats::decode_netdef_lazy(bytes, "t.pb").unwrap();
        assert_eq!(lazy.floats.len(), 2, "both large arguments stay lazy");
        let mut out = Vec::new();
        write_netdef_text(&lazy, &mut out, std::path::Path::new("t.pbtxt")).unwrap();
        let expected = netdef_to_text(&net).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        assert_eq!(
            parse_netdef_text(&expected, "t").unwrap().op[2].arg[1].ints,
            [7, 8]
        );
    }

    #[test]
    fn text_round_trip_keeps_presence_and_values() {
        let net = sample();
        let text = netdef_to_text(&net).unwrap();
        let back = parse_netdef_text(&text, "t.pbtxt").unwrap();
        assert_eq!(back, net);
        assert_eq!(back.encode_to_vec(), net.encode_to_vec());
    }

    #[test]
    fn parses_the_forms_caffe2_files_use() {
        let text = r#"
            # a comment
            name: 'x'  op < type: "Conv" arg { name: "kernels" ints: [3, 3] } >
            op { type: "Relu" device_option { device_type: 1 cuda_gpu_id: 2 } }
            op: { arg { name: "eps" f: 1.00000006569e-05 } arg { name: "i" i: -7 } }
            external_input: "data"; external_input: "w"
            device_option { device_type: 0 }
        "#;
        let net = parse_netdef_text(text, "m.pbtxt").unwrap();
        assert_eq!(net.name.as_deref(), Some("x"));
        assert_eq!(net.op[0].arg[0].ints, vec![3, 3]);
        let dev = net.op[1].device_option.as_ref().unwrap();
        assert_eq!((dev.device_type, dev.device_id), (Some(1), Some(2)));
        assert_eq!(net.op[2].arg[0].f, Some(1.000_000_1e-5));
        assert_eq!(net.op[2].arg[1].i, Some(-7));
        assert_eq!(net.external_input, vec!["data", "w"]);
        // Presence of a default value is kept.
        assert_eq!(net.device_option.unwrap().device_type, Some(0));
        // `cuda_gpu_id` inside strings and comments is left alone.
        let net = parse_netdef_text("name: \"cuda_gpu_id\" # cuda_gpu_id\n", "m.pbtxt").unwrap();
        assert_eq!(net.name.as_deref(), Some("cuda_gpu_id"));
    }

    #[test]
    fn errors_give_line_and_column() {
        let e = parse_netdef_text("name: \"x\"\nop {\n  typo: 1\n}\n", "p.pbtxt").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("p.pbtxt:3:3: "), "{msg}");
        assert!(msg.contains("typo"), "{msg}");
        let e = parse_netdef_text("op {\n  type: \"Relu\"\n", "p.pbtxt").unwrap_err();
        assert!(e.to_string().starts_with("p.pbtxt:3:1: "), "{e}");
        let e = parse_netdef_text("name: \"unterminated\n", "p.pbtxt").unwrap_err();
        assert!(e.to_string().starts_with("p.pbtxt:1:"), "{e}");
        let e = parse_netdef_text("name: \"a\" name: \"b\"", "p.pbtxt").unwrap_err();
        assert!(e.to_string().contains("already set"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        // 10,000 levels of op { arg { n { ... } } } would overflow the stack of
        // a recursive parser.
        let mut text = String::new();
        for _ in 0..10_000 {
            text.push_str("op { arg { n { ");
        }
        let e = parse_netdef_text(&text, "deep.pbtxt").unwrap_err();
        assert!(e.to_string().contains("nested more than 100"), "{e}");
        let brace_101 = text.match_indices('{').nth(100).unwrap().0;
        assert_eq!(e.offset(), Some(brace_101 as u64));
        // Braces in strings and comments do not count.
        let mut text = String::from("name: \"");
        text.push_str(&"{".repeat(500));
        text.push_str("\" # ");
        text.push_str(&"<".repeat(500));
        assert!(parse_netdef_text(&text, "x").is_ok());
    }

    #[test]
    fn nesting_up_to_the_limit_parses() {
        // 33 levels of op/arg/n = 99 messages, then one more op: 100.
        let mut text = String::new();
        for _ in 0..33 {
            text.push_str("op { arg { n { ");
        }
        text.push_str("op { } ");
        for _ in 0..33 {
            text.push_str("} } } ");
        }
        assert!(parse_netdef_text(&text, "x").is_ok());
    }

    #[test]
    fn mutated_text_never_panics() {
        let text = netdef_to_text(&sample()).unwrap();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b" \n{}<>[]:;,#\"'\\-+.0123456789eExXnafitrulsd_";
        for _ in 0..2_000 {
            let mut bytes = text.clone().into_bytes();
            for _ in 0..1 + next() % 4 {
                let i = (next() % bytes.len() as u64) as usize;
                let c = alphabet[(next() % alphabet.len() as u64) as usize];
                match next() % 3 {
                    0 => bytes[i] = c,
                    1 => bytes.insert(i, c),
                    _ => {
                        bytes.remove(i);
                    }
                }
            }
            let Ok(mutated) = String::from_utf8(bytes) else {
                continue;
            };
            if let Err(e) = parse_netdef_text(&mutated, "m") {
                assert!(!e.to_string().contains("panicked"), "{e}");
            }
        }
    }
}
