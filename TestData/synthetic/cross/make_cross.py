"""Cross-attention fixtures (queries ≠ keys, and square cross-attention that the file declares). Run from this directory: python3 make_cross.py (numpy + h5py, seed 7).

Expected values are float64 numpy computations from the values as stored (float32).
"""
import json
import numpy as np
import h5py

rng = np.random.default_rng(7)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# Text decoder queries (5) attending to encoder tokens (8).
text = softmax(rng.normal(size=(2, 3, 5, 8)) * 1.3).astype(np.float32)
np.savez("cross_text.npz", attentions=text,
         tokens=np.array(["<s>", "le", "chat", "dort", "</s>"]),
         key_tokens=np.array(["[CLS]", "the", "cat", "is", "asleep", "on", "mats", "[SEP]"]))

# Four text queries attending to an image encoder's CLS + 3×4 patches (13 keys), as HDF5.
vision = softmax(rng.normal(size=(2, 2, 4, 13)) * 1.3).astype(np.float32)
with h5py.File("cross_vision.h5", "w", libver=("earliest", "v110")) as f:
    f["attentions"] = vision
    f.attrs["patch_grid"] = np.array([3, 4], dtype=np.int64)
    f.attrs["prefix_tokens"] = 1

# Square cross-attention: a decoder of 6 tokens attending to an encoder of 6 (queries = keys in number only).
# cross_square.npz says so by its key_tokens; cross_square_attr.h5 by a root attribute cross_attention (no key labels).
square = softmax(rng.normal(size=(2, 2, 6, 6)) * 1.3).astype(np.float32)
np.savez("cross_square.npz", attentions=square, tokens=np.array(["<s>", "le", "chat", "dort", "bien", "</s>"]),
         key_tokens=np.array(["[CLS]", "the", "cat", "sleeps", "well", "[SEP]"]))
with h5py.File("cross_square_attr.h5", "w", libver=("earliest", "v110")) as f:
    f["attentions"] = square
    f["tokens"] = np.array([t.encode() for t in ["<s>", "le", "chat", "dort", "bien", "</s>"]], dtype=h5py.string_dtype())
    f.attrs["cross_attention"] = np.int8(1)


def stats(a):
    a = a.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(a > 0, a * np.log(a), 0.0)
    ent = -plogp.sum(-1).mean(-1)
    k = a.shape[-1]
    return {
        "entropy": ent.tolist(),
        "normalized_entropy": (ent / np.log(k)).tolist(),
        "first_token": a[..., 0].mean(-1).tolist(),
        "min": a.min((-1, -2)).tolist(),
        "max": a.max((-1, -2)).tolist(),
        "mean": a.mean((-1, -2)).tolist(),
    }


v = vision.astype(np.float64)
expected = {
    "cross_text": {"shape": list(text.shape), "stats": stats(text),
                   "layer1_mean": text[1].astype(np.float64).mean(0).tolist()},
    "cross_vision": {"shape": list(vision.shape), "stats": stats(vision),
                     # query 2 of layer 1, heads averaged, CLS dropped, 3×4 row-major
                     "grid_layer1_query2": v[1].mean(0)[2, 1:].reshape(3, 4).tolist()},
    "cross_square": {"shape": list(square.shape), "stats": stats(square)},
}
with open("expected.json", "w") as f:
    json.dump(expected, f, indent=1)
