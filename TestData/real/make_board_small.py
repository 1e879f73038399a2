#!/usr/bin/env python3
"""Cut-down ViT-S/14 board dump: the last 3 layers (9, 10, 11) of vits14_board_attn_f16.h5.

Usage: python3 TestData/real/make_board_small.py [/work/shared/realdata]
Writes vits14_board_small.h5 and vits14_board_small.expected.json next to this script.
Same layout conventions as the full dump: /attentions (3,6,257,257) float16, chunks (1,1,257,257),
gzip level 4, no shuffle; /q, /k (3,6,257,64) float16 contiguous; root attributes model, patch_grid,
prefix_tokens copied exactly. Written with libver=("earliest","v110") so HDF5 1.10.x reads it.
Expected values: float64 numpy from the float16 values as stored in the SMALL file, cross-checked
against the full dump's oracle (per_head for layers 9..11 and cls_grid_last_layer_head_mean).
"""
import json
import os
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_DIR = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/realdata"
SRC = os.path.join(SRC_DIR, "vits14_board_attn_f16.h5")
ORACLE = os.path.join(SRC_DIR, "vits14_board_attn_f16.oracle.json")
OUT = os.path.join(HERE, "vits14_board_small.h5")
OUT_JSON = os.path.join(HERE, "vits14_board_small.expected.json")
LAYERS = [9, 10, 11]

with h5py.File(SRC, "r") as f:
    att = f["/attentions"][LAYERS]
    q = f["/q"][LAYERS]
    k = f["/k"][LAYERS]
    src_chunks = f["/attentions"].chunks
    attrs = {n: f.attrs[n] for n in ("model", "patch_grid", "prefix_tokens")}
assert att.dtype == np.float16 and att.shape == (3, 6, 257, 257) and src_chunks == (1, 1, 257, 257)

with h5py.File(OUT, "w", libver=("earliest", "v110")) as f:
    f.create_dataset("attentions", data=att, chunks=(1, 1, 257, 257), compression="gzip", compression_opts=4,
                     shuffle=False)
    f.create_dataset("q", data=q)  # contiguous, uncompressed
    f.create_dataset("k", data=k)
    # same attribute types as the source: scalar vlen UTF-8 str, int64 (2,), int64 scalar
    f.attrs["model"] = str(attrs["model"])
    f.attrs["patch_grid"] = np.asarray(attrs["patch_grid"], dtype=np.int64)
    f.attrs["prefix_tokens"] = np.int64(attrs["prefix_tokens"])

# ---- re-read what was stored, compute in float64
with h5py.File(OUT, "r") as f:
    A = f["/attentions"][()].astype(np.float64)
    Q16 = f["/q"][()]
    K16 = f["/k"][()]
    gh, gw = (int(x) for x in f.attrs["patch_grid"])
    prefix = int(f.attrs["prefix_tokens"])
    model = f.attrs["model"]
Lp, H, S, _ = A.shape
d = Q16.shape[-1]


def row_entropy(a):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(a > 0, -a * np.log(np.where(a > 0, a, 1.0)), 0.0)
    return t.sum(axis=-1)


keys = ["entropy", "normalized_entropy", "min", "max", "mean", "row_sum_max_dev", "first_token", "self", "previous_token"]
st = {kk: np.zeros((Lp, H)) for kk in keys}
for l in range(Lp):
    for h in range(H):
        a = A[l, h]
        e = row_entropy(a).mean()
        st["entropy"][l, h] = e
        st["normalized_entropy"][l, h] = e / np.log(S)
        st["min"][l, h] = a.min()
        st["max"][l, h] = a.max()
        st["mean"][l, h] = a.mean()
        st["row_sum_max_dev"][l, h] = np.abs(a.sum(axis=1) - 1.0).max()
        st["first_token"][l, h] = a[:, 0].mean()
        st["self"][l, h] = np.diagonal(a).mean()
        st["previous_token"][l, h] = np.mean(a[np.arange(1, S), np.arange(0, S - 1)])

head_mean = A.mean(axis=1)  # (L',S,S)
cls_grid_last = head_mean[-1][0, prefix:].reshape(gh, gw)

R = np.eye(S)
for l in range(Lp):
    Ah = head_mean[l] + np.eye(S)
    Ah = Ah / Ah.sum(axis=1, keepdims=True)
    R = Ah @ R
roll_grid = R[0, prefix:].reshape(gh, gw)

q64 = Q16.astype(np.float64)
k64 = K16.astype(np.float64)
sc = np.einsum("lhid,lhjd->lhij", q64, k64) / np.sqrt(d)
sc -= sc.max(axis=-1, keepdims=True)
P = np.exp(sc)
P /= P.sum(axis=-1, keepdims=True)
rec_entropy = row_entropy(P).mean(axis=-1)
rec_diff = np.abs(P - A)

sub = (A > 0) & (A < 2.0 ** -14)

# ---- cross-check with the full dump's oracle
o = json.load(open(ORACLE))
oph = o["per_head"]
for mine, theirs in [("entropy", "mean_row_entropy_nats"), ("min", "min"), ("max", "max"), ("mean", "mean"),
                     ("row_sum_max_dev", "row_sum_max_abs_dev")]:
    ref = np.array(oph[theirs])[LAYERS]
    diff = np.abs(ref - st[mine]).max()
    assert diff <= 1e-13, (mine, diff)
    print(f"oracle per_head.{theirs}[9..11]: max |diff| = {diff:.3g}")
og = np.array(o["cls_grid_last_layer_head_mean"]["grid"])
gd = np.abs(og - cls_grid_last).max()
assert gd <= 1e-15, gd
print(f"oracle cls_grid_last_layer_head_mean: max |diff| = {gd:.3g}")

out = {
    "schema": "attninspect-testdata-expected/1",
    "source_file": "vits14_board_small.h5",
    "derived_from": "vits14_board_attn_f16.h5 layers 9, 10, 11 (small file layer 0 = original layer 9)",
    "original_layers": LAYERS,
    "computed_in": "float64 numpy from the float16 values as stored in vits14_board_small.h5",
    "model": model,
    "L": Lp, "H": H, "S": S, "d_head": d, "patch_grid": [gh, gw], "prefix_tokens": prefix,
    "float16_subnormal_fraction": float(sub.mean()),
    "exact_zero_fraction": float((A == 0).mean()),
    "stats": {kk: v.tolist() for kk, v in st.items()},
    "cls_grid_last_layer_head_mean": {"layer": Lp - 1, "grid": cls_grid_last.tolist()},
    "rollout_abnar": {
        "fusion": "mean", "discard_ratio": 0.0, "start_layer": 0, "end_layer": Lp - 1,
        "definition": "A_hat_l = (mean_h A_l + I) row-normalised; R = A_hat_2 A_hat_1 A_hat_0",
        "cls_row_grid": roll_grid.tolist(),
        "summary": {"sum": float(R.sum()), "max": float(R.max()), "min": float(R.min()),
                    "trace": float(np.trace(R)), "row0": R[0].tolist()},
    },
    "recompute_from_qk": {
        "definition": "softmax(q k^T / sqrt(64)) = softmax(q k^T / 8), float64 from the float16 q,k",
        "entropy": rec_entropy.tolist(),
        "max_abs_diff_vs_stored": float(rec_diff.max()),
        "mean_abs_diff_vs_stored": float(rec_diff.mean()),
    },
    "crosscheck": {"oracle": "vits14_board_attn_f16.oracle.json",
                   "per_head_layers_9_11_max_abs_diff": None,  # filled below
                   "cls_grid_last_layer_head_mean_max_abs_diff": float(gd)},
}
out["crosscheck"]["per_head_layers_9_11_max_abs_diff"] = float(max(
    np.abs(np.array(oph[t])[LAYERS] - st[m]).max() for m, t in
    [("entropy", "mean_row_entropy_nats"), ("min", "min"), ("max", "max"), ("mean", "mean"),
     ("row_sum_max_dev", "row_sum_max_abs_dev")]))
with open(OUT_JSON, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")

# ---- HDF5 1.10.8 readability check
if os.path.exists("/usr/bin/h5dump"):
    r = subprocess.run(["/usr/bin/h5dump", "-H", "-p", OUT], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    txt = subprocess.run(["/usr/bin/h5dump", "-d", "/attentions", "-y", "-w", "0", "-m", "%.17g", OUT],
                         capture_output=True, text=True, check=True).stdout
    body = txt.split("DATA {", 1)[1].rsplit("}", 3)[0]
    vals = np.array([float(x) for x in body.replace("\n", " ").split(",") if x.strip()])
    assert vals.shape == (A.size,) and np.array_equal(vals, A.ravel()), "h5dump values differ"
    print("h5dump 1.10.8: header OK, all", vals.size, "attention values (incl. subnormals) identical")
print("size", os.path.getsize(OUT), "bytes; subnormal fraction", sub.mean())
