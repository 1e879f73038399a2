#!/usr/bin/env python3
"""Single query rows of the long fixtures (numpy + h5py, from the files make_long_qk.py wrote): what `grid --token
i` and `tokens --query i` show, recomputed for that row only.

  expected_rows.json  per file: for queries 0, 1000 and 2047, the attention of that query row averaged over the
                      2 heads (float64 numpy from the float16 q and k as stored), 2048 values each; and "diff":
                      per head, qk_2048.h5 against qk_2048_window.h5, the largest |A - B| and the mean over the
                      query rows of the Jensen-Shannon divergence between the rows (nats)
"""
import json
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
out = {}
for name, window in (("qk_2048.h5", None), ("qk_2048_window.h5", 256)):
    with h5py.File(os.path.join(HERE, name), "r") as f:
        q = f["q"][0].astype(np.float64)
        k = f["k"][0].astype(np.float64)
    heads, s, d = q.shape
    rows = {}
    for i in (0, 1000, 2047):
        j = np.arange(s)
        visible = (j <= i) & ((j > i - window) if window else True)
        mean = np.zeros(s)
        for h in range(heads):
            logits = np.where(visible, k[h * k.shape[0] // heads] @ q[h, i] / np.sqrt(d), -np.inf)
            a = np.exp(logits - logits.max())
            mean += a / a.sum() / heads
        rows[str(i)] = mean.tolist()
    out[name] = rows


def attention(name, window):
    with h5py.File(os.path.join(HERE, name), "r") as f:
        q = f["q"][0].astype(np.float64)
        k = f["k"][0].astype(np.float64)
    heads, s, d = q.shape
    i, j = np.arange(s)[:, None], np.arange(s)[None, :]
    visible = (j <= i) & ((j > i - window) if window else True)
    maps = []
    for h in range(heads):
        logits = np.where(visible, q[h] @ k[h * k.shape[0] // heads].T / np.sqrt(d), -np.inf)
        a = np.exp(logits - logits.max(-1, keepdims=True))
        maps.append(a / a.sum(-1, keepdims=True))
    return maps


diff = {"max_abs_diff": [], "js_divergence": []}
for a, b in zip(attention("qk_2048.h5", None), attention("qk_2048_window.h5", 256)):
    m = (a + b) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(a > 0, 0.5 * a * np.log(a / m), 0.0) + np.where(b > 0, 0.5 * b * np.log(b / m), 0.0)
    diff["max_abs_diff"].append(float(np.abs(a - b).max()))
    diff["js_divergence"].append(float(terms.sum(-1).mean()))
out["diff"] = diff
with open(os.path.join(HERE, "expected_rows.json"), "w") as f:
    json.dump(out, f)
