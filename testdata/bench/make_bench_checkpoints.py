"""Write the checkpoints that `cargo xtask bench` times netport and torch.load on.

Run by `cargo xtask bench` inside the peer venv (testdata/peers/requirements.txt),
into a cache folder outside the repo (`<cache>/bench-<hash>`; the hash covers
every file in testdata/bench/ and the venv). Never committed: ~2.3 GiB, fully
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

Tensors are made with torch.empty and filled with their index (one memset-speed
pass, no random numbers), so the files are identical from run to run.
"""

import argparse
import collections
import os
import sys
import time
from pathlib import Path

import torch

# name -> (tensor count, shape of each tensor)
CHECKPOINTS = {
    "big.pt": (256, (2048, 1024)),
    "mid.pt": (256, (256, 1024)),
    "many.pt": (50_000, (16,)),
}


def log(msg):
    print(f"[make_bench_checkpoints] {msg}", flush=True)


def state_dict(count, shape):
    sd = collections.OrderedDict()
    for i in range(count):
        sd[f"layers.{i}.weight"] = torch.empty(shape, dtype=torch.float32).fill_(float(i))
    return sd


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
        del sd
        size = os.path.getsize(path)
        log(
            f"{name}: {count} tensors of shape {list(shape)}, {tensor_bytes} tensor bytes, "
            f"file {size} bytes, in {time.time() - t0:.1f}s"
        )
        # The file must hold at least its tensor bytes: a cheap check that
        # torch.save wrote what was asked.
        if size < tensor_bytes:
            sys.exit(f"{name} is {size} bytes, smaller than its {tensor_bytes} tensor bytes")


if __name__ == "__main__":
    main()
