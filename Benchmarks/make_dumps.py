#!/usr/bin/env python3
"""Write the benchmark dumps for attninspect (fixed seeds, reproducible).

usage: make_dumps.py [OUTDIR] [--sizes small,medium,large] [--force]

OUTDIR defaults to /tmp/attninspect-bench (keep it outside the repository).

  small   12 layers x 12 heads x 197 x 197, float32:
            small_f32.npy                       (attentions, ~21 MiB)
            small_qk.npz                        (np.savez, q and k (12,12,197,64) float32)
  medium  24 x 16 x 512 x 512, float16:
            medium_f16.npy                      (~192 MiB)
            medium_qk.npz                       (np.savez, q and k (24,16,512,64) float16)
  large   32 x 32 x 1024 x 1024, float16:
            large_f16.npy                       (2 GiB)
            large_f16.h5                        (/attentions, /q, /k, all contiguous)
            large_f16_gzip.h5                   (/attentions chunked (1,1,1024,1024), /q, /k chunked
                                                 (1,1,1024,64), all gzip level 4)
            large_qk.npz                        (np.savez, q and k (32,32,1024,64) float16)

Attention rows are real softmax rows: logits ~ N(0,1) * 2, softmax in float32 (row max subtracted),
then cast to the storage dtype. Q and K are N(0,1) (scale 1/sqrt(64) gives logits of std ~1) and are
independent of the stored attention. Everything is generated one layer at a time (its own seed), so
peak memory stays well below 1 GB even for the 2 GiB files (the npz needs q and k whole: 256 MiB).
HDF5 files are written with libver=("earliest", "v110") so HDF5 1.10 (Debian's libhdf5) reads them.
"""
import argparse
import os
import sys
import time

import numpy as np

SIZES = {
    #        L,  H,    S,  d, dtype
    "small": (12, 12, 197, 64, np.float32),
    "medium": (24, 16, 512, 64, np.float16),
    "large": (32, 32, 1024, 64, np.float16),
}
BASE_SEED = {"small": 1000, "medium": 2000, "large": 3000}


def attention_layer(size, layer):
    L, H, S, d, dt = SIZES[size]
    rng = np.random.default_rng([BASE_SEED[size], layer, 0])
    a = rng.standard_normal((H, S, S), dtype=np.float32)
    a *= 2.0
    a -= a.max(axis=-1, keepdims=True)
    np.exp(a, out=a)
    a /= a.sum(axis=-1, keepdims=True)
    return a.astype(dt, copy=False)


def qk_layer(size, layer):
    L, H, S, d, dt = SIZES[size]
    rng = np.random.default_rng([BASE_SEED[size], layer, 1])
    q = rng.standard_normal((H, S, d), dtype=np.float32).astype(dt, copy=False)
    k = rng.standard_normal((H, S, d), dtype=np.float32).astype(dt, copy=False)
    return q, k


class NpyWriter:
    """Stream a C-order .npy file layer by layer (no memmap, so no 2 GiB of dirty pages in RSS)."""

    def __init__(self, path, shape, dtype):
        self.tmp = path + ".part"
        self.path = path
        self.f = open(self.tmp, "wb")
        np.lib.format.write_array_header_1_0(
            self.f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                     "fortran_order": False, "shape": tuple(shape)})

    def write(self, arr):
        self.f.write(np.ascontiguousarray(arr).tobytes())

    def close(self):
        self.f.close()
        os.replace(self.tmp, self.path)


def done(path, force):
    if os.path.exists(path) and not force:
        print(f"  {path} exists, kept (use --force to rewrite)")
        return True
    return False


def make_qk_npz(size, path, force):
    if done(path, force):
        return
    L, H, S, d, dt = SIZES[size]
    q = np.empty((L, H, S, d), dt)
    k = np.empty((L, H, S, d), dt)
    for l in range(L):
        q[l], k[l] = qk_layer(size, l)
    tmp = path + ".part.npz"
    np.savez(tmp, q=q, k=k)
    os.replace(tmp, path)
    print(f"  wrote {path}")


def make_small_or_medium(size, outdir, force):
    L, H, S, d, dt = SIZES[size]
    tag = "f32" if dt == np.float32 else "f16"
    path = os.path.join(outdir, f"{size}_{tag}.npy")
    if not done(path, force):
        w = NpyWriter(path, (L, H, S, S), dt)
        for l in range(L):
            w.write(attention_layer(size, l))
        w.close()
        print(f"  wrote {path}")
    make_qk_npz(size, os.path.join(outdir, f"{size}_qk.npz"), force)


def make_large(outdir, force):
    import h5py

    size = "large"
    L, H, S, d, dt = SIZES[size]
    p_npy = os.path.join(outdir, "large_f16.npy")
    p_h5 = os.path.join(outdir, "large_f16.h5")
    p_gz = os.path.join(outdir, "large_f16_gzip.h5")
    todo = [p for p in (p_npy, p_h5, p_gz) if not done(p, force)]
    if todo:
        w = NpyWriter(p_npy, (L, H, S, S), dt) if p_npy in todo else None
        files = []
        if p_h5 in todo:
            f = h5py.File(p_h5 + ".part", "w", libver=("earliest", "v110"))
            f.create_dataset("attentions", (L, H, S, S), dtype=dt)
            f.create_dataset("q", (L, H, S, d), dtype=dt)
            f.create_dataset("k", (L, H, S, d), dtype=dt)
            files.append((p_h5, f))
        if p_gz in todo:
            f = h5py.File(p_gz + ".part", "w", libver=("earliest", "v110"))
            f.create_dataset("attentions", (L, H, S, S), dtype=dt, chunks=(1, 1, S, S),
                             compression="gzip", compression_opts=4)
            f.create_dataset("q", (L, H, S, d), dtype=dt, chunks=(1, 1, S, d),
                             compression="gzip", compression_opts=4)
            f.create_dataset("k", (L, H, S, d), dtype=dt, chunks=(1, 1, S, d),
                             compression="gzip", compression_opts=4)
            files.append((p_gz, f))
        t0 = time.time()
        for l in range(L):
            a = attention_layer(size, l)
            q, k = qk_layer(size, l)
            if w is not None:
                w.write(a)
            for _, f in files:
                f["attentions"][l] = a
                f["q"][l] = q
                f["k"][l] = k
            del a
            print(f"  large layer {l + 1}/{L} ({time.time() - t0:.0f} s)", flush=True)
        if w is not None:
            w.close()
            print(f"  wrote {p_npy}")
        for p, f in files:
            f.close()
            os.replace(p + ".part", p)
            print(f"  wrote {p}")
    make_qk_npz(size, os.path.join(outdir, "large_qk.npz"), force)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", nargs="?", default="/tmp/attninspect-bench")
    ap.add_argument("--sizes", default="small,medium,large",
                    help="comma-separated subset of small,medium,large (default: all)")
    ap.add_argument("--force", action="store_true", help="rewrite files that already exist")
    args = ap.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for s in sizes:
        if s not in SIZES:
            sys.exit(f"make_dumps.py: unknown size {s!r} (expected small, medium, large)")
    os.makedirs(args.outdir, exist_ok=True)
    for s in sizes:
        print(f"{s}: {SIZES[s][:3]} ...", flush=True)
        t0 = time.time()
        if s == "large":
            make_large(args.outdir, args.force)
        else:
            make_small_or_medium(s, args.outdir, args.force)
        print(f"{s}: done in {time.time() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
