"""Fixtures for gradient-weighted rollout (Chefer et al. 2021, hila-chefer/Transformer-MM-Explainability).

Run from this directory: python3 make_gradient_cases.py   (numpy + h5py; fixed seed, deterministic).

The reference below is written from the paper's rule and the repository's ViT notebook
(`avg_heads`: cam = (grad * cam).clamp(min=0).mean(dim=0); `apply_self_attention_rules`:
R_ss_addition = cam_ss @ R_ss; `generate_relevance`: R = I, then for each block in order R += cam @ R),
in float64 on the values as stored (float32).
"""
import json
import numpy as np
import h5py

rng = np.random.default_rng(20261128)
L, H, S = 3, 2, 10


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


attn = softmax(rng.normal(size=(L, H, S, S)) * 1.5).astype(np.float32)
# Gradients of a class score with respect to the attention: signed, small, some exactly zero.
grad = (rng.normal(size=(L, H, S, S)) * 0.5).astype(np.float32)
grad[0, 1, 3, :] = 0
grad[2, 0, :, 4] = -np.abs(grad[2, 0, :, 4])  # a column whose products are all clamped to 0


def chefer(a, g, layers):
    a = a.astype(np.float64)
    g = g.astype(np.float64)
    r = np.eye(a.shape[-1])
    for l in layers:
        cam = np.clip(g[l] * a[l], 0, None).mean(axis=0)
        r = r + cam @ r
    return r


full = chefer(attn, grad, range(L))
from_layer_1 = chefer(attn, grad, range(1, L))

np.savez("attn_grad.npz", attentions=attn, attn_grad=grad)
with h5py.File("per_layer_grads.h5", "w", libver=("earliest", "v110")) as f:
    for l in range(L):
        f[f"layer_{l:02d}/attn"] = attn[l]
        f[f"layer_{l:02d}/attn_grad"] = grad[l]
    f.attrs["model"] = "synthetic"
# Gradients under an unconventional name, and a file whose gradients have the wrong shape.
np.savez("custom_name.npz", attentions=attn, relevance_grads=grad)
np.savez("wrong_shape.npz", attentions=attn, grads=grad[:2])
np.savez("no_grads.npz", attentions=attn)

with open("expected.json", "w") as f:
    json.dump({
        "shape": [L, H, S, S],
        "rollout_all_layers": full.tolist(),
        "rollout_from_layer_1": from_layer_1.tolist(),
        "hand_worked": {
            "note": "layer-0 row-0 clamp check: Ā₀[0, j] = mean_h max(0, g·a) for j = 0..9",
            "cam0_row0": np.clip(grad[0].astype(np.float64) * attn[0].astype(np.float64), 0, None).mean(axis=0)[0].tolist(),
        },
    }, f, indent=1)
print("max |R - I| =", np.abs(full - np.eye(S)).max())
