//! Interop: the real `torch.load` (torch 2.15 in the peer venv) loads what
//! `netport_torch::write` and `netport_torch::relocate` produce, and every
//! tensor is `torch.equal` to the source loaded with `map_location='cpu'`.
//! Run by `cargo xtask ci` (NETPORT_PYTHON = the venv's interpreter).

use std::path::{Path, PathBuf};

use netport_torch::relocate::{LocationMap, RelocateOptions, relocate_file};
use netport_torch::write::{LegacyCheckpoint, WriteOptions, ZipCheckpoint};
use netport_torch::{Checkpoint, Format};
use serde_json::{Value as Json, json};

use crate::peer::run_python;

fn torch_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/torch")
}

/// Loads each case's output with the given modes and compares with the
/// source; prints one JSON verdict per case.
const SNIPPET: &str = r#"
import json, sys, torch
cases = json.load(open(sys.argv[1]))

def flat(o, p, out, seen):
    if isinstance(o, torch.Tensor):
        out[p] = o
        return out
    if id(o) in seen:
        return out
    seen.add(id(o))
    if isinstance(o, dict):
        for k, v in o.items():
            flat(v, f"{p}.{k}" if p else str(k), out, seen)
    elif isinstance(o, (list, tuple)):
        for i, v in enumerate(o):
            flat(v, f"{p}.{i}" if p else str(i), out, seen)
    elif hasattr(o, '__dict__') and not isinstance(o, type):
        flat(vars(o), p, out, seen)
    else:
        out[p] = repr(o)
    return out

def load(path, mode):
    try:
        if mode == 'jit':
            m = torch.jit.load(path)
            torch.manual_seed(0)
            obj = {'state_dict': m.state_dict(), 'forward': m(torch.randn(2, 3, 32, 32))}
        elif mode == 'reference':
            obj = torch.load(path, map_location='cpu', weights_only=False)
        elif mode == 'default':
            obj = torch.load(path)
        elif mode == 'mmap':
            obj = torch.load(path, mmap=True)
        elif mode == 'trusted':
            obj = torch.load(path, weights_only=False)
        elif mode == 'trusted_mmap':
            obj = torch.load(path, mmap=True, weights_only=False)
        return {'ok': True, 'flat': flat(obj, '', {}, set())}
    except Exception as e:
        return {'ok': False, 'error': f"{type(e).__name__}: {e}".splitlines()[0]}

def tensor_equal(x, y):
    if x.dtype != y.dtype or x.shape != y.shape or x.stride() != y.stride() \
            or x.storage_offset() != y.storage_offset() or x.device != y.device:
        return False
    # torch.equal first; NaNs (never equal) and dtypes without an equal
    # kernel fall back to the storage bytes.
    try:
        if bool(torch.equal(x, y)):
            return True
    except Exception:
        pass
    try:
        if x.is_quantized and bool(torch.equal(x.int_repr(), y.int_repr())):
            return True
    except Exception:
        pass
    return bytes(x.untyped_storage()) == bytes(y.untyped_storage())

def compare(a, b):
    if a.keys() != b.keys():
        return f"paths differ: {sorted(set(a) ^ set(b))[:5]}"
    n = 0
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, torch.Tensor) != isinstance(y, torch.Tensor):
            return f"{k}: tensor vs value"
        if isinstance(x, torch.Tensor):
            n += 1
            if not tensor_equal(x, y):
                return f"{k}: tensors differ"
        elif x != y:
            return f"{k}: {x} != {y}"
    return n

verdict = {}
for c in cases:
    ref = load(c['src'], c.get('src_mode', 'reference'))
    src_default = load(c['src'], 'default') if c.get('src_mode', 'reference') == 'reference' else None
    res = {'ok': True, 'modes': {}}
    if not ref['ok']:
        res = {'ok': False, 'why': 'reference failed: ' + ref['error']}
        verdict[c['name']] = res
        continue
    for mode in c['modes']:
        r = load(c['out'], mode)
        if c.get('expect_error'):
            ok = (not r['ok']) and c['expect_error'] in r['error']
            res['modes'][mode] = r.get('error', 'loaded')
        elif not r['ok']:
            # weights_only refusals are fine when torch refuses the source too.
            same_refusal = mode in ('default', 'mmap') and src_default is not None \
                and not src_default['ok'] \
                and src_default['error'].split('.')[0] == r['error'].split('.')[0]
            ok = same_refusal
            res['modes'][mode] = ('refused like the source: ' if ok else 'FAILED: ') + r['error']
        else:
            cmp = compare(ref['flat'], r['flat'])
            ok = isinstance(cmp, int)
            res['modes'][mode] = f"{cmp} tensors equal" if ok else cmp
        res['ok'] = res['ok'] and ok
    verdict[c['name']] = res
print(json.dumps(verdict))
"#;

fn run_cases(cases: &[Json], dir: &Path) {
    let cases_path = dir.join("cases.json");
    std::fs::write(&cases_path, serde_json::to_vec(cases).unwrap()).unwrap();
    let stdout = run_python("torch.load of the written files", SNIPPET, [&cases_path]);
    let verdict: Json = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("bad verdict ({e}): {stdout}"));
    let mut failed = Vec::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let v = &verdict[name];
        eprintln!("{name}: {v}");
        if v["ok"] != Json::Bool(true) {
            failed.push(format!("{name}: {v}"));
        }
    }
    assert!(failed.is_empty(), "torch disagrees:\n{}", failed.join("\n"));
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn torch_loads_written_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    for name in [
        "dtypes.pt",
        "protocol2.pt",
        "protocol4.pt",
        "legacy.pt",
        "training.pt",
        "dataparallel.pt",
        "compiled.pt",
        "cuda_tagged_reference.pt",
        "big_endian.pt",
    ] {
        let src_path = torch_dir().join(name);
        let src = Checkpoint::open(&src_path).unwrap();
        let stem = name.split('.').next().unwrap();
        let out = dir.path().join(format!("{stem}_zip.pt"));
        let zc = ZipCheckpoint::from_checkpoint(&src).unwrap();
        netport_torch::write::write_zip_file(&out, &zc, &WriteOptions::default()).unwrap();
        cases.push(json!({
            "name": format!("{name} -> zip"), "src": s(&src_path), "out": s(&out),
            "modes": ["default", "mmap", "trusted", "trusted_mmap"],
        }));
        let untyped = src
            .storages()
            .iter()
            .any(|s| s.storage_type.ends_with("UntypedStorage"));
        if src.info().byteorder != Some(netport_tensor::ByteOrder::Big) && !untyped {
            let out = dir.path().join(format!("{stem}_legacy.pt"));
            let lc = LegacyCheckpoint::from_checkpoint(&src).unwrap();
            netport_torch::write::write_legacy_file(&out, &lc, &WriteOptions::default()).unwrap();
            // Legacy files cannot be mmapped (torch refuses).
            cases.push(json!({
                "name": format!("{name} -> legacy"), "src": s(&src_path), "out": s(&out),
                "modes": ["default", "trusted"],
            }));
        }
    }
    run_cases(&cases, dir.path());
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn torch_loads_relocated_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let to = |m: LocationMap| RelocateOptions {
        map: m,
        all_devices: false,
        write: WriteOptions::default(),
    };
    let cuda_error = "Attempting to deserialize object on a CUDA device";
    let mut cases = Vec::new();
    for name in ["cuda_tagged.pt", "cuda_tagged_legacy.pt"] {
        let src = torch_dir().join(name);
        let legacy = Checkpoint::open(&src).unwrap().format() == Format::Legacy;
        cases.push(json!({
            "name": format!("{name} before map-location"), "src": s(&src), "out": s(&src),
            "modes": ["default"], "expect_error": cuda_error,
        }));
        let out = dir.path().join(format!("cpu_{name}"));
        relocate_file(&src, &out, &to(LocationMap::to("cpu"))).unwrap();
        let modes: &[&str] = if legacy {
            &["default", "trusted"]
        } else {
            &["default", "mmap", "trusted_mmap"]
        };
        cases.push(json!({
            "name": format!("{name} -> cpu"), "src": s(&src), "out": s(&out), "modes": modes,
        }));
        // cuda:0 -> cuda:1 -> cuda:0 -> cpu still loads the same.
        let a = dir.path().join(format!("c1_{name}"));
        let b = dir.path().join(format!("c0_{name}"));
        let c = dir.path().join(format!("c_{name}"));
        relocate_file(
            &src,
            &a,
            &to(LocationMap::parse_pairs(&["cuda:0=cuda:1"]).unwrap()),
        )
        .unwrap();
        cases.push(json!({
            "name": format!("{name} -> cuda:1"), "src": s(&src), "out": s(&a),
            "modes": ["default"], "expect_error": cuda_error,
        }));
        relocate_file(
            &a,
            &b,
            &to(LocationMap::parse_pairs(&["cuda:1=cuda:0"]).unwrap()),
        )
        .unwrap();
        relocate_file(&b, &c, &to(LocationMap::to("cpu"))).unwrap();
        cases.push(json!({
            "name": format!("{name} -> cuda:1 -> cuda:0 -> cpu"), "src": s(&src), "out": s(&c),
            "modes": modes,
        }));
    }
    // A protocol-4 file (FRAMEs recomputed) and TorchScript archives.
    let p4 = torch_dir().join("protocol4.pt");
    let a = dir.path().join("p4_cuda.pt");
    let b = dir.path().join("p4_cpu.pt");
    relocate_file(&p4, &a, &to(LocationMap::to("cuda:0"))).unwrap();
    relocate_file(&a, &b, &to(LocationMap::to("cpu"))).unwrap();
    cases.push(json!({
        "name": "protocol4.pt -> cuda:0", "src": s(&p4), "out": s(&a),
        "modes": ["trusted"], "expect_error": cuda_error,
    }));
    cases.push(json!({
        "name": "protocol4.pt -> cuda:0 -> cpu", "src": s(&p4), "out": s(&b),
        "modes": ["trusted", "trusted_mmap"],
    }));
    for name in ["torchscript.pt", "torchscript_frozen.pt"] {
        let src = torch_dir().join(name);
        let a = dir.path().join(format!("cuda_{name}"));
        let b = dir.path().join(format!("cpu_{name}"));
        relocate_file(&src, &a, &to(LocationMap::to("cuda:0"))).unwrap();
        relocate_file(&a, &b, &to(LocationMap::to("cpu"))).unwrap();
        cases.push(json!({
            "name": format!("{name} -> cuda:0 (jit.load)"), "src": s(&src), "src_mode": "jit",
            "out": s(&a), "modes": ["jit"], "expect_error": "NVIDIA",
        }));
        cases.push(json!({
            "name": format!("{name} -> cuda:0 -> cpu (jit.load)"), "src": s(&src),
            "src_mode": "jit", "out": s(&b), "modes": ["jit"],
        }));
    }
    run_cases(&cases, dir.path());
}
