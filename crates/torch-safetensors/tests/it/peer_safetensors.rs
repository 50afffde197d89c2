//! Interop with the real Python `safetensors` and torch (`$NETPORT_PYTHON`,
//! set by `cargo xtask ci`): every safetensors file we write loads with
//! `safetensors.torch.load_file` and each tensor `torch.equal`s the source
//! loaded with `torch.load(..., map_location='cpu')`; our shared-tensor
//! aliases are the ones `safetensors.torch._remove_duplicate_names` picks;
//! files written by Python's `save_file`/`save_model` convert to `.pt` files
//! that `torch.load(weights_only=True)` loads equal, with tied weights
//! sharing storage again.

use std::path::{Path, PathBuf};
use std::process::Command;

use netport_safetensors::SafetensorsFile;
use netport_torch::{Checkpoint, Edits, TensorKind};
use netport_torch_safetensors::{checkpoint_to_safetensors, safetensors_to_checkpoint};
use serde_json::{Value, json};

fn python() -> PathBuf {
    match std::env::var_os("NETPORT_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "NETPORT_PYTHON is not set: this interop test needs the Python peers; run `cargo xtask ci` \
             or set NETPORT_PYTHON to the interpreter of `cargo xtask venv`"
        ),
    }
}

fn torch_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/torch")
}

fn run_python(script: &str, arg: &Path) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(arg)
        .output()
        .expect("run NETPORT_PYTHON");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Checks every case of the manifest: `{pt, sf, weights_only, dtype,
/// names: {output name: source path}, aliases: {removed: kept}, skip}`.
const CHECK: &str = r#"
import json, sys, argparse, torch
from safetensors.torch import load_file, _remove_duplicate_names
from safetensors import safe_open

def flatten(obj, prefix, out, seen):
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
        return
    if id(obj) in seen:
        return
    seen.add(id(obj))
    join = lambda k: f"{prefix}.{k}" if prefix != "" else str(k)
    if isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, join(k), out, seen)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, join(i), out, seen)
    elif isinstance(obj, argparse.Namespace):
        for k, v in vars(obj).items():
            flatten(v, join(k), out, seen)

def same(a, b):
    # torch.equal, or bit-identical (NaNs in the float fixtures).
    raw = lambda t: bytes(t.contiguous().clone().untyped_storage())
    return torch.equal(a, b) or (a.dtype == b.dtype and a.shape == b.shape and raw(a) == raw(b))

cases = json.load(open(sys.argv[1]))
checked = 0
for c in cases:
    src = {}
    flatten(torch.load(c["pt"], map_location="cpu", weights_only=c["weights_only"]), "", src, set())
    sf = load_file(c["sf"])
    with safe_open(c["sf"], "pt") as f:
        meta = f.metadata()
    assert meta.get("format") == "pt", (c["sf"], meta)
    dtype = getattr(torch, c["dtype"]) if c["dtype"] else None
    def expect(path):
        t = src[path].resolve_conj().resolve_neg()
        if dtype is not None and t.dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
            t = t.to(dtype)
        return t
    for name, path in c["names"].items():
        if path in c["skip"]:
            continue
        got, want = sf[name], expect(path)
        assert got.dtype == want.dtype and got.shape == want.shape, (c["sf"], name, got.dtype, want.dtype, got.shape, want.shape)
        assert same(got, want), (c["sf"], name)
        checked += 1
    for removed, kept in c["aliases"].items():
        assert removed not in sf and meta.get(removed) == kept, (c["sf"], removed, kept, meta)
        assert same(sf[kept], expect(c["alias_paths"][removed])), (c["sf"], removed)
        checked += 1
    if c.get("hf_aliases"):
        # What safetensors' own save_model would drop and record.
        paths = list(c["names"].values()) + list(c["alias_paths"].values())
        state = {p: src[p] for p in paths}
        hf = {r: k for k, rs in _remove_duplicate_names(state).items() for r in rs}
        assert hf == c["aliases"], (hf, c["aliases"])
print("checked", checked)
"#;

/// Tensors safetensors cannot hold (left out with --exclude).
fn unwritable(ckpt: &Checkpoint) -> Option<regex::Regex> {
    let names: Vec<String> = ckpt
        .tensors()
        .iter()
        .filter(|t| {
            t.dtype.safetensors().is_none()
                || matches!(
                    t.kind,
                    TensorKind::Quantized(_) | TensorKind::Meta | TensorKind::Unsupported { .. }
                )
        })
        .map(|t| regex::escape(&t.path))
        .collect();
    (!names.is_empty()).then(|| Edits::regex(&format!("^({})$", names.join("|"))).unwrap())
}

fn case(pt: &Path, sf: &Path, edits: &Edits, weights_only: bool, skip: &[&str]) -> Value {
    let ckpt = Checkpoint::open(pt).unwrap();
    let report = checkpoint_to_safetensors(&ckpt, sf, edits)
        .unwrap_or_else(|e| panic!("{}: {e}", pt.display()));
    let mut names = serde_json::Map::new();
    let mut alias_paths = serde_json::Map::new();
    for t in ckpt.tensors() {
        if let Some(n) = edits.rename(&t.path) {
            if report.aliases.iter().any(|(a, _)| *a == n) {
                alias_paths.insert(n, t.path.clone().into());
            } else {
                names.insert(n, t.path.clone().into());
            }
        }
    }
    let aliases: serde_json::Map<String, Value> = report
        .aliases
        .iter()
        .map(|(a, k)| (a.clone(), k.clone().into()))
        .collect();
    json!({
        "pt": pt, "sf": sf, "weights_only": weights_only,
        "dtype": edits.dtype.map(|d| d.torch_name()),
        "names": names, "aliases": aliases, "alias_paths": alias_paths,
        "skip": skip, "hf_aliases": false,
    })
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn python_loads_every_output_equal_to_the_source() {
    let _ = python();
    let tmp = tempfile::tempdir().unwrap();
    let d = torch_dir();
    let mut cases = Vec::new();
    // (fixture, weights_only, tensors torch itself loads wrongly)
    let fixtures: &[(&str, bool, &[&str])] = &[
        ("protocol2.pt", true, &[]),
        ("protocol4.pt", false, &[]),
        ("legacy.pt", true, &[]),
        ("dtypes.pt", true, &[]),
        ("training.pt", false, &[]),
        ("dataparallel.pt", true, &[]),
        ("compiled.pt", true, &[]),
        ("cuda_tagged.pt", true, &[]),
        ("cuda_tagged_legacy.pt", true, &[]),
        // torch 2.15 does not byte-swap uint16 of big-endian files
        // (testdata/README.md); netport does.
        ("big_endian.pt", true, &["u16"]),
    ];
    for (name, weights_only, skip) in fixtures {
        let pt = d.join(name);
        let ckpt = Checkpoint::open(&pt).unwrap();
        let edits = Edits {
            exclude: unwritable(&ckpt),
            ..Edits::default()
        };
        let sf = tmp.path().join(format!("{name}.safetensors"));
        cases.push(case(&pt, &sf, &edits, *weights_only, skip));
    }
    // Edits: --key model, --strip-prefix, --dtype bf16 / f16.
    let model = Edits {
        key: Some("model".into()),
        ..Edits::default()
    };
    cases.push(case(
        &d.join("training.pt"),
        &tmp.path().join("model.safetensors"),
        &model,
        false,
        &[],
    ));
    let strip = Edits {
        strip_prefixes: vec!["module.".into(), "_orig_mod.".into()],
        ..Edits::default()
    };
    cases.push(case(
        &d.join("compiled.pt"),
        &tmp.path().join("c.safetensors"),
        &strip,
        true,
        &[],
    ));
    for dt in [
        netport_tensor::DType::BFloat16,
        netport_tensor::DType::Float16,
    ] {
        let e = Edits {
            dtype: Some(dt),
            ..Edits::default()
        };
        let sf = tmp
            .path()
            .join(format!("p2.{}.safetensors", dt.torch_name()));
        cases.push(case(&d.join("protocol2.pt"), &sf, &e, true, &[]));
    }

    // Tied weights made by torch: identical views become aliases, as
    // safetensors' own _remove_duplicate_names chooses them.
    let tied = tmp.path().join("tied.pt");
    run_python(
        r#"
import sys, torch
torch.manual_seed(0)
w = torch.randn(4, 3)
big = torch.arange(12.0)
torch.save({"encoder.embed.weight": w, "lm_head.weight": w, "decoder.embed.weight": w,
            "bias": torch.zeros(3), "big": big, "big_view": big[2:5], "big_t": big.view(3, 4).t()},
           sys.argv[1])
"#,
        &tied,
    );
    let mut c = case(
        &tied,
        &tmp.path().join("tied.safetensors"),
        &Edits::default(),
        true,
        &[],
    );
    assert_eq!(
        c["aliases"],
        json!({"encoder.embed.weight": "decoder.embed.weight", "lm_head.weight": "decoder.embed.weight"})
    );
    cases.push(c.clone());
    // Only the identical views: there HF's choice must equal ours.
    let only_tied = Edits {
        filter: Some(Edits::regex("embed|lm_head").unwrap()),
        ..Edits::default()
    };
    c = case(
        &tied,
        &tmp.path().join("tied2.safetensors"),
        &only_tied,
        true,
        &[],
    );
    c["hf_aliases"] = json!(true);
    cases.push(c);

    let manifest = tmp.path().join("cases.json");
    std::fs::write(&manifest, serde_json::to_vec(&cases).unwrap()).unwrap();
    let out = run_python(CHECK, &manifest);
    let n: usize = out
        .trim()
        .strip_prefix("checked ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 150, "{out}");
}

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn python_safetensors_convert_to_loadable_checkpoints() {
    let _ = python();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run_python(
        r#"
import sys, os, torch
from safetensors.torch import save_file, save_model
d = sys.argv[1]
torch.manual_seed(0)
t = {
    "f64": torch.randn(2, 3, dtype=torch.float64), "f32": torch.randn(5), "f16": torch.randn(4).half(),
    "bf16": torch.randn(4).bfloat16(), "f8": torch.randn(5).to(torch.float8_e4m3fn),
    "f8e5": torch.randn(3).to(torch.float8_e5m2),
    "i8": torch.tensor([-1, 2], dtype=torch.int8), "i16": torch.tensor([-300], dtype=torch.int16),
    "i32": torch.tensor([1 << 30]), "i64": torch.tensor([-(1 << 40)]), "u8": torch.tensor([255], dtype=torch.uint8),
    "u16": torch.tensor([65535], dtype=torch.uint16), "u32": torch.tensor([1 << 31], dtype=torch.uint32),
    "u64": torch.tensor([1 << 63], dtype=torch.uint64), "bool": torch.tensor([True, False]),
    "c64": torch.randn(2, dtype=torch.complex64), "scalar": torch.tensor(3.5), "empty": torch.zeros(0, 3),
}
save_file(t, os.path.join(d, "py.safetensors"), metadata={"format": "pt"})
class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(5, 3)
        self.head = torch.nn.Linear(3, 5, bias=False)
        self.head.weight = self.emb.weight
m = M()
save_model(m, os.path.join(d, "tied.safetensors"))
"#,
        dir,
    );
    let mut cases = Vec::new();
    for name in ["py", "tied"] {
        let sf_path = dir.join(format!("{name}.safetensors"));
        let sf = SafetensorsFile::open(&sf_path).unwrap();
        let pt = dir.join(format!("{name}.pt"));
        safetensors_to_checkpoint(&sf, Some(&sf_path), &pt, &Edits::default()).unwrap();
        cases.push(json!({"sf": sf_path, "pt": pt}));
    }
    let manifest = dir.join("cases.json");
    std::fs::write(&manifest, serde_json::to_vec(&cases).unwrap()).unwrap();
    let out = run_python(
        r#"
import json, sys, torch
from safetensors.torch import load_file
from safetensors import safe_open
n = 0
for c in json.load(open(sys.argv[1])):
    sf = load_file(c["sf"])
    with safe_open(c["sf"], "pt") as f:
        meta = f.metadata() or {}
    pt = torch.load(c["pt"], map_location="cpu", weights_only=True)
    for k, v in sf.items():
        assert pt[k].dtype == v.dtype and torch.equal(pt[k], v), k
        n += 1
    for removed, kept in meta.items():
        if kept in sf and removed not in sf:
            assert torch.equal(pt[removed], sf[kept]), removed
            assert pt[removed].untyped_storage().data_ptr() == pt[kept].untyped_storage().data_ptr(), "re-tied"
            n += 1
print("checked", n)
"#,
        &manifest,
    );
    // 18 tensors of py.safetensors, emb.weight and its alias head.weight.
    assert_eq!(out.trim(), "checked 20", "{out}");
}
