#!/usr/bin/env python3
"""DINO attention masks of the board dump's last stored layer, computed as facebookresearch/dino's
visualize_attention.py does (TestData/real/vits14_board_small.dino_masks.json).

Run from anywhere:  python3 TestData/real/make_dino_masks.py   (needs numpy and h5py)

For each head h of the last layer in vits14_board_small.h5 and each threshold t:
    a = attentions[-1, h, 0, 1:]                    (CLS → the 256 patches, CLS→CLS dropped)
    val, idx = sort(a)  (ascending; numpy's stable sort, where torch.sort's tie order is unspecified)
    val /= sum(val);  cumval = cumsum(val);  keep = cumval > 1 − t;  mask[idx] = keep
in float32, as torch does on the model's float32 attention; the stored values are float16, read as float32.
The mean-fused map (mean over heads in float64, as attninspect fuses) is masked the same way, in float64.
"""
import json
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
with h5py.File(os.path.join(HERE, "vits14_board_small.h5"), "r") as f:
    last = np.asarray(f["attentions"][-1], dtype=np.float32)   # (heads, 257, 257)


def dino_mask(a, t, dtype):
    a = a.astype(dtype)
    idx = np.argsort(a, kind="stable")
    val = a[idx]
    val = val / val.sum(dtype=dtype)
    cumval = np.cumsum(val, dtype=dtype)
    keep = cumval > dtype(1) - dtype(t)
    mask = np.zeros(a.shape[0], dtype=np.int64)
    mask[idx] = keep
    return mask


out = {"layer_in_file": last.shape and 2, "thresholds": [0.6, 0.9], "heads": {}, "mean": {}}
for t in out["thresholds"]:
    out["heads"][str(t)] = [dino_mask(last[h, 0, 1:], t, np.float32).tolist() for h in range(last.shape[0])]
    mean = last[:, 0, 1:].astype(np.float64).mean(axis=0)
    out["mean"][str(t)] = dino_mask(mean, t, np.float64).tolist()
with open(os.path.join(HERE, "vits14_board_small.dino_masks.json"), "w") as f:
    json.dump(out, f)
print("kept per head at 0.6:", [sum(m) for m in out["heads"]["0.6"]], "mean:", sum(out["mean"]["0.6"]))
