#!/usr/bin/env python3
"""q and k whose axes are not in attninspect's default order, for --axes and the qk_axes attribute (numpy + h5py,
seed 20261206). One array pair is written in every layout, so each case has a known answer:

  qk_canonical.npz   q (L, B, H, S, D) = (2, 3, 3, 5, 4), k (2, 3, 1, 5, 4) (one key head: grouped-query), float32;
                     read by its number of axes as [layer, batch, head, position, dim]: the reference
  qk_LBSHD.npz       the same as projections of a batch, heads × dim merged: (L, B, S, H·D), k (L, B, S, 1·D).
                     The batch (3) equals the head count (3): read by rank as (L, H, S, D), it would be other
                     numbers without a word; --axes L,B,S,HD --heads 3 reads the reference
  qk_BLHSD.npz       the batch first: (B, L, H, S, D), --axes B,L,H,S,D
  qk_LBSHD5.npz      heads after positions, as TransformerLens's hooks hold them: (L, B, S, H, D), --axes L,B,S,H,D
  qk_LBSHD_attrs.h5  qk_LBSHD.npz's arrays with the root attributes qk_axes = "L,B,S,HD" and num_heads = 3
  qk_family_dotted.npz  sample 0 as per-layer families under Hugging Face-style names,
                     model.layers.N.self_attn.q / .k (H, S, D): q and k, never taken for attention
  qk_tl_hooks.npz    sample 0 as a TransformerLens cache saved with nested names: blocks/N/attn/hook_rot_q and
                     hook_rot_k (B, S, H, D) = (1, 5, 3, 4) and (1, 5, 1, 4), beside blocks/N/attn/hook_result
                     (1, 5, 3, 4), the heads' outputs, which is not attention

Expected: every file, read with its declaration and --batch b, gives exactly the q and k of qk_canonical.npz with
--batch b.
"""
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261206)
L, B, H, HKV, S, D = 2, 3, 3, 1, 5, 4
q = rng.normal(size=(L, B, H, S, D)).astype(np.float32)
k = rng.normal(size=(L, B, HKV, S, D)).astype(np.float32)
np.savez(os.path.join(HERE, "qk_canonical.npz"), q=q, k=k)


def merged(x):  # (L, B, H, S, D) -> (L, B, S, H*D)
    return np.ascontiguousarray(x.transpose(0, 1, 3, 2, 4).reshape(L, B, S, -1))


np.savez(os.path.join(HERE, "qk_LBSHD.npz"), q=merged(q), k=merged(k))
np.savez(os.path.join(HERE, "qk_BLHSD.npz"), q=np.ascontiguousarray(q.transpose(1, 0, 2, 3, 4)),
         k=np.ascontiguousarray(k.transpose(1, 0, 2, 3, 4)))
np.savez(os.path.join(HERE, "qk_LBSHD5.npz"), q=np.ascontiguousarray(q.transpose(0, 1, 3, 2, 4)),
         k=np.ascontiguousarray(k.transpose(0, 1, 3, 2, 4)))
with h5py.File(os.path.join(HERE, "qk_LBSHD_attrs.h5"), "w", libver=("earliest", "v110")) as f:
    f["q"] = merged(q)
    f["k"] = merged(k)
    f.attrs["qk_axes"] = "L,B,S,HD"
    f.attrs["num_heads"] = np.int64(H)
family = {}
for layer in range(L):
    family[f"model.layers.{layer}.self_attn.q"] = q[layer, 0]
    family[f"model.layers.{layer}.self_attn.k"] = k[layer, 0]
np.savez(os.path.join(HERE, "qk_family_dotted.npz"), **family)

hooks = {}
for layer in range(L):
    hooks[f"blocks/{layer}/attn/hook_rot_q"] = np.ascontiguousarray(q[layer, :1].transpose(0, 2, 1, 3))
    hooks[f"blocks/{layer}/attn/hook_rot_k"] = np.ascontiguousarray(k[layer, :1].transpose(0, 2, 1, 3))
    hooks[f"blocks/{layer}/attn/hook_result"] = rng.normal(size=(1, S, H, D)).astype(np.float32)
np.savez(os.path.join(HERE, "qk_tl_hooks.npz"), **hooks)
