#!/usr/bin/env python3
"""The numpy + h5py baseline for the attninspect benchmarks.

usage: baseline.py stats   FILE            per-head statistics as JSON (the keys of `attninspect stats --json`)
       baseline.py rollout FILE --out R.npy   Abnar & Zuidema rollout, mean head fusion, written as float32 .npy
       baseline.py qk      FILE            attention = softmax(q k^T / sqrt(d)) per layer, then the same stats

This is what a competent numpy user writes, not a tuned kernel: .npy is opened with mmap_mode="r",
.npz with np.load (members read whole), .h5 with h5py (one layer per hyperslab read); the work is
one layer at a time, vectorised over heads, float32 arithmetic with float64 accumulation where the sum
is long (means over rows/heads, row sums for the row-sum deviation); numpy matmul (OpenBLAS) for the
rollout product and for q @ k^T.

Attention: the dataset/member `attentions` (L, H, Q, K); Q/K: `q` and `k` (L, H, S, d).
"""
import argparse
import json
import math
import sys

import numpy as np


# ----------------------------------------------------------------------------------------- input

class Dump:
    """Opens FILE and gives access to named tensors as array-likes indexable by layer."""

    def __init__(self, path):
        self.path = path
        self._h5 = None
        self._npz = None
        if path.endswith(".npy"):
            self.kind = "npy"
            self._npy = np.load(path, mmap_mode="r")
        elif path.endswith(".npz"):
            self.kind = "npz"
            self._npz = np.load(path)
        elif path.endswith((".h5", ".hdf5")):
            import h5py
            self.kind = "h5"
            self._h5 = h5py.File(path, "r")
        else:
            sys.exit(f"baseline.py: {path}: unknown extension (expected .npy, .npz, .h5)")

    def get(self, name):
        if self.kind == "npy":
            if name != "attentions":
                sys.exit(f"baseline.py: {self.path}: a .npy holds only one tensor (attention)")
            return self._npy
        if self.kind == "npz":
            return self._npz[name]          # np.load of an npz member reads it whole
        return self._h5[name]               # h5py dataset: ds[l] reads one layer


# ----------------------------------------------------------------------------------------- stats

def layer_stats(a, layer):
    """a: (H, Q, K) float32 of one layer. Returns a list of per-head records."""
    H, Q, K = a.shape
    nan_count = np.isnan(a).sum(axis=(1, 2))
    inf_count = np.isinf(a).sum(axis=(1, 2))
    neg_count = (a < 0).sum(axis=(1, 2))
    amin = a.min(axis=(1, 2))
    amax = a.max(axis=(1, 2))
    mean = a.mean(axis=(1, 2), dtype=np.float64)
    rowsum = a.sum(axis=2, dtype=np.float64)                       # (H, Q)
    row_dev = np.abs(rowsum - 1.0).max(axis=1)
    # entropy: -sum p ln p with 0 ln 0 = 0 (rows not renormalised)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = a * np.log(np.where(a > 0, a, 1.0).astype(np.float32, copy=False))
    row_h = -plogp.sum(axis=2)                                      # float32 pairwise sum over keys
    ent = row_h.mean(axis=1, dtype=np.float64)
    first = a[:, :, 0].mean(axis=1, dtype=np.float64)
    n = min(Q, K)
    diag = np.diagonal(a, axis1=1, axis2=2)[:, :n].mean(axis=1, dtype=np.float64)
    prev = (np.diagonal(a, offset=-1, axis1=1, axis2=2).mean(axis=1, dtype=np.float64)
            if Q > 1 else np.full(H, np.nan))
    lnk = math.log(K) if K > 1 else float("nan")

    def f(x):
        x = float(x)
        return x if math.isfinite(x) else None

    recs = []
    for h in range(H):
        recs.append({
            "layer": layer, "head": h,
            "entropy": f(ent[h]), "normalized_entropy": f(ent[h] / lnk),
            "min": f(amin[h]), "max": f(amax[h]), "mean": f(mean[h]),
            "row_sum_max_dev": f(row_dev[h]),
            "first_token": f(first[h]), "self": f(diag[h]), "previous_token": f(prev[h]),
            "nan_count": int(nan_count[h]), "inf_count": int(inf_count[h]),
            "negative_count": int(neg_count[h]),
            # heads' names, ÷Q (row 0 has no previous token and counts as 0)
            "attn_first": f(first[h]), "attn_self": f(diag[h]),
            "attn_previous": f(prev[h] * (Q - 1) / Q) if Q > 1 else None,
        })
    return recs


def attention_from_qk(q, k):
    """q, k: (H, S, d) -> softmax(q k^T / sqrt(d)) per head, float32, row max subtracted."""
    q = np.asarray(q, dtype=np.float32)
    k = np.asarray(k, dtype=np.float32)
    s = np.matmul(q, k.transpose(0, 2, 1))
    s *= np.float32(1.0 / math.sqrt(q.shape[-1]))
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return s


def print_stats(path, L, H, Q, K, source, records):
    out = {"file": path, "layers": L, "heads": H, "queries": Q, "keys": K,
           "source": source, "records": records}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


def cmd_stats(path):
    d = Dump(path)
    A = d.get("attentions")
    L, H, Q, K = A.shape
    records = []
    for l in range(L):
        a = np.asarray(A[l], dtype=np.float32)
        records += layer_stats(a, l)
    print_stats(path, L, H, Q, K, "stored attention", records)


def cmd_qk(path):
    d = Dump(path)
    q_all = d.get("q")
    k_all = d.get("k")
    L, H, S, _ = q_all.shape
    records = []
    for l in range(L):
        a = attention_from_qk(q_all[l], k_all[l])
        records += layer_stats(a, l)
    print_stats(path, L, H, S, S, "recomputed from q and k", records)


# --------------------------------------------------------------------------------------- rollout

def cmd_rollout(path, out):
    d = Dump(path)
    A = d.get("attentions")
    L, H, Q, K = A.shape
    if Q != K:
        sys.exit(f"baseline.py: {path}: rollout needs square attention, got {Q}x{K}")
    eye = np.eye(Q, dtype=np.float32)
    R = None
    for l in range(L):
        a = np.asarray(A[l], dtype=np.float32)
        F = a.mean(axis=0)                             # mean over heads, (Q, K)
        Ah = F + eye
        Ah /= Ah.sum(axis=1, keepdims=True)
        R = Ah if R is None else Ah @ R                # R = A_{L-1} ... A_0
    np.save(out, R.astype(np.float32, copy=False))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["stats", "rollout", "qk"])
    ap.add_argument("file")
    ap.add_argument("--out", "-o", help="rollout: the output .npy")
    args = ap.parse_args()
    if args.command == "stats":
        cmd_stats(args.file)
    elif args.command == "qk":
        cmd_qk(args.file)
    else:
        if not args.out:
            ap.error("rollout needs --out OUT.npy")
        cmd_rollout(args.file, args.out)


if __name__ == "__main__":
    main()
