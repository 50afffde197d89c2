//! The float payloads of fill ops, without decoding them into `Vec<f32>`.
//!
//! `Argument.floats` (field 5) is a proto2 repeated float without
//! `[packed = true]`, so protobuf writes it one key per element: `0x2d`
//! followed by the float's 4 little-endian bytes, 5 bytes a float. A
//! `GivenTensorFill` of a large weight is almost all such records. This
//! module moves those bytes in bulk, both ways:
//!
//! - [`encode_unpacked`] writes little-endian f32 bytes (an ONNX tensor's
//!   `raw_data`) as the unpacked records, in one pass over a buffer;
//! - [`decode_netdef_lazy`] decodes a binary `NetDef` whose large `floats`
//!   arguments are left in the input (a memory map) as [`LazyFloats`],
//!   which [`LazyFloats::write_le`] turns back into packed little-endian
//!   bytes chunk by chunk, releasing the mapped pages as it goes.
//!
//! Parsers also accept the packed form (`0x2a`, a length, the floats), so
//! [`LazyFloats`] reads both, in any mix. Anything the walk here does not
//! expect (a truncated record, a wrong wire type, a length past the end)
//! makes [`decode_netdef_lazy`] fall back to the ordinary bounded decode,
//! which reports the error with its offset, or decodes what it accepts.

use crate::binary::decode_netdef;
use crate::error::Caffe2Error;
use crate::file::read_netdef;
use crate::proto::NetDef;
use crate::sniff::{Sniff, sniff};
use bytes::Bytes;

/// The key of one unpacked `Argument.floats` element (field 5, 32-bit).
pub const FLOAT_KEY: u8 = 0x2d;
/// The key of a packed run of `Argument.floats` (field 5, length-delimited).
const PACKED_FLOAT_KEY: u8 = 0x2a;

/// `floats` arguments with fewer elements than this are decoded as usual.
pub const LAZY_MIN_FLOATS: u64 = 1024;

/// Appends little-endian f32 bytes `le` (a multiple of 4 long; a trailing
/// partial float is ignored) to `out` as unpacked `Argument.floats`
/// records: `0x2d` + 4 bytes per float, the bytes prost and protobuf write.
pub fn encode_unpacked(le: &[u8], out: &mut Vec<u8>) {
    out.reserve(le.len() / 4 * 5);
    // BLOCK floats at a time, built in an array of constant layout (no
    // zero-fill of `out`, no per-record bounds checks), then appended.
    let mut blocks = le.chunks_exact(BLOCK * 4);
    for src in &mut blocks {
        let mut records = [FLOAT_KEY; BLOCK * 5];
        for i in 0..BLOCK {
            records[i * 5 + 1..i * 5 + 5].copy_from_slice(&src[i * 4..i * 4 + 4]);
        }
        out.extend_from_slice(&records);
    }
    for src in blocks.remainder().chunks_exact(4) {
        out.push(FLOAT_KEY);
        out.extend_from_slice(src);
    }
}

/// Floats per step of [`encode_unpacked`] and [`unpack_records`].
const BLOCK: usize = 16;

/// Appends to `out` the 4 float bytes of each leading unpacked record of
/// `records` (5 bytes each, key [`FLOAT_KEY`]) up to the first record with
/// another key or the end; returns how many records it took.
fn unpack_records(records: &[u8], out: &mut Vec<u8>) -> usize {
    out.reserve(records.len() / 5 * 4);
    let mut n = 0;
    let mut blocks = records.chunks_exact(BLOCK * 5);
    for src in &mut blocks {
        // Every key checked at once; a block with another key is left to
        // the record-by-record loop below.
        let mut wrong = 0u8;
        for i in 0..BLOCK {
            wrong |= src[i * 5] ^ FLOAT_KEY;
        }
        if wrong != 0 {
            break;
        }
        let mut floats = [0u8; BLOCK * 4];
        for i in 0..BLOCK {
            floats[i * 4..i * 4 + 4].copy_from_slice(&src[i * 5 + 1..i * 5 + 5]);
        }
        out.extend_from_slice(&floats);
        n += BLOCK;
    }
    for src in records[n * 5..].chunks_exact(5) {
        if src[0] != FLOAT_KEY {
            break;
        }
        out.extend_from_slice(&src[1..]);
        n += 1;
    }
    n
}

/// The `floats` of one `Argument`, still in the input: the argument's
/// bytes and the number of floats they hold.
#[derive(Debug, Clone)]
pub struct LazyFloats {
    /// The argument message's bytes (its fields, without its own key and
    /// length), sharing the input buffer; with `records_only`, only its
    /// trailing run of unpacked float records.
    arg: Bytes,
    count: u64,
    /// `arg` is nothing but `count` unpacked records (checked as they are
    /// written: a record with another key ends the output early).
    records_only: bool,
}

impl LazyFloats {
    /// The number of floats.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the floats as packed little-endian f32.
    pub fn byte_len(&self) -> u64 {
        self.count * 4
    }

    /// Writes the floats as packed little-endian f32 bytes (an ONNX
    /// `raw_data`) to `out`, in pieces of at most [`netport_io::CHUNK`]
    /// bytes; the input's mapped pages are released as they are read.
    /// Returns how many floats were written: fewer than [`len`](Self::len)
    /// when the records turn out malformed (a record with another key in a
    /// run that was taken to be floats only), which the caller must treat
    /// as an error.
    pub fn write_le<E>(&self, out: &mut dyn FnMut(&[u8]) -> Result<(), E>) -> Result<u64, E> {
        let data = &self.arg[..];
        let mut pos = 0;
        let mut done = 0;
        while pos < data.len() {
            let Some((key, after)) = varint(data, pos) else {
                break;
            };
            if self.records_only && key != u64::from(FLOAT_KEY) {
                break;
            }
            match key {
                k if k == u64::from(FLOAT_KEY) => {
                    // A run of unpacked records: copy 4 of every 5 bytes, a
                    // piece at a time (each unpacked on a helper thread while
                    // the previous one is written), until a record has
                    // another key.
                    let start = pos;
                    netport_io::transform_ahead(
                        data[start..].chunks(netport_io::CHUNK / 4 * 5),
                        |piece, buf| {
                            let n = unpack_records(piece, buf);
                            netport_io::release(&piece[..n * 5]);
                            (n, piece.len())
                        },
                        |buf, (n, len)| {
                            out(buf)?;
                            pos += n * 5;
                            done += n;
                            Ok(n > 0 && n * 5 == len)
                        },
                    )?;
                    if pos == start {
                        break;
                    }
                }
                k if k == u64::from(PACKED_FLOAT_KEY) => {
                    let Some((len, start)) = varint(data, after) else {
                        break;
                    };
                    let end = start + len as usize;
                    for piece in netport_io::chunks(&data[start..end]) {
                        out(piece)?;
                    }
                    pos = end;
                    done += len as usize / 4;
                }
                _ => {
                    // Another field of the argument (its name, ...).
                    match skip(data, key, after) {
                        Some(next) => pos = next,
                        None => break,
                    }
                }
            }
        }
        Ok(done as u64)
    }

    /// The floats, decoded (for small arguments and tests).
    pub fn to_vec(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(self.count as usize);
        let _ = self.write_le::<std::convert::Infallible>(&mut |b| {
            v.extend(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            Ok(())
        });
        v
    }
}

/// A binary `NetDef` whose large `floats` arguments were left in the input.
#[derive(Debug, Clone, Default)]
pub struct LazyNetDef {
    /// The net; the arguments listed in `floats` have empty `floats`.
    pub net: NetDef,
    /// `(op index, argument index, floats)` for every argument of at least
    /// [`LAZY_MIN_FLOATS`] floats, in op order.
    pub floats: Vec<(usize, usize, LazyFloats)>,
}

impl LazyNetDef {
    /// The lazy floats of argument `arg` of op `op`, if it has them.
    pub fn floats_of(&self, op: usize, arg: usize) -> Option<&LazyFloats> {
        self.floats
            .iter()
            .find(|(o, a, _)| *o == op && *a == arg)
            .map(|(_, _, f)| f)
    }

    /// The whole net, with every float decoded.
    pub fn into_netdef(mut self) -> NetDef {
        for (op, arg, floats) in &self.floats {
            if let Some(a) = self.net.op.get_mut(*op).and_then(|o| o.arg.get_mut(*arg)) {
                a.floats = floats.to_vec();
            }
        }
        self.net
    }
}

/// Reads a `NetDef` like [`crate::read_netdef`] (binary or text; empty input
/// refused), except that in a binary net each
/// `Argument.floats` of at least [`LAZY_MIN_FLOATS`] elements stays in
/// `bytes` as a [`LazyFloats`]: the rest of the net (names, shapes, other
/// ops) is copied without those records and decoded by prost, so memory is
/// the net's structure, not its weights, and the float records are not
/// even read until they are written. Text nets, and binary bytes that the
/// walk finds malformed, go through [`crate::read_netdef`] whole (same
/// errors, same limits; nothing is lazy then).
pub fn decode_netdef_lazy(bytes: Bytes, what: &str) -> Result<LazyNetDef, Caffe2Error> {
    if !matches!(sniff(&bytes), Sniff::Binary) {
        return eager(bytes, what);
    }
    let Some((stripped, floats)) = strip(&bytes) else {
        return eager(bytes, what);
    };
    if floats.is_empty() {
        return eager(bytes, what);
    }
    let net = decode_netdef(Bytes::from(stripped), what)?;
    Ok(LazyNetDef { net, floats })
}

fn eager(bytes: Bytes, what: &str) -> Result<LazyNetDef, Caffe2Error> {
    Ok(LazyNetDef {
        net: read_netdef(bytes, what)?.0,
        floats: Vec::new(),
    })
}

/// Loads a `NetDef` file as [`crate::load_netdef`] does (binary or text),
/// but mapped, and with the large `floats` of a binary net left in the map
/// ([`decode_netdef_lazy`]).
pub fn load_netdef_lazy(path: impl AsRef<std::path::Path>) -> Result<LazyNetDef, Caffe2Error> {
    let path = path.as_ref();
    let map = netport_io::map_file(path)?;
    decode_netdef_lazy(Bytes::from_owner(map), &path.display().to_string())
}

/// A varint at `pos`: (value, position after it); `None` when truncated
/// or longer than 10 bytes.
fn varint(data: &[u8], pos: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..10 {
        let b = *data.get(pos + i)?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((value, pos + i + 1));
        }
    }
    None
}

/// The position after the value of a field whose key is `key`, read at
/// `pos`; `None` for groups, bad wire types and values past the end.
fn skip(data: &[u8], key: u64, pos: usize) -> Option<usize> {
    let end = match key & 7 {
        0 => varint(data, pos)?.1,
        1 => pos.checked_add(8)?,
        2 => {
            let (len, start) = varint(data, pos)?;
            start.checked_add(usize::try_from(len).ok()?)?
        }
        5 => pos.checked_add(4)?,
        _ => return None,
    };
    (end <= data.len()).then_some(end)
}

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Counts the floats of an argument's bytes; `None` when a `floats` record
/// is malformed (prost would refuse it).
fn count_floats(arg: &[u8]) -> Option<(u64, bool)> {
    let (mut pos, mut count, mut any) = (0, 0u64, false);
    while pos < arg.len() {
        let (key, after) = varint(arg, pos)?;
        let next = skip(arg, key, after)?;
        if key >> 3 == 5 {
            any = true;
            match key & 7 {
                5 => count += 1,
                2 => {
                    let (len, _) = varint(arg, after)?;
                    if len % 4 != 0 {
                        return None;
                    }
                    count += len / 4;
                }
                _ => return None,
            }
        }
        pos = next;
    }
    Some((count, any))
}

/// When the argument is other fields (no floats among them) followed by
/// unpacked float records up to its end: where the records start and how
/// many there are, from the length alone (the records are checked when
/// they are written).
fn records_run(arg: &[u8]) -> Option<(usize, u64)> {
    let mut pos = 0;
    while pos < arg.len() {
        let (key, after) = varint(arg, pos)?;
        if key == u64::from(FLOAT_KEY) {
            let left = arg.len() - pos;
            return left.is_multiple_of(5).then_some((pos, (left / 5) as u64));
        }
        if key >> 3 == 5 {
            return None;
        }
        pos = skip(arg, key, after)?;
    }
    None
}

/// The argument's bytes without its `floats` records.
fn without_floats(arg: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < arg.len() {
        let (key, after) = varint(arg, pos)?;
        let next = skip(arg, key, after)?;
        if key >> 3 != 5 {
            out.extend_from_slice(&arg[pos..next]);
        }
        pos = next;
    }
    Some(out)
}

/// The net's bytes with the large `floats` records taken out, and where
/// they were. `None` when the walk meets something malformed.
#[allow(clippy::type_complexity)]
fn strip(bytes: &Bytes) -> Option<(Vec<u8>, Vec<(usize, usize, LazyFloats)>)> {
    let data = &bytes[..];
    let mut out = Vec::new();
    let mut floats = Vec::new();
    let (mut pos, mut op_index) = (0, 0usize);
    while pos < data.len() {
        let (key, after) = varint(data, pos)?;
        let next = skip(data, key, after)?;
        if key != 0x12 {
            // Not an op (field 2, length-delimited): kept as it is.
            out.extend_from_slice(&data[pos..next]);
            pos = next;
            continue;
        }
        let (_, op_start) = varint(data, after)?;
        let op = &data[op_start..next];
        let mut op_out = Vec::new();
        let mut changed = false;
        let (mut p, mut arg_index) = (0, 0usize);
        while p < op.len() {
            let (k, a) = varint(op, p)?;
            let n = skip(op, k, a)?;
            if k == 0x2a {
                // An argument (field 5, length-delimited).
                let (_, arg_start) = varint(op, a)?;
                let arg = &op[arg_start..n];
                let (rest, count, records) = match records_run(arg) {
                    // The usual layout: other fields, then only records,
                    // counted from their length without reading them.
                    Some((start, count)) => (arg[..start].to_vec(), count, Some(start)),
                    None => {
                        let (count, any) = count_floats(arg)?;
                        let count = if any { count } else { 0 };
                        (without_floats(arg)?, count, None)
                    }
                };
                if count >= LAZY_MIN_FLOATS {
                    op_out.push(0x2a);
                    put_varint(rest.len() as u64, &mut op_out);
                    op_out.extend_from_slice(&rest);
                    let offset = op_start + arg_start;
                    let (from, records_only) = match records {
                        Some(start) => (offset + start, true),
                        None => (offset, false),
                    };
                    floats.push((
                        op_index,
                        arg_index,
                        LazyFloats {
                            arg: bytes.slice(from..offset + arg.len()),
                            count,
                            records_only,
                        },
                    ));
                    changed = true;
                } else {
                    op_out.extend_from_slice(&op[p..n]);
                }
                arg_index += 1;
            } else {
                op_out.extend_from_slice(&op[p..n]);
            }
            p = n;
        }
        if changed {
            out.push(0x12);
            put_varint(op_out.len() as u64, &mut out);
            out.extend_from_slice(&op_out);
        } else {
            out.extend_from_slice(&data[pos..next]);
        }
        op_index += 1;
        pos = next;
    }
    Some((out, floats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Argument, OperatorDef};
    use prost::Message;

    fn fill(name: &str, values: Vec<f32>) -> OperatorDef {
        OperatorDef {
            output: vec![name.into()],
            r#type: Some("GivenTensorFill".into()),
            arg: vec![
                Argument {
                    name: Some("values".into()),
                    floats: values.clone(),
                    ..Default::default()
                },
                Argument {
                    name: Some("shape".into()),
                    ints: vec![values.len() as i64],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.37 + seed).sin()).collect()
    }

    #[test]
    fn encode_unpacked_is_what_prost_writes() {
        let v = values(3000, 1.0);
        let le: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
        let mut mine = Vec::new();
        encode_unpacked(&le, &mut mine);
        let arg = Argument {
            floats: v,
            ..Default::default()
        };
        assert_eq!(mine, arg.encode_to_vec());
    }

    #[test]
    fn lazy_decode_equals_eager_decode() {
        let net = NetDef {
            name: Some("init".into()),
            op: vec![
                fill("small", values(10, 0.5)),
                fill("big", values(5000, 2.0)),
                fill("exact", values(LAZY_MIN_FLOATS as usize, 3.0)),
            ],
            external_output: vec!["small".into(), "big".into()],
            ..Default::default()
        };
        let bytes = Bytes::from(net.encode_to_vec());
        let lazy = decode_netdef_lazy(bytes.clone(), "t").unwrap();
        assert_eq!(
            lazy.floats
                .iter()
                .map(|(o, a, f)| (*o, *a, f.len()))
                .collect::<Vec<_>>(),
            vec![(1, 0, 5000), (2, 0, LAZY_MIN_FLOATS)]
        );
        assert!(lazy.net.op[1].arg[0].floats.is_empty());
        assert_eq!(lazy.net.op[0].arg[0].floats.len(), 10);
        assert_eq!(lazy.clone().into_netdef(), net);
        let mut le = Vec::new();
        let n = lazy.floats[0]
            .2
            .write_le::<()>(&mut |b| {
                le.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 5000);
        let want: Vec<u8> = values(5000, 2.0)
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        assert_eq!(le, want);
    }

    #[test]
    fn packed_and_mixed_floats_are_read() {
        // floats as one packed run, then two unpacked records.
        let v = values(2000, 4.0);
        let mut arg = vec![0x0a, 6];
        arg.extend_from_slice(b"values");
        let packed: Vec<u8> = v[..1998].iter().flat_map(|f| f.to_le_bytes()).collect();
        arg.push(PACKED_FLOAT_KEY);
        put_varint(packed.len() as u64, &mut arg);
        arg.extend_from_slice(&packed);
        encode_unpacked(
            &v[1998..]
                .iter()
                .flat_map(|f| f.to_le_bytes())
                .collect::<Vec<u8>>(),
            &mut arg,
        );
        let mut op = vec![0x2a];
        put_varint(arg.len() as u64, &mut op);
        op.extend_from_slice(&arg);
        let mut net = vec![0x12];
        put_varint(op.len() as u64, &mut net);
        net.extend_from_slice(&op);
        let eager = decode_netdef(Bytes::from(net.clone()), "t").unwrap();
        let lazy = decode_netdef_lazy(Bytes::from(net), "t").unwrap();
        assert_eq!(lazy.floats.len(), 1);
        assert_eq!(lazy.floats[0].2.to_vec(), v);
        assert_eq!(lazy.into_netdef(), eager);
    }

    #[test]
    fn a_bad_record_in_a_run_shortens_the_output() {
        let net = NetDef {
            op: vec![fill("big", values(2000, 1.0))],
            ..Default::default()
        };
        let mut bytes = net.encode_to_vec();
        // The 1000th record's key becomes a varint key of field 5.
        let first = bytes.iter().position(|&b| b == FLOAT_KEY).unwrap();
        bytes[first + 999 * 5] = 0x28;
        let lazy = decode_netdef_lazy(Bytes::from(bytes), "t").unwrap();
        assert_eq!(lazy.floats[0].2.len(), 2000);
        let n = lazy.floats[0].2.write_le::<()>(&mut |_| Ok(())).unwrap();
        assert_eq!(n, 999);
    }

    #[test]
    fn a_long_run_is_unpacked_ahead_of_the_writer_and_still_stops_at_a_bad_record() {
        // More than three pieces, so the unpacking runs on a helper thread.
        let piece = netport_io::CHUNK / 4;
        let n = piece * 3 + 1000;
        let v = values(n, 0.25);
        let net = NetDef {
            op: vec![fill("big", v.clone())],
            ..Default::default()
        };
        let bytes = net.encode_to_vec();
        let lazy = decode_netdef_lazy(Bytes::from(bytes.clone()), "t").unwrap();
        assert_eq!(lazy.floats[0].2.to_vec(), v);
        let mut bad = bytes;
        let first = bad.iter().position(|&b| b == FLOAT_KEY).unwrap();
        let at = piece * 2 + 77;
        bad[first + at * 5] = 0x28;
        let lazy = decode_netdef_lazy(Bytes::from(bad), "t").unwrap();
        let mut got = Vec::new();
        let count = lazy.floats[0]
            .2
            .write_le::<()>(&mut |b| {
                got.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        assert_eq!(count, at as u64);
        let want: Vec<u8> = v[..at].iter().flat_map(|f| f.to_le_bytes()).collect();
        assert!(got == want, "the floats before the bad record, in order");
    }

    #[test]
    fn unpacking_stops_at_the_first_other_key_wherever_it_is() {
        let le: Vec<u8> = (0..40u8).flat_map(|i| [i, 1, 2, 3]).collect();
        let mut records = Vec::new();
        encode_unpacked(&le, &mut records);
        for bad in 0..=40 {
            let mut r = records.clone();
            if bad < 40 {
                r[bad * 5] = 0x28;
            }
            let mut out = vec![9];
            assert_eq!(unpack_records(&r, &mut out), bad);
            assert_eq!(out[0], 9);
            assert_eq!(out[1..], le[..bad * 4]);
        }
    }

    #[test]
    fn malformed_floats_fall_back_to_the_eager_error() {
        let net = NetDef {
            op: vec![fill("big", values(2000, 1.0))],
            ..Default::default()
        };
        let mut bytes = net.encode_to_vec();
        bytes.truncate(bytes.len() - 7);
        let eager = decode_netdef(Bytes::from(bytes.clone()), "t").unwrap_err();
        let lazy = decode_netdef_lazy(Bytes::from(bytes), "t").unwrap_err();
        assert_eq!(lazy.to_string(), eager.to_string());
    }
}
