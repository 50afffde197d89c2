//! Pickles made by CPython 3.11 (`pickle.dumps(expr, protocol)` for protocols
//! 0 to 5, bytes hard-coded in `data/cpython_cases.rs`, regenerated with
//! `python3 tests/data/make_cpython_cases.py tests/data/cpython_cases.rs`),
//! read by the machine and compared with the expected value rendering, plus
//! sharing and cycle checks on the arena and a writer round trip.
//!
//! Also `netport_pickle::repr` against CPython's `repr`: a table of floats,
//! ints, str and bytes written by CPython 3.11 (`data/repr_cases.rs`,
//! regenerated with `python3 tests/data/make_repr_cases.py
//! tests/data/repr_cases.rs src/repr/printable.rs`), and an ignored interop
//! test that asks `$NETPORT_PYTHON` for the repr of random values.

use crate::cpython_cases as cases;

#[rustfmt::skip]
#[path = "../data/repr_cases.rs"]
mod repr_cases;

use cases::CASES;
use netport_pickle::{Arena, BigInt, Machine, Ops, Value, ValueId, load, repr, write};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

fn expected(name: &str, text: &str) -> String {
    match text {
        "<range 1005>" => format!(
            "[{}]",
            (0..1005)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "<negated range 1001>" => format!(
            "{{{}}}",
            (0..1001)
                .map(|i| format!("{i}: {}", -i))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => {
            assert!(!text.starts_with('<'), "{name}: unknown placeholder");
            text.to_string()
        }
    }
}

fn items(arena: &Arena, id: ValueId) -> &[ValueId] {
    match &arena[id] {
        Value::List(items) | Value::Tuple(items) => items,
        other => panic!("expected a list, found {other:?}"),
    }
}

#[test]
fn every_case_reads_to_the_expected_value() {
    assert!(CASES.len() >= 120);
    let mut failures = Vec::new();
    for &(name, protocol, bytes, text) in CASES {
        let want = expected(name, text);
        match load(bytes) {
            Ok(p) => {
                let got = p.arena.repr(p.root, 1 << 20);
                if got != want {
                    failures.push(format!(
                        "{name} protocol {protocol}:\n  got  {got}\n  want {want}"
                    ));
                }
                assert_eq!(
                    p.end,
                    bytes.len() as u64,
                    "{name} {protocol}: STOP is the last byte"
                );
                assert_eq!(
                    p.protocol,
                    (protocol >= 2).then_some(protocol),
                    "{name} {protocol}"
                );
            }
            Err(e) => failures.push(format!("{name} protocol {protocol}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn op_ranges_tile_every_case() {
    for &(name, protocol, bytes, _) in CASES {
        let mut pos = 0;
        for op in Ops::new(bytes) {
            let op = op.unwrap_or_else(|e| panic!("{name} {protocol}: {e}"));
            assert_eq!(op.offset, pos, "{name} {protocol}");
            assert!(
                op.opcode.protocol() <= protocol.max(1)
                    || protocol == 0 && op.opcode.protocol() == 0
            );
            pos = op.end;
        }
        assert_eq!(pos, bytes.len() as u64, "{name} {protocol}");
    }
}

fn case(name: &str) -> impl Iterator<Item = (u8, &'static [u8])> + '_ {
    CASES
        .iter()
        .filter(move |c| c.0 == name)
        .map(|c| (c.1, c.2))
}

#[test]
fn shared_references_are_one_node() {
    for (protocol, bytes) in case("shared") {
        let p = load(bytes).unwrap();
        let root = items(&p.arena, p.root);
        assert_eq!(root[0], root[1], "protocol {protocol}");
        let Value::Dict(pairs) = &p.arena[root[2]] else {
            panic!("protocol {protocol}: expected a dict");
        };
        assert_eq!(pairs[0].1, root[0], "protocol {protocol}");
    }
}

#[test]
fn recursive_list_points_to_itself() {
    for (protocol, bytes) in case("recursive_list") {
        let p = load(bytes).unwrap();
        assert_eq!(items(&p.arena, p.root), &[p.root], "protocol {protocol}");
    }
}

#[test]
fn ints_keep_small_and_big_apart() {
    for (protocol, bytes) in case("ints_huge") {
        let p = load(bytes).unwrap();
        let values = items(&p.arena, p.root);
        assert!(
            values
                .iter()
                .all(|&v| matches!(p.arena[v], Value::BigInt(_))),
            "protocol {protocol}"
        );
    }
    for (protocol, bytes) in case("ints_small") {
        let p = load(bytes).unwrap();
        let values = items(&p.arena, p.root);
        assert!(
            values.iter().all(|&v| matches!(p.arena[v], Value::Int(_))),
            "protocol {protocol}"
        );
    }
}

#[test]
fn stacked_pickles_load_in_sequence() {
    // Five pickles back to back, like PyTorch's legacy format.
    let mut data = Vec::new();
    let mut names = Vec::new();
    for (i, &(name, _, bytes, _)) in CASES.iter().step_by(25).take(5).enumerate() {
        data.extend_from_slice(bytes);
        names.push((i, name));
    }
    let all = Machine::default().load_all(&data).unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[4].end, data.len() as u64);
    for w in all.windows(2) {
        assert_eq!(w[0].end, w[1].start);
    }
}

#[test]
fn writer_output_reads_back_equivalent() {
    // Everything CPython wrote, re-written in protocol 2, reads back to an
    // equivalent graph, except that sets, bytes and bytearrays come back in
    // their protocol-2 call forms (checked in `protocol_2_call_forms`).
    for &(name, protocol, bytes, _) in CASES {
        let p = load(bytes).unwrap();
        match write(&p.arena, p.root) {
            Ok(out) => {
                let q = load(&out).unwrap();
                let native = !p.arena.values().any(|v| {
                    matches!(
                        v,
                        Value::Set(_) | Value::FrozenSet(_) | Value::ByteArray(_) | Value::Bytes(_)
                    )
                });
                if native {
                    assert!(
                        p.arena.equivalent(p.root, &q.arena, q.root),
                        "{name} {protocol}"
                    );
                }
            }
            Err(e) => panic!("{name} {protocol}: {e}"),
        }
    }
}

#[test]
fn golden_tensor_pickle_from_the_spec() {
    // docs/formats/pytorch.md, 'The tensor pickle': torch.save(torch.tensor([1.0, 2.0])) data.pkl.
    let data: &[u8] = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00((X\x07\x00\x00\x00storageq\x01ctorch\nFloatStorage\nq\x02X\x01\x00\x00\x000q\x03X\x03\x00\x00\x00cpuq\x04K\x02tq\x05QK\x00K\x02\x85q\x06K\x01\x85q\x07\x89ccollections\nOrderedDict\nq\x08)Rq\ttq\nRq\x0b.";
    assert_eq!(data.len(), 150);
    let p = load(data).unwrap();
    assert_eq!(
        p.arena.repr(p.root, 1000),
        "torch._utils._rebuild_tensor_v2(persistent_id(('storage', torch.FloatStorage, '0', 'cpu', 2)), 0, (2,), (1,), False, collections.OrderedDict())"
    );
    // Our writer produces a pickle that reads back to the same graph.
    let out = write(&p.arena, p.root).unwrap();
    let q = load(&out).unwrap();
    assert!(p.arena.equivalent(p.root, &q.arena, q.root));
}

#[test]
fn protocol_2_call_forms() {
    // Protocol-4 native values written in protocol 2 read back as the calls
    // CPython's protocol-2 pickler uses.
    for (name, want) in [
        ("set", "__builtin__.set([1, 2, 3])"),
        ("frozenset", "__builtin__.frozenset([1, 2])"),
        (
            "bytearray",
            "__builtin__.bytearray(_codecs.encode('q', 'latin1'))",
        ),
        (
            "bytes",
            "[_codecs.encode('', 'latin1'), _codecs.encode('ab\\x00ÿ', 'latin1')]",
        ),
    ] {
        let (_, bytes) = case(name).find(|&(p, _)| p == 5).unwrap();
        let p = load(bytes).unwrap();
        let q = load(&write(&p.arena, p.root).unwrap()).unwrap();
        assert_eq!(q.arena.repr(q.root, 1000), want, "{name}");
    }
}

#[test]
fn repr_matches_the_cpython_table() {
    let mut failures = Vec::new();
    for &(bits, want) in repr_cases::FLOATS {
        let got = repr::float(f64::from_bits(bits));
        if got != want {
            failures.push(format!("float {bits:#018x}: {got} != {want}"));
        }
    }
    for &(le, want) in repr_cases::INTS {
        let big = BigInt::from_le_signed(le);
        let got = match big.to_i64() {
            Some(i) => {
                // Small ints print the same both ways.
                assert_eq!(i.to_string(), big.to_decimal());
                i.to_string()
            }
            None => big.to_decimal(),
        };
        if got != want {
            failures.push(format!("int {le:?}: {got} != {want}"));
        }
    }
    for &(s, want) in repr_cases::STRS {
        let got = repr::string(s);
        if got != want {
            failures.push(format!("str {s:?}: {got} != {want}"));
        }
    }
    for &(b, want) in repr_cases::BYTES {
        let got = repr::bytes(b);
        if got != want {
            failures.push(format!("bytes {b:?}: {got} != {want}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(20)]
    );
    assert!(repr_cases::FLOATS.len() > 2000);
}

/// The arena's rendering uses the same repr.
#[test]
fn arena_repr_prints_like_python() {
    let mut a = Arena::new();
    let items = vec![
        a.push(Value::Float(1e-5)),
        a.push(Value::Float(1e16)),
        a.push(Value::Str("it's".into())),
        a.push(Value::Bytes(b"\t'".to_vec())),
        a.push(Value::Str("\u{85}\u{200b}".into())),
    ];
    let root = a.push(Value::List(items));
    assert_eq!(
        a.repr(root, 200),
        r#"[1e-05, 1e+16, "it's", b"\t'", '\x85\u200b']"#
    );
}

/// One random value for the interop test.
#[derive(Debug, Clone)]
enum Sample {
    Float(f64),
    Int(Vec<u8>),
    Str(String),
    Bytes(Vec<u8>),
}

fn sample() -> impl Strategy<Value = Sample> {
    prop_oneof![
        any::<u64>().prop_map(|b| Sample::Float(f64::from_bits(b))),
        any::<f64>().prop_map(Sample::Float),
        (-1e20f64..1e20).prop_map(Sample::Float),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Sample::Int),
        any::<String>().prop_map(Sample::Str),
        "[ -~'\"\\\t\n\r\u{0}-\u{1f}\u{7f}-\u{a0}]{0,20}".prop_map(Sample::Str),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Sample::Bytes),
    ]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex from python"))
        .collect()
}

#[test]
#[ignore = "interop: needs NETPORT_PYTHON (the Python peer venv)"]
fn repr_matches_python_on_random_values() {
    let python = std::env::var_os("NETPORT_PYTHON").expect(
        "NETPORT_PYTHON is not set: this interop test needs a Python 3 interpreter \
         (the peer venv's, see `cargo xtask venv`)",
    );
    let mut runner = TestRunner::deterministic();
    let strategy = sample();
    let samples: Vec<Sample> = (0..20_000)
        .map(|_| strategy.new_tree(&mut runner).expect("strategy").current())
        .collect();
    let mut input = String::new();
    for s in &samples {
        let line = match s {
            Sample::Float(f) => format!("f {:016x}\n", f.to_bits()),
            Sample::Int(b) => format!("i {}\n", hex(b)),
            Sample::Str(t) => format!("s {}\n", hex(t.as_bytes())),
            Sample::Bytes(b) => format!("b {}\n", hex(b)),
        };
        input.push_str(&line);
    }
    let script = r#"
import struct, sys
for line in sys.stdin:
    kind, _, arg = line.rstrip('\n').partition(' ')
    raw = bytes.fromhex(arg)
    if kind == 'f':
        v = struct.unpack('>d', raw)[0]
    elif kind == 'i':
        v = int.from_bytes(raw, 'little', signed=True)
    elif kind == 's':
        v = raw.decode('utf-8')
    else:
        v = raw
    sys.stdout.write(repr(v).encode('utf-8').hex() + '\n')
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run NETPORT_PYTHON");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(input.as_bytes()).expect("write to python");
    });
    let out = child.wait_with_output().expect("python output");
    writer.join().expect("writer thread");
    assert!(out.status.success(), "python failed");
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout)
        .expect("utf-8")
        .lines()
        .collect();
    assert_eq!(lines.len(), samples.len());
    let mut failures = Vec::new();
    for (s, line) in samples.iter().zip(&lines) {
        let want = String::from_utf8(unhex(line)).expect("utf-8 repr");
        let got = match s {
            Sample::Float(f) => repr::float(*f),
            Sample::Int(b) => BigInt::from_le_signed(b).to_decimal(),
            Sample::Str(t) => repr::string(t),
            Sample::Bytes(b) => repr::bytes(b),
        };
        if got != want {
            failures.push(format!("{s:?}: {got} != {want}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches of {}, first: {:#?}",
        failures.len(),
        samples.len(),
        &failures[..failures.len().min(20)]
    );
}
