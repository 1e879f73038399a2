"""Padding fixtures: attention with pad tokens and the mask or lengths that say which are real.

Run from this directory: python3 make_padding.py (numpy + h5py + safetensors, seed 11). Expected values are float64 numpy
computations on the real tokens only, from the values as stored (float32): the sub-matrix of real queries × real
keys, rows NOT renormalised (a model masking its padding gives pad keys exactly 0 weight, as here).
"""
import json
import numpy as np
import h5py

rng = np.random.default_rng(11)
L, H, S, d = 2, 2, 8, 4


def masked_softmax(logits, keep):
    x = np.where(keep[None, None, None, :], logits, -np.inf)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def stats(a):
    a = a.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(a > 0, a * np.log(a), 0.0)
    ent = -plogp.sum(-1).mean(-1)
    n = a.shape[-1]
    return {
        "entropy": ent.tolist(),
        "normalized_entropy": (ent / np.log(n)).tolist(),
        "first_token": a[..., 0].mean(-1).tolist(),
        "self": np.diagonal(a, axis1=-2, axis2=-1).mean(-1).tolist(),
        "row_sum_max_dev": np.abs(a.sum(-1) - 1).max(-1).tolist(),
    }


def rollout(a):
    a = a.astype(np.float64)
    r = None
    for l in range(a.shape[0]):
        f = a[l].mean(0) + np.eye(a.shape[-1])
        f = f / f.sum(-1, keepdims=True)
        r = f if r is None else f @ r
    return r


# Sample 0 right-padded (6 real), sample 1 left-padded (2 pads, then 6 real).
masks = np.array([[1, 1, 1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1, 1, 1]], dtype=np.int64)
attn = np.stack([masked_softmax(rng.normal(size=(L, H, S, S)) * 1.5, masks[b].astype(bool)) for b in range(2)], axis=1)
attn = attn.astype(np.float32)  # (L, B, H, S, S)
tokens = np.array(["[CLS]", "the", "cat", "sat", "down", "[SEP]", "[PAD]", "[PAD]"])
np.savez("padded_mask.npz", attentions=attn, attention_mask=masks, tokens=tokens)
from safetensors.numpy import save_file  # noqa: E402
# safetensors 0.8 writes a non-contiguous view wrongly (layer 1 came out as other data): copy first.
save_file({"attentions": np.ascontiguousarray(attn[:, 1]), "attention_mask": np.ascontiguousarray(masks[1:2])},
          "padded_mask_sample1.safetensors")  # I64 (1, 8)
# The same mask as big-endian int16 in Fortran order, batch first.
np.save("mask_be_fortran.npy", np.asfortranarray(masks.astype(">i2")))
with h5py.File("padded_mask_bool.h5", "w", libver=("earliest", "v110")) as f:
    f["attentions"] = attn
    f["attention_mask"] = masks.astype(bool)   # h5py writes numpy bool as an HDF5 enum of int8

expected = {"padded_mask": {}}
for b in range(2):
    keep = np.flatnonzero(masks[b])
    sub = attn[:, b][:, :, keep][:, :, :, keep]
    expected["padded_mask"][f"sample{b}"] = {"kept": keep.tolist(), "stats": stats(sub), "rollout": rollout(sub).tolist()}

# One sequence, no batch axis, right-padded, its length as a scalar `lengths`, per-layer HDF5 datasets.
keep5 = np.arange(S) < 5
one = masked_softmax(rng.normal(size=(L, H, S, S)) * 1.5, keep5).astype(np.float32)
with h5py.File("padded_lengths.h5", "w", libver=("earliest", "v110")) as f:
    for l in range(L):
        f[f"layer_{l:02d}/attn"] = one[l]
    f["lengths"] = np.int32(5)
expected["padded_lengths"] = {"stats": stats(one[:, :, :5, :5])}
# --length 3 on the same file: the first 3 tokens (pad rows and columns beyond dropped, no renormalising).
expected["padded_lengths_length3"] = {"stats": stats(one[:, :, :3, :3])}

# Q and K with a mask: attention recomputed over the real keys only (the pads' logits excluded before softmax).
q = rng.normal(size=(L, H, S, d)).astype(np.float32)
k = rng.normal(size=(L, H, S, d)).astype(np.float32)
qk_mask = np.array([1, 1, 1, 1, 1, 1, 1, 0], dtype=np.uint8)
np.savez("padded_qk.npz", q=q, k=k, attention_mask=qk_mask)
keep7 = np.flatnonzero(qk_mask)
logits = np.einsum("lhid,lhjd->lhij", q.astype(np.float64)[:, :, keep7], k.astype(np.float64)[:, :, keep7]) / np.sqrt(d)
e = np.exp(logits - logits.max(-1, keepdims=True))
expected["padded_qk"] = {"stats": stats(e / e.sum(-1, keepdims=True))}

# The same q and k beside the attention the model computed from them (pad keys masked, every row over the 7 real
# keys), for `verify`'s comparison: padding is excluded from both.
full = np.einsum("lhid,lhjd->lhij", q.astype(np.float64), k.astype(np.float64)) / np.sqrt(d)
full[..., qk_mask == 0] = -np.inf
e_full = np.exp(full - full.max(-1, keepdims=True))
np.savez("padded_attn_qk.npz", attentions=(e_full / e_full.sum(-1, keepdims=True)).astype(np.float32), q=q, k=k,
         attention_mask=qk_mask)

# Bad masks.
np.savez("bad_mask_length.npz", attentions=attn[:, 0], attention_mask=np.ones(7, dtype=np.int64))
np.savez("bad_mask_empty.npz", attentions=attn[:, 0], attention_mask=np.zeros(S, dtype=np.int64))
np.savez("bad_lengths.npz", attentions=attn[:, 0], lengths=np.array([9]))

with open("expected.json", "w") as f:
    json.dump(expected, f, indent=1)
