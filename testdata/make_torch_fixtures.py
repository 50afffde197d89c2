"""(Re)write netport's committed PyTorch checkpoint fixtures (testdata/torch/) with real torch.

Run through `cargo xtask fixtures` (it runs this in the peer venv from
testdata/peers/requirements.txt, with the working directory at the repo root):

    python testdata/make_torch_fixtures.py

Every file is written by real torch (torch.save, torch.jit.save, torch.export.save,
torch._C.PyTorchFileWriter) except the hostile inputs under malicious/ and broken/,
which are hand-written pickle opcodes or cut/re-packed copies of real files. Each
loadable fixture gets a `<name>.expected.json` with what torch reads from it
(see testdata/README.md for the layout). Every output is deterministic: fixed
seeds, one intra-op thread, no absolute paths in TorchScript/export debug
info, and the pointer-valued storage keys of the legacy format rewritten to
fixed strings (checked: torch loads the rewritten file to the same values).

The malicious pickles are never unpickled by this script's own process. Their
torch.load behaviour is probed in child processes: with `weights_only=True`
(torch's weights_only unpickler refuses a non-allowlisted GLOBAL before calling
anything; the probe fails if the marker ever shows up there), and with
`weights_only=False` (and `numpy.load(allow_pickle=True)` for .npy/.npz), which
runs the payloads: they are harmless (`echo NETPORT_PAYLOAD_RAN`), and
`payload_ran` records whether the marker was printed.
"""

import argparse
import collections
import copy
import hashlib
import io
import json
import linecache
import os
import pickle
import pickletools
import re
import struct
import subprocess
import sys
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

TESTDATA = Path(__file__).resolve().parent
OUT = TESTDATA / "torch"
MALICIOUS = OUT / "malicious"
BROKEN = OUT / "broken"
SEED = 1234
MAX_TOTAL_BYTES = 1_500_000
MARKER = "NETPORT_PAYLOAD_RAN"
PAYLOAD_CMD = f"echo {MARKER}"

written = []


def write_bytes(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    written.append(path)


def write_text(path, text):
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def rel(path):
    return str(path.relative_to(OUT))


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def summarize_error(type_name, text):
    """An exception as recorded in the JSON: its type, the full message (ANSI
    codes and this machine's paths stripped), its first line, and for
    weights_only refusals (whose first line is a generic sentence) the line
    that names the reason."""
    text = ANSI.sub("", text).replace(str(TESTDATA), "<testdata>").replace(sys.prefix, "<venv>").strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    out = {"error_type": type_name, "error_message": text, "error_first_line": lines[0] if lines else ""}
    if lines and lines[0].startswith("Weights only load failed"):
        detail = None
        for i, ln in enumerate(lines):
            if "WeightsUnpickler error:" in ln:
                rest = ln.split("WeightsUnpickler error:", 1)[1].strip()
                detail = rest or (lines[i + 1] if i + 1 < len(lines) else "")
                break
        if detail is None:
            detail = next((ln for ln in lines[1:] if not ln.startswith("Check the documentation")), "")
        out["error_detail"] = detail
    return out


def clean_error(e):
    return summarize_error(type(e).__name__, str(e))


def torch_load_result(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.load(path, **kwargs)
            return {"ok": True}
        except Exception as e:  # noqa: BLE001 - we record whatever torch raises
            return dict(ok=False, **clean_error(e))


# --- the models ---------------------------------------------------------------------

def tiny_cnn():
    """The tiny CNN of testdata/make_fixtures.py (same seed, same weights as
    onnx/tiny_cnn.onnx)."""
    sys.path.insert(0, str(TESTDATA))
    import make_fixtures  # noqa: E402 - only its model; its main() is not run

    model, _ = make_fixtures.tiny_cnn()
    return model


# TorchScript and torch.export record source file names (TorchScript in
# code/*.debug_pkl, export in node stack traces). Compiling torch.nn's own
# modules would put the venv's absolute path into the fixtures, so the scripted
# and exported model is written against plain aten ops here, with its source
# registered in linecache under a fixed relative name. Parameter and buffer
# names are those of tiny_cnn's state_dict, and the weights are copied from it.
TS_FILENAME = "netport_tiny_cnn.py"
TS_SOURCE = '''\
import torch


class Conv(torch.nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(cout, cin, 3, 3))
        self.bias = torch.nn.Parameter(torch.zeros(cout))

    def forward(self, x):
        return torch.conv2d(x, self.weight, self.bias, [1, 1], [1, 1])


class BatchNorm(torch.nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))
        self.bias = torch.nn.Parameter(torch.zeros(n))
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        return torch.batch_norm(x, self.weight, self.bias, self.running_mean,
                                self.running_var, False, 0.1, 1e-5, False)


class Linear(torch.nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(cout, cin))
        self.bias = torch.nn.Parameter(torch.zeros(cout))

    def forward(self, x):
        return torch.addmm(self.bias, x, self.weight.t())


class TinyCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = Conv(3, 8)
        self.bn = BatchNorm(8)
        self.fc = Linear(8 * 8 * 8, 2)

    def forward(self, x):
        y = torch.max_pool2d(torch.relu(self.bn(self.conv(x))), [4, 4])
        return self.fc(torch.flatten(y, 1))

'''


def ts_module():
    name = "netport_tiny_cnn"
    if name not in sys.modules:
        linecache.cache[TS_FILENAME] = (len(TS_SOURCE), None, TS_SOURCE.splitlines(True), TS_FILENAME)
        mod = types.ModuleType(name)
        mod.__file__ = TS_FILENAME
        sys.modules[name] = mod
        exec(compile(TS_SOURCE, TS_FILENAME, "exec"), mod.__dict__)
    return sys.modules[name]


def ts_tiny_cnn(model):
    m = ts_module().TinyCnn()
    m.load_state_dict(model.state_dict())
    return m.eval()


# --- reading back what torch wrote -----------------------------------------------------

# Storage info as written in the file, keyed by the loaded StorageImpl pointer.
_pid_log = {}


def _storage_type_name(stype):
    if stype is torch.UntypedStorage or getattr(stype, "__name__", "") == "UntypedStorage":
        return "torch.storage.UntypedStorage"
    dtype = stype.dtype if hasattr(stype, "dtype") else stype._dtype
    return "torch." + torch.storage._dtype_to_storage_type_map()[dtype]


class _RecordingUnpickler(pickle._Unpickler):
    """The pure-Python unpickler, wrapping the persistent_load torch installs so
    every storage's persistent id (key, location tag, numel) is recorded."""

    def __setattr__(self, name, value):
        if name == "persistent_load" and not getattr(value, "_netport", False):
            inner = value

            def wrapped(pid):
                storage = inner(pid)
                untyped = storage._untyped_storage if hasattr(storage, "_untyped_storage") else storage
                _pid_log[untyped._cdata] = {
                    "storage_key": str(pid[2]), "device": str(pid[3]), "storage_numel": int(pid[4]),
                    "storage_type": _storage_type_name(pid[1]), "storage_nbytes": untyped.nbytes(),
                }
                return storage

            wrapped._netport = True
            value = wrapped
        super().__setattr__(name, value)


_recording_pickle = types.ModuleType("netport_recording_pickle")
_recording_pickle.Unpickler = _RecordingUnpickler
_recording_pickle.load = pickle.load
_recording_pickle.loads = pickle.loads


def load_recording(path, **kwargs):
    """torch.load (weights_only=False: only ever used on our own benign files)
    with the persistent ids recorded."""
    _pid_log.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, weights_only=False, pickle_module=_recording_pickle, **kwargs)


def walk(obj, path, out):
    """Tensors in a defined order: dict keys by str(key) in insertion order,
    list/tuple by index, argparse.Namespace by attribute, joined with '.'."""
    def join(k):
        return f"{path}.{k}" if path else str(k)

    if isinstance(obj, torch.Tensor):
        out.append((path, obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            walk(v, join(k), out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            walk(v, join(i), out)
    elif isinstance(obj, argparse.Namespace):
        for k, v in vars(obj).items():
            walk(v, join(k), out)
    return out


def tensor_bytes(t):
    """The bytes the sha256 covers. Plain tensors: logical elements in row-major
    order (conj/neg bits resolved), little-endian, `t.contiguous().view(torch.uint8)`.
    Quantized: `t.int_repr()` the same way (quint4x2: int_repr is already the
    packed bytes, 2 values per byte, flattened)."""
    assert sys.byteorder == "little"
    if t.is_quantized:
        data = t.int_repr().contiguous()
    else:
        data = t.detach().resolve_conj().resolve_neg().contiguous()
    return data.reshape(-1).view(torch.uint8).numpy().tobytes(), ("int_repr" if t.is_quantized else "contiguous")


def tensor_entry(path, t, info=None, kind=None):
    if kind is None:
        kind = "parameter" if isinstance(t, torch.nn.Parameter) else "qtensor" if t.is_quantized else "tensor"
    if info is None:
        info = _pid_log.get(t.untyped_storage()._cdata)
        assert info is not None, f"no persistent id recorded for {path!r}"
    data, how = tensor_bytes(t)
    e = {
        "path": path, "kind": kind, "dtype": str(t.dtype).removeprefix("torch."),
        "shape": list(t.shape), "stride": list(t.stride()), "storage_offset": t.storage_offset(),
        "requires_grad": t.requires_grad, "sha256": sha256(data), "sha256_of": how, "nbytes": len(data),
        "storage_nbytes": t.untyped_storage().nbytes(),
    }
    e.update(info)
    if not t.is_quantized and (t.is_conj() or t.is_neg()):
        e["conj"] = t.is_conj()
        e["neg"] = t.is_neg()
    if t.is_quantized:
        qs = t.qscheme()
        e["qscheme"] = str(qs).removeprefix("torch.")
        if qs in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            e["q_scale"] = t.q_scale()
            e["q_zero_point"] = t.q_zero_point()
        else:
            e["q_per_channel_scales"] = t.q_per_channel_scales().tolist()
            e["q_per_channel_zero_points"] = t.q_per_channel_zero_points().tolist()
            e["q_per_channel_axis"] = t.q_per_channel_axis()
    return e


def zip_summary(data):
    z = zipfile.ZipFile(io.BytesIO(data))
    names = [i.filename for i in z.infolist()]
    archive = names[0].split("/")[0]

    def record(name):
        full = f"{archive}/{name}"
        return z.read(full).decode("ascii") if full in names else None

    s = {
        "archive_name": archive,
        "entries": names,
        "records": {r: record(r) for r in ("version", ".data/version", "byteorder", ".format_version",
                                           ".storage_alignment", ".data/serialization_id")},
    }
    pkl = f"{archive}/data.pkl"
    if pkl in names:
        head = z.read(pkl)[:2]
        s["pickle_protocol"] = head[1] if head[0] == 0x80 else 0
    return s


def legacy_layout(data):
    """Offsets of the five pickles of the legacy format and its storage keys."""
    f = io.BytesIO(data)
    ends, protos = [], []
    for _ in range(5):
        start = f.tell()
        for op, arg, _pos in pickletools.genops(f):
            if op.name == "PROTO" and _pos == start:
                protos.append(arg)
        ends.append(f.tell())
    keys = pickle.loads(data[ends[3]:ends[4]])  # a list of str: safe
    sys_info = pickle.loads(data[ends[1]:ends[2]])  # a dict of ints/bools: safe
    return {"pickle_ends": ends, "pickle_protocols": protos, "storage_keys": keys, "sys_info": sys_info}


def expected_for(path, obj_loaded=None, tensors=None, extra=None, load_kwargs=None):
    data = path.read_bytes()
    e = {"file": rel(path), "size": len(data), "sha256": sha256(data), "torch_version": torch.__version__}
    if data[:4] == b"PK\x03\x04":
        e["format"] = "zip"
        e.update(zip_summary(data))
    else:
        e["format"] = "legacy"
        e["legacy"] = legacy_layout(data)
        e["pickle_protocol"] = e["legacy"]["pickle_protocols"][3]
    if tensors is None:
        obj_loaded = load_recording(path, **(load_kwargs or {})) if obj_loaded is None else obj_loaded
        tensors = [tensor_entry(p, t) for p, t in walk(obj_loaded, "", [])]
    e["tensors"] = tensors
    e["torch_load"] = torch_load_result(path)  # weights_only default (True)
    if extra:
        e.update(extra)
    return e


def emit(name, expected):
    write_json(OUT / f"{Path(name).stem}.expected.json", expected)


# --- 1. dtypes ------------------------------------------------------------------------

def dtypes_obj():
    g = torch.Generator().manual_seed(SEED)
    f = torch.randn(5, generator=g) * 3
    d = {}
    d["float64"] = torch.randn(2, 3, generator=g, dtype=torch.float64)
    d["float32"] = torch.tensor([0.0, -0.0, 1.5, float("inf"), float("-inf"), float("nan"), 1e-45, 3.4e38])
    d["float16"] = torch.tensor([1.0, -2.5, 65504.0, 6e-8], dtype=torch.float16)
    d["bfloat16"] = torch.tensor([1.0, -2.5, 3.0e38, 1e-3], dtype=torch.bfloat16)
    for name in ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz"):
        d[name] = f.to(getattr(torch, name))
    d["float8_e8m0fnu"] = torch.tensor([0.125, 1.0, 2.0, 1024.0]).to(torch.float8_e8m0fnu)
    d["float4_e2m1fn_x2"] = torch.tensor([0x12, 0x7F, 0xA5], dtype=torch.uint8).view(torch.float4_e2m1fn_x2)
    d["complex32"] = torch.tensor([1 + 2j, -0.5 + 0.25j, 3j], dtype=torch.complex64).to(torch.complex32)
    d["bcomplex32"] = torch.tensor([0x3F80_4000, 0x4040_BF80], dtype=torch.int32).view(torch.bcomplex32)
    d["complex64"] = torch.tensor([1 + 2j, -3.5 - 0.5j], dtype=torch.complex64)
    d["complex128"] = torch.tensor([[1 + 2j], [1e300 - 1e-300j]], dtype=torch.complex128)
    d["int8"] = torch.tensor([-128, -1, 0, 127], dtype=torch.int8)
    d["int16"] = torch.tensor([-32768, -1, 0, 32767], dtype=torch.int16)
    d["int32"] = torch.tensor([-2**31, -1, 0, 2**31 - 1], dtype=torch.int32)
    d["int64"] = torch.tensor([-2**63, -1, 0, 2**63 - 1], dtype=torch.int64)
    d["uint8"] = torch.tensor([0, 1, 128, 255], dtype=torch.uint8)
    d["uint16"] = torch.tensor([0, 1, 256, 65535], dtype=torch.int32).to(torch.uint16)
    d["uint32"] = torch.tensor([0, 1, -2**31, -1], dtype=torch.int32).view(torch.uint32)
    d["uint64"] = torch.tensor([0, 1, -2**63, -1], dtype=torch.int64).view(torch.uint64)
    d["bool"] = torch.tensor([True, False, False, True])
    for name in ("bits8", "bits1x8", "bits2x4", "bits4x2"):
        d[name] = torch.tensor([1, 2, 0xFE], dtype=torch.uint8).view(getattr(torch, name))
    d["bits16"] = torch.tensor([1, -2], dtype=torch.int16).view(torch.bits16)
    x = torch.tensor([[-1.0, 0.0, 0.5], [1.0, 2.5, 100.0]])
    d["qint8"] = torch.quantize_per_tensor(x, 0.1, 3, torch.qint8)
    d["quint8"] = torch.quantize_per_tensor(x, 0.5, 10, torch.quint8)
    d["qint32"] = torch.quantize_per_tensor(x, 0.001, -7, torch.qint32)
    d["qint8_per_channel"] = torch.quantize_per_channel(
        x, torch.tensor([0.1, 0.2], dtype=torch.float64), torch.tensor([0, -3]), 0, torch.qint8)
    d["quint4x2"] = torch.quantize_per_tensor(torch.arange(8.0).view(2, 4) / 4, 0.25, 0, torch.quint4x2)
    d["scalar_0d"] = torch.tensor(3.5)
    d["empty_0x3"] = torch.zeros(0, 3)
    base = torch.arange(12, dtype=torch.float32).view(3, 4)
    d["transposed"] = base.t()  # stride (1, 4), shares nothing else
    long_base = torch.arange(10, dtype=torch.int64)
    d["slice_offset"] = long_base[3:7]  # storage_offset 3, storage of 10
    shared = torch.arange(12, dtype=torch.float64)
    d["shared_a"] = shared[:6].view(2, 3)
    d["shared_b"] = shared[4:].view(2, 4)  # overlaps shared_a's last 2 elements
    d["parameter"] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    d["expanded"] = torch.tensor([1.0, 2.0, 3.0]).expand(4, 3)  # stride (0, 1)
    d["conj"] = torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64).conj()  # metadata {'conj': True}
    d["neg"] = torch._neg_view(torch.tensor([1.0, -2.0], dtype=torch.float64))  # metadata {'neg': True}
    return d


def write_dtypes():
    path = OUT / "dtypes.pt"
    d = dtypes_obj()
    torch.save(d, path)
    written.append(path)
    loaded = load_recording(path)
    for k, v in d.items():
        assert loaded[k].dtype == v.dtype, k
        if v.is_quantized:
            assert torch.equal(loaded[k].int_repr(), v.int_repr()), k
        else:
            assert tensor_bytes(loaded[k])[0] == tensor_bytes(v)[0], k
    e = expected_for(path, loaded)
    e["note"] = ("one small tensor per dtype torch can save (uint1..7/int1..7 cannot be instantiated), "
                 "quantized (per-tensor, per-channel, quint4x2), and layouts: 0-d, empty, transposed, "
                 "slice with storage offset, two overlapping views of one storage, Parameter, "
                 "expanded (stride 0: saved as-is with a 3-element storage), conj and neg bits")
    emit("dtypes.pt", e)


# --- 2. protocols, 7. dataparallel / compiled ------------------------------------------

def write_state_dicts(model):
    sd = model.state_dict()
    for proto in (2, 4):
        path = OUT / f"protocol{proto}.pt"
        torch.save(sd, path, pickle_protocol=proto)
        written.append(path)
        e = expected_for(path)
        e["metadata"] = {k: v for k, v in sd._metadata.items()}
        e["note"] = (f"tiny_cnn.state_dict() (the model of onnx/tiny_cnn.onnx), torch.save(pickle_protocol={proto}); "
                     "an OrderedDict with a `_metadata` attribute set by BUILD")
        emit(path.name, e)

    path = OUT / "dataparallel.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dp = torch.nn.DataParallel(model)  # no GPU: wraps without replicating
    torch.save(dp.state_dict(), path)
    written.append(path)
    e = expected_for(path)
    e["note"] = "nn.DataParallel(tiny_cnn).state_dict(): every key prefixed with `module.`"
    emit(path.name, e)

    path = OUT / "compiled.pt"
    compiled = torch.compile(model)  # never called: the wrapper alone gives the _orig_mod. prefix
    torch.save(compiled.state_dict(), path)
    written.append(path)
    e = expected_for(path)
    e["note"] = ("torch.compile(tiny_cnn).state_dict() of the real OptimizedModule (not called, so no "
                 "compiler is needed): every key prefixed with `_orig_mod.`")
    emit(path.name, e)


# --- 3. legacy -------------------------------------------------------------------------

def legacy_save(obj, path, **kwargs):
    write_bytes(path, legacy_bytes(obj, **kwargs))


def legacy_bytes(obj, **kwargs):
    """torch.save(_use_new_zipfile_serialization=False), made reproducible. The
    legacy format keys storages by their StorageImpl pointer (`str(_cdata)`),
    lists the keys sorted as strings in pickle #5 and writes the raw storages
    in that order, so both the key bytes and the storage order change from run
    to run. The keys are rewritten to fixed strings of the same length
    (10000000000000, 10000000000001, ... in first-use order, as if the pointers
    had been allocated in that order), pickle #5 is re-pickled the way torch
    pickles it (checked against torch's own bytes), and the raw blocks are put
    in the new key order. The result is what torch writes when the pointers
    happen to have those values; checked by loading it to the same tensors."""
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False, **kwargs)
    data = buf.getvalue()
    lay = legacy_layout(data)
    ends, keys, proto = lay["pickle_ends"], lay["storage_keys"], lay["pickle_protocols"][4]
    assert pickle.dumps(keys, protocol=proto) == data[ends[3]:ends[4]], "pickle #5 is not pickle.dumps(keys)"
    n = len(keys[0])
    assert all(len(k) == n for k in keys), keys

    def pat(k):
        return b"X" + struct.pack("<I", n) + k.encode()

    body = data[ends[2]:ends[3]]  # pickle #4, the object
    first_use = sorted(keys, key=lambda k: body.index(pat(k)))
    new = {old: str(10 ** (n - 1) + i) for i, old in enumerate(first_use)}
    for old, rep in new.items():
        body = body.replace(pat(old), pat(rep))
    original = load_recording(io.BytesIO(data), map_location="cpu")
    nbytes = {info["storage_key"]: info["storage_nbytes"] for info in _pid_log.values()}
    blocks, off = {}, ends[4]
    for k in keys:  # the raw area: int64 numel + the bytes, in sorted-old-key order
        blocks[k] = data[off:off + 8 + nbytes[k]]
        off += 8 + nbytes[k]
    assert off == len(data), (off, len(data))
    out = (data[:ends[2]] + body + pickle.dumps(sorted(new.values()), protocol=proto)
           + b"".join(blocks[old] for old in first_use))
    assert len(out) == len(data)
    assert_same(original, torch.load(io.BytesIO(out), weights_only=False, map_location="cpu"))
    return out


def assert_same(a, b):
    ta, tb = walk(a, "", []), walk(b, "", [])
    assert [p for p, _ in ta] == [p for p, _ in tb]
    for (p, x), (_, y) in zip(ta, tb):
        assert x.dtype == y.dtype and x.shape == y.shape and x.stride() == y.stride(), p
        assert tensor_bytes(x)[0] == tensor_bytes(y)[0], p


def legacy_obj():
    g = torch.Generator().manual_seed(SEED + 3)
    base = torch.randn(4, 6, generator=g)
    ints = torch.arange(-5, 5, dtype=torch.int64)
    return collections.OrderedDict([
        ("weight", base),
        ("weight_t", base.t()),                         # same storage, transposed
        ("row2", base[2]),                              # same storage, offset 12
        ("half", torch.tensor([1.0, -2.0, 0.5], dtype=torch.float16)),
        ("bf16", torch.tensor([1.0, 3.0], dtype=torch.bfloat16)),
        ("ints", ints),
        ("ints_tail", ints[7:]),                        # offset 7
        ("mask", torch.tensor([True, False, True])),
        ("cplx", torch.tensor([1 + 1j, 2 - 3j], dtype=torch.complex64)),
        ("u8", torch.tensor([0, 255, 7], dtype=torch.uint8)),
        ("scalar", torch.tensor(2.25, dtype=torch.float64)),
        ("param", torch.nn.Parameter(torch.ones(2, 2))),
        ("step", 12),
    ])


def write_legacy():
    path = OUT / "legacy.pt"
    legacy_save(legacy_obj(), path)
    e = expected_for(path)
    e["values"] = {"step": 12}
    e["note"] = ("torch.save(_use_new_zipfile_serialization=False): five stacked pickles + raw storages; "
                 "storage keys are StorageImpl pointers in real files, rewritten here to fixed "
                 "same-length strings (only those bytes differ from torch's output)")
    emit(path.name, e)


# --- 4. TorchScript ----------------------------------------------------------------------

_C10_STORAGE = {
    "Float": torch.float32, "Double": torch.float64, "Half": torch.float16, "BFloat16": torch.bfloat16,
    "Long": torch.int64, "Int": torch.int32, "Short": torch.int16, "Char": torch.int8, "Byte": torch.uint8,
    "Bool": torch.bool, "ComplexFloat": torch.complex64, "ComplexDouble": torch.complex128,
    "ComplexHalf": torch.complex32, "UInt16": torch.uint16, "UInt32": torch.uint32, "UInt64": torch.uint64,
}


class _TsObject:
    def __setstate__(self, state):
        self.__dict__.update(state)


class _TsUnpickler(pickle._Unpickler):
    """Reads a TorchScript data.pkl/constants.pkl without TorchScript: module
    objects become plain attribute bags, tensors are rebuilt by torch._utils from
    the `<pkl name>/<key>` records, and each persistent id is recorded."""

    def __init__(self, z, archive, pkl, log):
        super().__init__(io.BytesIO(z.read(f"{archive}/{pkl}.pkl")))
        self.z, self.dir, self.log, self.cache = z, f"{archive}/{pkl}", log, {}

    def find_class(self, module, name):
        if module.startswith("__torch__"):
            return type(name, (_TsObject,), {})
        if module == "torch" and name.endswith("Storage"):
            return ("storage-type", name)
        if module in ("torch._utils", "torch.jit._pickle", "collections"):
            return getattr(__import__(module, fromlist=[name]), name)
        if module == "torch":
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def persistent_load(self, pid):
        tag, stype, key, location, numel = pid[:5]
        assert tag == "storage" and stype[0] == "storage-type", pid
        if key in self.cache:
            return self.cache[key]
        dtype = _C10_STORAGE[stype[1].removesuffix("Storage")]
        raw = self.z.read(f"{self.dir}/{key}")
        untyped = torch.UntypedStorage(len(raw))
        if raw:
            untyped.copy_(torch.frombuffer(bytearray(raw), dtype=torch.uint8).untyped_storage())
        storage = torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)
        self.log[untyped._cdata] = {"storage_key": str(key), "device": location, "storage_numel": numel,
                                    "storage_type": f"torch.{stype[1]}"}
        self.cache[key] = storage
        return storage


def read_torchscript(path):
    z = zipfile.ZipFile(path)
    archive = z.infolist()[0].filename.split("/")[0]
    log = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = _TsUnpickler(z, archive, "data", log).load()
        consts = _TsUnpickler(z, archive, "constants", log).load()
    return root, consts, log


def ts_expected(path, module, note):
    root, consts, log = read_torchscript(path)
    loaded = torch.jit.load(str(path))
    tensors = []
    for name, t in loaded.state_dict().items():
        obj = root
        for part in name.split("."):
            obj = obj.__dict__[part]
        assert torch.equal(obj, t), name
        tensors.append(tensor_entry(name, obj, log[obj.untyped_storage()._cdata], kind="tensor"))
    constants = [tensor_entry(f"constants.{i}", c, log[c.untyped_storage()._cdata], kind="tensor")
                 for i, c in enumerate(consts) if isinstance(c, torch.Tensor)]
    z = zipfile.ZipFile(path)
    code = {i.filename: {"compress_type": i.compress_type, "file_size": i.file_size}
            for i in z.infolist() if "/code/" in i.filename}
    e = expected_for(path, tensors=tensors, extra={
        "format": "torchscript",
        "constants": constants,
        "parameters": [n for n, _ in loaded.named_parameters()],
        "buffers": [n for n, _ in loaded.named_buffers()],
        "code_records": code,
        "root_class": type(root).__name__,
        "note": note,
    })
    e["torch_jit_load"] = "ok"
    return e


def check_no_paths(path):
    z = zipfile.ZipFile(path)
    for i in z.infolist():
        data = z.read(i)
        for needle in (str(TESTDATA.parent), sys.prefix, os.path.expanduser("~"), "site-packages"):
            assert needle.encode() not in data, f"{path.name}:{i.filename} contains {needle!r}"


def write_torchscript(model):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(SEED + 4))
    m = ts_tiny_cnn(model)
    with torch.no_grad():
        assert torch.allclose(m(x), model(x), atol=1e-5)
    scripted = torch.jit.script(m)

    path = OUT / "torchscript.pt"
    torch.jit.save(scripted, str(path))
    written.append(path)
    check_no_paths(path)
    emit(path.name, ts_expected(path, scripted, (
        "torch.jit.save(torch.jit.script(m)): tiny_cnn rewritten over plain aten ops (same state_dict "
        "names and weights), so the debug info holds no absolute path; constants.pkl is an empty tuple")))

    path = OUT / "torchscript_frozen.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frozen = torch.jit.freeze(torch.jit.script(ts_tiny_cnn(model)))
    torch.jit.save(frozen, str(path))
    written.append(path)
    check_no_paths(path)
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(path))(x), model(x), atol=1e-4)
    emit(path.name, ts_expected(path, frozen, (
        "torch.jit.freeze(torch.jit.script(m)): parameters folded into constants.pkl tensors "
        "(constants/<key> records, referenced from code as CONSTANTS.cN); no state_dict")))

    return x


# --- 5. torch.export -------------------------------------------------------------------

def write_export(model, x):
    path = OUT / "export.pt2"
    m = ts_tiny_cnn(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.export(m, (x[:1],))
        torch.export.save(ep, str(path))
    written.append(path)
    check_no_paths(path)
    z = zipfile.ZipFile(path)
    archive = z.infolist()[0].filename.split("/")[0]
    cfg = json.loads(z.read(f"{archive}/data/weights/model_weights_config.json"))["config"]
    ccfg = json.loads(z.read(f"{archive}/data/constants/model_constants_config.json"))["config"]
    model_json = json.loads(z.read(f"{archive}/models/model.json"))

    def entry(name, t, c, folder):
        rec = f"{archive}/data/{folder}/{c['path_name']}"
        meta = c["tensor_meta"]
        info = {"storage_key": f"data/{folder}/{c['path_name']}",
                "device": meta["device"]["type"] + ("" if meta["device"]["index"] is None
                                                    else f":{meta['device']['index']}"),
                "storage_numel": z.getinfo(rec).file_size, "storage_type": "raw"}
        e = tensor_entry(name, t, info, kind="parameter" if c.get("is_param") else "tensor")
        e["storage_nbytes"] = z.getinfo(rec).file_size
        return e

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.export.load(str(path))
    tensors = [entry(n, t, cfg[n], "weights") for n, t in loaded.state_dict.items()]
    tensors += [entry(n, t, ccfg[n], "constants") for n, t in loaded.constants.items()
                if isinstance(t, torch.Tensor)]
    with torch.no_grad():
        assert torch.allclose(loaded.module()(x[:1]), model(x[:1]), atol=1e-5)
    sig = model_json["graph_module"]["signature"]
    e = expected_for(path, tensors=tensors, extra={
        "format": "pt2",
        "archive_format": z.read(f"{archive}/archive_format").decode(),
        "archive_version": z.read(f"{archive}/archive_version").decode(),
        "schema_version": model_json["schema_version"],
        "input_specs": sig["input_specs"],
        "output_specs": sig["output_specs"],
        "node_targets": [n["target"] for n in model_json["graph_module"]["graph"]["nodes"]],
        "weights_config": cfg,
        "note": ("torch.export.save(torch.export.export(m, (x,))) of the aten-op tiny_cnn (same "
                 "state_dict as tiny_cnn); storage_key is the weight record under the archive"),
    })
    emit(path.name, e)


# --- 6. training checkpoint ------------------------------------------------------------

def write_training(model):
    model = copy.deepcopy(model).train()
    g = torch.Generator().manual_seed(SEED + 6)
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    for _ in range(2):
        x = torch.randn(4, 3, 32, 32, generator=g)
        y = torch.randint(0, 2, (4,), generator=g)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    ckpt = {
        "epoch": 7,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "args": argparse.Namespace(lr=0.001, batch_size=32, name="run1"),
        "best_acc": np.float64(0.93),
        "step": np.int64(1000),
    }
    path = OUT / "training.pt"
    with open(path, "wb") as f:  # a file object: archive name `archive`
        torch.save(ckpt, f)
    written.append(path)
    loaded = load_recording(path)
    e = expected_for(path, loaded)
    pg = loaded["optimizer"]["param_groups"][0]
    e["values"] = {
        "epoch": 7, "args.lr": 0.001, "args.batch_size": 32, "args.name": "run1",
        "best_acc": 0.93, "best_acc_type": "numpy.float64", "step": 1000, "step_type": "numpy.int64",
        "optimizer.param_groups.0": {k: (list(v) if isinstance(v, tuple) else v) for k, v in pg.items()},
        "optimizer.state_keys": list(loaded["optimizer"]["state"].keys()),
    }
    e["note"] = ("training checkpoint written through an open file object (archive name `archive`); "
                 "Adam after 2 steps (state.N.step is a 0-d float32 tensor); argparse.Namespace and "
                 "numpy scalars make the default weights_only load fail")
    emit(path.name, e)


# --- 8. CUDA-tagged --------------------------------------------------------------------

class _patched_location:
    def __init__(self, tag):
        self.tag = tag

    def __enter__(self):
        self.orig = torch.serialization.location_tag
        torch.serialization.location_tag = lambda storage: self.tag

    def __exit__(self, *a):
        torch.serialization.location_tag = self.orig


def write_cuda_tagged(model):
    sd = model.state_dict()
    ref = OUT / "cuda_tagged_reference.pt"
    cuda = OUT / "cuda_tagged.pt"
    torch.save(sd, ref)
    with _patched_location("cuda:0"):
        torch.save(sd, cuda)
    written.extend([ref, cuda])
    zr, zc = zipfile.ZipFile(ref), zipfile.ZipFile(cuda)
    names_r = [i.filename.split("/", 1)[1] for i in zr.infolist()]
    names_c = [i.filename.split("/", 1)[1] for i in zc.infolist()]
    assert names_r == names_c
    pr, pc = zr.read("cuda_tagged_reference/data.pkl"), zc.read("cuda_tagged/data.pkl")
    cpu_tag, cuda_tag = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"
    assert pr.count(cpu_tag) == 1 and pc.count(cuda_tag) == 1  # later pids BINGET the memoized string
    assert pr.replace(cpu_tag, cuda_tag) == pc, "data.pkl differs beyond the location tag"
    differing = [n for n in names_r if zr.read(f"cuda_tagged_reference/{n}") != zc.read(f"cuda_tagged/{n}")]
    assert differing == ["data.pkl", ".data/serialization_id"], differing

    no_map = torch_load_result(cuda)
    assert not no_map["ok"] and no_map["error_first_line"].startswith(
        "Attempting to deserialize object on a CUDA device"), no_map
    with_map = torch_load_result(cuda, map_location="cpu")
    assert with_map["ok"]
    e = expected_for(cuda, load_recording(cuda, map_location="cpu"))
    e["torch_load_map_location_cpu"] = with_map
    e["differs_from_reference"] = {
        "reference": "cuda_tagged_reference.pt", "records_differing": differing,
        "data_pkl": "identical after replacing BINUNICODE 'cpu' by 'cuda:0' (one occurrence)",
    }
    e["note"] = ("tiny_cnn.state_dict() saved on a CPU machine with torch.serialization.location_tag "
                 "patched to return 'cuda:0'; storages are bit-identical to cuda_tagged_reference.pt")
    emit(cuda.name, e)
    e = expected_for(ref)
    e["note"] = "the same state_dict saved normally: the reference for cuda_tagged.pt"
    emit(ref.name, e)

    path = OUT / "cuda_tagged_legacy.pt"
    with _patched_location("cuda:0"):
        data = legacy_bytes(sd)
    write_bytes(path, data)
    lref = legacy_bytes(sd)
    assert lref.replace(cpu_tag, cuda_tag) == data, "legacy file differs beyond the location tag"
    no_map = torch_load_result(path)
    assert not no_map["ok"] and "CUDA" in no_map["error_first_line"], no_map
    e = expected_for(path, load_recording(path, map_location="cpu"))
    e["torch_load_map_location_cpu"] = torch_load_result(path, map_location="cpu")
    e["note"] = ("legacy-format tiny_cnn.state_dict() with location tag 'cuda:0'; identical to the "
                 "normal legacy save except for the tag string (checked)")
    emit(path.name, e)


# --- 9. big-endian ---------------------------------------------------------------------

class _SysProxy(types.ModuleType):
    def __init__(self, byteorder):
        super().__init__("sys")
        self.byteorder = byteorder

    def __getattr__(self, name):
        return getattr(sys, name)


def byteswapped(t):
    """The same tensor with each element's bytes reversed in memory (complex:
    each half), i.e. what its storage holds on a big-endian machine."""
    t = t.contiguous()
    w = t.element_size() // (2 if t.is_complex() else 1)
    if w == 1:
        return t.clone()
    b = t.reshape(-1).view(torch.uint8).view(-1, w).flip(1).contiguous()
    return b.view(-1).view(t.dtype).view(t.shape)


def write_big_endian():
    g = torch.Generator().manual_seed(SEED + 9)
    src = collections.OrderedDict([
        ("f32", torch.randn(2, 3, generator=g)),
        ("f64", torch.tensor([1.0, -2.5e300], dtype=torch.float64)),
        ("f16", torch.tensor([1.0, -2.0, 0.5], dtype=torch.float16)),
        ("bf16", torch.tensor([1.0, 3.0], dtype=torch.bfloat16)),
        ("i64", torch.tensor([1, -2, 2**40], dtype=torch.int64)),
        ("i32", torch.tensor([1, -2, 2**30], dtype=torch.int32)),
        ("i16", torch.tensor([1, -2, 2**14], dtype=torch.int16)),
        ("u8", torch.tensor([1, 2, 255], dtype=torch.uint8)),
        ("c64", torch.tensor([1 + 2j, -3 + 0.5j], dtype=torch.complex64)),
        ("c128", torch.tensor([1 - 2j], dtype=torch.complex128)),
        ("u16", torch.tensor([1, 256], dtype=torch.int32).to(torch.uint16)),  # torch does not swap v3 dtypes
    ])
    src["f32_t"] = src["f32"].t()  # a view: swapped with its storage
    be = collections.OrderedDict()
    for k, v in src.items():
        if k == "f32_t":
            be[k] = be["f32"].t()
        else:
            be[k] = byteswapped(v)
    path = OUT / "big_endian.pt"
    real_sys = torch.serialization.sys
    torch.serialization.sys = _SysProxy("big")
    try:
        torch.save(be, path)
    finally:
        torch.serialization.sys = real_sys
    written.append(path)
    loaded = load_recording(path)
    torch_ok, torch_wrong = [], []
    for k, v in src.items():
        (torch_ok if tensor_bytes(loaded[k])[0] == tensor_bytes(v)[0] else torch_wrong).append(k)
    assert torch_wrong == ["u16"], torch_wrong  # the v3-dtype byteswap bug (reference section 9.1)
    tensors = []
    for k, v in src.items():
        e = tensor_entry(k, loaded[k])
        e["sha256"] = sha256(tensor_bytes(v)[0])  # the true values
        if k in torch_wrong:
            e["torch_loads_sha256"] = sha256(tensor_bytes(loaded[k])[0])
            e["torch_loads_values"] = loaded[k].to(torch.int64).tolist()
            e["true_values"] = v.to(torch.int64).tolist()
        tensors.append(e)
    e = expected_for(path, tensors=tensors)
    e["torch_loads_correctly"] = torch_ok
    e["torch_loads_wrongly"] = torch_wrong
    e["note"] = ("what a big-endian machine writes: torch.save of tensors whose storages hold "
                 "byte-swapped elements (complex: per half), with torch.serialization.sys.byteorder "
                 "patched to 'big' so the byteorder record says big. sha256 is of the true values "
                 "(little-endian bytes); torch on this little-endian machine swaps every typed "
                 "storage back correctly but not u16 (a _rebuild_tensor_v3 dtype over an "
                 "UntypedStorage: swapped with width 1, i.e. not at all)")
    emit(path.name, e)


# --- 10. malicious pickles ---------------------------------------------------------------

def bu(s):
    """BINUNICODE."""
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def sbu(s):
    """SHORT_BINUNICODE (protocol 4)."""
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


P2 = b"\x80\x02"
P4 = b"\x80\x04"


def call1(callable_ops, arg_ops):
    return callable_ops + arg_ops + b"\x85R"  # TUPLE1 REDUCE


def latin1_bytes(data):
    """protocol-2 bytes: _codecs.encode(str, 'latin1') as torch/pickle write them."""
    return glob("_codecs", "encode") + bu(data.decode("latin1")) + bu("latin1") + b"\x86R"


def pickled_tensor():
    """pickle.dumps of a tensor: the storage is reduced to
    torch.storage._load_from_bytes(legacy torch.save bytes), whose storage key
    is a pointer; it is replaced by fixed digits of the same length (checked by
    unpickling our own benign bytes)."""
    t = torch.arange(3.0)
    data = pickle.dumps(t, protocol=2)
    key = str(t.untyped_storage()._cdata).encode()
    assert data.count(key) >= 2, "storage key not found in pickle.dumps(tensor)"
    data = data.replace(key, str(10 ** (len(key) - 1)).encode())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.equal(pickle.loads(data), t)
    return data


def malicious_files(tiny_zip):
    """(name, bytes, description, verdict) — never unpickled here."""
    files = []
    cmd = bu(PAYLOAD_CMD)
    files.append(("os_system.pkl", P2 + call1(glob("os", "system"), cmd) + b".",
                  "GLOBAL os.system + REDUCE(cmd)", "dangerous"))
    files.append(("posix_system.pkl", P2 + call1(glob("posix", "system"), cmd) + b".",
                  "GLOBAL posix.system + REDUCE (what pickle writes for os.system on Linux)", "dangerous"))
    files.append(("builtins_eval.pkl", P2 + call1(glob("builtins", "eval"), bu(f"print('{MARKER}')")) + b".",
                  "GLOBAL builtins.eval + REDUCE(source)", "dangerous"))
    files.append(("builtin_eval_py2name.pkl",
                  P2 + call1(glob("__builtin__", "eval"), bu(f"print('{MARKER}')")) + b".",
                  "GLOBAL __builtin__.eval (the Python 2 name protocol 2 writes for builtins)", "dangerous"))
    files.append(("subprocess_popen.pkl",
                  P2 + glob("subprocess", "Popen") + b"]" + b"(" + bu("echo") + bu(MARKER) + b"e" + b"\x85R.",
                  "GLOBAL subprocess.Popen + REDUCE((['echo', marker],))", "dangerous"))
    files.append(("runpy_run_code.pkl",
                  P2 + glob("runpy", "_run_code") + bu(f"print('{MARKER}')") + b"}" + b"\x86R.",
                  "GLOBAL runpy._run_code + REDUCE((source, {}))", "dangerous"))
    files.append(("operator_attrgetter.pkl",
                  P2 + call1(call1(glob("operator", "attrgetter"), bu("system"))
                             + call1(glob("builtins", "__import__"), bu("os")) + b"\x85R", cmd) + b".",
                  "operator.attrgetter('system')(builtins.__import__('os'))(cmd): three REDUCEs", "dangerous"))
    files.append(("getattr_chain.pkl",
                  P2 + glob("builtins", "getattr") + call1(glob("builtins", "__import__"), bu("os"))
                  + bu("system") + b"\x86R" + cmd + b"\x85R.",
                  "builtins.getattr(builtins.__import__('os'), 'system')(cmd)", "dangerous"))
    # Memo confusion: 'os' and 'system' go to the memo early; two benign
    # strings are pushed right before STACK_GLOBAL is reached... and popped.
    memo_sg = (P4 + sbu("os") + b"\x94" + sbu("system") + b"\x94" + b"0" + b"0"
               + sbu("collections") + sbu("OrderedDict") + b"0" + b"0"
               + b"h\x00" + b"h\x01" + b"\x93" + sbu(PAYLOAD_CMD) + b"\x85R.")
    files.append(("stack_global_memo.pkl", memo_sg,
                  "protocol 4: 'os' and 'system' MEMOIZEd then POPped, benign strings "
                  "'collections' 'OrderedDict' pushed and POPped, then BINGET 0, BINGET 1, STACK_GLOBAL, "
                  "REDUCE (a last-two-strings scanner sees collections.OrderedDict)", "dangerous"))
    files.append(("stack_global_non_string.pkl",
                  P4 + b"K\x07" + b"]" + b"\x93" + b")R.",
                  "protocol 4: STACK_GLOBAL with operands int 7 and an empty list (unresolvable), then REDUCE",
                  "dangerous"))
    files.append(("dotted_os_path_join.pkl",
                  P2 + glob("os.path", "join") + bu("a") + bu("b") + b"\x86R.",
                  "GLOBAL os.path.join (a submodule of the denied module os) + REDUCE", "dangerous"))
    files.append(("dotted_name_torch_os_system.pkl",
                  P4 + glob("torch", "serialization.os.system") + cmd + b"\x85R.",
                  "protocol 4: GLOBAL torch 'serialization.os.system': an allowed-looking module whose dotted "
                  "name resolves to os.system (pickle resolves dotted names from protocol 4 on)", "dangerous"))
    files.append(("dotted_name_builtins_eval.pkl",
                  P4 + glob("builtins", "getattr.__self__.eval") + sbu(f"print('{MARKER}')") + b"\x85R.",
                  "protocol 4: GLOBAL builtins 'getattr.__self__.eval' (a dotted name reaching eval)",
                  "dangerous"))
    files.append(("load_from_bytes_nested.pkl",
                  P2 + call1(glob("torch.storage", "_load_from_bytes"),
                             latin1_bytes(P2 + call1(glob("os", "system"), cmd) + b".")) + b".",
                  "torch.storage._load_from_bytes(bytes) whose bytes are a pickle calling os.system "
                  "(_load_from_bytes is torch.load(weights_only=False))", "dangerous"))
    files.append(("reduce_fake_module.pkl",
                  P2 + call1(glob("totally_safe_utils", "restore_state"), bu(PAYLOAD_CMD)) + b".",
                  "GLOBAL totally_safe_utils.restore_state + REDUCE: a __reduce__ into an unknown module",
                  "suspicious-unknown"))
    files.append(("newobj_unknown_class.pkl",
                  P2 + glob("my_trainer.state", "CheckpointState") + b")\x81" + b"}" + bu("epoch") + b"K\x07s"
                  + b"b.",
                  "GLOBAL my_trainer.state.CheckpointState, EMPTY_TUPLE, NEWOBJ, BUILD {'epoch': 7}",
                  "suspicious-unknown"))
    files.append(("benign_argparse_namespace.pkl",
                  pickle.dumps(argparse.Namespace(lr=0.1, name="run1"), protocol=2),
                  "pickle.dumps(argparse.Namespace(lr=0.1, name='run1'), protocol=2): a benign class outside "
                  "torch's weights_only allowlist", "benign-not-allowlisted"))
    files.append(("benign_pickled_tensor.pkl", pickled_tensor(),
                  "pickle.dumps(torch.arange(3.0), protocol=2): torch's own pickling, _rebuild_tensor_v2 over "
                  "torch.storage._load_from_bytes(bytes of a legacy-format torch.save of the storage); "
                  "benign, but a nested loader (the key inside is rewritten to a fixed string)",
                  "benign-not-allowlisted"))
    files.append(("allowed_ordered_dict.pkl",
                  pickle.dumps(collections.OrderedDict([("a", 1), ("b", [1.5, None])]), protocol=2),
                  "pickle.dumps(OrderedDict(a=1, b=[1.5, None]), protocol=2): only allowlisted globals",
                  "allowed"))

    # A torch zip checkpoint whose data.pkl has an extra SETITEM with a REDUCE.
    z = zipfile.ZipFile(io.BytesIO(tiny_zip))
    arch = z.infolist()[0].filename.split("/")[0]
    pkl = z.read(f"{arch}/data.pkl")
    assert pkl.endswith(b".")
    evil_pkl = pkl[:-1] + bu("payload") + call1(glob("posix", "system"), cmd) + b"s."
    records = [(i.filename.split("/", 1)[1], z.read(i)) for i in z.infolist()]
    files.append(("zip_reduce.pt",
                  torch_zip("zip_reduce", [(n, evil_pkl if n == "data.pkl" else d) for n, d in records
                                           if n not in ("version", ".data/serialization_id", "byteorder")]),
                  "a torch zip checkpoint (written by torch._C.PyTorchFileWriter) whose data.pkl is the "
                  "tensor dict of a real torch.save plus a SETITEM 'payload' = posix.system(cmd)", "dangerous"))

    # Duplicate names. Python's zipfile reads the last entry of a name; miniz
    # (torch) binary-searches its sorted central directory, so which duplicate
    # it finds depends on the entries around them. The pair is placed where
    # torch reads the first one, found by loading benign twins (weights_only).
    others = [(n, d) for n, d in records if n != "data.pkl"]

    def dup(first, second, pos):
        entries = others[:pos] + [("data.pkl", first), ("data.pkl", second)] + others[pos:]
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Duplicate name"
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as out:
                for n, d in entries:
                    out.writestr(zipfile.ZipInfo(f"archive/{n}", date_time=(1980, 1, 1, 0, 0, 0)), d)
        return buf.getvalue()

    twin = pkl[:-1] + bu("second") + b"\x88s."  # {'second': True} added: tells the twins apart
    for pos in range(len(others) + 1):
        data = dup(pkl, twin, pos)
        assert zipfile.ZipFile(io.BytesIO(data)).read("archive/data.pkl") == twin
        if "second" not in torch.load(io.BytesIO(data), weights_only=True):
            break
    else:
        raise AssertionError("torch reads the second duplicate wherever the pair is")
    where = f"0-based entries {pos} and {pos + 1} of {len(others) + 2}"
    files.append(("zip_duplicate_torch_reads_malicious.pt", dup(evil_pkl, pkl, pos),
                  f"zip (Python zipfile) with two `archive/data.pkl` entries ({where}): the first malicious, "
                  "the second benign. torch (miniz) reads the first here, Python zipfile the second: a "
                  "zipfile-based scanner sees only the benign pickle", "dangerous"))
    files.append(("zip_duplicate_zipfile_reads_malicious.pt", dup(pkl, evil_pkl, pos),
                  f"the same layout with the entries swapped: torch loads the benign first entry, a "
                  "zipfile-based scanner sees the malicious second one", "dangerous"))
    files.extend(any_protocol_files(records))
    return files


def npy_with_pickle(payload_pickle):
    """A .npy file whose header numpy itself wrote for an object array, with
    the pickle after the header replaced (numpy.load(allow_pickle=True) runs
    whatever pickle follows the header)."""
    buf = io.BytesIO()
    np.save(buf, np.array([None, "x"], dtype=object), allow_pickle=True)
    data = buf.getvalue()
    header_end = data.index(b"\n") + 1  # the header dict ends with a newline
    assert data[header_end:header_end + 1] == b"\x80", "numpy pickles object arrays after the header"
    return data[:header_end] + payload_pickle


def any_protocol_files(records):
    """Pickles that do not start with PROTO (protocols 0 and 1), EXT codes,
    a protocol-0 pickle heading a legacy stack, pickles in numpy object
    arrays, and a pickle under a zip entry name without `.pkl`."""
    files = []
    cmd0 = b"S'" + PAYLOAD_CMD.encode() + b"'\n"  # protocol-0 STRING
    cmd = bu(PAYLOAD_CMD)
    files.append(("proto0_inst_os_system.pt", b"(" + cmd0 + b"ios\nsystem\n.",
                  "protocol 0 (no PROTO opcode; plain text): MARK, STRING cmd, INST os.system (calls it), STOP", "dangerous"))
    files.append(("proto0_global_reduce.pt", glob("posix", "system") + b"(" + cmd0 + b"tR.",
                  "protocol 0: GLOBAL posix.system, MARK, STRING cmd, TUPLE, REDUCE", "dangerous"))
    files.append(("proto1_obj_os_system.pt", b"(" + glob("os", "system") + cmd + b"o.",
                  "protocol 1: MARK, GLOBAL os.system, BINUNICODE cmd, OBJ (calls it)", "dangerous"))
    files.append(("proto1_dict_no_globals.pt", pickle.dumps({"lr": 0.1, "epoch": 3}, protocol=1),
                  "pickle.dumps({'lr': 0.1, 'epoch': 3}, protocol=1): a protocol-1 pickle without globals",
                  "allowed"))
    for op, code in ((b"\x82", b"\x01"), (b"\x83", b"\x01\x00"), (b"\x84", b"\x01\x00\x00\x00")):
        name = {b"\x82": "ext1", b"\x83": "ext2", b"\x84": "ext4"}[op]
        files.append((f"{name}_reduce.pt", P2 + op + code + cmd + b"\x85R.",
                      f"protocol 2: {name.upper()} code 1 (a global looked up in copyreg's extension "
                      "registry at load time: empty by default, but any imported module can register what a "
                      "code loads) + REDUCE(cmd)", "dangerous"))
    legacy = (OUT / "legacy.pt").read_bytes()
    first_end = legacy.index(b".") + 1  # the magic-number pickle: PROTO 2, LONG1, STOP
    assert legacy[:2] == b"\x80\x02" and first_end < 20
    files.append(("legacy_proto0_first.pt", b"(" + cmd0 + b"ios\nsystem\n." + legacy[first_end:],
                  "legacy.pt with its first pickle (the magic number) replaced by a protocol-0 "
                  "INST os.system pickle: torch.load unpickles it before it checks the magic number",
                  "dangerous"))
    evil3 = b"\x80\x03" + call1(glob("posix", "system"), cmd) + b"."
    npy = npy_with_pickle(evil3)
    files.append(("object_array.npy", npy,
                  "a .npy object array (header by numpy) whose pickle calls posix.system: "
                  "numpy.load(allow_pickle=True) runs it", "dangerous"))
    plain = io.BytesIO()
    np.save(plain, np.arange(3, dtype="<f4"))
    files.append(("plain_array.npy", plain.getvalue(),
                  "np.save of a float32 array: a .npy without a pickle", "allowed"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as out:
        out.writestr(zipfile.ZipInfo("weights.npy", date_time=(1980, 1, 1, 0, 0, 0)), plain.getvalue())
        out.writestr(zipfile.ZipInfo("objects.npy", date_time=(1980, 1, 1, 0, 0, 0)), npy)
    files.append(("object_array.npz", buf.getvalue(),
                  "a .npz (zip) whose member objects.npy is the object array above", "dangerous"))
    files.append(("zip_pickle_without_pkl_name.pt",
                  torch_zip("zip_extra", [(n, d) for n, d in records
                                          if n not in ("version", ".data/serialization_id", "byteorder")]
                            + [("extra/state", P2 + call1(glob("posix", "system"), cmd) + b".")]),
                  "a clean torch zip checkpoint plus an entry `extra/state` (no .pkl) holding a pickle "
                  "that calls posix.system: torch.load never reads it, a loader that unpickles every "
                  "entry would", "dangerous"))
    return files


def torch_zip(archive, records):
    """A zip written by torch's own PyTorchFileWriter (miniz, the writer of
    torch.save) with archive name `archive`; the writer adds `version`,
    `byteorder` and `.data/serialization_id` itself."""
    tmp = OUT / ".tmp" / f"{archive}.pt"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    w = torch._C.PyTorchFileWriter(str(tmp))
    for name, data in records:
        w.write_record(name, data, len(data))
    w.write_end_of_file()
    del w
    data = tmp.read_bytes()
    tmp.unlink()
    tmp.parent.rmdir()
    return data


PROBE = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import torch
for path in sys.argv[1:]:
    try:
        torch.load(path, weights_only=True)
        r = {"ok": True}
    except BaseException as e:
        r = {"ok": False, "type": type(e).__name__, "message": str(e)}
    print(json.dumps({"path": path, "result": r}), flush=True)
"""


def probe_all(paths):
    """torch.load(path, weights_only=True) for each path, in a child process (a
    crash or a recursion blow-up must not take the generator down). If the
    child dies, the files it did not report are probed one per process."""
    def run(batch):
        p = subprocess.run([sys.executable, "-c", PROBE, *map(str, batch)],
                           capture_output=True, text=True, timeout=900)
        assert MARKER not in p.stdout + p.stderr, f"a payload ran in {batch}"
        done = {}
        for line in p.stdout.splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                res = r["result"]
                done[Path(r["path"])] = ({"ok": True} if res["ok"]
                                         else dict(ok=False, **summarize_error(res["type"], res["message"])))
        if p.returncode != 0 and len(batch) == 1 and batch[0] not in done:
            last = (p.stderr.strip().splitlines() or [""])[-1]
            done[batch[0]] = dict(ok=False, **summarize_error(f"process exited with {p.returncode}", last))
        return done

    results = run(paths)
    for path in paths:
        if path not in results:
            results.update(run([path]))
    return results


UNSAFE_PROBE = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
loader, path = sys.argv[1], sys.argv[2]
try:
    if loader == "torch":
        import torch
        torch.load(path, weights_only=False)
    else:
        import numpy as np
        loaded = np.load(path, allow_pickle=True)
        if hasattr(loaded, "files"):
            for name in loaded.files:
                loaded[name]
    r = {"ok": True}
except BaseException as e:
    r = {"ok": False, "type": type(e).__name__, "message": str(e)}
print("\nNETPORT_PROBE_RESULT " + json.dumps(r), flush=True)
"""


def probe_unsafe(path, loader):
    """What an unsafe load does with the file: `torch.load(weights_only=False)`
    or `numpy.load(allow_pickle=True)`, in a child process. The payloads only
    echo the marker, so `payload_ran` is whether the marker was printed."""
    p = subprocess.run([sys.executable, "-c", UNSAFE_PROBE, loader, str(path)],
                       capture_output=True, text=True, timeout=300)
    ran = MARKER in p.stdout + p.stderr
    # A payload's child process (subprocess.Popen) may still be printing: take
    # the result from its tag, up to the end of the JSON value.
    tag = "NETPORT_PROBE_RESULT "
    if tag in p.stdout:
        res, _ = json.JSONDecoder().raw_decode(p.stdout[p.stdout.rindex(tag) + len(tag):])
        out = {"ok": True} if res["ok"] else dict(ok=False, **summarize_error(res["type"], res["message"]))
    else:
        out = dict(ok=False, **summarize_error(f"process exited with {p.returncode}",
                                               (p.stderr.strip().splitlines() or [""])[-1]))
    out["payload_ran"] = ran
    return out


def write_malicious(tiny_zip):
    files = malicious_files(tiny_zip)
    lines = ["# Malicious pickles", "",
             "Written by `testdata/make_torch_fixtures.py` (`cargo xtask fixtures`) from hand-written",
             "pickle opcodes (the `benign_*`/`allowed_*` ones by `pickle.dumps`). **Never unpickle these**",
             "outside `weights_only=True`; the payloads are a harmless `" + PAYLOAD_CMD + "`.",
             "Verdict classes: allowed (torch's weights_only allowlist) / benign-not-allowlisted /",
             "suspicious-unknown / dangerous. `expected.json` records, per file, the verdict, sha256 and",
             f"what `torch.load(f, weights_only=True)` (torch {torch.__version__}, probed in a subprocess) does,",
             "and whether the payload runs under `torch.load(f, weights_only=False)` (and, for .npy/.npz,",
             "`numpy.load(f, allow_pickle=True)`), each probed in a child process.",
             ""]
    exp = {}
    for name, data, _what, _verdict in files:
        write_bytes(MALICIOUS / name, data)
    probes = probe_all([MALICIOUS / name for name, _, _, _ in files])
    for name, data, what, verdict in files:
        r = probes[MALICIOUS / name]
        exp[name] = {"verdict": verdict, "description": what, "sha256": sha256(data), "size": len(data),
                     "torch_load_weights_only": r,
                     "torch_load_unsafe": probe_unsafe(MALICIOUS / name, "torch")}
        if name.endswith((".npy", ".npz")):
            exp[name]["numpy_load_allow_pickle"] = probe_unsafe(MALICIOUS / name, "numpy")
        refused = "refused" if not r["ok"] else "**loads**"
        ran = "**payload runs**" if exp[name]["torch_load_unsafe"]["payload_ran"] else "payload does not run"
        if exp[name].get("numpy_load_allow_pickle", {}).get("payload_ran"):
            ran += "; numpy.load(allow_pickle=True): **payload runs**"
        lines.append(f"- `{name}` ({verdict}; weights_only: {refused}; weights_only=False: {ran}): {what}.")
    write_text(MALICIOUS / "README.md", "\n".join(lines) + "\n")
    write_json(MALICIOUS / "expected.json", exp)
    return exp


# --- 11. broken files ------------------------------------------------------------------

def central_directory_offset(data):
    eocd = data.rfind(b"PK\x05\x06")
    return struct.unpack_from("<I", data, eocd + 16)[0]


def write_broken(tiny_path, legacy_path):
    tiny = tiny_path.read_bytes()
    z = zipfile.ZipFile(io.BytesIO(tiny))
    infos = z.infolist()
    arch = infos[0].filename.split("/")[0]
    big = max((i for i in infos if "/data/" in i.filename), key=lambda i: i.file_size)
    # data offset of the biggest storage: local header + 30 + name + extra
    lho = big.header_offset
    n, m = struct.unpack_from("<HH", tiny, lho + 26)
    big_start = lho + 30 + n + m
    cd = central_directory_offset(tiny)
    files = []
    files.append(("truncated_in_storage.pt", tiny[:big_start + big.file_size // 2],
                  f"protocol2.pt cut in the middle of its largest storage (`{big.filename}`, "
                  f"{big.file_size} bytes from offset {big_start})"))
    files.append(("truncated_in_central_directory.pt", tiny[:cd + 100],
                  "protocol2.pt cut 100 bytes into its central directory (no end records)"))
    rng = np.random.default_rng(SEED)
    files.append(("garbage.pt", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
                  "4096 seeded random bytes"))
    files.append(("html_error_page.pt",
                  b"<!DOCTYPE html>\n<html>\n<head><title>404 Not Found</title></head>\n"
                  b"<body>\n<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n"
                  b"</body>\n</html>\n", "an HTML 404 page saved under a .pt name"))
    files.append(("git_lfs_pointer.pth",
                  b"version https://git-lfs.github.com/spec/v1\n"
                  + f"oid sha256:{sha256(tiny)}\nsize {len(tiny)}\n".encode(),
                  "a Git LFS pointer file (for ../protocol2.pt) instead of the checkpoint"))
    files.append(("empty.pt", b"", "an empty file (0 bytes)"))
    files.append(("prefix_junk_byte.pt", b"\x00" + tiny,
                  "one 0x00 byte, then protocol2.pt (Python's zipfile still opens it; torch does not see a zip)"))

    def repack(entries):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as out:
            for name, data in entries:
                out.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
        return buf.getvalue()

    recs = [(i.filename.split("/", 1)[1], z.read(i)) for i in infos]
    files.append(("no_archive_folder.pt", repack(recs),
                  "protocol2.pt's records re-packed (Python zipfile, stored) with no top-level folder "
                  "(`data.pkl`, `data/0`, ...)"))
    files.append(("foreign_entry.pt", repack([(f"{arch}/{n}", d) for n, d in recs] + [("other/readme.txt", b"hi\n")]),
                  f"protocol2.pt's records under `{arch}/` plus one entry `other/readme.txt` outside it"))
    files.append(("missing_data_pkl.pt", repack([(f"{arch}/{n}", d) for n, d in recs if n != "data.pkl"]),
                  "protocol2.pt re-packed without its data.pkl"))
    leg = legacy_path.read_bytes()
    lay = legacy_layout(leg)
    files.append(("legacy_truncated.pt", leg[:lay["pickle_ends"][4] + 8 + (len(leg) - lay["pickle_ends"][4]) // 2],
                  "legacy.pt cut in the middle of its raw storage area"))

    # Billion laughs through the memo: 10 lists of 10 references each, 9 levels:
    # 10^9 leaves if a reader copies memo values instead of sharing them.
    # (No POP: weights_only does not implement it; every level is a dict value.)
    bomb = bytearray(P2 + b"}(")
    for lvl in range(10):
        items = bu("lol") * 10 if lvl == 0 else (b"h" + bytes([lvl - 1])) * 10
        bomb += bu(f"l{lvl}") + b"]q" + bytes([lvl]) + b"(" + items + b"e"
    bomb += b"u."
    files.append(("pickle_bomb.pt", torch_zip("pickle_bomb", [("data.pkl", bytes(bomb))]),
                  "a torch zip (PyTorchFileWriter) whose data.pkl is {'l0': L0, ..., 'l9': L9}, L0 = ['lol'] * 10 "
                  "and L(i) = [L(i-1)] * 10 by BINGET: L9 has 10^9 leaves when expanded, 10 lists when shared"))
    depth = 100_000
    deep = P2 + b"}" + bu("deep") + b"]" * depth + b"a" * (depth - 1) + b"s."
    files.append(("deep_nesting.pt", torch_zip("deep_nesting", [("data.pkl", deep)]),
                  f"a torch zip whose data.pkl is {{'deep': [[[...]]]}}, lists nested {depth} levels "
                  "(EMPTY_LIST x 100000, APPEND x 99999)"))

    lines = ["# Broken checkpoints", "",
             "Written by `testdata/make_torch_fixtures.py` (`cargo xtask fixtures`). Each is something a",
             "reader must refuse (or, for the bomb and the nesting, read within bounded time, memory and",
             "stack): an error, never a panic or a huge allocation. `expected.json` records what",
             f"`torch.load(f, weights_only=True)` (torch {torch.__version__}) does with each.", ""]
    exp = {}
    for name, data, _what in files:
        write_bytes(BROKEN / name, data)
    probes = probe_all([BROKEN / name for name, _, _ in files])
    for name, data, what in files:
        exp[name] = {"description": what, "sha256": sha256(data), "size": len(data),
                     "torch_load_weights_only": probes[BROKEN / name]}
        lines.append(f"- `{name}`: {what}.")
    write_text(BROKEN / "README.md", "\n".join(lines) + "\n")
    write_json(BROKEN / "expected.json", exp)
    return exp


# --- main ------------------------------------------------------------------------------

def main():
    os.chdir(TESTDATA.parent)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*quantize_per.*deprecated")
    warnings.filterwarnings("ignore", message=".*ComplexHalf support is experimental")
    warnings.filterwarnings("ignore", message=".*TypedStorage is deprecated")
    if OUT.exists():
        for p in sorted(OUT.rglob("*"), reverse=True):
            if p.is_file():
                p.unlink()
    OUT.mkdir(parents=True, exist_ok=True)
    model = tiny_cnn()
    write_dtypes()
    write_state_dicts(model)
    write_legacy()
    x = write_torchscript(model)
    write_export(model, x)
    write_training(model)
    write_cuda_tagged(model)
    write_big_endian()
    write_malicious((OUT / "protocol2.pt").read_bytes())
    write_broken(OUT / "protocol2.pt", OUT / "legacy.pt")

    total = 0
    for p in sorted(set(written)):
        size = p.stat().st_size
        total += size
        print(f"{size:>9}  {p.relative_to(TESTDATA.parent)}")
    print(f"{total:>9}  total ({len(set(written))} files)")
    assert total < MAX_TOTAL_BYTES, f"torch fixtures are {total} bytes, over the {MAX_TOTAL_BYTES} budget"


if __name__ == "__main__":
    main()
