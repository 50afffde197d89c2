//! Property tests: arbitrary bytes and opcode soups never panic; whatever the
//! machine reads, the writer either refuses or writes something that reads
//! back equivalent; generated value graphs (with sharing and self-reference)
//! round-trip through the writer; the machine and the scan (one engine,
//! two domains) fail on the same pickles at the same offset with the same
//! error, for generated valid pickles and for mutated CPython pickles.

use crate::cpython_cases as cpython;

use netport_pickle::value::int_from_le_signed;
use netport_pickle::{
    Arena, GlobalRef, Limits, Machine, Ops, PickleError, PickleScan, Taker, Value, ValueId,
    classify, load, parses_to_stop, scan, write,
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
    arena.values().any(|v| {
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
                    module: module.to_string(),
                    name: name.to_string(),
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
                Spec::Str(s) => a.push(Value::Str(s.as_str().into())),
                Spec::Global(m, n) => a.push(Value::Global {
                    module: m.clone().into(),
                    name: n.clone().into(),
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

// ---- the machine and the scan agree ----

/// Run both readers; they must agree on success, end offset and error.
/// The one intended difference: a STACK_GLOBAL of non-strings stops the
/// machine (it cannot name the value) while the scan records it as an
/// unresolvable global at that offset and goes on.
/// Takes every REDUCE of a global, numbering them.
struct TakeAll(u32);

impl Taker for TakeAll {
    fn take(&mut self, arena: &Arena, callable: ValueId, _args: ValueId) -> Option<u32> {
        matches!(arena.get(callable)?, Value::Global { .. }).then(|| {
            self.0 += 1;
            self.0 - 1
        })
    }
}

/// Whether the graph from `a` in `plain` is the graph from `b` in `taken`
/// (same values, same sharing) where every taken call stands for a
/// `Reduce`: nothing reachable was freed or overwritten by a reused id.
fn same_but_taken(plain: &Arena, a: ValueId, taken: &Arena, b: ValueId) -> bool {
    use std::collections::HashMap;
    let (mut fwd, mut back) = (HashMap::new(), HashMap::new());
    let mut work = vec![(a, b)];
    while let Some((x, y)) = work.pop() {
        match (fwd.insert(x, y), back.insert(y, x)) {
            (None, None) => {}
            (Some(y0), Some(x0)) if y0 == y && x0 == x => continue,
            _ => return false,
        }
        let (Some(vx), Some(vy)) = (plain.get(x), taken.get(y)) else {
            return false;
        };
        match (vx, vy) {
            (Value::Reduce { .. }, Value::Taken(_)) => continue,
            (Value::Taken(_), _) | (_, Value::Taken(_)) => return false,
            _ => {}
        }
        if std::mem::discriminant(vx) != std::mem::discriminant(vy) {
            return false;
        }
        let (mut cx, mut cy) = (Vec::new(), Vec::new());
        vx.for_each_child(|c| cx.push(c));
        vy.for_each_child(|c| cy.push(c));
        if cx.len() != cy.len() {
            return false;
        }
        let same_leaf = match (vx, vy) {
            (Value::Float(f), Value::Float(g)) => f.to_bits() == g.to_bits(),
            _ => vx == vy,
        };
        if cx.is_empty() && !same_leaf {
            return false;
        }
        work.extend(cx.into_iter().zip(cy));
    }
    true
}

fn machine_and_scan_agree(data: &[u8], limits: &Limits) -> Result<bool, TestCaseError> {
    let m = Machine::new(limits.clone()).load(data, 0);
    let s = scan(data, 0, limits);
    // Taking every call changes no result, error, end or work, and frees
    // nothing still reachable.
    let t = Machine::new(limits.clone()).load_with(data, 0, &mut TakeAll(0));
    match (&m, &t) {
        (Ok(p), Ok(q)) => {
            prop_assert_eq!((p.end, p.work), (q.end, q.work));
            prop_assert!(q.arena.len() <= p.arena.len());
            prop_assert!(
                same_but_taken(&p.arena, p.root, &q.arena, q.root),
                "{:?}",
                data
            );
        }
        (Err(e), Err(f)) => prop_assert_eq!(e, f),
        _ => prop_assert!(
            false,
            "load {:?}, load_with {:?}",
            m.as_ref().err(),
            t.as_ref().err()
        ),
    }
    // The detector's probe is the machine without values.
    prop_assert_eq!(
        parses_to_stop(data, limits),
        m.as_ref().map(|p| p.end).map_err(Clone::clone)
    );
    match m {
        Ok(p) => {
            prop_assert_eq!(&s.error, &None);
            prop_assert_eq!(s.end, Some(p.end));
            Ok(true)
        }
        Err(PickleError::UnresolvableGlobal { at, .. }) => {
            prop_assert!(
                s.globals.iter().any(|g| g.offset == at.offset
                    && matches!(g.reference, GlobalRef::Unresolvable { .. })
                    && !g.after_error),
                "no unresolvable global at {} in {:?}",
                at.offset,
                s.globals
            );
            // The scan records the global and goes on with a symbolic value:
            // it may stop later, or at that same STACK_GLOBAL when the value
            // it makes there is over a limit (max_nodes), never before it.
            if let Some(e) = &s.error {
                prop_assert!(e.at().offset >= at.offset, "{e} before {}", at.offset);
            }
            Ok(false)
        }
        Err(e) => {
            prop_assert_eq!(s.error, Some(e));
            Ok(false)
        }
    }
}

/// Limits small enough for generated pickles to hit each of them.
fn tight_limits(pick: u8) -> Limits {
    let mut l = Limits::default();
    match pick % 8 {
        0 => l.max_depth = 3,
        1 => l.max_memo = 2,
        2 => l.max_container_len = 2,
        3 => l.max_work = 12,
        4 => l.max_nodes = 6,
        5 => l.max_string_len = 1,
        6 => l.max_int_digits = 1,
        _ => l = small_limits(),
    }
    l
}

/// What the generator knows about a stack slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    List,
    Dict,
    Set,
    Tuple,
    Other,
}

/// One step of a generated pickle; steps that are not valid in the current
/// state are skipped, so every generated pickle loads.
#[derive(Debug, Clone)]
enum Act {
    Scalar(Index),
    Empty(Index),
    Mark,
    Close(Index),
    TupleN(Index),
    Append,
    SetItem,
    Put(u8),
    Get(Index),
    Global(Index),
    StackGlobal,
    Call(Index),
    Build,
    Pop,
    Dup,
    Ext(u8),
    Persid,
}

const SCALARS: &[(&[u8], Kind)] = &[
    (b"N", Kind::Other),
    (b"K\x05", Kind::Other),
    (b"J\xff\xff\xff\xff", Kind::Other),
    (b"M\x00\x01", Kind::Other),
    (b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01", Kind::Other),
    (b"G\x3f\xf0\x00\x00\x00\x00\x00\x00", Kind::Other),
    (b"\x88", Kind::Other),
    (b"I01\n", Kind::Other),
    (b"I-7\n", Kind::Other),
    (b"L123456789012345678901234567890L\n", Kind::Other),
    (b"F1.5\n", Kind::Other),
    (b"X\x02\x00\x00\x00os", Kind::Str),
    (b"\x8c\x06system", Kind::Str),
    (b"V\\u20ac\n", Kind::Str),
    (b"S'posix'\n", Kind::Str),
    (b"U\x02nt", Kind::Str),
    (b"C\x02ab", Kind::Other),
    (b"B\x01\x00\x00\x00z", Kind::Other),
    (b"\x96\x01\x00\x00\x00\x00\x00\x00\x00z", Kind::Other),
];

const GLOBALS: &[&[u8]] = &[
    b"cos\nsystem\n",
    b"ccollections\nOrderedDict\n",
    b"ctorch._utils\n_rebuild_tensor_v2\n",
    b"c__builtin__\nset\n",
];

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => any::<Index>().prop_map(Act::Scalar),
        2 => any::<Index>().prop_map(Act::Empty),
        3 => Just(Act::Mark),
        3 => any::<Index>().prop_map(Act::Close),
        2 => any::<Index>().prop_map(Act::TupleN),
        2 => Just(Act::Append),
        2 => Just(Act::SetItem),
        2 => (0u8..4).prop_map(Act::Put),
        2 => any::<Index>().prop_map(Act::Get),
        1 => any::<Index>().prop_map(Act::Global),
        1 => Just(Act::StackGlobal),
        2 => any::<Index>().prop_map(Act::Call),
        1 => Just(Act::Build),
        1 => Just(Act::Pop),
        1 => Just(Act::Dup),
        1 => (1u8..4).prop_map(Act::Ext),
        1 => Just(Act::Persid),
    ]
}

/// Emit the valid acts as a pickle that reaches STOP.
fn generate(proto: u8, acts: &[Act]) -> Vec<u8> {
    let mut out = Vec::new();
    if proto >= 2 {
        out.extend_from_slice(&[0x80, proto]);
    }
    let mut stack: Vec<Kind> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut memo: Vec<(u8, Kind)> = Vec::new();
    for a in acts {
        let fence = marks.last().copied().unwrap_or(0);
        let above = stack.len() - fence;
        match a {
            Act::Scalar(i) => {
                let (bytes, kind) = SCALARS[i.index(SCALARS.len())];
                out.extend_from_slice(bytes);
                stack.push(kind);
            }
            Act::Empty(i) => {
                let (byte, kind) = [
                    (b']', Kind::List),
                    (b'}', Kind::Dict),
                    (b')', Kind::Tuple),
                    (0x8f, Kind::Set),
                ][i.index(4)];
                out.push(byte);
                stack.push(kind);
            }
            Act::Mark if marks.len() < 8 => {
                out.push(b'(');
                marks.push(stack.len());
            }
            Act::Close(i) if !marks.is_empty() => {
                // The object below the MARK, if no older MARK hides it.
                let outer = marks.len().checked_sub(2).map_or(0, |m| marks[m]);
                let below = (fence > outer).then(|| stack[fence - 1]);
                let choices: Vec<(u8, Option<Kind>)> = [
                    (b't', Some(Kind::Tuple)),
                    (b'l', Some(Kind::List)),
                    (0x91, Some(Kind::Other)),
                    (b'1', None),
                ]
                .into_iter()
                .chain(above.is_multiple_of(2).then_some((b'd', Some(Kind::Dict))))
                .chain((below == Some(Kind::List)).then_some((b'e', None)))
                .chain(
                    (below == Some(Kind::Dict) && above.is_multiple_of(2)).then_some((b'u', None)),
                )
                .chain((below == Some(Kind::Set)).then_some((0x90, None)))
                .collect();
                let (byte, made) = choices[i.index(choices.len())];
                out.push(byte);
                marks.pop();
                stack.truncate(fence);
                if let Some(k) = made {
                    stack.push(k);
                }
            }
            Act::TupleN(i) => {
                let n = 1 + i.index(3);
                if above >= n {
                    out.push(0x84 + n as u8);
                    stack.truncate(stack.len() - n);
                    stack.push(Kind::Tuple);
                }
            }
            Act::Append if above >= 2 && stack[stack.len() - 2] == Kind::List => {
                out.push(b'a');
                stack.pop();
            }
            Act::SetItem if above >= 3 && stack[stack.len() - 3] == Kind::Dict => {
                out.push(b's');
                stack.truncate(stack.len() - 2);
            }
            Act::Put(i) if above >= 1 => {
                out.extend_from_slice(&[b'q', *i]);
                let top = stack[stack.len() - 1];
                memo.retain(|(k, _)| k != i);
                memo.push((*i, top));
            }
            Act::Get(i) if !memo.is_empty() => {
                let (k, kind) = memo[i.index(memo.len())];
                out.extend_from_slice(&[b'h', k]);
                stack.push(kind);
            }
            Act::Global(i) => {
                out.extend_from_slice(GLOBALS[i.index(GLOBALS.len())]);
                stack.push(Kind::Other);
            }
            Act::StackGlobal
                if above >= 2 && stack[stack.len() - 2..] == [Kind::Str, Kind::Str] =>
            {
                out.push(0x93);
                stack.truncate(stack.len() - 2);
                stack.push(Kind::Other);
            }
            Act::Call(i) if above >= 2 => {
                out.push([b'R', 0x81][i.index(2)]);
                stack.truncate(stack.len() - 2);
                stack.push(Kind::Other);
            }
            Act::Build if above >= 2 => {
                out.push(b'b');
                stack.pop();
                let top = stack.len() - 1;
                if stack[top] == Kind::Str {
                    // The same string may be elsewhere on the stack (DUP) or
                    // in the memo: none of them is a literal any more.
                    for k in stack.iter_mut().chain(memo.iter_mut().map(|(_, k)| k)) {
                        if *k == Kind::Str {
                            *k = Kind::Other;
                        }
                    }
                }
                stack[top] = Kind::Other;
            }
            Act::Pop if above >= 1 => {
                out.push(b'0');
                stack.pop();
            }
            Act::Dup if above >= 1 => {
                out.push(b'2');
                stack.push(stack[stack.len() - 1]);
            }
            Act::Ext(code) => {
                out.extend_from_slice(&[0x82, *code]);
                stack.push(Kind::Other);
            }
            Act::Persid => {
                out.extend_from_slice(b"Pid\n");
                stack.push(Kind::Other);
            }
            _ => {}
        }
    }
    let fence = marks.last().copied().unwrap_or(0);
    if stack.len() == fence {
        out.push(b'N');
    }
    out.push(b'.');
    out
}

/// A change to a real pickle.
#[derive(Debug, Clone)]
enum Mutation {
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(data: &mut Vec<u8>, m: &Mutation) {
    if data.is_empty() {
        return;
    }
    match m {
        Mutation::Set(i, b) => {
            let i = i.index(data.len());
            data[i] = *b;
        }
        Mutation::Insert(i, b) => data.insert(i.index(data.len() + 1), *b),
        Mutation::Delete(i) => {
            data.remove(i.index(data.len()));
        }
        Mutation::Truncate(i) => data.truncate(i.index(data.len())),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn generated_pickles_load_in_both_readers(
        proto in prop_oneof![Just(0u8), Just(2), Just(4)],
        acts in proptest::collection::vec(act(), 0..80),
        pick in any::<u8>(),
    ) {
        let data = generate(proto, &acts);
        // Valid by construction: both readers reach STOP with default limits
        // (a STACK_GLOBAL is only generated on two strings).
        prop_assert!(machine_and_scan_agree(&data, &Limits::default())?, "{:?}", data);
        machine_and_scan_agree(&data, &tight_limits(pick))?;
    }

    #[test]
    fn mutated_cpython_pickles_fail_alike(
        case in any::<Index>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
        pick in any::<u8>(),
    ) {
        let (_, _, bytes, _) = cpython::CASES[case.index(cpython::CASES.len())];
        let mut data = bytes.to_vec();
        for m in &mutations {
            mutate(&mut data, m);
        }
        machine_and_scan_agree(&data, &Limits::default())?;
        machine_and_scan_agree(&data, &tight_limits(pick))?;
    }

    #[test]
    fn opcode_soup_fails_alike(
        picks in proptest::collection::vec(0..SNIPPETS.len(), 0..64),
        pick in any::<u8>(),
    ) {
        let mut data: Vec<u8> = picks.iter().flat_map(|&i| SNIPPETS[i].iter().copied()).collect();
        data.push(b'.');
        machine_and_scan_agree(&data, &Limits::default())?;
        machine_and_scan_agree(&data, &tight_limits(pick))?;
    }
}

#[test]
fn every_cpython_case_and_its_truncations_agree() {
    for &(name, _, bytes, _) in cpython::CASES {
        assert!(
            machine_and_scan_agree(bytes, &Limits::default()).unwrap(),
            "{name}"
        );
        for cut in 0..bytes.len() {
            machine_and_scan_agree(&bytes[..cut], &Limits::default()).unwrap();
        }
    }
}
