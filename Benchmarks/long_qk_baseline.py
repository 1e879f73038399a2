#!/usr/bin/env python3
"""What a user writes for per-head statistics of a long causal layer from q and k, with numpy (the baseline of
issue 21): softmax(Q·Kᵀ/√d) with the causal mask, one head at a time, chunked over query rows so that it fits,
and per head the mean row entropy, the attention to token 0, the diagonal and the maximum.

    python3 Benchmarks/long_qk_baseline.py /tmp/attninspect-bench/llama3_qk_S4096.h5

Reads q (1, H, S, d) and k (1, H_kv, S, d) as Benchmarks/make_long_qk.py writes them (query head h uses key head
h·H_kv/H), in float32. Prints one JSON line per head; compare with `attninspect stats FILE --json`.
"""
import json
import sys

import h5py
import numpy as np

CHUNK = 512

with h5py.File(sys.argv[1], "r") as f:
    q = f["q"][0].astype(np.float32)
    k = f["k"][0].astype(np.float32)
heads, s, d = q.shape
scale = np.float32(1 / np.sqrt(d))
for h in range(heads):
    kh = k[h * k.shape[0] // heads]
    entropy = first = diagonal = 0.0
    largest = 0.0
    for r0 in range(0, s, CHUNK):
        r1 = min(s, r0 + CHUNK)
        scores = (q[h, r0:r1] @ kh[:r1].T) * scale  # only the keys the chunk can see
        rows = np.arange(r0, r1)[:, None]
        scores[np.arange(r1)[None, :] > rows] = -np.inf
        scores -= scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy -= np.where(p > 0, p * np.log(p), 0).sum(dtype=np.float64)
        first += p[:, 0].sum(dtype=np.float64)
        diagonal += p[np.arange(r1 - r0), np.arange(r0, r1)].sum(dtype=np.float64)
        largest = max(largest, float(p.max()))
    print(json.dumps({"head": h, "entropy": entropy / s, "first_token": first / s, "self": diagonal / s,
                      "max": largest}))
