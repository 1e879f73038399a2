#!/usr/bin/env python3
"""Stand-ins for the files README.md's examples name without shipping them (`dump.h5`, `padded.h5`, ...), so that
`make check-readme` (scripts/check_readme.py) can run every example. Each is small and built as the README
describes it; numbers in the README's output blocks come from running attninspect on these files, and the checker
compares them with the binary on every CI run. Needs numpy and h5py (run with /usr/bin/python3 on Debian); fixed
seed, so two runs give the same arrays.

  dump.h5          text dump: /attentions (4 layers, 4 heads, 12 × 12, float32 softmax rows) and /tokens
  dump.npy         the same attention as .npy (np.save of the (L, H, Q, K) array)
  batch_padded.npz attention (L=2, B=3, H=2, 10 × 10) with attention_mask (3, 10): 10, 7 and 4 real tokens,
                   the pad keys of each sample's rows given no weight, as a model that masks padding does
  padded.h5        attention (2, 2, 30, 30) of which the first 23 tokens are real (pad keys masked), /tokens
  vit_with_grads.h5 a ViT-like dump: /attentions (3, 3, 17, 17) = CLS + a 4 × 4 patch grid, /attn_grad of the
                   same shape, root attributes patch_grid [4, 4] and prefix_tokens 1
  input.png        the 64 × 64 RGB picture that dump "saw" (a gradient), written with zlib
  before.h5, after.h5  the same model before and after fine-tuning: after = before with logits perturbed
  truncated.npy    an .npy whose header promises (3, 2, 10, 10) float32 but which holds half the data
  qk.h5            /q (3, 2, 10, 4) and /k (3, 2, 10, 5): key and query dims that do not match
"""
import os
import struct
import zlib

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261206)


def softmax_rows(logits, real=None):
    """Rows of exp(logits) over the keys; with `real` (keys kept), the other keys get exactly 0."""
    x = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(x)
    if real is not None:
        e[..., real:] = 0.0
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def h5(name):
    return h5py.File(os.path.join(HERE, name), "w", libver=("earliest", "v110"))


def strings(f, name, values):
    f.create_dataset(name, data=values, dtype=h5py.string_dtype())


words = ["[CLS]", "the", "cat", "sat", "on", "the", "mat", "because", "it", "was", "tired", "[SEP]"]
attention = softmax_rows(rng.normal(size=(4, 4, 12, 12)) * 2.0)
with h5("dump.h5") as f:
    f["attentions"] = attention
    strings(f, "tokens", words)
np.save(os.path.join(HERE, "dump.npy"), attention)

lengths = [10, 7, 4]
batch = np.stack([softmax_rows(rng.normal(size=(2, 2, 10, 10)) * 1.5, real=n) for n in lengths], axis=1)
mask = np.array([[1] * n + [0] * (10 - n) for n in lengths], dtype=np.int64)
np.savez(os.path.join(HERE, "batch_padded.npz"), attentions=batch, attention_mask=mask)

with h5("padded.h5") as f:
    f["attentions"] = softmax_rows(rng.normal(size=(2, 2, 30, 30)) * 1.5, real=23)
    strings(f, "tokens", [f"w{i}" for i in range(23)] + ["[PAD]"] * 7)

with h5("vit_with_grads.h5") as f:
    f["attentions"] = softmax_rows(rng.normal(size=(3, 3, 17, 17)) * 1.5)
    f["attn_grad"] = (rng.normal(size=(3, 3, 17, 17)) * 0.01).astype(np.float32)
    f.attrs["patch_grid"] = np.array([4, 4], dtype=np.int64)
    f.attrs["prefix_tokens"] = np.int64(1)


def png(path, rgb):
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                  + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


y, x = np.mgrid[0:64, 0:64]
png(os.path.join(HERE, "input.png"), np.stack([x * 4, y * 4, np.full_like(x, 128)], axis=-1).astype(np.uint8))

logits = rng.normal(size=(3, 4, 12, 12)) * 2.0
with h5("before.h5") as f:
    f["attentions"] = softmax_rows(logits)
    strings(f, "tokens", words)
with h5("after.h5") as f:
    f["attentions"] = softmax_rows(logits + rng.normal(size=logits.shape) * 0.3)
    strings(f, "tokens", words)

header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 10, 10), }"
header += " " * (63 - (10 + len(header)) % 64) + "\n"
with open(os.path.join(HERE, "truncated.npy"), "wb") as out:
    out.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
    out.write(softmax_rows(rng.normal(size=(3, 2, 10, 10))).tobytes()[:1200])

with h5("qk.h5") as f:
    f["q"] = rng.normal(size=(3, 2, 10, 4)).astype(np.float32)
    f["k"] = rng.normal(size=(3, 2, 10, 5)).astype(np.float32)
print("wrote the README's stand-ins in", HERE)
