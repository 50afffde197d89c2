//! Locating the first problem in bytes that prost refused to decode.
//!
//! prost says *what* is wrong ("buffer underflow", "recursion limit reached")
//! but not *where*. When a decode fails, this walks the same bytes against the
//! schema (the committed descriptor set) and reports the byte offset of the
//! first field that breaks a rule prost enforces, with its path in the message
//! (`op[3].arg[0].floats`). It follows prost's rules, so the two agree on
//! whether bytes are valid (a unit test checks this on thousands of mutated
//! inputs): keys must be valid (field number > 0, wire type 0-5, key below
//! 2^32), a known field must have its wire type (or the packed form, for a
//! repeated scalar), every length must fit in what is left of the enclosing
//! message, packed fixed-width runs must be whole, `string`s must be UTF-8,
//! and messages (and unknown groups) may nest at most prost's recursion limit.
//!
//! It runs only on the error path and allocates nothing but the error. Its
//! own recursion is bounded by the same nesting limit.

use prost_reflect::{Kind, MessageDescriptor};

/// prost's `RECURSION_LIMIT`: the nesting budget of a decode.
pub(crate) const RECURSION_LIMIT: u32 = 100;

/// The first problem found: where, in which field, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError {
    pub offset: usize,
    /// Field path from the top-level message, e.g. `op[3].arg[0].floats`.
    pub path: String,
    pub reason: String,
}

impl WireError {
    /// "in `path`: reason", or just the reason at the top level.
    pub fn describe(&self) -> String {
        if self.path.is_empty() {
            self.reason.clone()
        } else {
            format!("in {}: {}", self.path, self.reason)
        }
    }
}

/// Finds the first problem in `data` as a serialized `desc`, or `None` if
/// prost's rules accept it.
pub(crate) fn find_error(data: &[u8], desc: &MessageDescriptor) -> Option<WireError> {
    Walker { data }
        .message(0, data.len(), desc, RECURSION_LIMIT)
        .err()
        .map(|e| WireError {
            offset: e.offset,
            path: e.path.join("").trim_start_matches('.').to_string(),
            reason: e.reason,
        })
}

/// An error on its way up, collecting the path segments (`.op[3]`) of the
/// fields it is in.
struct Pending {
    offset: usize,
    path: Vec<String>,
    reason: String,
}

impl Pending {
    fn new(offset: usize, reason: impl Into<String>) -> Self {
        Pending {
            offset,
            path: Vec::new(),
            reason: reason.into(),
        }
    }

    /// Adds the field the error happened in (as the next outer segment).
    fn within(mut self, segment: String) -> Self {
        self.path.insert(0, segment);
        self
    }
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

fn wire_name(wire: u8) -> &'static str {
    match wire {
        VARINT => "varint",
        FIXED64 => "64-bit",
        LEN => "length-delimited",
        START_GROUP => "start-group",
        END_GROUP => "end-group",
        FIXED32 => "32-bit",
        _ => "invalid",
    }
}

/// The wire type of a non-packed value of `kind`.
fn scalar_wire(kind: &Kind) -> u8 {
    match kind {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => FIXED64,
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => FIXED32,
        Kind::String | Kind::Bytes | Kind::Message(_) => LEN,
        _ => VARINT,
    }
}

struct Walker<'a> {
    data: &'a [u8],
}

impl Walker<'_> {
    /// Reads a varint at `pos` (which must be below `end`) like prost: at most
    /// 10 bytes, the 10th at most 1.
    fn varint(&self, pos: usize, end: usize) -> Result<(u64, usize), Pending> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.data[..end].get(pos + i) else {
                return Err(Pending::new(pos, "truncated varint"));
            };
            if i == 9 && b > 1 {
                return Err(Pending::new(pos, "malformed varint (over 64 bits)"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok((value, pos + i + 1));
            }
        }
        Err(Pending::new(pos, "malformed varint (over 10 bytes)"))
    }

    /// Reads a key: (field number, wire type, position after it).
    fn key(&self, pos: usize, end: usize) -> Result<(u32, u8, usize), Pending> {
        let (key, next) = self.varint(pos, end)?;
        if key > u64::from(u32::MAX) {
            return Err(Pending::new(pos, format!("invalid key {key}")));
        }
        let wire = (key & 7) as u8;
        if wire > 5 {
            return Err(Pending::new(
                pos,
                format!("invalid wire type {wire} (field number {})", key >> 3),
            ));
        }
        let field = (key >> 3) as u32;
        if field == 0 {
            return Err(Pending::new(pos, "invalid field number 0"));
        }
        Ok((field, wire, next))
    }

    /// Reads a length prefix at `pos` and checks the bytes fit before `end`:
    /// returns (start, end) of the payload.
    fn delimited(&self, key_pos: usize, pos: usize, end: usize) -> Result<(usize, usize), Pending> {
        let (len, start) = self.varint(pos, end)?;
        let left = end - start;
        if len > left as u64 {
            return Err(Pending::new(
                key_pos,
                format!("length {len} exceeds the {left} bytes left"),
            ));
        }
        Ok((start, start + len as usize))
    }

    /// Walks the fields of one message in `data[pos..end]`. `budget` is
    /// prost's recursion count for the fields of this message.
    fn message(
        &self,
        mut pos: usize,
        end: usize,
        desc: &MessageDescriptor,
        budget: u32,
    ) -> Result<(), Pending> {
        // Element counters of repeated message fields, for paths like `op[3]`.
        let mut seen: Vec<(u32, usize)> = Vec::new();
        while pos < end {
            let key_pos = pos;
            let (number, wire, next) = self.key(pos, end)?;
            pos = next;
            let Some(field) = desc.get_field(number) else {
                pos = self.skip(key_pos, number, wire, pos, end, budget)?;
                continue;
            };
            // Built only on the error path: this walk can cover millions of fields.
            let index = (field.is_list() && matches!(field.kind(), Kind::Message(_))).then(|| {
                match seen.iter_mut().find(|(n, _)| *n == number) {
                    Some((_, count)) => {
                        *count += 1;
                        *count - 1
                    }
                    None => {
                        seen.push((number, 1));
                        0
                    }
                }
            });
            let segment = || match index {
                Some(i) => format!(".{}[{i}]", field.name()),
                None => format!(".{}", field.name()),
            };
            let kind = field.kind();
            let expected = scalar_wire(&kind);
            let packed = field.is_list() && expected != LEN && wire == LEN;
            if wire != expected && !packed {
                return Err(Pending::new(
                    key_pos,
                    format!(
                        "wire type {} for a field of type {}, expected {}",
                        wire_name(wire),
                        kind_name(&kind),
                        wire_name(expected)
                    ),
                )
                .within(segment()));
            }
            pos = match (wire, &kind) {
                (VARINT, _) => self.varint(pos, end).map_err(|e| e.within(segment()))?.1,
                (FIXED32 | FIXED64, _) => {
                    let width = if wire == FIXED32 { 4 } else { 8 };
                    if end - pos < width {
                        return Err(Pending::new(
                            key_pos,
                            format!("{width}-byte value cut short: {} bytes left", end - pos),
                        )
                        .within(segment()));
                    }
                    pos + width
                }
                (_, Kind::Message(inner)) => {
                    let (start, stop) = self
                        .delimited(key_pos, pos, end)
                        .map_err(|e| e.within(segment()))?;
                    if budget == 0 {
                        return Err(Pending::new(
                            key_pos,
                            format!(
                                "messages nested more than {RECURSION_LIMIT} deep (protobuf recursion limit)"
                            ),
                        )
                        .within(segment()));
                    }
                    self.message(start, stop, inner, budget - 1)
                        .map_err(|e| e.within(segment()))?;
                    stop
                }
                (_, Kind::String) => {
                    let (start, stop) = self
                        .delimited(key_pos, pos, end)
                        .map_err(|e| e.within(segment()))?;
                    if let Err(e) = std::str::from_utf8(&self.data[start..stop]) {
                        return Err(Pending::new(
                            start + e.valid_up_to(),
                            "string is not valid UTF-8",
                        )
                        .within(segment()));
                    }
                    stop
                }
                (_, Kind::Bytes) => {
                    self.delimited(key_pos, pos, end)
                        .map_err(|e| e.within(segment()))?
                        .1
                }
                // A packed run of scalars.
                (_, kind) => {
                    let (start, stop) = self
                        .delimited(key_pos, pos, end)
                        .map_err(|e| e.within(segment()))?;
                    self.packed(start, stop, scalar_wire(kind))
                        .map_err(|e| e.within(segment()))?;
                    stop
                }
            };
        }
        Ok(())
    }

    /// Checks the payload of a packed repeated field.
    fn packed(&self, start: usize, stop: usize, wire: u8) -> Result<(), Pending> {
        match wire {
            FIXED32 | FIXED64 => {
                let width = if wire == FIXED32 { 4 } else { 8 };
                let len = stop - start;
                if !len.is_multiple_of(width) {
                    return Err(Pending::new(
                        start,
                        format!("packed run of {width}-byte values has length {len}"),
                    ));
                }
                Ok(())
            }
            _ => {
                let mut pos = start;
                while pos < stop {
                    pos = self.varint(pos, stop)?.1;
                }
                Ok(())
            }
        }
    }

    /// Skips an unknown field like prost's `skip_field` (which spends one
    /// unit of recursion budget per nested group level and needs budget left
    /// to skip anything). Returns the position after it.
    fn skip(
        &self,
        key_pos: usize,
        number: u32,
        wire: u8,
        pos: usize,
        end: usize,
        budget: u32,
    ) -> Result<usize, Pending> {
        let segment = || format!(".(unknown field {number})");
        if budget == 0 {
            return Err(Pending::new(
                key_pos,
                format!(
                    "messages nested more than {RECURSION_LIMIT} deep (protobuf recursion limit)"
                ),
            )
            .within(segment()));
        }
        match wire {
            VARINT => Ok(self.varint(pos, end).map_err(|e| e.within(segment()))?.1),
            FIXED32 | FIXED64 => {
                let width = if wire == FIXED32 { 4 } else { 8 };
                if end - pos < width {
                    return Err(Pending::new(
                        key_pos,
                        format!("{width}-byte value cut short: {} bytes left", end - pos),
                    )
                    .within(segment()));
                }
                Ok(pos + width)
            }
            LEN => Ok(self
                .delimited(key_pos, pos, end)
                .map_err(|e| e.within(segment()))?
                .1),
            START_GROUP => {
                let mut pos = pos;
                loop {
                    if pos >= end {
                        return Err(Pending::new(key_pos, "group is not closed").within(segment()));
                    }
                    let inner_pos = pos;
                    let (inner, inner_wire, next) =
                        self.key(pos, end).map_err(|e| e.within(segment()))?;
                    if inner_wire == END_GROUP {
                        if inner != number {
                            return Err(Pending::new(
                                inner_pos,
                                format!("end-group tag {inner} closes group {number}"),
                            )
                            .within(segment()));
                        }
                        return Ok(next);
                    }
                    pos = self
                        .skip(inner_pos, inner, inner_wire, next, end, budget - 1)
                        .map_err(|e| e.within(segment()))?;
                }
            }
            _ => Err(Pending::new(
                key_pos,
                format!("unexpected end-group tag (field number {number})"),
            )),
        }
    }
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.name().to_string(),
        Kind::Enum(e) => e.name().to_string(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// An estimate of the memory prost would allocate to decode `data` as `desc`
/// (struct sizes of repeated messages, string copies, repeated scalars),
/// beyond the top-level struct. One pass over the keys, no allocation;
/// malformed bytes end the walk early (the decode that follows reports them).
///
/// The estimate matters because prost's structs are large next to their
/// wire form: an empty `arg {}` is 2 bytes in the file and an 832-byte
/// `Argument` in memory, so a hostile file could ask for 400 times its size.
pub(crate) fn estimate_decoded_size(data: &[u8], desc: &MessageDescriptor) -> u64 {
    Estimator { data }.message(0, data.len(), desc, RECURSION_LIMIT)
}

struct Estimator<'a> {
    data: &'a [u8],
}

impl Estimator<'_> {
    fn varint(&self, pos: usize, end: usize) -> Option<(u64, usize)> {
        let mut next = pos;
        netport_io::varint::get(&self.data[..end], &mut next).map(|v| (v, next))
    }

    fn message(&self, mut pos: usize, end: usize, desc: &MessageDescriptor, budget: u32) -> u64 {
        let mut total = 0u64;
        let mut last: Option<(u32, bool, Option<Kind>)> = None;
        while pos < end {
            let Some((key, next)) = self.varint(pos, end) else {
                break;
            };
            pos = next;
            let (number, wire) = ((key >> 3) as u32, (key & 7) as u8);
            // Unpacked repeated fields repeat one key many times (a float
            // every 5 bytes): look the field up once per run.
            if last.as_ref().is_none_or(|(n, _, _)| *n != number) {
                let field = desc.get_field(number);
                let list = field.as_ref().is_some_and(|f| f.is_list());
                last = Some((number, list, field.map(|f| f.kind())));
            }
            let Some((_, list, kind)) = &last else {
                break;
            };
            let (list, kind) = (*list, kind.as_ref());
            match wire {
                VARINT => match self.varint(pos, end) {
                    Some((_, next)) => pos = next,
                    None => break,
                },
                FIXED32 | FIXED64 => {
                    let width = if wire == FIXED32 { 4 } else { 8 };
                    pos = pos.saturating_add(width);
                    // Fast path for a run of one-byte keys of the same
                    // repeated field (`values` of a GivenTensorFill).
                    if list && key < 0x80 {
                        let start = pos;
                        while pos + 1 + width <= end && self.data[pos] == key as u8 {
                            pos += 1 + width;
                        }
                        let run = ((pos - start) / (1 + width)) as u64;
                        total = total.saturating_add(run * width as u64);
                    }
                }
                LEN => {
                    let Some((len, start)) = self.varint(pos, end) else {
                        break;
                    };
                    if len > (end - start) as u64 {
                        break;
                    }
                    let stop = start + len as usize;
                    pos = stop;
                    total = total.saturating_add(match kind {
                        // Past the nesting limit prost refuses the bytes anyway.
                        Some(Kind::Message(_)) if budget == 0 => 0,
                        Some(Kind::Message(inner)) => {
                            let own = if list { struct_size(inner) } else { 0 };
                            own.saturating_add(self.message(start, stop, inner, budget - 1))
                        }
                        Some(Kind::String) => len + if list { 24 } else { 0 },
                        // Bytes share the input buffer; a list holds handles.
                        Some(Kind::Bytes) if list => 32,
                        Some(Kind::Bytes) => 0,
                        // A packed run: at most one element per byte.
                        Some(kind) if list => len.saturating_mul(element_size(kind)),
                        _ => 0,
                    });
                    continue;
                }
                // Groups are skipped by prost: nothing is kept.
                _ => {}
            }
            if list && let Some(kind) = kind {
                total = total.saturating_add(element_size(kind));
            }
        }
        total
    }
}

/// Bytes of one element of a repeated scalar field in prost's `Vec`.
fn element_size(kind: &Kind) -> u64 {
    match kind {
        Kind::Double
        | Kind::Int64
        | Kind::Uint64
        | Kind::Sint64
        | Kind::Fixed64
        | Kind::Sfixed64 => 8,
        Kind::Bool => 1,
        Kind::String => 24,
        Kind::Bytes => 32,
        Kind::Message(m) => struct_size(m),
        _ => 4,
    }
}

/// `size_of` the prost struct of a message type of the Caffe2 schema.
fn struct_size(desc: &MessageDescriptor) -> u64 {
    use crate::proto::*;
    (match desc.full_name() {
        "caffe2.NetDef" => size_of::<NetDef>(),
        "caffe2.OperatorDef" => size_of::<OperatorDef>(),
        "caffe2.Argument" => size_of::<Argument>(),
        "caffe2.TensorProto" => size_of::<TensorProto>(),
        "caffe2.QTensorProto" => size_of::<QTensorProto>(),
        "caffe2.DeviceOption" => size_of::<DeviceOption>(),
        "caffe2.PartitionInfo" => size_of::<PartitionInfo>(),
        "caffe2.BackendOptions" => size_of::<BackendOptions>(),
        "caffe2.MapFieldEntry" => size_of::<MapFieldEntry>(),
        "caffe2.ExecutionStep" => size_of::<ExecutionStep>(),
        "caffe2.PlanDef" => size_of::<PlanDef>(),
        "caffe2.TensorShape" => size_of::<TensorShape>(),
        "caffe2.BlobProto" => size_of::<BlobProto>(),
        // Not reachable from a NetDef; the largest struct as an upper bound.
        _ => size_of::<Argument>(),
    }) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Argument, ExecutionStep, NetDef, OperatorDef};
    use crate::text::descriptor;
    use prost::Message;

    fn net_desc() -> MessageDescriptor {
        descriptor("caffe2.NetDef")
    }

    /// prost and the walker must agree on validity.
    fn check_agrees(data: &[u8], desc: &MessageDescriptor) -> Option<WireError> {
        let prost_ok = match desc.name() {
            "NetDef" => NetDef::decode(data).is_ok(),
            "ExecutionStep" => ExecutionStep::decode(data).is_ok(),
            other => panic!("no prost type for {other}"),
        };
        let found = find_error(data, desc);
        assert_eq!(
            prost_ok,
            found.is_none(),
            "prost and the walker disagree on {data:02x?}: walker says {found:?}"
        );
        found
    }

    fn sample_net() -> NetDef {
        NetDef {
            name: Some("n".into()),
            op: vec![OperatorDef {
                r#type: Some("Conv".into()),
                input: vec!["x".into(), "w".into()],
                output: vec!["y".into()],
                arg: vec![
                    Argument {
                        name: Some("kernels".into()),
                        ints: vec![3, -3],
                        ..Default::default()
                    },
                    Argument {
                        name: Some("values".into()),
                        floats: vec![1.0, 2.5],
                        ..Default::default()
                    },
                    Argument {
                        name: Some("t".into()),
                        t: Some(crate::proto::TensorProto {
                            dims: vec![2],
                            float_data: vec![1.0, 2.0],
                            int64_data: vec![-1, 7],
                            double_data: vec![0.5],
                            ..Default::default()
                        }),
                        n: Some(NetDef {
                            external_input: vec!["q".into()],
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            num_workers: Some(4),
            external_output: vec!["y".into()],
            ..Default::default()
        }
    }

    #[test]
    fn valid_bytes_have_no_error() {
        let data = sample_net().encode_to_vec();
        assert_eq!(check_agrees(&data, &net_desc()), None);
        assert_eq!(check_agrees(&[], &net_desc()), None);
    }

    #[test]
    fn paths_and_offsets() {
        // op[0].arg[1] is the `values` argument; cut its second float short.
        let data = sample_net().encode_to_vec();
        let cut = data.iter().position(|&b| b == 0x2d).unwrap(); // first `floats` key
        let mut bad = data.clone();
        // Make the length of the enclosing arg claim one byte too few.
        let arg_len_pos = {
            // Find "values" and step back to the arg's length byte.
            let v = data.windows(6).position(|w| w == b"values").unwrap();
            v - 4 // 2a <len> 0a 06 "values": the arg key is 4 bytes before
        };
        assert_eq!(bad[arg_len_pos], 0x2a);
        bad[arg_len_pos + 1] -= 1;
        let e = check_agrees(&bad, &net_desc()).unwrap();
        assert!(e.path.starts_with("op[0].arg[1]"), "{e:?}");
        assert!(e.offset > cut, "{e:?}");
        assert!(e.reason.contains("cut short"), "{e:?}");
    }

    #[test]
    fn wrong_wire_type_and_bad_utf8() {
        // NetDef.name (1) as a varint.
        let e = check_agrees(b"\x08\x01", &net_desc()).unwrap();
        assert_eq!((e.offset, e.path.as_str()), (0, "name"));
        assert!(e.reason.contains("varint"), "{e:?}");
        // NetDef.name with invalid UTF-8 at its second byte.
        let e = check_agrees(b"\x0a\x02a\xff", &net_desc()).unwrap();
        assert_eq!(e.offset, 3);
        assert!(e.reason.contains("UTF-8"));
    }

    #[test]
    fn unknown_fields_and_groups() {
        // Unknown field 20 as varint, fixed32, fixed64, bytes, and a group.
        let ok = b"\xa0\x01\x05\xa5\x01\x00\x00\x00\x00\xa1\x01\x00\x00\x00\x00\x00\x00\x00\x00\xa2\x01\x01x\xa3\x01\x08\x01\xa4\x01";
        assert_eq!(check_agrees(ok, &net_desc()), None);
        // A group closed by the wrong tag, an unclosed group, a stray end-group.
        check_agrees(b"\xa3\x01\x08\x01\xac\x01", &net_desc()).unwrap();
        check_agrees(b"\xa3\x01\x08\x01", &net_desc()).unwrap();
        check_agrees(b"\xa4\x01", &net_desc()).unwrap();
        // Wire types 6 and 7, field number 0, a key over 32 bits.
        check_agrees(b"\x0e", &net_desc()).unwrap();
        check_agrees(b"\x0f", &net_desc()).unwrap();
        check_agrees(b"\x00\x00", &net_desc()).unwrap();
        check_agrees(b"\x80\x80\x80\x80\x80\x01", &net_desc()).unwrap();
        // Varints of 10 bytes (the last at most 1) and over.
        check_agrees(b"\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", &net_desc());
        check_agrees(b"\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", &net_desc()).unwrap();
        check_agrees(
            b"\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
            &net_desc(),
        )
        .unwrap();
    }

    #[test]
    fn nesting_limit_matches_prost() {
        // ExecutionStep.substep (field 2) nested `depth` times.
        fn steps(depth: usize) -> Vec<u8> {
            let mut data = Vec::new();
            for _ in 0..depth {
                let mut outer = vec![0x12];
                prost::encoding::encode_varint(data.len() as u64, &mut outer);
                outer.extend_from_slice(&data);
                data = outer;
            }
            data
        }
        let desc = descriptor("caffe2.ExecutionStep");
        assert_eq!(check_agrees(&steps(100), &desc), None);
        let e = check_agrees(&steps(101), &desc).unwrap();
        assert!(e.reason.contains("nested more than 100"), "{e:?}");
        assert_eq!(e.path.matches("substep").count(), 101);
        // Unknown fields need budget left too: an unknown varint inside the
        // 100th nested step.
        let mut deep = vec![0xa0, 0x01, 0x00];
        for _ in 0..100 {
            let mut outer = vec![0x12];
            prost::encoding::encode_varint(deep.len() as u64, &mut outer);
            outer.extend_from_slice(&deep);
            deep = outer;
        }
        check_agrees(&deep, &desc).unwrap();
    }

    /// Deterministic xorshift, so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn agrees_with_prost_on_mutated_inputs() {
        let data = sample_net().encode_to_vec();
        let desc = net_desc();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut errors = 0;
        for round in 0..20_000 {
            let mut bad = data.clone();
            for _ in 0..1 + round % 3 {
                let i = rng.below(bad.len());
                match rng.below(4) {
                    0 => bad[i] = rng.next() as u8,
                    1 => bad[i] ^= 1 << rng.below(8),
                    2 => bad.truncate(i),
                    _ => bad.insert(i, rng.next() as u8),
                }
                if bad.is_empty() {
                    break;
                }
            }
            if check_agrees(&bad, &desc).is_some() {
                errors += 1;
            }
        }
        // Most mutations break something; make sure the test exercised both.
        assert!(errors > 5_000 && errors < 20_000, "{errors}");
    }

    #[test]
    fn estimates_follow_the_struct_sizes() {
        use crate::proto::Argument;
        let desc = net_desc();
        // One op with 1000 empty args: 2 bytes each on the wire.
        let op = OperatorDef {
            arg: vec![Argument::default(); 1000],
            ..Default::default()
        };
        let net = NetDef {
            op: vec![op],
            ..Default::default()
        };
        let data = net.encode_to_vec();
        let estimate = estimate_decoded_size(&data, &desc);
        let exact = (size_of::<OperatorDef>() + 1000 * size_of::<Argument>()) as u64;
        assert_eq!(estimate, exact);
        assert!(estimate > 400 * data.len() as u64);
        // Unpacked floats: 5 bytes on the wire, 4 in memory.
        let fill = NetDef {
            op: vec![OperatorDef {
                arg: vec![Argument {
                    floats: vec![1.0; 1000],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let data = fill.encode_to_vec();
        let estimate = estimate_decoded_size(&data, &desc);
        assert_eq!(
            estimate,
            (size_of::<OperatorDef>() + size_of::<Argument>() + 4000) as u64
        );
        // Strings are copied; the sample net is estimated without panicking
        // whatever its bytes.
        let data = sample_net().encode_to_vec();
        assert!(estimate_decoded_size(&data, &desc) > 0);
        for cut in 0..data.len() {
            estimate_decoded_size(&data[..cut], &desc);
        }
    }
}
