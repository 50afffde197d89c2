//! Pickles made by CPython 3.11 (`pickle.dumps(expr, protocol)` for protocols
//! 0 to 5, bytes hard-coded in `data/cpython_cases.rs`, regenerated with
//! `python3 tests/data/make_cpython_cases.py tests/data/cpython_cases.rs`),
//! read by the machine and compared with the expected value rendering, plus
//! sharing and cycle checks on the arena and a writer round trip.

#[rustfmt::skip]
#[path = "data/cpython_cases.rs"]
mod cases;

use cases::CASES;
use netport_pickle::{Arena, Machine, Ops, Value, ValueId, load, write};

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
                let native = !p.arena.values().iter().any(|v| {
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
