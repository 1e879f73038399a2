#!/usr/bin/env python3
"""Dumps that are not quite attention, for `attninspect verify` (TestData/synthetic/verify/). Needs numpy.

  transposed.npy  base_f32 with the last two axes swapped: its columns sum to 1, its rows do not
  causal.npy      (2, 3, 10, 10): every row i uniform over keys 0..i (lower-triangular, rows sum to 1)
  logits.npy      ln(base_f32 + 0.001): negative values, rows far from summing to 1
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
base = np.load(os.path.join(HERE, "..", "base_f32.npy"))
np.save(os.path.join(HERE, "transposed.npy"), np.ascontiguousarray(base.transpose(0, 1, 3, 2)))
lower = np.tril(np.ones((10, 10)))
lower /= lower.sum(axis=1, keepdims=True)
np.save(os.path.join(HERE, "causal.npy"), np.ascontiguousarray(np.broadcast_to(lower, (2, 3, 10, 10))).astype(np.float32))
np.save(os.path.join(HERE, "logits.npy"), np.log(base + np.float32(1e-3)).astype(np.float32))
print("wrote", sorted(os.listdir(HERE)))
