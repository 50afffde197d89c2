//! Hostile inputs: depth bombs, memo bombs ("billion laughs"), lying lengths,
//! truncation at every offset, and each configurable limit. Every case must
//! end quickly in a bounded arena or in an error naming offset and opcode.

use crate::cpython_cases as cases;

use netport_pickle::{
    GlobalClass, Limit, Limits, Machine, Opcode, PickleError, Value, classify, load, scan,
};

fn limit_of(e: &PickleError) -> Option<Limit> {
    match e {
        PickleError::LimitExceeded { limit, .. } => Some(*limit),
        _ => None,
    }
}

#[test]
fn mark_depth_bomb() {
    let data = vec![b'('; 100_000];
    let e = load(&data).unwrap_err();
    assert_eq!(limit_of(&e), Some(Limit::Depth));
    assert_eq!(e.at().offset, 1000);
    assert_eq!(e.at().opcode, Some(Opcode::MARK));
}

#[test]
fn tuple_depth_bomb() {
    // None wrapped in 5000 1-tuples.
    let mut data = b"\x80\x02N".to_vec();
    data.extend(std::iter::repeat_n(0x85u8, 5000));
    data.push(b'.');
    let e = load(&data).unwrap_err();
    assert_eq!(limit_of(&e), Some(Limit::Depth));
    assert_eq!(e.at().opcode, Some(Opcode::TUPLE1));
    // Within the limit it loads.
    let mut ok = b"\x80\x02N".to_vec();
    ok.extend(std::iter::repeat_n(0x85u8, 999));
    ok.push(b'.');
    assert!(load(&ok).is_ok());
}

#[test]
fn nested_list_depth_bomb() {
    // 5000 empty lists, each appended into the one below it.
    let mut data = b"\x80\x02".to_vec();
    data.extend(std::iter::repeat_n(b']', 5000));
    data.extend(std::iter::repeat_n(b'a', 4999));
    data.push(b'.');
    let e = load(&data).unwrap_err();
    assert_eq!(limit_of(&e), Some(Limit::Depth));
    assert_eq!(e.at().opcode, Some(Opcode::APPEND));
}

/// Level 0 is `[]`; level i is a list of `fanout` references to level i-1.
/// The logical size is fanout^levels; the arena holds one node per level.
fn billion_laughs(levels: u8, fanout: usize) -> Vec<u8> {
    let mut data = b"\x80\x02]q\x00".to_vec();
    for i in 1..=levels {
        data.extend_from_slice(&[b']', b'q', i, b'(']);
        for _ in 0..fanout {
            data.extend_from_slice(&[b'h', i - 1]);
        }
        data.push(b'e');
        data.push(b'0'); // POP: keep the stack small, the memo holds the level
    }
    data.extend_from_slice(&[b'h', levels, b'.']);
    data
}

#[test]
fn billion_laughs_stays_small() {
    // 10^50 logical elements.
    let data = billion_laughs(50, 10);
    let start = std::time::Instant::now();
    let p = load(&data).unwrap();
    assert_eq!(p.arena.len(), 51, "one node per level, never an expansion");
    assert!(p.work < 2 * data.len() as u64);
    let Value::List(top) = &p.arena[p.root] else {
        panic!("expected a list")
    };
    assert_eq!(top.len(), 10);
    assert!(
        top.iter().all(|&c| c == top[0]),
        "all ten are the same object"
    );
    // Rendering is bounded too.
    let text = p.arena.repr(p.root, 10_000);
    assert!(text.len() < 20_000);
    // Writing keeps the sharing: the output is about as small as the input.
    let out = netport_pickle::write(&p.arena, p.root).unwrap();
    assert!(out.len() < 2 * data.len());
    let q = load(&out).unwrap();
    assert!(p.arena.equivalent(p.root, &q.arena, q.root));
    assert!(start.elapsed().as_secs() < 5);
}

#[test]
fn dup_storm_is_bounded_by_work() {
    let mut data = b"\x80\x02]".to_vec();
    data.extend(std::iter::repeat_n(b'2', 1_000_000));
    data.push(b'.');
    let limits = Limits {
        max_work: 100_000,
        ..Limits::default()
    };
    let e = Machine::new(limits).load(&data, 0).unwrap_err();
    assert_eq!(limit_of(&e), Some(Limit::Work));
    assert_eq!(e.at().opcode, Some(Opcode::DUP));
}

#[test]
fn lying_lengths() {
    let e = load(b"\x80\x02X\xff\xff\xff\xffabc.").unwrap_err();
    assert_eq!(
        e.to_string(),
        "at byte 2 (BINUNICODE): declared length 4294967295 exceeds the 4 bytes that remain"
    );
    for data in [
        &b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f."[..],
        b"\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x01.",
        b"\x80\x05\x96\x00\x00\x00\x00\x01\x00\x00\x00.",
        b"\x80\x02\x8b\xff\xff\xff\x7f.",
        b"\x80\x02\x8a\xff.",
        b"\x80\x02B\x00\x00\x00\x10.",
        b"\x80\x02C\x05ab.",
        b"\x80\x02U\x05ab.",
        b"\x80\x02T\x00\x00\x01\x00ab.",
        b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x01\x00N.",
    ] {
        let e = load(data).unwrap_err();
        assert!(matches!(e, PickleError::LengthExceedsInput { .. }), "{e}");
        assert_eq!(e.at().offset, 2, "{e}");
    }
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let mut checked = 0;
    for &(name, protocol, bytes, _) in cases::CASES {
        if name.starts_with("batched") {
            continue;
        }
        for cut in 0..bytes.len() {
            let e = load(&bytes[..cut]);
            assert!(e.is_err(), "{name} {protocol} cut at {cut} loaded");
            checked += 1;
        }
    }
    assert!(checked > 5_000);
}

#[test]
fn each_limit_is_enforced() {
    // The machine's error, which the scan must report identically (one
    // engine enforces every limit for both).
    let m = |f: fn(&mut Limits), data: &[u8]| {
        let mut l = Limits::default();
        f(&mut l);
        let e = Machine::new(l.clone()).load(data, 0).unwrap_err();
        assert_eq!(scan(data, 0, &l).error.as_ref(), Some(&e), "{data:?}");
        e
    };
    // memo: three BINPUTs with room for two.
    let e = m(|l| l.max_memo = 2, b"\x80\x02Nq\x00q\x01q\x02.");
    assert_eq!(limit_of(&e), Some(Limit::Memo));
    assert_eq!(e.at().offset, 7);
    // container length: a 5-tuple with room for 3.
    let e = m(|l| l.max_container_len = 3, b"(NNNNNt.");
    assert_eq!(limit_of(&e), Some(Limit::ContainerLen));
    let e = m(|l| l.max_container_len = 3, b"](NNe(NNe.");
    assert_eq!(limit_of(&e), Some(Limit::ContainerLen));
    // nodes.
    let e = m(|l| l.max_nodes = 3, b"NNNN.");
    assert_eq!(limit_of(&e), Some(Limit::Nodes));
    // string length.
    let e = m(|l| l.max_string_len = 2, b"X\x03\x00\x00\x00abc.");
    assert_eq!(limit_of(&e), Some(Limit::StringLen));
    // protocol-0 integer digits (CPython's 4300-digit rule).
    let e = m(|l| l.max_int_digits = 5, b"L123456L\n.");
    assert_eq!(limit_of(&e), Some(Limit::IntDigits));
    let mut long = b"L".to_vec();
    long.extend(std::iter::repeat_n(b'9', 5000));
    long.extend_from_slice(b"L\n.");
    assert_eq!(limit_of(&load(&long).unwrap_err()), Some(Limit::IntDigits));
    // work.
    let e = m(|l| l.max_work = 3, b"NNNN.");
    assert_eq!(limit_of(&e), Some(Limit::Work));
}

#[test]
fn stack_rules_follow_cpython() {
    // POP on an empty segment removes the MARK.
    assert_eq!(
        load(b"(0N.").map(|p| p.arena.repr(p.root, 50)).unwrap(),
        "None"
    );
    // POP_MARK discards the items above the MARK.
    let p = load(b"K\x07(NNN1.").unwrap();
    assert_eq!(p.arena.repr(p.root, 50), "7");
    // Items below a MARK cannot be taken.
    let e = load(b"N(a.").unwrap_err();
    assert_eq!(e.to_string(), "at byte 2 (APPEND): stack underflow");
    let e = load(b"N(\x85.").unwrap_err();
    assert!(matches!(e, PickleError::StackUnderflow { .. }));
    // Empty APPENDS / SETITEMS are no-ops.
    let p = load(b"](e}(u\x86.").unwrap();
    assert_eq!(p.arena.repr(p.root, 50), "([], {})");
    // Odd SETITEMS.
    assert!(matches!(
        load(b"}(NNNu."),
        Err(PickleError::OddItems { count: 3, .. })
    ));
    // Missing memo entry and missing STOP.
    assert!(matches!(
        load(b"h\x05."),
        Err(PickleError::MemoMissing { index: 5, .. })
    ));
    assert!(matches!(load(b"N"), Err(PickleError::MissingStop { .. })));
    assert!(matches!(
        load(b"."),
        Err(PickleError::StackUnderflow { .. })
    ));
    assert!(matches!(
        load(b"\x80\x06N."),
        Err(PickleError::UnsupportedProtocol { version: 6, .. })
    ));
    // MEMOIZE uses the memo size as its index, even after PUTs elsewhere.
    let p = load(b"\x80\x04Nq\x07K\x01\x94h\x01h\x07\x86.").unwrap();
    assert_eq!(p.arena.repr(p.root, 50), "(1, None)");
}

#[test]
fn mutation_after_memo_is_seen_by_every_reference() {
    // L = []; o = Namespace.__new__(); L += [o, o]; o.__setstate__({'a': 1})
    // written as: ] ( GLOBAL ) NEWOBJ BINPUT 0 BINGET 0 } X'a' K1 s BUILD e
    let data = b"\x80\x02](cargparse\nNamespace\n)\x81q\x00h\x00}X\x01\x00\x00\x00aK\x01sbe.";
    let p = load(data).unwrap();
    let Value::List(items) = &p.arena[p.root] else {
        panic!("list")
    };
    assert_eq!(items[0], items[1]);
    assert_eq!(
        p.arena.repr(p.root, 500),
        "[argparse.Namespace.__new__().__setstate__({'a': 1}), argparse.Namespace.__new__().__setstate__({'a': 1})]"
    );
}

#[test]
fn globals_stay_symbolic() {
    // STACK_GLOBAL through the memo (memo confusion is emulated faithfully).
    let data = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93\x8c\x02id\x85R.";
    let p = load(data).unwrap();
    assert_eq!(p.arena.repr(p.root, 100), "os.system('id')");
    assert_eq!(classify("os", "system").class, GlobalClass::Dangerous);
    // STACK_GLOBAL on non-strings cannot be resolved statically.
    let e = load(b"\x80\x04K\x01K\x02\x93.").unwrap_err();
    assert!(matches!(
        e,
        PickleError::UnresolvableGlobal {
            module: "int",
            name: "int",
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        "at byte 6 (STACK_GLOBAL): STACK_GLOBAL operands are not plain strings (module is int, name is int)"
    );
    // INST and OBJ become calls.
    let p = load(b"(K\x01ibuiltins\nrange\n.").unwrap();
    assert_eq!(p.arena.repr(p.root, 100), "builtins.range(1)");
    let p = load(b"(cbuiltins\nrange\nK\x02o.").unwrap();
    assert_eq!(p.arena.repr(p.root, 100), "builtins.range(2)");
    // Extensions and out-of-band buffers stay symbolic.
    let p = load(b"\x80\x05\x82\x05\x97\x98\x86.").unwrap();
    assert_eq!(p.arena.repr(p.root, 100), "(ext(5), out_of_band_buffer(0))");
    assert!(matches!(
        load(b"\x82\x00."),
        Err(PickleError::BadExtensionCode { code: 0, .. })
    ));
    assert!(matches!(
        load(b"\x84\xff\xff\xff\xff."),
        Err(PickleError::BadExtensionCode { code: -1, .. })
    ));
    // Persistent ids, text and binary.
    let p = load(b"Pstorage0\n.").unwrap();
    assert_eq!(p.arena.repr(p.root, 100), "persistent_id('storage0')");
}
