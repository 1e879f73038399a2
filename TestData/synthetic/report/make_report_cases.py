#!/usr/bin/env python3
"""Fixtures of `attninspect report` (numpy + h5py, seed 20261206); run from anywhere, writes next to this script.

hostile_tokens.h5: /attentions (2, 2, 6, 6) float32, rows softmax of seeded normals (each sums to 1 in float64
before rounding), and /tokens whose labels are markup and script: a report must show them as text, never run
them. vit_plain.npy: (2, 2, 17, 17) float32 softmax rows, no labels, no patch grid declared (a report infers 1 + 4 x 4).
expected.json: the tokens as written.
"""
import json
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOKENS = ["[CLS]", "</script><script>alert(1)</script>", "<img src=x onerror=alert(2)>", "\"'&amp;<b>bold</b>",
          "\u202eevil", "[SEP]"]
rng = np.random.default_rng(20261206)
logits = rng.normal(size=(2, 2, 6, 6))
a = np.exp(logits - logits.max(axis=-1, keepdims=True))
a /= a.sum(axis=-1, keepdims=True)
path = os.path.join(HERE, "hostile_tokens.h5")
with h5py.File(path, "w", libver=("earliest", "v110")) as f:
    f.create_dataset("attentions", data=a.astype(np.float32))
    f.create_dataset("tokens", data=np.array(TOKENS, dtype=h5py.string_dtype("utf-8")))
# vit_plain.npy: (2, 2, 17, 17) float32 softmax rows, nothing said about a patch grid and no labels: 1 + 4 x 4.
logits = rng.normal(size=(2, 2, 17, 17))
v = np.exp(logits - logits.max(axis=-1, keepdims=True))
v /= v.sum(axis=-1, keepdims=True)
np.save(os.path.join(HERE, "vit_plain.npy"), v.astype(np.float32))
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump({"hostile_tokens.h5": {"tokens": TOKENS}}, f, indent=1, ensure_ascii=False)
print("wrote", path)
