#!/usr/bin/env python3
"""Two decoder layers of q and k for the streamed rollout row (numpy + h5py, seed 2113): 1024 tokens, 2 query heads
over 1 key head, d = 8, float16, causal. A whole layer recomputed is 2 × 1024 × 1024 float32 (8 MiB, 16 MiB with
its scores), over the tests' --max-memory 12M: `rollout --view row` must visit each layer in row blocks.

  qk_1024_2layers.h5     q (2, 2, 1024, 8), k (2, 1, 1024, 8) float16; causal = 1, qk_axes
  expected_rollout.json  float64 numpy: rows 1000 and 511 of the rollout through both layers,
                         eᵀ·Â₁·Â₀ with Âₗ = rows-normalised(mean over heads of Aₗ + I)
"""
import json
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(2113)
L, S, H, HKV, D = 2, 1024, 2, 1, 8
q = (rng.standard_normal((L, H, S, D)) * 1.2).astype(np.float16)
k = (rng.standard_normal((L, HKV, S, D)) * 1.2).astype(np.float16)
k[:, :, 0, :] += 2.0  # a sink at key 0

with h5py.File(os.path.join(HERE, "qk_1024_2layers.h5"), "w", libver=("earliest", "v110")) as f:
    f["q"] = q
    f["k"] = k
    f.attrs["causal"] = np.int8(1)
    f.attrs["qk_axes"] = "layer,head,position,dim"

causal = np.tril(np.ones((S, S), dtype=bool))
augmented = []
for layer in range(L):
    mean = np.zeros((S, S))
    for h in range(H):
        logits = q[layer, h].astype(np.float64) @ k[layer, h * HKV // H].astype(np.float64).T / np.sqrt(D)
        logits = np.where(causal, logits, -np.inf)
        a = np.exp(logits - logits.max(-1, keepdims=True))
        mean += a / a.sum(-1, keepdims=True) / H
    f = mean + np.eye(S)
    augmented.append(f / f.sum(-1, keepdims=True))
expected = {}
for token in (1000, 511):
    v = np.zeros(S)
    v[token] = 1
    for a in reversed(augmented):
        v = v @ a
    expected[str(token)] = v.tolist()
with open(os.path.join(HERE, "expected_rollout.json"), "w") as f:
    json.dump(expected, f)
