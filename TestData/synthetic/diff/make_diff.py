#!/usr/bin/env python3
"""Two dumps of the same shape for `attninspect diff`, with numpy's float64 answers
(TestData/synthetic/diff/). Needs numpy.

  a.npy = ../base_f32.npy (3,2,10,10);  b.npy = ../batch_LBHQK.npy[:, 0] (another attention of that shape)
  expected.json: per layer and head,
    max_abs_diff  = max |A − B|
    js_divergence = mean over query rows of JS(A_i, B_i) in nats, JS(p, q) = ½ Σ p ln(p/m) + ½ Σ q ln(q/m),
                    m = (p + q)/2, terms with a zero numerator counting 0
  and diff_last_mean = mean_h A[-1] − mean_h B[-1] (the difference image's values).
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
a = np.load(os.path.join(HERE, "..", "base_f32.npy"))
b = np.ascontiguousarray(np.load(os.path.join(HERE, "..", "batch_LBHQK.npy"))[:, 0])
np.save(os.path.join(HERE, "a.npy"), a)
np.save(os.path.join(HERE, "b.npy"), b)
A, B = a.astype(np.float64), b.astype(np.float64)


def kl(p, m):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, p * np.log(p / m), 0.0)
    return t.sum(axis=-1)


M = (A + B) / 2
js = 0.5 * kl(A, M) + 0.5 * kl(B, M)          # (L, H, Q)
out = {"max_abs_diff": np.abs(A - B).max(axis=(2, 3)).tolist(), "js_divergence": js.mean(axis=2).tolist(),
       "diff_last_mean": (A[-1].mean(axis=0) - B[-1].mean(axis=0)).tolist()}
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(out, f)
print(out["js_divergence"])
