//! Binary protobuf `NetDef`s (`init_net.pb`, `predict_net.pb`) in memory:
//! bounded decoding with errors that say where, and encoding.
//!
//! Decoding is prost's, which is bounded: every length prefix is checked
//! against the bytes that remain before anything is allocated (a prefix
//! claiming 2^60 bytes is an error, not an allocation), and messages nest at
//! most 100 deep (`NetDef` -> `OperatorDef` -> `Argument.n` -> `NetDef` ...
//! counts three per cycle), so a hostile file cannot overflow the stack.
//! Memory stays proportional to the input. Byte fields share the input
//! buffer, but prost's structs are large next to their wire form (an empty
//! `arg {}` is 2 bytes in a file and an 832-byte `Argument` in memory), so
//! inputs over 1 MiB are first walked to estimate what decoding will
//! allocate, and refused if that exceeds 16 times their size plus 1 GiB.
//!
//! When prost refuses the bytes, a second, schema-driven pass over them
//! (module `wire`) finds the byte offset and field path of the first problem. Inputs that are obviously
//! not nets (see [`crate::sniff()`]) are refused up front with a one-line
//! reason.
//!
//! Encoding is prost's, which writes fields in field-number order and leaves
//! `Argument.floats`, `Argument.ints` and `TensorProto.dims` unpacked (one
//! key per element) while `TensorProto.float_data` and the other `[packed =
//! true]` fields are packed, exactly as the C++ and Python protobuf libraries
//! do for this proto2 schema: decoding a file they wrote and encoding it again
//! gives the same bytes. (Fields our schema does not know are dropped, and
//! prost requires `string` fields to be UTF-8, where proto2 C++ does not check.)

use crate::error::Caffe2Error;
use crate::proto::NetDef;
use crate::sniff::{NotANet, Sniff, TextStart, sniff, text_start};
use crate::text::descriptor;
use crate::wire;
use bytes::Bytes;
use prost::Message;

/// The largest message the C++ and Python protobuf libraries accept:
/// 2 GiB - 1. [`encode_netdef`] refuses larger nets.
pub const MAX_PROTOBUF_BYTES: u64 = i32::MAX as u64;

/// Inputs above this size are first walked to estimate the memory decoding
/// will take; smaller ones cannot take more than ~420 MiB.
const ESTIMATE_ABOVE: usize = 1 << 20;

/// The most memory decoding `len` bytes may take: 16 times the input plus
/// 1 GiB. Real nets stay far below: an init net's unpacked floats take 4
/// bytes in memory for 5 in the file, and predict nets, whose structs are
/// 40 times their wire size, are a few hundred kilobytes at most.
fn memory_limit(len: usize) -> u64 {
    (len as u64).saturating_mul(16).saturating_add(1 << 30)
}

/// Decodes a binary `NetDef`. `what` names the input in errors (a path,
/// "stdin"). Byte fields of the result share `bytes`' buffer.
///
/// Zero bytes decode to an empty `NetDef`, as protobuf defines; the file
/// loaders ([`crate::load_netdef`]) refuse empty files instead. Inputs that
/// [`sniff`] recognises as something else (HTML, a Git LFS pointer, a zip,
/// gzip, a pickle, JSON) are refused with [`Caffe2Error::NotANet`].
pub fn decode_netdef(bytes: Bytes, what: &str) -> Result<NetDef, Caffe2Error> {
    decode_message(bytes, what, "caffe2.NetDef")
}

/// Decodes any message of the schema, `full_name` being its protobuf name
/// (`caffe2.NetDef`), with the error handling of [`decode_netdef`].
pub(crate) fn decode_message<M: Message + Default>(
    bytes: Bytes,
    what: &str,
    full_name: &str,
) -> Result<M, Caffe2Error> {
    if let Sniff::NotANet(kind) = sniff(&bytes)
        && !matches!(kind, NotANet::Empty)
    {
        return Err(Caffe2Error::NotANet {
            what: what.to_string(),
            kind,
        });
    }
    let desc = descriptor(full_name);
    if bytes.len() > ESTIMATE_ABOVE {
        let estimate = wire::estimate_decoded_size(&bytes, &desc);
        let limit = memory_limit(bytes.len());
        if estimate > limit {
            return Err(Caffe2Error::Decode {
                what: what.to_string(),
                len: bytes.len() as u64,
                offset: None,
                reason: format!(
                    "decoding would take about {} MiB of memory, over the limit of {} MiB \
                     (16 times the input plus 1 GiB): hostile or corrupt input",
                    estimate >> 20,
                    limit >> 20
                ),
            });
        }
    }
    let error = match M::decode(bytes.clone()) {
        Ok(message) => return Ok(message),
        Err(e) => e,
    };
    let (offset, mut reason) = match wire::find_error(&bytes, &desc) {
        Some(found) => (Some(found.offset as u64), found.describe()),
        None => (None, prost_reason(&error)),
    };
    if matches!(text_start(&bytes), Some(TextStart::Identifier(_))) {
        reason.push_str(" (the input looks like protobuf text format, not binary)");
    }
    Err(Caffe2Error::Decode {
        what: what.to_string(),
        len: bytes.len() as u64,
        offset,
        reason,
    })
}

/// prost's description without its generic prefix.
fn prost_reason(error: &prost::DecodeError) -> String {
    let text = error.to_string();
    text.strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text)
        .to_string()
}

/// Encodes `net` as protobuf does (see the module docs). Fails if the result
/// would exceed [`MAX_PROTOBUF_BYTES`], which no protobuf library could read.
pub fn encode_netdef(net: &NetDef) -> Result<Vec<u8>, Caffe2Error> {
    check_size(net.encoded_len() as u64, || {
        format!("net {:?}", net.name.as_deref().unwrap_or(""))
    })?;
    Ok(net.encode_to_vec())
}

fn check_size(size: u64, what: impl FnOnce() -> String) -> Result<(), Caffe2Error> {
    if size > MAX_PROTOBUF_BYTES {
        return Err(Caffe2Error::TooLarge { what: what(), size });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{
        Argument, DeviceOption, ExecutionStep, OperatorDef, PlanDef, TensorProto, tensor_proto,
    };

    fn arg_floats(name: &str, values: &[f32]) -> Argument {
        Argument {
            name: Some(name.into()),
            floats: values.to_vec(),
            ..Default::default()
        }
    }

    fn arg_ints(name: &str, values: &[i64]) -> Argument {
        Argument {
            name: Some(name.into()),
            ints: values.to_vec(),
            ..Default::default()
        }
    }

    fn arg_i(name: &str, i: i64) -> Argument {
        Argument {
            name: Some(name.into()),
            i: Some(i),
            ..Default::default()
        }
    }

    fn given_tensor_fill(blob: &str, shape: &[i64], values: &[f32]) -> OperatorDef {
        OperatorDef {
            output: vec![blob.into()],
            r#type: Some("GivenTensorFill".into()),
            arg: vec![arg_floats("values", values), arg_ints("shape", shape)],
            ..Default::default()
        }
    }

    /// A net with the parts real files have: fills with unpacked floats and
    /// ints, a Conv with list and scalar args, nested nets in `n`/`nets`, a
    /// TensorProto with packed data, negative varints, -0.0, a device option
    /// with explicit zeros, an empty op name, and an empty argument.
    fn rich_net() -> NetDef {
        let sub = NetDef {
            name: Some("then".into()),
            op: vec![OperatorDef {
                input: vec!["x".into()],
                output: vec!["y".into()],
                r#type: Some("Relu".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        NetDef {
            name: Some("torch-jit-export_predict".into()),
            op: vec![
                given_tensor_fill("w", &[2, 3], &[0.5, -1.5, 1e-30, f32::MAX, -0.0, 7.0]),
                OperatorDef {
                    input: vec!["data".into(), "w".into()],
                    output: vec!["conv".into()],
                    name: Some(String::new()),
                    r#type: Some("Conv".into()),
                    arg: vec![
                        arg_ints("kernels", &[3, 3]),
                        arg_ints("pads", &[-1, 0, i64::MIN, i64::MAX]),
                        arg_i("group", 1),
                        Argument {
                            name: Some("order".into()),
                            s: Some(Bytes::from_static(b"NCHW")),
                            ..Default::default()
                        },
                        Argument {
                            name: Some("eps".into()),
                            f: Some(-0.0),
                            ..Default::default()
                        },
                    ],
                    engine: Some("CUDNN".into()),
                    ..Default::default()
                },
                OperatorDef {
                    r#type: Some("If".into()),
                    arg: vec![
                        Argument {
                            name: Some("then_net".into()),
                            n: Some(sub.clone()),
                            ..Default::default()
                        },
                        Argument {
                            name: Some("nets".into()),
                            nets: vec![sub.clone(), NetDef::default()],
                            ..Default::default()
                        },
                        Argument {
                            name: Some("t".into()),
                            t: Some(TensorProto {
                                dims: vec![2, 2],
                                data_type: Some(tensor_proto::DataType::Float as i32),
                                float_data: vec![1.0, 2.0, 3.0, 4.0],
                                name: Some("t".into()),
                                ..Default::default()
                            }),
                            tensors: vec![TensorProto {
                                dims: vec![3],
                                data_type: Some(tensor_proto::DataType::Int64 as i32),
                                int64_data: vec![-1, 0, i64::MAX],
                                raw_data: Some(Bytes::from_static(&[1, 2, 3])),
                                ..Default::default()
                            }],
                            ..Default::default()
                        },
                        Argument::default(),
                    ],
                    device_option: Some(DeviceOption {
                        device_type: Some(1),
                        device_id: Some(-1),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            r#type: Some("simple".into()),
            device_option: Some(DeviceOption {
                device_type: Some(0),
                device_id: Some(0),
                ..Default::default()
            }),
            arg: vec![arg_i("net_level", 7)],
            external_input: vec!["data".into(), "w".into()],
            external_output: vec!["conv".into()],
            ..Default::default()
        }
    }

    fn round_trip(net: &NetDef) {
        let first = encode_netdef(net).unwrap();
        let decoded = decode_netdef(Bytes::from(first.clone()), "test").unwrap();
        assert_eq!(&decoded, net);
        assert_eq!(decoded.encode_to_vec(), first);
    }

    #[test]
    fn byte_identical_round_trips() {
        round_trip(&rich_net());
        round_trip(&NetDef::default());
        // An init net in the convert-onnx-to-caffe2 layout.
        let init = NetDef {
            name: Some("torch-jit-export_init".into()),
            op: (0..8)
                .map(|i| {
                    let values: Vec<f32> = (0..50).map(|v| v as f32 * 0.25 - i as f32).collect();
                    given_tensor_fill(&format!("{}", i + 2), &[5, 10], &values)
                })
                .collect(),
            external_output: (2..10).map(|i| i.to_string()).collect(),
            ..Default::default()
        };
        round_trip(&init);
    }

    #[test]
    fn fields_are_written_in_number_order() {
        // TensorProto declares data_format (15) before float_data (3) and
        // name (7) before int64_data (10); protobuf writes by number.
        let t = TensorProto {
            dims: vec![1],
            data_type: Some(10),
            data_format: Some(0),
            int64_data: vec![5],
            name: Some("a".into()),
            ..Default::default()
        };
        assert_eq!(
            t.encode_to_vec(),
            [
                0x08, 1, // dims
                0x10, 10, // data_type
                0x3a, 1, b'a', // name (7)
                0x52, 1, 5, // int64_data (10), packed
                0x78, 0, // data_format (15)
            ]
        );
    }

    #[test]
    fn repeated_scalars_are_unpacked_where_caffe2_writes_them_unpacked() {
        let floats = arg_floats("", &[1.0, 2.0]);
        let bytes = Argument {
            name: None,
            ..floats
        }
        .encode_to_vec();
        assert_eq!(
            bytes,
            [0x2d, 0x00, 0x00, 0x80, 0x3f, 0x2d, 0x00, 0x00, 0x00, 0x40]
        );
        let ints = Argument {
            ints: vec![1, -1],
            ..Default::default()
        };
        let mut expected = vec![0x30, 0x01, 0x30];
        expected.extend([0xff; 9]);
        expected.push(0x01);
        assert_eq!(ints.encode_to_vec(), expected);
        let dims = TensorProto {
            dims: vec![2, 3],
            ..Default::default()
        };
        assert_eq!(dims.encode_to_vec(), [0x08, 2, 0x08, 3]);
        // float_data is [packed = true]: one key, a length, the values.
        let packed = TensorProto {
            float_data: vec![1.0, 2.0],
            ..Default::default()
        };
        assert_eq!(
            packed.encode_to_vec(),
            [0x1a, 8, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40]
        );
        let packed = TensorProto {
            int32_data: vec![1, 2],
            int64_data: vec![3],
            double_data: vec![1.0],
            ..Default::default()
        };
        assert_eq!(
            packed.encode_to_vec(),
            [
                0x22, 2, 1, 2, // int32_data (4)
                0x4a, 8, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // double_data (9)
                0x52, 1, 3, // int64_data (10)
            ]
        );
    }

    #[test]
    fn decoding_accepts_both_packed_and_unpacked_forms() {
        // Argument.floats packed: key 5 with wire type 2.
        let a = Argument::decode(&[0x2a, 8, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40][..]).unwrap();
        assert_eq!(a.floats, vec![1.0, 2.0]);
        // Argument.ints packed, mixed with an unpacked element.
        let a = Argument::decode(&[0x32, 2, 1, 2, 0x30, 3][..]).unwrap();
        assert_eq!(a.ints, vec![1, 2, 3]);
        // TensorProto.dims packed.
        let t = TensorProto::decode(&[0x0a, 2, 4, 5][..]).unwrap();
        assert_eq!(t.dims, vec![4, 5]);
        // TensorProto.float_data unpacked (key 3, wire type 5).
        let t = TensorProto::decode(&[0x1d, 0, 0, 0x80, 0x3f, 0x1d, 0, 0, 0, 0x40][..]).unwrap();
        assert_eq!(t.float_data, vec![1.0, 2.0]);
        // Re-encoding normalises to Caffe2's forms.
        assert_eq!(
            Argument::decode(&[0x2a, 4, 0, 0, 0x80, 0x3f][..])
                .unwrap()
                .encode_to_vec(),
            [0x2d, 0, 0, 0x80, 0x3f]
        );
    }

    #[test]
    fn hostile_length_prefix_is_an_error_not_an_allocation() {
        // NetDef.op (field 2) claiming 2^60 bytes.
        let mut data = vec![0x12];
        prost::encoding::encode_varint(1 << 60, &mut data);
        data.extend_from_slice(b"\x0a\x01x");
        let e = decode_netdef(Bytes::from(data), "huge.pb").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("huge.pb: not a valid Caffe2 NetDef (13 bytes) at byte 0: in op[0]: length 1152921504606846976 exceeds the 3 bytes left"),
            "{msg}"
        );
        // The same inside an argument's packed floats.
        let mut data = Vec::new();
        let mut arg = vec![0x2a];
        prost::encoding::encode_varint(1 << 60, &mut arg);
        let op = [&[0x2a, arg.len() as u8][..], &arg].concat();
        data.push(0x12);
        data.push(op.len() as u8);
        data.extend_from_slice(&op);
        let e = decode_netdef(Bytes::from(data), "huge.pb").unwrap_err();
        assert_eq!(e.offset(), Some(4));
        assert!(
            e.to_string().contains("in op[0].arg[0].floats: length"),
            "{e}"
        );
    }

    /// `levels` of NetDef { op { arg { n: <inner> } } }, built without
    /// recursion (inner lengths first, then the prefixes outermost first).
    fn nested_nets(levels: usize) -> Vec<u8> {
        let varint_len = |v: usize| prost::encoding::encoded_len_varint(v as u64);
        let mut sizes = Vec::with_capacity(levels); // (net, op, arg) payload sizes
        let mut inner = 0usize; // encoded size of the innermost NetDef
        for _ in 0..levels {
            let arg = 1 + varint_len(inner) + inner; // n (8)
            let op = 1 + varint_len(arg) + arg; // arg (5)
            let net = 1 + varint_len(op) + op; // op (2)
            sizes.push((op, arg, inner));
            inner = net;
        }
        let mut out = Vec::with_capacity(inner);
        for &(op, arg, n) in sizes.iter().rev() {
            out.push(0x12);
            prost::encoding::encode_varint(op as u64, &mut out);
            out.push(0x2a);
            prost::encoding::encode_varint(arg as u64, &mut out);
            out.push(0x42);
            prost::encoding::encode_varint(n as u64, &mut out);
        }
        assert_eq!(out.len(), inner);
        out
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let data = nested_nets(10_000);
        let e = decode_netdef(Bytes::from(data), "deep.pb").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("nested more than 100 deep"), "{msg}");
        assert!(msg.contains("in op[0].arg[0].n.op[0]"), "{msg}");
        // 33 cycles of op/arg/n are 99 nested messages: fine.
        let ok = nested_nets(33);
        let net = decode_netdef(Bytes::from(ok.clone()), "ok.pb").unwrap();
        assert_eq!(net.encode_to_vec(), ok);
        assert!(decode_netdef(Bytes::from(nested_nets(34)), "x").is_err());
    }

    #[test]
    fn deep_execution_steps_are_an_error() {
        let mut data = Vec::new();
        for _ in 0..10_000 {
            let mut outer = vec![0x12]; // ExecutionStep.substep
            prost::encoding::encode_varint(data.len() as u64, &mut outer);
            outer.extend_from_slice(&data);
            data = outer;
        }
        let e = decode_message::<ExecutionStep>(
            Bytes::from(data.clone()),
            "plan.pb",
            "caffe2.ExecutionStep",
        )
        .unwrap_err();
        assert!(e.to_string().contains("nested more than 100 deep"), "{e}");
        // Inside a plan: PlanDef.execution_step (3).
        let mut plan = vec![0x1a];
        prost::encoding::encode_varint(data.len() as u64, &mut plan);
        plan.extend_from_slice(&data);
        assert!(decode_message::<PlanDef>(Bytes::from(plan), "plan.pb", "caffe2.PlanDef").is_err());
    }

    #[test]
    fn truncated_messages_are_errors_with_offsets() {
        let full = encode_netdef(&rich_net()).unwrap();
        let mut errors = 0;
        for cut in 0..full.len() {
            match decode_netdef(Bytes::copy_from_slice(&full[..cut]), "cut.pb") {
                // Cutting between two top-level fields leaves a valid net.
                Ok(net) => assert_eq!(net.encode_to_vec(), &full[..cut]),
                Err(e) => {
                    errors += 1;
                    let offset = e.offset().expect("truncation is located");
                    assert!(offset <= cut as u64, "{e}");
                }
            }
        }
        assert!(errors > full.len() * 9 / 10, "{errors} of {}", full.len());
        let e =
            decode_netdef(Bytes::copy_from_slice(&full[..full.len() - 1]), "cut.pb").unwrap_err();
        assert!(e.to_string().contains("exceeds"), "{e}");
    }

    #[test]
    fn obvious_non_nets_get_one_line_reasons() {
        let cases: [(&[u8], &str); 5] = [
            (b"<!DOCTYPE html><html></html>", "an HTML page"),
            (
                b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 304827063\n",
                "not a Caffe2 net: a Git LFS pointer file, not the model itself (oid sha256:abc, size 304827063 bytes)",
            ),
            (b"PK\x03\x04rest", "a zip archive"),
            (b"\x1f\x8b\x08", "gzip"),
            (b"\x80\x02}q", "pickle"),
        ];
        for (data, expected) in cases {
            let e = decode_netdef(Bytes::from_static(data), "m.pb").unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("m.pb: ") && msg.contains(expected), "{msg}");
            assert!(!msg.contains('\n'));
        }
        // Text fed to the binary decoder says so.
        let e = decode_netdef(Bytes::from_static(b"name: \"x\"\n"), "p.pb").unwrap_err();
        assert!(
            e.to_string().contains("looks like protobuf text format"),
            "{e}"
        );
        // Empty bytes are an empty net.
        assert_eq!(
            decode_netdef(Bytes::new(), "e.pb").unwrap(),
            NetDef::default()
        );
    }

    #[test]
    fn inputs_that_would_explode_in_memory_are_refused() {
        // 4 MiB of empty `arg {}` in one op: 2 M Arguments of 832 bytes.
        let n_args = 2 << 20;
        let mut op = Vec::with_capacity(2 * n_args);
        for _ in 0..n_args {
            op.extend_from_slice(&[0x2a, 0x00]);
        }
        let mut data = vec![0x12];
        prost::encoding::encode_varint(op.len() as u64, &mut data);
        data.extend_from_slice(&op);
        let e = decode_netdef(Bytes::from(data), "bomb.pb").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("decoding would take about 1"), "{msg}");
        assert!(msg.contains("hostile or corrupt input"), "{msg}");
        // A real-looking init net of the same size decodes.
        let values: Vec<f32> = (0..(1 << 20)).map(|i| i as f32).collect();
        let init = NetDef {
            op: vec![given_tensor_fill("w", &[1 << 20], &values)],
            ..Default::default()
        };
        let data = init.encode_to_vec();
        assert!(data.len() > 4 << 20);
        assert_eq!(decode_netdef(Bytes::from(data), "init.pb").unwrap(), init);
    }

    #[test]
    fn nets_over_2_gib_are_refused() {
        assert!(check_size(MAX_PROTOBUF_BYTES, || "n".into()).is_ok());
        let e = check_size(MAX_PROTOBUF_BYTES + 1, || "net \"big\"".into()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "net \"big\": the net encodes to 2147483648 bytes, over the protobuf limit of 2147483647 bytes (2 GiB - 1)"
        );
    }

    #[test]
    fn byte_fields_share_the_input_buffer() {
        let net = NetDef {
            op: vec![OperatorDef {
                arg: vec![Argument {
                    s: Some(Bytes::from(vec![7u8; 64])),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let input = Bytes::from(net.encode_to_vec());
        let decoded = decode_netdef(input.clone(), "x").unwrap();
        let s = decoded.op[0].arg[0].s.as_ref().unwrap();
        let range = input.as_ptr() as usize..input.as_ptr() as usize + input.len();
        assert!(range.contains(&(s.as_ptr() as usize)));
    }
}
