//! `scan`: globals resolved through stack and memo, classification, the
//! `weights_only` emulation with torch's predicted messages, nested payloads,
//! broken input. CPython-made pickles are in `data/scan_cases.rs`
//! (regenerated with
//! `python3 tests/data/make_scan_cases.py tests/data/scan_cases.rs`; each has
//! its expression as a comment); the others are assembled by hand below.
//! Protocol 0/1 pickles that CPython runs (GLOBAL + REDUCE, INST, OBJ, EXT
//! codes; issue 14) are in `data/legacy_cases.rs`
//! (`python3 tests/data/make_legacy_cases.py tests/data/legacy_cases.rs`,
//! which checks with CPython's unpickler that each reaches STOP and makes its
//! call).

#[rustfmt::skip]
#[path = "../data/scan_cases.rs"]
mod cases;

use crate::cpython_cases as cpython;

#[rustfmt::skip]
#[path = "../data/legacy_cases.rs"]
mod legacy;

use std::time::{Duration, Instant};

use netport_pickle::{
    BlockerKind, GlobalClass, GlobalRef, Limits, NestedKind, Opcode, PayloadEncoding, PickleError,
    PickleScan, ScanVerdict, Value, load, parses_to_stop, scan,
};

fn run(data: &[u8]) -> PickleScan {
    scan(data, 0, &Limits::default())
}

fn names(s: &PickleScan) -> Vec<String> {
    s.globals.iter().map(|g| g.full_name()).collect()
}

fn first_torch_error(s: &PickleScan) -> Option<&str> {
    s.weights_only
        .first_blocker()
        .and_then(|b| b.torch_error.as_deref())
}

fn unsupported_global(shown: &str) -> String {
    format!(
        "Unsupported global: GLOBAL {shown} was not an allowed global by default. Please use \
         `torch.serialization.add_safe_globals([{shown}])` or the \
         `torch.serialization.safe_globals([{shown}])` context manager to allowlist this global \
         if you trust this class/function."
    )
}

/// docs/formats/pytorch.md, 'The tensor pickle', as printed there.
const GOLDEN_HEX: &str = "
80 02 63 74 6f 72 63 68 2e 5f 75 74 69 6c 73 0a 5f 72 65 62 75 69 6c 64 5f 74 65 6e 73 6f 72 5f 76 32 0a
71 00 28 28 58 07 00 00 00 73 74 6f 72 61 67 65 71 01 63 74 6f 72 63 68 0a 46 6c 6f 61 74 53 74 6f 72 61
67 65 0a 71 02 58 01 00 00 00 30 71 03 58 03 00 00 00 63 70 75 71 04 4b 02 74 71 05 51 4b 00 4b 02 85 71
06 4b 01 85 71 07 89 63 63 6f 6c 6c 65 63 74 69 6f 6e 73 0a 4f 72 64 65 72 65 64 44 69 63 74 0a 71 08 29
52 71 09 74 71 0a 52 71 0b 2e";

fn golden() -> Vec<u8> {
    GOLDEN_HEX
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect()
}

#[test]
fn golden_tensor_pickle_is_safe_and_loads_with_weights_only() {
    let data = golden();
    assert_eq!(data.len(), 150);
    assert_eq!(
        data,
        cases::TENSOR_P2,
        "CPython stand-in reproduces the spec"
    );
    let s = run(&data);
    assert_eq!(s.verdict, ScanVerdict::Safe);
    assert!(s.weights_only.loads, "{:?}", s.weights_only);
    assert!(s.weights_only.all_blockers.is_empty());
    assert_eq!(s.error, None);
    assert_eq!(s.protocol, Some(2));
    assert_eq!((s.stop, s.end), (Some(149), Some(150)));
    assert_eq!(
        names(&s),
        [
            "torch._utils._rebuild_tensor_v2",
            "torch.FloatStorage",
            "collections.OrderedDict"
        ]
    );
    assert_eq!(
        s.globals.iter().map(|g| g.offset).collect::<Vec<_>>(),
        [2, 53, 112]
    );
    assert!(s.globals.iter().all(|g| g.class == GlobalClass::Allowed));
    assert!(s.globals[0].uses.called && s.globals[2].uses.called);
    assert!(!s.globals[1].uses.called);
    assert!(s.payloads.is_empty());
    assert_eq!(s.add_safe_globals(), None);
    let used: Vec<Opcode> = s.opcodes.iter().map(|(o, _)| *o).collect();
    assert!(used.contains(&Opcode::BINPERSID) && !used.contains(&Opcode::FRAME));
    assert!(s.opcodes.contains(&(Opcode::BINPUT, 12)));

    // Offsets are shifted by offset_base, errors included.
    let s = scan(&data, 1000, &Limits::default());
    assert_eq!(s.globals[1].offset, 1053);
    assert_eq!(s.end, Some(1150));
    let s = scan(&data[..100], 1000, &Limits::default());
    assert_eq!(
        s.error.as_ref().map(|e| e.at().offset),
        Some(1099),
        "{:?}",
        s.error
    );
}

#[test]
fn protocol_4_tensor_pickle_is_refused_at_frame() {
    let s = run(cases::TENSOR_P4);
    assert_eq!(s.verdict, ScanVerdict::WeightsOnlyIncompatible);
    assert!(!s.weights_only.loads);
    let b = s.weights_only.first_blocker().unwrap();
    assert_eq!((b.offset, b.opcode), (2, Some(Opcode::FRAME)));
    assert_eq!(b.kind, BlockerKind::UnsupportedOpcode);
    assert_eq!(b.torch_error.as_deref(), Some("Unsupported operand 149"));
    // Same globals, resolved through STACK_GLOBAL and MEMOIZE.
    assert_eq!(
        names(&s),
        [
            "torch._utils._rebuild_tensor_v2",
            "torch.FloatStorage",
            "collections.OrderedDict"
        ]
    );
    assert!(s.globals.iter().all(|g| g.opcode == Opcode::STACK_GLOBAL));
    assert!(s.globals.iter().all(|g| g.class == GlobalClass::Allowed));
    // Everything else that blocks is an opcode; no semantic blocker.
    let ops: Vec<_> = s
        .weights_only
        .all_blockers
        .iter()
        .map(|b| {
            assert_eq!(b.kind, BlockerKind::UnsupportedOpcode);
            b.torch_error.clone().unwrap()
        })
        .collect();
    assert_eq!(
        ops,
        [
            "Unsupported operand 149",
            "Unsupported operand 140",
            "Unsupported operand 148",
            "Unsupported operand 147"
        ]
    );
    assert_eq!(s.protocol, Some(4));
    assert_eq!(s.end, Some(cases::TENSOR_P4.len() as u64));
}

#[test]
fn namespace_needs_allowlist_with_the_exact_line() {
    let s = run(cases::NAMESPACE_P2);
    assert_eq!(s.verdict, ScanVerdict::NeedsAllowlist);
    assert_eq!(
        s.add_safe_globals().as_deref(),
        Some("torch.serialization.add_safe_globals([argparse.Namespace])")
    );
    assert_eq!(
        first_torch_error(&s),
        Some(unsupported_global("argparse.Namespace").as_str())
    );
    // NEWOBJ and BUILD pass once the class is allowlisted.
    assert_eq!(s.weights_only.all_blockers.len(), 1);
    let g = &s.globals[0];
    assert!(g.uses.instantiated && g.uses.built && !g.uses.called);

    // Several benign globals: one list, torch's spelling of builtins.
    let data = b"\x80\x02(cargparse\nNamespace\nc__builtin__\nfrozenset\nccopy_reg\n_reconstructor\ncargparse\nNamespace\nt.";
    let s = run(data);
    assert_eq!(s.verdict, ScanVerdict::NeedsAllowlist);
    assert_eq!(
        s.add_safe_globals().as_deref(),
        Some(
            "torch.serialization.add_safe_globals([argparse.Namespace, frozenset, copyreg._reconstructor])"
        )
    );
    assert_eq!(s.globals[0].occurrences, 2);
    assert_eq!(s.weights_only.all_blockers[0].occurrences, 2);
}

#[test]
fn load_from_bytes_payload_range_is_reported() {
    for (data, exact) in [
        (cases::LOAD_FROM_BYTES_P2, false),
        (cases::LOAD_FROM_BYTES_P4, true),
    ] {
        for base in [0u64, 4096] {
            let s = scan(data, base, &Limits::default());
            assert_eq!(s.verdict, ScanVerdict::Dangerous);
            let g = &s.globals[0];
            assert_eq!(g.full_name(), "torch.storage._load_from_bytes");
            assert_eq!(g.class, GlobalClass::Dangerous);
            assert!(g.uses.called);
            assert_eq!(s.payloads.len(), 1);
            let p = &s.payloads[0];
            assert_eq!(p.kind, NestedKind::TorchSave);
            assert_eq!(p.callable, "torch.storage._load_from_bytes");
            let src = p.source.as_ref().unwrap();
            assert_eq!(src.exact, exact);
            assert_eq!(p.bytes(data, base).unwrap().as_ref(), cases::PAYLOAD);
            if exact {
                assert_eq!(src.encoding, PayloadEncoding::Bytes);
                let r = (src.range.start - base) as usize..(src.range.end - base) as usize;
                assert_eq!(&data[r], cases::PAYLOAD);
            } else {
                assert_eq!(src.encoding, PayloadEncoding::Latin1);
                assert!(names(&s).contains(&"_codecs.encode".to_string()));
            }
            assert!(p.call_offset > src.range.end);
        }
    }
}

#[test]
fn builtin_eval_in_every_protocol() {
    for data in [cases::EVAL_P0, cases::EVAL_P2, cases::EVAL_P4] {
        let s = run(data);
        assert_eq!(s.verdict, ScanVerdict::Dangerous);
        assert_eq!(names(&s), ["builtins.eval"]);
        assert!(s.globals[0].uses.called);
    }
    // Protocol 0 and 2 write GLOBAL `__builtin__ eval`: torch maps it and
    // reports the builtin without its module.
    let s = run(cases::EVAL_P0);
    assert_eq!(
        s.globals[0].reference,
        GlobalRef::Named {
            module: "__builtin__".into(),
            name: "eval".into()
        }
    );
    assert_eq!(
        first_torch_error(&s),
        Some(unsupported_global("eval").as_str())
    );
    let s = run(cases::EVAL_P2);
    assert_eq!(
        first_torch_error(&s),
        Some(unsupported_global("eval").as_str())
    );
    let s = run(cases::EVAL_P4);
    assert_eq!(first_torch_error(&s), Some("Unsupported operand 149"));
}

#[test]
fn system_calls_and_other_sinks() {
    for (data, name, blocked) in [
        (cases::POSIX_SYSTEM_P2, "posix.system", Some("posix")),
        (cases::NT_SYSTEM_P2, "nt.system", Some("nt")),
        (cases::RUNPY_P4, "runpy._run_code", None),
        (cases::ATTRGETTER_P2, "operator.attrgetter", None),
    ] {
        let s = run(data);
        assert_eq!(s.verdict, ScanVerdict::Dangerous, "{name}");
        assert_eq!(names(&s), [name]);
        assert_eq!(s.globals[0].class, GlobalClass::Dangerous);
        if let Some(m) = blocked {
            assert_eq!(
                first_torch_error(&s).unwrap(),
                format!("Trying to load unsupported GLOBAL {name} whose module {m} is blocked.")
            );
            assert_eq!(
                s.weights_only.first_blocker().unwrap().kind,
                BlockerKind::BlockedModule
            );
        }
    }
    // CPython reuses the memoized 'builtins' string (BINGET) for __import__.
    let s = run(cases::GETATTR_P4);
    assert_eq!(s.verdict, ScanVerdict::Dangerous);
    assert_eq!(names(&s), ["builtins.getattr", "builtins.__import__"]);
    assert!(s.globals.iter().all(|g| g.class == GlobalClass::Dangerous));
    assert!(s.globals.iter().all(|g| g.uses.called));
}

#[test]
fn stack_global_through_the_memo() {
    // 'os' MEMOIZE(0) POP; 'system' BINPUT 7 POP; BINGET 0; BINGET 7; STACK_GLOBAL
    let data =
        b"\x80\x04\x8c\x02os\x94\x30\x8c\x06system\x71\x07\x30\x68\x00\x68\x07\x93\x8c\x02id\x85R.";
    let s = run(data);
    assert_eq!(names(&s), ["os.system"]);
    assert_eq!(s.globals[0].offset, 23);
    assert_eq!(s.globals[0].opcode, Opcode::STACK_GLOBAL);
    assert_eq!(s.verdict, ScanVerdict::Dangerous);
    assert!(s.globals[0].uses.called);

    // BINPUT 0 then MEMOIZE: MEMOIZE writes index 1 (the memo size), so
    // BINGET 1 is 'system', not 'innocent'.
    let data = b"\x80\x04\x8c\x02os\x71\x00\x30\x8c\x06system\x94\x30\x8c\x08innocent\x71\x05\x30\x68\x00\x68\x01\x93.";
    assert_eq!(names(&run(data)), ["os.system"]);

    // A memo slot overwritten: the last PUT wins.
    let data =
        b"\x80\x04\x8c\x08builtins\x71\x00\x30\x8c\x02nt\x71\x00\x30\x68\x00\x8c\x06system\x93.";
    assert_eq!(names(&run(data)), ["nt.system"]);

    // Strings of every opcode width as operands.
    let operands: &[(&[u8], &[u8])] = &[
        (b"Vos\n", b"S'system'\n"),
        (b"U\x02os", b"T\x06\x00\x00\x00system"),
        (
            b"\x8d\x02\x00\x00\x00\x00\x00\x00\x00os",
            b"X\x06\x00\x00\x00system",
        ),
        (b"V\\u006fs\n", b"S'sys\\x74em'\n"),
    ];
    for (m, n) in operands {
        let mut data = b"\x80\x04".to_vec();
        data.extend_from_slice(m);
        data.extend_from_slice(n);
        data.extend_from_slice(b"\x93.");
        let s = run(&data);
        assert_eq!(names(&s), ["os.system"], "{data:?}");
        assert_eq!(s.verdict, ScanVerdict::Dangerous);
    }
}

#[test]
fn non_string_stack_global_is_unresolvable_and_dangerous() {
    let s = run(b"\x80\x04K\x01\x8c\x06system\x93.");
    assert_eq!(s.verdict, ScanVerdict::Dangerous);
    assert_eq!(
        s.globals[0].reference,
        GlobalRef::Unresolvable {
            module: "int",
            name: "str"
        }
    );
    assert_eq!(s.globals[0].class, GlobalClass::Dangerous);
    assert_eq!(s.error, None, "the scan goes on after it");

    // A string mutated by BUILD (the modelscan#85 trick) is no longer a literal.
    let s = run(b"\x80\x04\x8c\x02os\x94}b\x8c\x06system\x93.");
    assert!(matches!(
        s.globals[0].reference,
        GlobalRef::Unresolvable {
            module: "object",
            ..
        }
    ));
    assert_eq!(s.verdict, ScanVerdict::Dangerous);

    // The machine refuses these outright.
    assert!(matches!(
        load(b"\x80\x04K\x01\x8c\x06system\x93."),
        Err(PickleError::UnresolvableGlobal { .. })
    ));

    // A global's result as an operand.
    let s = run(b"\x80\x04cbuiltins\nstr\n)R\x8c\x06system\x93.");
    assert_eq!(names(&s)[0], "builtins.str");
    assert!(matches!(
        s.globals[1].reference,
        GlobalRef::Unresolvable {
            module: "object",
            name: "str"
        }
    ));
}

#[test]
fn dotted_and_python_2_names() {
    // Protocol 4 find_class walks dotted names: classify on the first part.
    let s = run(b"\x80\x04\x8c\x02os\x8c\x09path.join\x93.");
    assert_eq!(names(&s), ["os.path.join"]);
    assert_eq!(s.verdict, ScanVerdict::Dangerous);
    let s = run(b"\x80\x02cbuiltins\ngetattr.__call__\n.");
    assert_eq!(s.globals[0].class, GlobalClass::Dangerous);
    let s = run(b"\x80\x02ctorch\nTensor.__reduce_ex__.__globals__\n.");
    assert_eq!(s.globals[0].class, GlobalClass::Dangerous);
    // A dotted name of an allowed class is not allowed.
    let s = run(b"\x80\x02ccollections\nOrderedDict.fromkeys\n.");
    assert_eq!(s.verdict, ScanVerdict::Suspicious);
    assert_eq!(
        first_torch_error(&s),
        Some(unsupported_global("collections.OrderedDict.fromkeys").as_str())
    );

    // Python 2 names, mapped as find_class does.
    let s = run(b"\x80\x02c__builtin__\ngetattr\n.");
    assert_eq!(names(&s), ["builtins.getattr"]);
    assert_eq!(s.verdict, ScanVerdict::Dangerous);
    let s = run(b"\x80\x02c__builtin__\nset\n)R.");
    assert_eq!(s.verdict, ScanVerdict::Safe, "__builtin__.set is allowed");
    let s = run(b"\x80\x02ccopy_reg\n_reconstructor\n.");
    assert_eq!(names(&s), ["copyreg._reconstructor"]);
    assert_eq!(s.verdict, ScanVerdict::NeedsAllowlist);
    let s = run(b"\x80\x02c__builtin__\nintern\n.");
    assert_eq!(names(&s), ["sys.intern"]);
    assert_eq!(
        first_torch_error(&s),
        Some("Trying to load unsupported GLOBAL sys.intern whose module sys is blocked.")
    );
}

#[test]
fn extension_codes_are_dangerous() {
    // The code is looked up in the loading process's copyreg registry, which
    // any imported module can fill: it may import anything.
    let s = run(b"\x80\x02\x82\x01)R.");
    assert_eq!(s.verdict, ScanVerdict::Dangerous);
    assert_eq!(s.globals[0].class, GlobalClass::Dangerous);
    assert_eq!(s.globals[0].offset, 2);
    assert_eq!(s.globals[0].reference, GlobalRef::Extension { code: 1 });
    assert_eq!(s.globals[0].opcode, Opcode::EXT1);
    assert!(s.globals[0].uses.called);
    assert_eq!(first_torch_error(&s), Some("Unsupported operand 130"));
    let s = run(b"\x80\x02\x84\xff\xff\xff\x7f.");
    assert_eq!(
        s.globals[0].reference,
        GlobalRef::Extension { code: 0x7fff_ffff }
    );
    let s = run(b"\x80\x02\x82\x00.");
    assert!(matches!(
        s.error,
        Some(PickleError::BadExtensionCode { .. })
    ));
}

#[test]
fn weights_only_semantic_checks() {
    let cases: &[(&[u8], BlockerKind, &str)] = &[
        (
            b"\x80\x02}}b.",
            BlockerKind::Build,
            "Can only build Tensor, Parameter, OrderedDict or types allowlisted via `add_safe_globals`, but got <class 'dict'>",
        ),
        (
            b"\x80\x02}Na.",
            BlockerKind::Append,
            "Can only append to lists, but got <class 'dict'>",
        ),
        (
            b"\x80\x02)(Ne.",
            BlockerKind::Append,
            "Can only append to lists, but got <class 'tuple'>",
        ),
        (
            b"\x80\x02]NNs.",
            BlockerKind::SetItem,
            "Can only SETITEM for dict, collections.OrderedDict, collections.Counter, but got <class 'list'>",
        ),
        (
            b"\x80\x02](NNu.",
            BlockerKind::SetItem,
            "Can only SETITEMS for dict, collections.OrderedDict, collections.Counter, but got <class 'list'>",
        ),
        (
            b"\x80\x02X\x03\x00\x00\x00abc)R.",
            BlockerKind::Reduce,
            "Trying to call reduce for unrecognized function abc",
        ),
        (
            b"\x80\x02K\x05)\x81.",
            BlockerKind::NewObj,
            "Can only create new object for nn.Parameter or classes allowlisted via `add_safe_globals` but got 5",
        ),
        (
            b"\x80\x02X\x01\x00\x00\x00kQ.",
            BlockerKind::PersistentId,
            "persistent_load id must be tuple or int, but got <class 'str'>",
        ),
        (
            b"\x80\x02X\x06\x00\x00\x00moduleK\x01\x86Q.",
            BlockerKind::PersistentId,
            "Only persistent_load of storage is allowed, but got <class 'str'>",
        ),
        (
            b"\x80\x02K\x01K\x02\x86Q.",
            BlockerKind::PersistentId,
            "Only persistent_load of storage is allowed, but got <class 'int'>",
        ),
        (
            b"\x80\x02ctorch.distributed.tensor\nDTensor\n.",
            BlockerKind::DTensor,
            "``torch.distributed.tensor`` must be imported to load DTensors",
        ),
        (
            b"\x80\x02ccollections\nOrderedDict\nNb.",
            BlockerKind::Build,
            "Can only build Tensor, Parameter, OrderedDict or types allowlisted via `add_safe_globals`, but got <class 'type'>",
        ),
        (
            b"\x80\x02I01\n.",
            BlockerKind::UnsupportedOpcode,
            "Unsupported operand 73",
        ),
        (
            b"\x80\x02(d.",
            BlockerKind::UnsupportedOpcode,
            "Unsupported operand 100",
        ),
        (
            b"\x80\x03C\x01a.",
            BlockerKind::UnsupportedOpcode,
            "Unsupported operand 67",
        ),
    ];
    for (data, kind, msg) in cases {
        let s = run(data);
        assert!(!s.weights_only.loads, "{data:?}");
        let b = s.weights_only.first_blocker().unwrap();
        assert_eq!(
            (b.kind, b.torch_error.as_deref()),
            (*kind, Some(*msg)),
            "{data:?}"
        );
    }
    // What torch accepts.
    for data in [
        &b"\x80\x02(X\x07\x00\x00\x00storageK\x01tQ."[..],
        b"\x80\x02K\x07Q.",
        b"\x80\x02ccollections\nOrderedDict\n)R}b.",
        b"\x80\x02ccollections\nOrderedDict\n)RNNs.",
        b"\x80\x02ccollections\nCounter\n)R(NNu.",
        b"\x80\x02ctorch\nSize\nK\x02K\x03\x86\x85R.",
        b"\x80\x02ctorch._utils\n_rebuild_parameter\nN\x89ccollections\nOrderedDict\n)R\x87R}b.",
        b"\x80\x02]Na(NNe.",
        b"\x80\x02\x8f.",
        b"\x80\x02U\x02ab.",
        b"\x80\x02\x8a\x02\x01\x02.",
    ] {
        let s = run(data);
        assert!(s.weights_only.loads, "{data:?}: {:?}", s.weights_only);
    }
    // An allowlisted dtype cannot be called.
    let s = run(b"\x80\x02ctorch\nfloat32\n)R.");
    assert_eq!(
        s.weights_only.first_blocker().unwrap().kind,
        BlockerKind::NotCallable
    );
    // A non-UTF-8 Python 2 string.
    let s = run(b"\x80\x02U\x01\xff.");
    assert_eq!(
        s.weights_only.first_blocker().unwrap().kind,
        BlockerKind::StringNotUtf8
    );
}

#[test]
fn all_blockers_continue_past_the_first() {
    // Namespace (allowlist), then os.system (blocked), then FRAME-less DICT.
    let data = b"\x80\x02cargparse\nNamespace\n)\x81cos\nsystem\nX\x02\x00\x00\x00id\x85R(d\x87.";
    let s = run(data);
    let kinds: Vec<_> = s.weights_only.all_blockers.iter().map(|b| b.kind).collect();
    assert_eq!(
        kinds,
        [
            BlockerKind::UnsupportedGlobal,
            BlockerKind::BlockedModule,
            BlockerKind::UnsupportedOpcode
        ]
    );
    assert_eq!(s.verdict, ScanVerdict::Dangerous);
}

#[test]
fn truncated_and_garbage_input_never_panics() {
    let data = golden();
    for n in 0..data.len() {
        let s = run(&data[..n]);
        assert!(s.error.is_some(), "prefix {n}");
        assert_eq!(s.stop, None);
        assert!(!s.weights_only.loads);
        assert_eq!(
            s.weights_only.all_blockers.last().unwrap().kind,
            BlockerKind::Malformed
        );
        // Globals read so far are kept (the GLOBALs end at 35, 73, 137).
        let want = [35usize, 73, 137].iter().filter(|&&end| n >= end).count();
        assert!(s.globals.len() >= want, "prefix {n}: {:?}", names(&s));
        assert_ne!(s.verdict, ScanVerdict::Safe);
    }
    let s = run(&data[..80]);
    assert_eq!(
        names(&s),
        ["torch._utils._rebuild_tensor_v2", "torch.FloatStorage"]
    );
    assert_eq!(s.verdict, ScanVerdict::WeightsOnlyIncompatible);

    let s = run(b"\xff\xfe garbage");
    assert!(matches!(s.error, Some(PickleError::UnknownOpcode { .. })));
    assert_eq!(first_torch_error(&s), Some("Unsupported operand 255"));
    let s = run(b"");
    assert!(matches!(s.error, Some(PickleError::MissingStop { .. })));

    // A FRAME whose length lies: torch stops at the opcode byte.
    let s = run(b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N.");
    assert_eq!(first_torch_error(&s), Some("Unsupported operand 149"));
    assert!(matches!(
        s.error,
        Some(PickleError::LengthExceedsInput { .. })
    ));
}

#[test]
fn after_an_error_the_rest_is_still_read_for_globals() {
    // Stack underflow (TUPLE1 on an empty stack), then a GLOBAL and a
    // STACK_GLOBAL that only a stack-free reading can see.
    let data = b"\x80\x04\x85cos\nsystem\n\x8c\x02os\x8c\x06system\x93.";
    let s = run(data);
    assert!(matches!(s.error, Some(PickleError::StackUnderflow { .. })));
    assert_eq!(s.stop, Some(data.len() as u64 - 1));
    assert_eq!(s.globals.len(), 2);
    assert!(s.globals.iter().all(|g| g.after_error));
    assert_eq!(names(&s)[0], "os.system");
    assert!(matches!(
        s.globals[1].reference,
        GlobalRef::Unresolvable {
            module: "unknown",
            ..
        }
    ));
    assert_eq!(s.verdict, ScanVerdict::Dangerous);

    // A limit ends the symbolic run the same way.
    let limits = Limits {
        max_work: 3,
        ..Limits::default()
    };
    let s = scan(b"\x80\x02NNNNcposix\nsystem\n.", 0, &limits);
    assert!(matches!(s.error, Some(PickleError::LimitExceeded { .. })));
    assert_eq!(names(&s), ["posix.system"]);
    assert_eq!(s.verdict, ScanVerdict::Dangerous);
}

#[test]
fn memo_bombs_and_dup_storms_finish_fast() {
    // 1,000 levels (the default depth limit), each a list of 200 references
    // to the level below (200^999 logical elements).
    let bomb = |levels: u32| {
        let mut data = b"\x80\x02]r\x00\x00\x00\x00".to_vec();
        for level in 1u32..levels {
            data.push(b'(');
            for _ in 0..200 {
                data.push(b'j');
                data.extend_from_slice(&(level - 1).to_le_bytes());
            }
            data.push(b'l');
            data.push(b'r');
            data.extend_from_slice(&level.to_le_bytes());
            data.push(b'0');
        }
        data.push(b'j');
        data.extend_from_slice(&(levels - 1).to_le_bytes());
        data.push(b'.');
        data
    };
    let data = bomb(1000);
    let started = Instant::now();
    let s = run(&data);
    assert_eq!(s.error, None);
    assert_eq!(s.verdict, ScanVerdict::WeightsOnlyIncompatible); // LIST is not in torch's subset
    // One level more is over the depth limit, for the scan as for the machine.
    let data = bomb(1001);
    let s = run(&data);
    let e = load(&data).unwrap_err();
    assert!(matches!(
        e,
        PickleError::LimitExceeded {
            limit: netport_pickle::Limit::Depth,
            ..
        }
    ));
    assert_eq!(s.error, Some(e));
    // A DUP storm.
    let mut storm = b"\x80\x02N".to_vec();
    storm.extend(std::iter::repeat_n(b'2', 1_000_000));
    storm.push(b'.');
    let s = run(&storm);
    assert_eq!(s.error, None);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        s.opcodes.iter().find(|(o, _)| *o == Opcode::DUP).unwrap().1,
        1_000_000
    );
}

#[test]
fn stacked_pickles_scan_one_at_a_time() {
    // A legacy file's first two pickles: the magic number and 1001.
    let data =
        b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e\x80\x02\x4d\xe9\x03\x2e";
    let a = run(data);
    assert_eq!(a.end, Some(15));
    assert_eq!(a.verdict, ScanVerdict::Safe);
    let b = scan(&data[15..], 15, &Limits::default());
    assert_eq!((b.start, b.stop, b.end), (15, Some(20), Some(21)));
    assert!(b.weights_only.loads);
}

#[test]
fn cpython_cases_agree_with_the_machine() {
    for &(name, protocol, bytes, _) in cpython::CASES {
        let s = run(bytes);
        let p = load(bytes).unwrap();
        assert_eq!(s.error, None, "{name} {protocol}");
        assert_eq!(s.end, Some(p.end));
        for v in p.arena.values() {
            if let Value::Global { module, name: n } = v {
                assert!(
                    s.globals.iter().any(|g| g.reference
                        == GlobalRef::Named {
                            module: module.to_string(),
                            name: n.to_string()
                        }),
                    "{name} {protocol}: {module}.{n} missing"
                );
            }
        }
        if protocol == 2 {
            let expect_load = !matches!(name, "bytes" | "frozenset" | "namespace");
            assert_eq!(
                s.weights_only.loads, expect_load,
                "{name}: {:?}",
                s.weights_only
            );
        }
        if protocol >= 4 {
            // FRAME (149), or for tiny pickles the first protocol-4 opcode.
            let e = first_torch_error(&s).unwrap();
            assert!(e.starts_with("Unsupported operand "), "{name}: {e}");
        }
    }
    // `b''` in protocol 2 is `__builtin__.bytes()`: torch names it `bytes`.
    let (_, _, bytes, _) = cpython::CASES
        .iter()
        .find(|c| c.0 == "bytes" && c.1 == 2)
        .unwrap();
    assert_eq!(
        first_torch_error(&run(bytes)),
        Some(unsupported_global("bytes").as_str())
    );
}

#[test]
fn protocol_0_and_1_calls_are_dangerous_at_their_offset() {
    for &(name, data, opcode, offset, callable) in legacy::DANGEROUS {
        assert_eq!(
            parses_to_stop(data, &Limits::default()),
            Ok(data.len() as u64),
            "{name}"
        );
        let s = run(data);
        assert_eq!(s.error, None, "{name}");
        assert_eq!(s.end, Some(data.len() as u64), "{name}");
        assert_eq!(s.verdict, ScanVerdict::Dangerous, "{name}");
        assert!(!s.weights_only.loads, "{name}");
        let g = &s.globals[0];
        assert_eq!((g.opcode.name(), g.offset), (opcode, offset), "{name}");
        assert_eq!(g.class, GlobalClass::Dangerous, "{name}");
        assert!(g.uses.called, "{name}: {:?}", g.uses);
        match &g.reference {
            GlobalRef::Named { module, name: n } => {
                assert_eq!(format!("{module}.{n}"), callable, "{name}")
            }
            GlobalRef::Extension { code } => {
                let at = offset as usize + 1;
                let want = match opcode {
                    "EXT1" => u32::from(data[at]),
                    "EXT2" => u32::from(u16::from_le_bytes([data[at], data[at + 1]])),
                    _ => u32::from_le_bytes(data[at..at + 4].try_into().unwrap()),
                };
                assert_eq!(*code, want, "{name}");
                assert_eq!(g.full_name(), format!("<extension code {want}>"));
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // The issue's 19 bytes: torch's weights_only stops at STRING (83).
    let (_, issue14, ..) = legacy::DANGEROUS[0];
    assert_eq!(issue14.len(), 19);
    assert_eq!(
        first_torch_error(&run(issue14)),
        Some("Unsupported operand 83")
    );
}

#[test]
fn protocol_0_and_1_data_parses_without_globals() {
    for &(name, data) in legacy::BENIGN {
        assert_eq!(
            parses_to_stop(data, &Limits::default()),
            Ok(data.len() as u64),
            "{name}"
        );
        let s = run(data);
        assert_eq!((s.error.as_ref(), s.globals.len()), (None, 0), "{name}");
        // Protocol 0/1 opcodes outside torch's subset (DICT, INT, ...).
        assert_eq!(s.verdict, ScanVerdict::WeightsOnlyIncompatible, "{name}");
    }
}

#[test]
fn a_protocol_0_pickle_first_in_a_legacy_stack() {
    let (_, first, ..) = legacy::DANGEROUS[1];
    let mut data = first.to_vec();
    data.extend_from_slice(legacy::LEGACY_MAGIC);
    let end = parses_to_stop(&data, &Limits::default()).unwrap();
    assert_eq!(end, first.len() as u64);
    assert_eq!(
        parses_to_stop(&data[end as usize..], &Limits::default()),
        Ok(legacy::LEGACY_MAGIC.len() as u64)
    );
    let s = run(&data);
    assert_eq!(s.end, Some(end));
    assert_eq!(names(&s), ["posix.system"]);
}

#[test]
fn text_is_not_a_pickle() {
    let cases: &[(&[u8], u64)] = &[
        (b"# README\n", 0),
        (
            b"version https://git-lfs.github.com/spec/v1\noid sha256:00\n",
            0,
        ),
        (b"<!DOCTYPE html><html>", 0),
        (b"{\"a\": 1}", 0),
        (b"hello world\n", 0), // BINGET 101: no such memo entry
        (b"", 0),
        (b"I12\n", 4), // one INT, then the input ends before STOP
    ];
    for &(text, offset) in cases {
        let e = parses_to_stop(text, &Limits::default()).unwrap_err();
        assert_eq!(e.at().offset, offset, "{text:?}: {e}");
        assert_eq!(Some(e), run(text).error, "{text:?}");
    }
    // Without STOP it is not a pickle, though CPython has already called
    // os.system by then: the scan still names the call.
    let (_, issue14, ..) = legacy::DANGEROUS[0];
    let cut = &issue14[..issue14.len() - 1];
    assert!(matches!(
        parses_to_stop(cut, &Limits::default()),
        Err(PickleError::MissingStop { .. })
    ));
    let s = run(cut);
    assert_eq!(names(&s), ["os.system"]);
    assert!(s.globals[0].uses.called);
    assert_eq!(s.verdict, ScanVerdict::Dangerous);
}
