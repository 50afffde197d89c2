"""Write the checkpoints that `cargo xtask bench` times netport and torch.load on.

Run by `cargo xtask bench` inside the peer venv (testdata/peers/requirements.txt),
into a cache folder outside the repo (`<cache>/bench-<hash>`; the hash covers
every file in testdata/bench/ and the venv). Never committed: ~4.3 GiB, fully
determined by this script and the pinned torch.

    python make_bench_checkpoints.py --out DIR

Every file is a plain `state_dict` (an ordered dict of name -> float32 tensor,
one storage per tensor) written by `torch.save` in its default zip format:

    big.pt    256 tensors layers.N.weight [2048, 1024]   2 GiB of tensor bytes
    mid.pt    256 tensors layers.N.weight [256, 1024]    256 MiB (same names and
              count as big.pt, 1/8 of the bytes: netport's peak memory on the two
              should be the same)
    many.pt   50,000 tensors layers.N.weight [16]        3.2 MB of tensor bytes,
              50,000 storages (records) in the archive
    big_cuda.pt  big.pt's state_dict saved with every storage tagged 'cuda:0'
              (the input of the map-location and convert timings)

big_cuda.pt is written on a CPU machine the way testdata/make_torch_fixtures.py
writes cuda_tagged.pt: torch.serialization.location_tag is patched to return
'cuda:0' around torch.save. The script checks that its data.pkl is big.pt's
with the one memoized 'cpu' string replaced by 'cuda:0' and that every tensor
record is byte-identical. It loads only with map_location (e.g. 'cpu').

Tensors are made with torch.empty and filled with their index (one memset-speed
pass, no random numbers), so the files are identical from run to run.
"""

import argparse
import collections
import os
import sys
import time
import zipfile
from pathlib import Path

import torch

# name -> (tensor count, shape of each tensor)
CHECKPOINTS = {
    "big.pt": (256, (2048, 1024)),
    "mid.pt": (256, (256, 1024)),
    "many.pt": (50_000, (16,)),
}
# Also written from big.pt's state_dict, with the storages tagged 'cuda:0'.
CUDA_OF = ("big.pt", "big_cuda.pt")


def log(msg):
    print(f"[make_bench_checkpoints] {msg}", flush=True)


def state_dict(count, shape):
    sd = collections.OrderedDict()
    for i in range(count):
        sd[f"layers.{i}.weight"] = torch.empty(shape, dtype=torch.float32).fill_(float(i))
    return sd


class patched_location:
    """torch.save with every storage's location tag replaced (as in
    testdata/make_torch_fixtures.py)."""

    def __init__(self, tag):
        self.tag = tag

    def __enter__(self):
        self.orig = torch.serialization.location_tag
        torch.serialization.location_tag = lambda storage: self.tag

    def __exit__(self, *a):
        torch.serialization.location_tag = self.orig


def check_cuda_copy(ref, cuda):
    """cuda differs from ref only in the location tag of data.pkl (and the
    random serialization id): the same records, the same tensor bytes."""
    zr, zc = zipfile.ZipFile(ref), zipfile.ZipFile(cuda)
    ir, ic = zr.infolist(), zc.infolist()
    names_r = [i.filename.split("/", 1)[1] for i in ir]
    names_c = [i.filename.split("/", 1)[1] for i in ic]
    if names_r != names_c:
        sys.exit(f"{cuda.name} does not hold the records of {ref.name}")
    pr = zr.read(f"{ref.stem}/data.pkl")
    pc = zc.read(f"{cuda.stem}/data.pkl")
    cpu_tag, cuda_tag = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"
    # The first storage spells the tag; later ones BINGET the memoized string.
    if pr.count(cpu_tag) != 1 or pc.count(cuda_tag) != 1 or pr.replace(cpu_tag, cuda_tag) != pc:
        sys.exit(f"{cuda.name}: data.pkl differs from {ref.name}'s beyond the location tag")
    # Tensor records: same size and CRC-32 (the zip's own checksum of the bytes).
    for a, b in zip(ir, ic):
        name = a.filename.split("/", 1)[1]
        if name.startswith("data/") and (a.file_size, a.CRC) != (b.file_size, b.CRC):
            sys.exit(f"{cuda.name}: tensor record {name} differs from {ref.name}'s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder to write into")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    log(f"torch {torch.__version__}, python {sys.version.split()[0]}")
    for name, (count, shape) in CHECKPOINTS.items():
        t0 = time.time()
        sd = state_dict(count, shape)
        tensor_bytes = sum(t.numel() * t.element_size() for t in sd.values())
        path = args.out / name
        torch.save(sd, path)
        size = os.path.getsize(path)
        log(
            f"{name}: {count} tensors of shape {list(shape)}, {tensor_bytes} tensor bytes, "
            f"file {size} bytes, in {time.time() - t0:.1f}s"
        )
        # The file must hold at least its tensor bytes: a cheap check that
        # torch.save wrote what was asked.
        if size < tensor_bytes:
            sys.exit(f"{name} is {size} bytes, smaller than its {tensor_bytes} tensor bytes")
        if name == CUDA_OF[0]:
            t0 = time.time()
            cuda = args.out / CUDA_OF[1]
            with patched_location("cuda:0"):
                torch.save(sd, cuda)
            check_cuda_copy(path, cuda)
            log(
                f"{cuda.name}: {name}'s state_dict with every storage tagged 'cuda:0', "
                f"file {os.path.getsize(cuda)} bytes, in {time.time() - t0:.1f}s"
            )
        del sd


if __name__ == "__main__":
    main()
