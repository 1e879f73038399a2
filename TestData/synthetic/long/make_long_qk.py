#!/usr/bin/env python3
"""A long sequence's q and k, for the streamed recomputation (numpy + h5py, seed 2112): a decoder layer of
2048 tokens, 2 query heads over 1 key head (GQA), d = 8, float16, causal, with a sliding window of 256 on the
second file. The whole layer recomputed would be 2 × 2048 × 2048 float32 (32 MiB, 64 MiB with its scores);
attninspect must compute every statistic below while holding only row blocks, under --max-memory 12M.

  qk_2048.h5         q (1, 2, 2048, 8), k (1, 1, 2048, 8) float16; causal = 1, qk_axes
  qk_2048_window.h5  the same with sliding_window = 256
  expected.json      per file, per head (float64 numpy from the float16 values as stored): entropy (mean row
                     entropy), first_token (mean attention to key 0), self (mean of the diagonal), max;
                     heads' mean_row_max, attn_previous, sink_share (keys 0-3), previous_token (TransformerLens:
                     sum of a[i, i-1] over the sum of a), mean_attention_distance (sum of a[i, j]·|i - j| / S);
                     top_keys: the 5 keys receiving the largest column sum, with share (sum / S) and mean
                     (sum / the number of queries that see the key)
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
    out = {"entropy": [], "first_token": [], "self": [], "max": [], "mean_row_max": [], "attn_previous": [],
           "sink_share": [], "previous_token": [], "mean_attention_distance": [], "top_keys": []}
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
        out["mean_row_max"].append(float(a.max(-1).mean()))
        previous = float(np.diag(a, -1).sum())
        out["attn_previous"].append(previous / S)
        out["sink_share"].append(float(a[:, :4].sum(-1).mean()))
        out["previous_token"].append(previous / float(a.sum()))
        out["mean_attention_distance"].append(float((a * np.abs(i - j)).sum() / S))
        columns = a.sum(0)
        seeing = visible.sum(0)
        top = sorted(range(S), key=lambda c: (-columns[c], c))[:5]
        out["top_keys"].append([{"key": c, "share": float(columns[c] / S), "mean": float(columns[c] / seeing[c])}
                                for c in top])
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
print({n: {k: v for k, v in e.items() if k != "top_keys"} for n, e in expected.items()})
