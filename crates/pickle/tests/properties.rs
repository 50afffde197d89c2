//! Property tests: arbitrary bytes and opcode soups never panic; whatever the
//! machine reads, the writer either refuses or writes something that reads
//! back equivalent; generated value graphs (with sharing and self-reference)
//! round-trip through the writer.

use netport_pickle::value::int_from_le_signed;
use netport_pickle::{
    Arena, GlobalRef, Limits, Machine, Ops, PickleScan, Value, ValueId, classify, load, scan, write,
};
use proptest::prelude::*;
use proptest::sample::Index;

/// Fragments that reach deep machine states more often than random bytes.
const SNIPPETS: &[&[u8]] = &[
    b"(",
    b"N",
    b"]",
    b"}",
    b")",
    b"a",
    b"e",
    b"s",
    b"u",
    b"t",
    b"l",
    b"d",
    b"\x85",
    b"\x86",
    b"\x87",
    b"2",
    b"0",
    b"1",
    b"q\x00",
    b"q\x01",
    b"h\x00",
    b"h\x01",
    b"r\x00\x01\x00\x00",
    b"\x94",
    b"b",
    b"R",
    b"\x81",
    b"\x92",
    b"\x93",
    b"Q",
    b"X\x01\x00\x00\x00a",
    b"\x8c\x02os",
    b"K\x05",
    b"J\xff\xff\xff\xff",
    b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01",
    b"G\x3f\xf0\x00\x00\x00\x00\x00\x00",
    b"\x88",
    b"\x89",
    b"\x8f",
    b"\x90",
    b"\x91",
    b"cos\nsystem\n",
    b"i m\nn\n",
    b"o",
    b"\x97",
    b"\x98",
    b"\x82\x01",
    b"C\x02ab",
    b"\x96\x01\x00\x00\x00\x00\x00\x00\x00z",
    b"I01\n",
    b"L12L\n",
    b"F1.5\n",
    b"S'x\\n'\n",
    b"V\\u20ac\n",
    b"g0\n",
    b"p0\n",
    b"Pid\n",
    b"\x80\x02",
    b"\x95\x00\x00\x00\x00\x00\x00\x00\x00",
];

fn small_limits() -> Limits {
    Limits {
        max_depth: 50,
        max_memo: 64,
        max_container_len: 256,
        max_work: 10_000,
        max_nodes: 2_000,
        max_string_len: 1 << 16,
        max_int_digits: 100,
    }
}

/// Values that protocol 2 writes in a call form (so they read back as a
/// different, equivalent-in-Python graph).
fn has_call_forms(arena: &Arena) -> bool {
    arena.values().iter().any(|v| {
        matches!(
            v,
            Value::Bytes(_) | Value::ByteArray(_) | Value::Set(_) | Value::FrozenSet(_)
        )
    })
}

/// The scan names every global and extension the machine saw.
fn scan_covers_machine(data: &[u8]) -> Result<(), TestCaseError> {
    let s: PickleScan = scan(data, 7, &Limits::default());
    if let Ok(p) = load(data) {
        prop_assert_eq!(s.end, Some(p.end + 7));
        for v in p.arena.values() {
            let want = match v {
                Value::Global { module, name } => GlobalRef::Named {
                    module: module.clone(),
                    name: name.clone(),
                },
                Value::Ext(code) => GlobalRef::Extension { code: *code },
                _ => continue,
            };
            prop_assert!(
                s.globals.iter().any(|g| g.reference == want),
                "{:?} missing from {:?}",
                want,
                s.globals
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn scan_never_panics_and_covers_the_machine(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        scan_covers_machine(&data)?;
        let _ = scan(&data, u64::MAX - 100, &small_limits());
    }

    #[test]
    fn scan_of_opcode_soup_covers_the_machine(
        picks in proptest::collection::vec(0..SNIPPETS.len(), 0..64),
    ) {
        let mut data: Vec<u8> = picks.iter().flat_map(|&i| SNIPPETS[i].iter().copied()).collect();
        data.push(b'.');
        scan_covers_machine(&data)?;
        let _ = scan(&data, 0, &small_limits());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = load(&data);
        let _ = Machine::new(small_limits()).load_all(&data);
        for op in Ops::new(&data) {
            if op.is_err() {
                break;
            }
        }
    }

    #[test]
    fn opcode_soup_never_panics_and_rewrites_faithfully(
        picks in proptest::collection::vec(0..SNIPPETS.len(), 0..64),
    ) {
        let mut data: Vec<u8> = picks.iter().flat_map(|&i| SNIPPETS[i].iter().copied()).collect();
        data.push(b'.');
        if let Ok(p) = Machine::new(small_limits()).load(&data, 0) {
            let _ = p.arena.repr(p.root, 10_000);
            if let Ok(out) = write(&p.arena, p.root) {
                let q = load(&out).expect("writer output must load");
                if !has_call_forms(&p.arena) {
                    prop_assert!(p.arena.equivalent(p.root, &q.arena, q.root));
                }
            }
        }
    }

    #[test]
    fn classify_never_panics(module in ".{0,40}", name in ".{0,40}") {
        let _ = classify(&module, &name);
    }
}

/// One node of a generated graph; children are indices into the nodes
/// generated before it (so graphs share freely), lists may contain
/// themselves.
#[derive(Debug, Clone)]
enum Spec {
    None,
    Bool(bool),
    Int(i64),
    Big(Vec<u8>),
    Float(f64),
    Str(String),
    Global(String, String),
    Ext(u32),
    List(Vec<Index>, bool),
    Tuple(Vec<Index>),
    Dict(Vec<(Index, Index)>),
    Reduce(Index, Index),
    NewObj(Index, Index),
    Build(Index, Index),
    SetItems(Index, Vec<(Index, Index)>),
    Appends(Index, Vec<Index>),
    Pid(Index),
}

fn spec() -> impl Strategy<Value = Spec> {
    let idx = any::<Index>;
    let ident = "[a-z_][a-z0-9_.]{0,12}";
    prop_oneof![
        Just(Spec::None),
        any::<bool>().prop_map(Spec::Bool),
        any::<i64>().prop_map(Spec::Int),
        proptest::collection::vec(any::<u8>(), 9..24).prop_map(Spec::Big),
        any::<f64>().prop_map(Spec::Float),
        ".{0,20}".prop_map(Spec::Str),
        (ident, ident).prop_map(|(m, n)| Spec::Global(m, n)),
        (1u32..=i32::MAX as u32).prop_map(Spec::Ext),
        (proptest::collection::vec(idx(), 0..6), any::<bool>()).prop_map(|(v, s)| Spec::List(v, s)),
        proptest::collection::vec(idx(), 0..6).prop_map(Spec::Tuple),
        proptest::collection::vec((idx(), idx()), 0..4).prop_map(Spec::Dict),
        (idx(), idx()).prop_map(|(a, b)| Spec::Reduce(a, b)),
        (idx(), idx()).prop_map(|(a, b)| Spec::NewObj(a, b)),
        (idx(), idx()).prop_map(|(a, b)| Spec::Build(a, b)),
        (idx(), proptest::collection::vec((idx(), idx()), 1..4))
            .prop_map(|(a, v)| Spec::SetItems(a, v)),
        (idx(), proptest::collection::vec(idx(), 1..4)).prop_map(|(a, v)| Spec::Appends(a, v)),
        idx().prop_map(Spec::Pid),
    ]
}

/// Build the arena; the root is the last node.
fn build(specs: &[Spec]) -> (Arena, ValueId) {
    let mut a = Arena::new();
    let mut made: Vec<ValueId> = Vec::new();
    for s in specs {
        let pick = |i: &Index, made: &Vec<ValueId>| made[i.index(made.len())];
        let id = if made.is_empty() {
            a.push(Value::None)
        } else {
            match s {
                Spec::None => a.push(Value::None),
                Spec::Bool(b) => a.push(Value::Bool(*b)),
                Spec::Int(i) => a.push(Value::Int(*i)),
                Spec::Big(b) => a.push(int_from_le_signed(b)),
                Spec::Float(f) => a.push(Value::Float(*f)),
                Spec::Str(s) => a.push(Value::Str(s.clone())),
                Spec::Global(m, n) => a.push(Value::Global {
                    module: m.clone(),
                    name: n.clone(),
                }),
                Spec::Ext(c) => a.push(Value::Ext(*c)),
                Spec::List(items, self_ref) => {
                    let items: Vec<_> = items.iter().map(|i| pick(i, &made)).collect();
                    let id = a.push(Value::List(items));
                    if *self_ref && let Some(Value::List(v)) = a.get_mut(id) {
                        v.push(id);
                    }
                    id
                }
                Spec::Tuple(items) => {
                    let items = items.iter().map(|i| pick(i, &made)).collect();
                    a.push(Value::Tuple(items))
                }
                Spec::Dict(pairs) => {
                    let pairs = pairs
                        .iter()
                        .map(|(k, v)| (pick(k, &made), pick(v, &made)))
                        .collect();
                    a.push(Value::Dict(pairs))
                }
                Spec::Reduce(c, x) => a.push(Value::Reduce {
                    callable: pick(c, &made),
                    args: pick(x, &made),
                }),
                Spec::NewObj(c, x) => a.push(Value::NewObj {
                    cls: pick(c, &made),
                    args: pick(x, &made),
                    kwargs: None,
                }),
                // Wrappers get a fresh inner object, as the machine makes them.
                Spec::Build(c, st) => {
                    let obj = a.push(Value::Reduce {
                        callable: pick(c, &made),
                        args: pick(c, &made),
                    });
                    a.push(Value::Build {
                        obj,
                        state: pick(st, &made),
                    })
                }
                Spec::SetItems(c, pairs) => {
                    let obj = a.push(Value::NewObj {
                        cls: pick(c, &made),
                        args: pick(c, &made),
                        kwargs: None,
                    });
                    let items = pairs
                        .iter()
                        .map(|(k, v)| (pick(k, &made), pick(v, &made)))
                        .collect();
                    a.push(Value::SetItems { obj, items })
                }
                Spec::Appends(c, items) => {
                    let obj = a.push(Value::NewObj {
                        cls: pick(c, &made),
                        args: pick(c, &made),
                        kwargs: None,
                    });
                    let items = items.iter().map(|i| pick(i, &made)).collect();
                    a.push(Value::Appends { obj, items })
                }
                Spec::Pid(p) => a.push(Value::PersistentId(pick(p, &made))),
            }
        };
        made.push(id);
    }
    let root = *made.last().unwrap_or(&ValueId(0));
    if a.is_empty() {
        a.push(Value::None);
    }
    (a, root)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn writer_round_trip(specs in proptest::collection::vec(spec(), 1..40)) {
        let (arena, root) = build(&specs);
        let out = write(&arena, root).expect("generated graphs are writable");
        let back = load(&out).expect("writer output loads");
        prop_assert!(
            arena.equivalent(root, &back.arena, back.root),
            "wrote {}\nread  {}",
            arena.repr(root, 2000),
            back.arena.repr(back.root, 2000)
        );
        prop_assert_eq!(back.protocol, Some(2));
        prop_assert_eq!(back.end, out.len() as u64);
    }
}
