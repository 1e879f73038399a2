#!/usr/bin/env python3
"""Rollouts of the pride dump as two published implementations compute them, transcribed to numpy in float64
(TestData/real/minilm6_pride_compat.expected.json). vit-explain's own rollout is in the shared oracle already.

Run from anywhere:  python3 TestData/real/make_compat_oracles.py   (needs numpy)

  vit_keras: faustomorales/vit-keras, vit_keras/visualize.py `attention_map`:
      reshaped = weights.mean(axis=heads) + I;  reshaped /= reshaped.sum(axis=(1, 2));  v = reshaped[-1];
      for n in 1..L-1: v = v @ reshaped[-1 - n]        (the whole S×S v, not only its CLS row)
  chefer: hila-chefer/Transformer-Explainability, baselines `compute_rollout_attention(all_layer_matrices,
      start_layer=1)` on head-averaged attention: A_l + I, rows divided by their sums, joint = Â_1, then
      joint = Â_i @ joint for i = 2..L-1.
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
A = np.load(os.path.join(HERE, "minilm6_pride_LHSS_f32.npy")).astype(np.float64)   # (L, H, S, S)
L, H, S, _ = A.shape
eye = np.eye(S)

fused = A.mean(axis=1) + eye
keras = fused / fused.sum(axis=(1, 2))[:, None, None]
v = keras[-1]
for n in range(1, L):
    v = v @ keras[-1 - n]

rows = fused / fused.sum(axis=-1, keepdims=True)
joint = rows[1]
for i in range(2, L):
    joint = rows[i] @ joint

with open(os.path.join(HERE, "minilm6_pride_compat.expected.json"), "w") as f:
    json.dump({"vit_keras": v.tolist(), "chefer_start1": joint.tolist()}, f)
print("vit-keras sum", v.sum(), "chefer row sums", joint.sum(axis=1)[:3])
