#!/usr/bin/env python3
"""A long sequence's q and k, for the streamed recomputation (numpy + h5py, seed 2112): a decoder layer of
2048 tokens, 2 query heads over 1 key head (GQA), d = 8, float16, causal, with a sliding window of 256 on the
second file. The whole layer recomputed would be 2 × 2048 × 2048 float32 (32 MiB, 64 MiB with its scores);
attninspect must compute every statistic below while holding only row blocks, under --max-memory 12M.

  qk_2048.h5         q (1, 2, 2048, 8), k (1, 1, 2048, 8) float16; causal = 1, qk_axes
  qk_2048_window.h5  the same with sliding_window = 256
  expected.json      per file, per head (float64 numpy from the float16 values as stored): entropy (mean row
                     entropy), first_token (mean attention to key 0), self (mean of the diagonal), max
"""
import json
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(2112)
S, H, HKV, D = 2048, 2, 1, 8
q = (rng.standard_normal((1, H, S, D)) * 1.2).astype(np.float16)
k = (rng.standard_normal((1, HKV, S, D)) * 1.2).astype(np.float16)
k[0, :, 0, :] += 2.0  # a sink at key 0


def statistics(window):
    out = {"entropy": [], "first_token": [], "self": [], "max": []}
    i = np.arange(S)[:, None]
    j = np.arange(S)[None, :]
    visible = (j <= i) & ((j > i - window) if window else True)
    for h in range(H):
        qh = q[0, h].astype(np.float64)
        kh = k[0, h * HKV // H].astype(np.float64)
        logits = np.where(visible, qh @ kh.T / np.sqrt(D), -np.inf)
        a = np.exp(logits - logits.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            plogp = np.where(a > 0, a * np.log(a), 0.0)
        out["entropy"].append(float(-plogp.sum(-1).mean()))
        out["first_token"].append(float(a[:, 0].mean()))
        out["self"].append(float(np.diag(a).mean()))
        out["max"].append(float(a.max()))
    return out


expected = {}
for name, window in (("qk_2048.h5", None), ("qk_2048_window.h5", 256)):
    with h5py.File(os.path.join(HERE, name), "w", libver=("earliest", "v110")) as f:
        f["q"] = q
        f["k"] = k
        f.attrs["causal"] = np.int8(1)
        f.attrs["qk_axes"] = "layer,head,position,dim"
        if window:
            f.attrs["sliding_window"] = np.int64(window)
    expected[name] = statistics(window)
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
print({n: {k: [round(x, 6) for x in v] for k, v in e.items()} for n, e in expected.items()})
