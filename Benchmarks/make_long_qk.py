#!/usr/bin/env python3
"""One layer of Llama-3-8B-shaped q and k for the long-context benchmark (numpy + h5py, seed 21).

    python3 Benchmarks/make_long_qk.py /tmp/attninspect-bench --sizes 4096,8192,32768

Writes OUTDIR/llama3_qk_S{S}.h5: q (1, 32, S, 128) and k (1, 8, S, 128) float16 (32 query heads over 8 key heads,
d = 128), with the root attributes causal = 1, num_key_value_heads = 8 and qk_axes = "layer,head,position,dim".
The values are random with a per-head bias towards the first tokens and a local band, so that the attention has
sinks and a diagonal as a trained model's has (the arithmetic does not depend on the values). About 84 MB at 4096,
168 MB at 8192 and 671 MB at 32768.
"""
import argparse
import os

import h5py
import numpy as np

HEADS, KEY_HEADS, DIM = 32, 8, 128


def write(path, s, rng):
    q = np.empty((1, HEADS, s, DIM), dtype=np.float16)
    k = np.empty((1, KEY_HEADS, s, DIM), dtype=np.float16)
    for h in range(KEY_HEADS):
        k[0, h] = rng.standard_normal((s, DIM), dtype=np.float32) * 0.5
        k[0, h, :4, :8] += 3.0  # sink keys
    for h in range(HEADS):
        q[0, h] = rng.standard_normal((s, DIM), dtype=np.float32) * 0.5
        q[0, h, :, :8] += 1.0
    with h5py.File(path, "w", libver=("earliest", "v110")) as f:
        f["q"] = q
        f["k"] = k
        f.attrs["causal"] = np.int8(1)
        f.attrs["num_key_value_heads"] = np.int64(KEY_HEADS)
        f.attrs["qk_axes"] = "layer,head,position,dim"
        f.attrs["model"] = "Llama-3-8B-shaped q and k, random (Benchmarks/make_long_qk.py)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--sizes", default="4096,8192,32768")
    arguments = parser.parse_args()
    os.makedirs(arguments.outdir, exist_ok=True)
    rng = np.random.default_rng(21)
    for s in (int(x) for x in arguments.sizes.split(",")):
        path = os.path.join(arguments.outdir, f"llama3_qk_S{s}.h5")
        write(path, s, rng)
        print(path, os.path.getsize(path) // (1 << 20), "MiB")


if __name__ == "__main__":
    main()
