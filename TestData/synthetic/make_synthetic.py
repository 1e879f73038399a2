#!/usr/bin/env python3
"""Deterministic synthetic fixtures for attninspect (TestData/synthetic/).

Run from anywhere:  python3 TestData/synthetic/make_synthetic.py
Needs numpy and h5py. Every .h5 is written with libver=("earliest","v110") so that
HDF5 1.10.x (Debian's libhdf5 / h5dump 1.10.8) can read it; the script then checks
every .h5 with /usr/bin/h5dump (if present) and compares float16 values.

Value convention: the "base" attention is generated in float64 and then rounded to
float32; the float64 files hold exactly those float32-representable values, so every
f32/f64 encoding of the base array stores the same numbers and expected.json "base"
applies to all of them exactly. The float16 files hold base_f32.astype(float16);
expected.json "base_f16" is computed from those stored float16 values.
"""
import json
import os
import shutil
import subprocess

import h5py
import numpy as np
from numpy.lib import format as npf

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = os.path.join(HERE, "bad")
os.makedirs(BAD, exist_ok=True)

L, H, Q, K = 3, 2, 10, 10
S, D = 10, 4
GRID = (3, 3)
PREFIX = 1
LIBVER = ("earliest", "v110")

rng = np.random.default_rng(20240601)


def p(*parts):
    return os.path.join(HERE, *parts)


def softmax_rows(logits):
    m = logits.max(axis=-1, keepdims=True)
    e = np.exp(logits - m)
    return e / e.sum(axis=-1, keepdims=True)


def random_attention(shape, scale=1.5, zeros=0):
    """Random softmax rows (float64), optionally with `zeros` exact zeros, renormalised."""
    a = softmax_rows(rng.normal(size=shape) * scale)
    if zeros:
        flat_rows = a.reshape(-1, shape[-1])
        rows = rng.choice(flat_rows.shape[0], size=zeros, replace=False)
        for r in rows:
            cols = rng.choice(shape[-1], size=int(rng.integers(1, 3)), replace=False)
            flat_rows[r, cols] = 0.0
            flat_rows[r] /= flat_rows[r].sum()
    return a


# ---------------------------------------------------------------- base data
base64_raw = random_attention((L, H, Q, K), scale=1.5, zeros=0)
# deterministic, documented exact zeros (0*ln0 exercised) + renormalise
ZERO_POS = [(0, 0, 3, 7), (0, 0, 3, 8), (0, 1, 5, 2), (1, 0, 0, 9), (1, 1, 9, 9), (2, 0, 4, 0), (2, 1, 6, 1), (2, 1, 6, 2)]
# tiny values that become float16 SUBNORMALS (< 2**-14 ~ 6.1e-5) in the f16 files
TINY_POS = {(0, 1, 2, 3): 4e-5, (1, 0, 7, 1): 2e-6, (1, 1, 3, 0): 1e-7, (2, 0, 8, 8): 3.0e-5, (2, 1, 0, 4): 6e-6}
for (l, h, i, j) in ZERO_POS:
    base64_raw[l, h, i, j] = 0.0
for pos, v in TINY_POS.items():
    base64_raw[pos] = v
for (l, h, i) in sorted(set(z[:3] for z in ZERO_POS) | set(t[:3] for t in TINY_POS)):
    base64_raw[l, h, i] /= base64_raw[l, h, i].sum()
base_f32 = base64_raw.astype(np.float32)
base_f64 = base_f32.astype(np.float64)          # exactly the f32 values
base_f16 = base_f32.astype(np.float16)

q32 = rng.normal(size=(L, H, S, D)).astype(np.float32)
k32 = rng.normal(size=(L, H, S, D)).astype(np.float32)

TOKENS = ["[CLS]", "café", "p(0,1)", "p(0,2)", "p(1,0)", "p(1,1)", "p(1,2)", "p(2,0)", "p(2,1)", "p(2,2)"]
# the "p(0,0)" patch is token 1, called "café" to test non-ASCII text
assert len(TOKENS) == Q
MODEL = "synthetic attninspect fixture (L=3,H=2,S=10=1 CLS+3x3 patches)"


# ---------------------------------------------------------------- NPY
def save_npy(name, arr, version=None, fortran=False):
    arr = np.asfortranarray(arr) if fortran else np.ascontiguousarray(arr)
    with open(p(name), "wb") as f:
        npf.write_array(f, arr, version=version)


save_npy("base_f32.npy", base_f32, version=(1, 0))
save_npy("base_f16.npy", base_f16, version=(1, 0))
save_npy("base_f64.npy", base_f64, version=(1, 0))
save_npy("base_f32_be.npy", base_f32.astype(">f4"), version=(1, 0))
save_npy("base_f64_be.npy", base_f64.astype(">f8"), version=(1, 0))
save_npy("base_f16_be.npy", base_f16.astype(">f2"), version=(1, 0))
save_npy("base_f32_fortran.npy", base_f32, version=(1, 0), fortran=True)
save_npy("base_f16_fortran_be.npy", base_f16.astype(">f2"), version=(1, 0), fortran=True)
save_npy("base_v2.npy", base_f32, version=(2, 0))
save_npy("base_v3.npy", base_f32, version=(3, 0))

B = 3
batch0 = random_attention((L, H, Q, K), scale=1.0).astype(np.float32)
batch2 = random_attention((L, H, Q, K), scale=2.5).astype(np.float32)
batch = np.stack([batch0, base_f32, batch2], axis=1)  # (L,B,H,Q,K)
assert batch.shape == (L, B, H, Q, K)
save_npy("batch_LBHQK.npy", batch)
save_npy("one_layer_HQK.npy", base_f32[2])
save_npy("one_map_QK.npy", base_f32[1, 0])

nan_inf = base_f32.copy()
NAN_POS = [(0, 0, 1, 2), (1, 1, 4, 4), (2, 0, 9, 0)]
INF_POS = [(0, 1, 0, 0), (2, 1, 3, 5)]
NEG_POS = [(1, 0, 2, 3)]
for pos in NAN_POS:
    nan_inf[pos] = np.nan
for pos in INF_POS:
    nan_inf[pos] = np.inf
for pos in NEG_POS:
    nan_inf[pos] = np.float32(-0.125)
save_npy("nan_inf.npy", nan_inf)

# ---------------------------------------------------------------- NPZ
tokens_u = np.array(TOKENS)  # '<U6'
np.savez(p("dump_savez.npz"), attentions=base_f32, q=q32, k=k32, tokens=tokens_u)
np.savez_compressed(p("dump_savez_compressed.npz"), attentions=base_f32, q=q32, k=k32, tokens=tokens_u)
np.savez_compressed(p("qk_only.npz"), q=q32, k=k32)


# ---------------------------------------------------------------- HDF5
def h5(name, where=HERE):
    return h5py.File(os.path.join(where, name), "w", libver=LIBVER)


def root_attrs(f):
    f.attrs["model"] = MODEL
    f.attrs["patch_grid"] = np.array(GRID, dtype=np.int64)
    f.attrs["prefix_tokens"] = np.int64(PREFIX)


with h5("single_f32.h5") as f:
    f.create_dataset("attentions", data=base_f32)  # contiguous
    f.create_dataset("tokens", data=TOKENS, dtype=h5py.string_dtype("utf-8"))
    root_attrs(f)

with h5("single_f16_gzip.h5") as f:
    f.create_dataset("attentions", data=base_f16, chunks=(1, 1, Q, K), compression="gzip", compression_opts=4)
    # fixed-length 12-byte strings, NUL-padded, UTF-8 charset ("café" is 5 bytes)
    tok = np.array([t.encode("utf-8") for t in TOKENS], dtype="S12")
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(12)
    tid.set_strpad(h5py.h5t.STR_NULLPAD)
    tid.set_cset(h5py.h5t.CSET_UTF8)
    dsid = h5py.h5d.create(f.id, b"tokens", tid, h5py.h5s.create_simple((Q,)))
    dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, tok, mtype=tid)
    root_attrs(f)

with h5("single_f64_batch.h5") as f:
    other = random_attention((L, H, Q, K), scale=0.7).astype(np.float32).astype(np.float64)
    f.create_dataset("attn", data=np.stack([base_f64, other], axis=1))  # (L,2,H,Q,K)

with h5("per_layer_groups_f16.h5") as f:
    for l in range(L):
        g = f.create_group(f"layer_{l:02d}")
        g.create_dataset("attn", data=base_f16[l])
        g.create_dataset("q", data=q32[l].astype(np.float16))
        g.create_dataset("k", data=k32[l].astype(np.float16))
    f.create_dataset("tokens", data=TOKENS, dtype=h5py.string_dtype("utf-8"))
    f.attrs["model"] = MODEL

layers12 = np.stack([random_attention((H, Q, K), scale=0.5 + 0.25 * l) for l in range(12)]).astype(np.float32)
save_npy("layers12_reference.npy", layers12)
order12 = rng.permutation(12)
with h5("layers_numbered.h5") as f:
    g = f.create_group("layers")
    for l in order12:
        g.create_group(str(l)).create_dataset("attention", data=layers12[l])

attn11 = np.stack([random_attention((H, Q, K), scale=0.5 + 0.3 * l) for l in range(11)]).astype(np.float32)
save_npy("attn11_reference.npy", attn11)
order11 = rng.permutation(11)
with h5("attn_flat.h5") as f:
    for l in order11:
        f.create_dataset(f"attn_{l}", data=attn11[l])

with h5("qk_LHSd.h5") as f:
    f.create_dataset("q", data=q32)
    f.create_dataset("k", data=k32)


def to_LShd(x):  # (L,H,S,d) -> (L,S,H*d), head h in columns h*d..h*d+d-1
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3).reshape(L, S, H * D))


with h5("qk_LShd.h5") as f:
    f.create_dataset("q", data=to_LShd(q32))
    f.create_dataset("k", data=to_LShd(k32))
    f.attrs["num_heads"] = np.int64(H)

with h5("qk_LBHSd.h5") as f:
    q_other = rng.normal(size=(L, H, S, D)).astype(np.float32)
    k_other = rng.normal(size=(L, H, S, D)).astype(np.float32)
    f.create_dataset("query", data=np.stack([q32, q_other], axis=1))
    f.create_dataset("key", data=np.stack([k32, k_other], axis=1))

with h5("both_attn_and_qk.h5") as f:
    f.create_dataset("attentions", data=base_f32)
    f.create_dataset("q", data=q32)
    f.create_dataset("k", data=k32)

# ---------------------------------------------------------------- bad inputs
bad_readme = {}


def bad(name, what):
    bad_readme[name] = what
    return os.path.join(BAD, name)


raw = open(p("base_f32.npy"), "rb").read()
hdr_len = 10 + int.from_bytes(raw[8:10], "little")  # v1.0 header
with open(bad("truncated.npy", f"valid v1.0 header for (3,2,10,10) <f4 but only {(len(raw) - hdr_len) // 2} of {len(raw) - hdr_len} data bytes"), "wb") as f:
    f.write(raw[: hdr_len + (len(raw) - hdr_len) // 2])
with open(bad("header_truncated.npy", "file ends inside the header (first 40 bytes of base_f32.npy; header claims more)"), "wb") as f:
    f.write(raw[:40])
hdr = "{'descr': '<f4', 'fortran_order': False, }"
hdr = hdr + " " * (hdr_len - 10 - len(hdr) - 1) + "\n"
assert 10 + len(hdr) == hdr_len
with open(bad("corrupt_header.npy", "v1.0 header dict has no 'shape' key (descr and fortran_order only); data bytes intact"), "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr.encode("latin1") + raw[hdr_len:])
with open(bad("bad_magic.npy", "magic string is b'\\x93NUMPX' instead of b'\\x93NUMPY'; rest identical to base_f32.npy"), "wb") as f:
    f.write(b"\x93NUMPX" + raw[6:])
np.save(bad("int32.npy", "dtype '<i4', shape (3,2,10,10): integer data, not an attention dtype"),
        (base_f64 * 1000).astype("<i4"))
np.save(bad("complex64.npy", "dtype '<c8' (complex64), shape (3,2,10,10)"), base_f32.astype(np.complex64))
obj = np.empty(3, dtype=object)
obj[0], obj[1], obj[2] = base_f32[0], "text", {"a": 1}
np.save(bad("object.npy", "object array (descr '|O'), pickled payload (saved with allow_pickle=True); must be refused, never unpickled"),
        obj, allow_pickle=True)
np.save(bad("rank1.npy", "shape (7,) float32: rank 1, cannot be an attention map"), np.linspace(0, 1, 7, dtype=np.float32))
np.save(bad("rank6.npy", "shape (1,1,1,1,2,2) float32: rank 6, too many axes"), np.full((1, 1, 1, 1, 2, 2), 0.5, dtype=np.float32))
zraw = open(p("dump_savez_compressed.npz"), "rb").read()
with open(bad("truncated.npz", "dump_savez_compressed.npz cut to its first half (no central directory)"), "wb") as f:
    f.write(zraw[: len(zraw) // 2])
with open(bad("not_a_dump.txt", "plain text, not NPY/NPZ/HDF5"), "w") as f:
    f.write("This is not an attention dump.\nJust some text, 3 lines of it.\nattentions = [[0.5, 0.5]]\n")
with h5("no_attention.h5", BAD) as f:
    f.create_dataset("labels", data=np.arange(12, dtype=np.int32))
    f.create_dataset("loss_curve", data=np.linspace(2.0, 0.1, 20))
bad_readme["no_attention.h5"] = "valid HDF5 with only /labels (int32, (12,)) and /loss_curve (float64, (20,)): no attention tensor"
with h5("qk_mismatch.h5", BAD) as f:
    f.create_dataset("q", data=q32)
    f.create_dataset("k", data=rng.normal(size=(L, H, S, 5)).astype(np.float32))
bad_readme["qk_mismatch.h5"] = "/q (3,2,10,4) and /k (3,2,10,5) f32: head sizes differ, q k^T impossible"
np.savez(bad("two_candidates.npz", "members 'foo' and 'bar', both (3,2,10,10) float32, no conventional name: ambiguous, tool must list both"),
         foo=base_f32, bar=batch2)
hraw = open(p("single_f32.h5"), "rb").read()
with open(bad("truncated.h5", f"single_f32.h5 cut to 60% ({int(len(hraw) * 0.6)} of {len(hraw)} bytes)"), "wb") as f:
    f.write(hraw[: int(len(hraw) * 0.6)])
with open(os.path.join(BAD, "BAD_FILES.txt"), "w") as f:
    for k_, v in bad_readme.items():
        f.write(f"{k_}: {v}\n")


# ---------------------------------------------------------------- expected values (float64)
def entropy_rows(a):
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(a > 0, -a * np.log(np.where(a > 0, a, 1.0)), 0.0)
    return t.sum(axis=-1)


def stats(A):
    A = np.asarray(A, dtype=np.float64)
    Ln, Hn, Qn, Kn = A.shape
    out = {k_: np.zeros((Ln, Hn)) for k_ in
           ["entropy", "normalized_entropy", "min", "max", "mean", "row_sum_max_dev", "first_token", "self", "previous_token"]}
    for l in range(Ln):
        for h in range(Hn):
            a = A[l, h]
            e = entropy_rows(a).mean()
            out["entropy"][l, h] = e
            out["normalized_entropy"][l, h] = e / np.log(Kn)
            out["min"][l, h] = a.min()
            out["max"][l, h] = a.max()
            out["mean"][l, h] = a.mean()
            out["row_sum_max_dev"][l, h] = np.abs(a.sum(axis=1) - 1.0).max()
            out["first_token"][l, h] = a[:, 0].mean()
            n = min(Qn, Kn)
            out["self"][l, h] = np.mean([a[i, i] for i in range(n)])
            out["previous_token"][l, h] = np.mean([a[i, i - 1] for i in range(1, Qn)])
    return {k_: v.tolist() for k_, v in out.items()}


def fuse(A_l, how):
    return {"mean": A_l.mean(axis=0), "max": A_l.max(axis=0), "min": A_l.min(axis=0)}[how]


def rollout(A, how, r, start, end):
    A = np.asarray(A, dtype=np.float64)
    n = A.shape[-1]
    R = np.eye(n)
    for l in range(start, end + 1):
        F = fuse(A[l], how).copy()
        if r > 0:
            kk = int(np.floor(r * F.size))
            flat = F.reshape(-1)
            idx = np.argsort(flat, kind="stable")[:kk]
            idx = idx[idx != 0]
            flat[idx] = 0.0
        Ah = F + np.eye(n)
        Ah = Ah / Ah.sum(axis=1, keepdims=True)
        R = Ah @ R
    return R


ROLLOUT_CASES = [
    ("mean_r0", "mean", 0.0, 0, 2),
    ("max_r0", "max", 0.0, 0, 2),
    ("min_r0", "min", 0.0, 0, 2),
    ("mean_r0.5", "mean", 0.5, 0, 2),
    ("max_r0.9", "max", 0.9, 0, 2),
    ("mean_r0_start1_end2", "mean", 0.0, 1, 2),
    ("mean_r0_start0_end0", "mean", 0.0, 0, 0),
]


def rollout_entry(A, name, how, r, s, e):
    return {"fusion": how, "discard_ratio": r, "start_layer": s, "end_layer": e,
            "k_discarded_candidates": int(np.floor(r * Q * K)),
            "matrix": rollout(A, how, r, s, e).tolist()}


def recompute(q, k, scale=None, causal=False):
    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    d = q.shape[-1]
    sc = 1.0 / np.sqrt(d) if scale is None else scale
    s = np.einsum("lhid,lhjd->lhij", q, k) * sc
    if causal:
        n = s.shape[-1]
        s = np.where(np.triu(np.ones((n, n), dtype=bool), k=1), -np.inf, s)
    s = s - s.max(axis=-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=-1, keepdims=True)


def fusion_all(A):
    A = np.asarray(A, dtype=np.float64)
    return {how: np.stack([fuse(A[l], how) for l in range(A.shape[0])]).tolist() for how in ("mean", "max", "min")}


A = base_f32.astype(np.float64)
A16 = base_f16.astype(np.float64)
rmean = rollout(A, "mean", 0.0, 0, 2)

nan_positions = ([{"index": list(pp), "value": "nan"} for pp in NAN_POS]
                 + [{"index": list(pp), "value": "+inf"} for pp in INF_POS]
                 + [{"index": list(pp), "value": -0.125} for pp in NEG_POS])
nan_cnt = np.isnan(nan_inf).sum(axis=(2, 3))
inf_cnt = np.isinf(nan_inf).sum(axis=(2, 3))
neg_cnt = (nan_inf < 0).sum(axis=(2, 3))

expected = {
    "description": "float64 reference values computed with numpy from the values as stored; see TestData/README.md",
    "base": {
        "stored_dtype": "float32 (base_f32.npy etc.; the f64 files hold the same float32-representable values)",
        "applies_to": ["base_f32.npy", "base_f64.npy", "base_f32_be.npy", "base_f64_be.npy", "base_f32_fortran.npy",
                       "base_v2.npy", "base_v3.npy", "batch_LBHQK.npy[:,1]", "dump_savez.npz:attentions",
                       "dump_savez_compressed.npz:attentions", "single_f32.h5:/attentions",
                       "single_f64_batch.h5:/attn[:,0]", "both_attn_and_qk.h5:/attentions (without --from-qk)"],
        "L": L, "H": H, "Q": Q, "K": K,
        "exact_zero_positions": [list(z) for z in ZERO_POS],
        "stats": stats(A),
        "fusion": fusion_all(A),
        "rollout": {name: rollout_entry(A, name, how, r, s, e) for (name, how, r, s, e) in ROLLOUT_CASES},
        "grid": {
            "patch_grid": list(GRID), "prefix_tokens": PREFIX,
            "layer2_mean_token0_prefix1": A[2].mean(axis=0)[0, 1:].reshape(GRID).tolist(),
            "rollout_mean_r0_token0_prefix1": rmean[0, 1:].reshape(GRID).tolist(),
        },
        "recompute_qk": {
            "source": "q,k float32 as stored (qk_LHSd.h5, qk_LShd.h5, qk_LBHSd.h5 batch 0, dump_savez*.npz, qk_only.npz, both_attn_and_qk.h5)",
            "d": D,
            "scale_default": recompute(q32, k32).tolist(),
            "causal": recompute(q32, k32, causal=True).tolist(),
            "scale_0.25": recompute(q32, k32, scale=0.25).tolist(),
        },
        "nan_inf": {
            "file": "nan_inf.npy",
            "positions": nan_positions,
            "nan_count_per_head": nan_cnt.tolist(),
            "inf_count_per_head": inf_cnt.tolist(),
            "negative_count_per_head": neg_cnt.tolist(),
        },
    },
    "base_f16": {
        "stored_dtype": "float16 (base_f32.astype(float16))",
        "applies_to": ["base_f16.npy", "base_f16_be.npy", "base_f16_fortran_be.npy", "single_f16_gzip.h5:/attentions",
                       "per_layer_groups_f16.h5:/layer_NN/attn"],
        "L": L, "H": H, "Q": Q, "K": K,
        "float16_subnormal_count": int(((A16 > 0) & (A16 < 2.0 ** -14)).sum()),
        "float16_subnormal_positions": [list(map(int, x)) for x in np.argwhere((A16 > 0) & (A16 < 2.0 ** -14))],
        "exact_zero_count": int((A16 == 0).sum()),
        "stats": stats(A16),
        "fusion": fusion_all(A16),
        "rollout": {"mean_r0": rollout_entry(A16, "mean_r0", "mean", 0.0, 0, 2)},
        "recompute_qk_f16": {
            "source": "per_layer_groups_f16.h5 /layer_NN/q,k (float16 as stored)",
            "scale_default": recompute(q32.astype(np.float16), k32.astype(np.float16)).tolist(),
        },
    },
    "batch_LBHQK": {
        "batch0_stats_entropy": stats(batch0)["entropy"],
        "batch1_stats_entropy": stats(A)["entropy"],
        "batch2_stats_entropy": stats(batch2)["entropy"],
    },
    "layers_numbered": {"creation_order": order12.tolist(), "entropy": stats(layers12)["entropy"]},
    "attn_flat": {"creation_order": order11.tolist(), "entropy": stats(attn11)["entropy"]},
}
with open(p("expected.json"), "w", encoding="utf-8") as f:
    json.dump(expected, f, indent=1, ensure_ascii=False)
    f.write("\n")


# ---------------------------------------------------------------- self checks
def h5dump_values(path, dset):
    out = subprocess.run(["/usr/bin/h5dump", "-d", dset, "-y", "-w", "0", "-m", "%.17g", path],
                         capture_output=True, text=True, check=True).stdout
    body = out.split("DATA {", 1)[1].rsplit("}", 3)[0]
    return np.array([float(x) for x in body.replace("\n", " ").split(",") if x.strip()])


assert np.array_equal(np.load(p("base_f16_fortran_be.npy")), base_f16)
assert np.array_equal(np.load(p("base_v3.npy")), base_f32)
assert np.array_equal(np.load(p("batch_LBHQK.npy"))[:, 1], base_f32)
if os.path.exists("/usr/bin/h5dump"):
    h5files = sorted([p(n) for n in os.listdir(HERE) if n.endswith(".h5")] +
                     [os.path.join(BAD, n) for n in os.listdir(BAD) if n.endswith(".h5") and n != "truncated.h5"])
    for path in h5files:
        r = subprocess.run(["/usr/bin/h5dump", "-H", path], capture_output=True)
        assert r.returncode == 0, (path, r.stderr)
        r = subprocess.run(["/usr/bin/h5dump", path], capture_output=True)  # full data dump too
        assert r.returncode == 0, (path, r.stderr)
        with h5py.File(path, "r") as f:
            dsets = []
            f.visititems(lambda n, o: dsets.append(n) if isinstance(o, h5py.Dataset) and o.dtype.kind == "f" else None)
            for n in dsets:
                ref = f[n][()].astype(np.float64).ravel()
                got = h5dump_values(path, "/" + n)
                assert got.shape == ref.shape and np.array_equal(got, ref), (path, n)
    r = subprocess.run(["/usr/bin/h5dump", "-H", os.path.join(BAD, "truncated.h5")], capture_output=True)
    assert r.returncode != 0
    print("h5dump 1.10.8 check: OK for", len(h5files), "files")
print("wrote", len(os.listdir(HERE)), "entries in", HERE)
