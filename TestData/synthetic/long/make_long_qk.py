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
                     (sum / the number of queries that see the key); for qk_2049.h5, cells of heatmap's default
                     pooling (2×2, the last row and column of cells holding one position): [query cell, key cell,
                     value] of the mean over heads
  expected_pool64.npy  qk_2048.h5's map pooled to cells of 64×64 (each the mean of its values), float64
                     [3, 32, 32]: the mean over heads, head 0, head 1
  qk_2049.h5         2049 tokens (one over heatmap's 2048 cells a side without pooling), 2 query heads over 1 key
                     head, d = 4, float16, causal: the default pooling and its partial cells
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


def attention(q, k, h, window):
    """Head h's attention, float64 from the float16 values as stored: [query, key]."""
    s, d = q.shape[2], q.shape[3]
    i = np.arange(s)[:, None]
    j = np.arange(s)[None, :]
    visible = (j <= i) & ((j > i - window) if window else True)
    qh = q[0, h].astype(np.float64)
    kh = k[0, h * k.shape[1] // q.shape[1]].astype(np.float64)
    logits = np.where(visible, qh @ kh.T / np.sqrt(d), -np.inf)
    a = np.exp(logits - logits.max(-1, keepdims=True))
    return a / a.sum(-1, keepdims=True)


def pooled(a, n):
    """[query, key] pooled to cells of n × n, each the mean of its values (the last cells partial)."""
    rows = [a[r:r + n] for r in range(0, a.shape[0], n)]
    return np.array([[block[:, c:c + n].mean() for c in range(0, a.shape[1], n)] for block in rows])


def statistics(window):
    out = {"entropy": [], "first_token": [], "self": [], "max": [], "mean_row_max": [], "attn_previous": [],
           "sink_share": [], "previous_token": [], "mean_attention_distance": [], "top_keys": []}
    i = np.arange(S)[:, None]
    j = np.arange(S)[None, :]
    visible = (j <= i) & ((j > i - window) if window else True)
    for h in range(H):
        a = attention(q, k, h, window)
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
heads = [attention(q, k, h, None) for h in range(H)]
np.save(os.path.join(HERE, "expected_pool64.npy"),
        np.stack([pooled(sum(heads) / H, 64)] + [pooled(a, 64) for a in heads]))

# Drawn after the 2048-token file's q and k, which stay as they were.
S2 = 2049
q2 = (rng.standard_normal((1, H, S2, 4)) * 1.2).astype(np.float16)
k2 = (rng.standard_normal((1, HKV, S2, 4)) * 1.2).astype(np.float16)
with h5py.File(os.path.join(HERE, "qk_2049.h5"), "w", libver=("earliest", "v110")) as f:
    f["q"] = q2
    f["k"] = k2
    f.attrs["causal"] = np.int8(1)
    f.attrs["qk_axes"] = "layer,head,position,dim"
mean2 = pooled(sum(attention(q2, k2, h, None) for h in range(H)) / H, 2)
expected["qk_2049.h5"] = {"pool2": [[r, c, float(mean2[r, c])] for r, c in
                                    ((0, 0), (1, 0), (517, 301), (1024, 0), (1024, 1023), (1024, 1024))]}
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
print({n: {k: v for k, v in e.items() if k != "top_keys"} for n, e in expected.items()})
