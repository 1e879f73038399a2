#!/usr/bin/env python3
"""Fixtures and float64 reference values for `attninspect heads` (spec: docs/heads.md).

Run from this directory:  python3 make_heads_cases.py      (numpy + h5py; fixed seed, deterministic)

Writes the synthetic dumps next to this script and expected.json with, per case, per layer and head, every
measure of docs/heads.md, the Jensen–Shannon head-similarity matrices (per layer and over all heads), the
received-attention shares and the outlier tokens. The two real dumps in ../../real/ are only read.

Everything is computed in float64 from the values as stored (float32 or float16), written from the spec,
independently of the Swift code: loops over layers, heads and rows, numpy inside a row.
"""
import json
import math
import os
import subprocess

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REAL = os.path.normpath(os.path.join(HERE, "..", "..", "real"))
SEED = 20261203
rng = np.random.default_rng(SEED)

DEFAULT_SINK_TOKENS = 4
OUTLIER_Z = 3.5
OUTLIER_MIN_RATIO = 5.0
MODZ_CONST = 0.6745
ROLE_SHARE = 0.5        # Clark et al.: ">50% of their attention"
BROAD_MAX = 0.10        # Clark et al.: broad heads "spend at most 10% of their attention mass on any single word"
CLS_LABELS = ("[CLS]",)
SEP_LABELS = ("[SEP]",)
PUNCT_LABELS = (".", ",")


# ----------------------------------------------------------------------------------------------------------------
# Reference implementation of docs/heads.md
# ----------------------------------------------------------------------------------------------------------------

def plogp_row_entropy(row):
    """−Σ a ln a over a > 0 (0·ln 0 = 0; values ≤ 0 contribute nothing), nats."""
    pos = row[row > 0]
    return float(-(pos * np.log(pos)).sum()) + 0.0  # + 0.0 turns −0.0 (a one-hot row) into 0.0


def clark_measures(a, labels):
    """a: (Q, K) float64. Clark et al. 2019 General_Analysis.ipynb: Σ_i Σ_j a[i,j]·selector[i,j] / n_rows."""
    Q, K = a.shape
    square = Q == K
    out = {}
    ent = [plogp_row_entropy(a[i]) for i in range(Q)]
    out["entropy"] = sum(ent) / Q
    out["first_query_entropy"] = ent[0]
    out["mean_row_max"] = float(sum(a[i].max() for i in range(Q)) / Q)
    out["attn_first"] = float(sum(a[i, 0] for i in range(Q)) / Q)
    if labels is None:
        out["attn_cls"] = out["attn_sep"] = out["attn_punct"] = None
    else:
        for key, wanted in (("attn_cls", CLS_LABELS), ("attn_sep", SEP_LABELS), ("attn_punct", PUNCT_LABELS)):
            cols = [j for j in range(K) if labels[j] in wanted]
            total = 0.0
            for i in range(Q):
                for j in cols:
                    total += a[i, j]
            out[key] = total / Q
    if square:
        out["attn_self"] = float(sum(a[i, i] for i in range(Q)) / Q)
        # previous: query i -> key i-1 (Clark's "left", np.eye(n, n, -1)); row 0 has none and counts 0
        out["attn_previous"] = float(sum(a[i, i - 1] for i in range(1, Q)) / Q)
        # next: query i -> key i+1 (Clark's "right", np.eye(n, n, 1)); the last row has none and counts 0
        out["attn_next"] = float(sum(a[i, i + 1] for i in range(Q - 1)) / Q)
    else:
        out["attn_self"] = out["attn_previous"] = out["attn_next"] = None
    return out


def tl_patterns(S, ids):
    """TransformerLens head_detector detection patterns (all lower triangular, 0/1)."""
    prev = np.zeros((S, S))
    for i in range(1, S):
        prev[i, i - 1] = 1.0
    if ids is None:
        return prev, None, None
    dup = np.zeros((S, S))
    ind = np.zeros((S, S))
    for i in range(S):
        for j in range(S):
            if j < i and ids[j] == ids[i]:
                dup[i, j] = 1.0
            # roll right by one column, column 0 zeroed, tril: 1 <= j <= i and ids[j-1] == ids[i] (j-1 < i)
            if 1 <= j <= i and ids[j - 1] == ids[i]:
                ind[i, j] = 1.0
    return prev, dup, ind


def tl_score(a, pattern, exclude_bos, exclude_current):
    """compute_head_attention_similarity_score, error_measure="mul": Σ(A'·P) / ΣA'."""
    if pattern is None:
        return None
    S = a.shape[0]
    if S < 2:
        return None
    ap = a.copy()
    if exclude_bos:
        ap[:, 0] = 0.0
    if exclude_current:
        for i in range(S):
            ap[i, i] = 0.0
    den = 0.0
    num = 0.0
    for i in range(S):
        den += ap[i].sum()
        num += (ap[i] * pattern[i]).sum()
    if den == 0.0:
        return None
    return num / den


def distance_matrix(positions_grid, K, prefix, grid, patch_size):
    """Distances between the kept keys/queries (prefix rows and columns dropped).
    grid mode: patch p (0-based after the prefix) at (p // cols, p % cols); d = patch_size·Euclidean distance.
    sequence mode: d = |i − j| in tokens."""
    n = K - prefix
    d = np.zeros((n, n))
    if grid is not None:
        rows, cols = grid
        assert rows * cols == n
        for p in range(n):
            for q in range(n):
                r1, c1 = divmod(p, cols)
                r2, c2 = divmod(q, cols)
                d[p, q] = (patch_size if patch_size is not None else 1.0) * math.hypot(r1 - r2, c1 - c2)
    else:
        for p in range(n):
            for q in range(n):
                d[p, q] = abs(p - q)
    return d


def mean_attention_distance(a, prefix, dist):
    """probing-vits compute_mean_attention_dist: A[prefix:, prefix:] (no renormalisation),
    Σ_k A[q,k]·d(q,k) per query, mean over the kept queries."""
    Q, K = a.shape
    if Q != K:
        return None
    sub = a[prefix:, prefix:]
    n = sub.shape[0]
    if n == 0:
        return None
    total = 0.0
    for q in range(n):
        total += float((sub[q] * dist[q]).sum())
    return total / n


def sink_share(a, k):
    Q, K = a.shape
    k = min(k, K)
    return float(sum(a[i, :k].sum() for i in range(Q)) / Q)


def js_rows(p, q):
    """mean over query rows of JS(p_i ‖ q_i), nats; terms with a zero (or negative) numerator count 0."""
    total = 0.0
    for i in range(p.shape[0]):
        m = (p[i] + q[i]) / 2
        s = 0.0
        mp = p[i] > 0
        s += 0.5 * float((p[i][mp] * np.log(p[i][mp] / m[mp])).sum())
        mq = q[i] > 0
        s += 0.5 * float((q[i][mq] * np.log(q[i][mq] / m[mq])).sum())
        total += s
    return total / p.shape[0]


def roles_of(rec):
    if rec["entropy"] is None:
        return None
    roles = []
    for name, key in (("previous", "attn_previous"), ("next", "attn_next"), ("self", "attn_self"),
                      ("cls", "attn_cls"), ("sep", "attn_sep"), ("punct", "attn_punct"), ("sink", "sink_share")):
        v = rec[key]
        if v is not None and v > ROLE_SHARE:
            roles.append(name)
    if rec["mean_row_max"] <= BROAD_MAX:
        roles.append("broad")
    return roles


MEASURE_KEYS = ["entropy", "first_query_entropy", "mean_row_max", "attn_first", "attn_cls", "attn_sep",
                "attn_punct", "attn_self", "attn_previous", "attn_next", "previous_token", "duplicate_token",
                "induction", "mean_attention_distance", "sink_share"]


def analyse(A, labels=None, ids=None, grid=None, prefix=None, patch_size=None, sink_tokens=DEFAULT_SINK_TOKENS,
            exclude_bos=False, exclude_current=False):
    """A: (L, H, Q, K) float64. Returns (records, extra)."""
    L, H, Q, K = A.shape
    square = Q == K
    match_ids = ids if ids is not None else labels
    if prefix is None:
        prefix = 1 if grid is not None else 0
    dist = distance_matrix(None, K, prefix, grid, patch_size) if square else None
    pats = tl_patterns(Q, match_ids) if square else (None, None, None)
    finite = np.isfinite(A).all(axis=(2, 3))  # (L, H)
    records = []
    for l in range(L):
        for h in range(H):
            rec = {"layer": l, "head": h}
            if not finite[l, h]:
                for k in MEASURE_KEYS:
                    rec[k] = None
                rec["roles"] = None
                records.append(rec)
                continue
            a = A[l, h]
            rec.update(clark_measures(a, labels))
            if square:
                rec["previous_token"] = tl_score(a, pats[0], exclude_bos, exclude_current)
                rec["duplicate_token"] = tl_score(a, pats[1], exclude_bos, exclude_current)
                rec["induction"] = tl_score(a, pats[2], exclude_bos, exclude_current)
                rec["mean_attention_distance"] = mean_attention_distance(a, prefix, dist)
            else:
                rec["previous_token"] = rec["duplicate_token"] = rec["induction"] = None
                rec["mean_attention_distance"] = None
            rec["sink_share"] = sink_share(a, sink_tokens)
            rec["roles"] = roles_of(rec)
            records.append({k: rec[k] for k in ["layer", "head"] + MEASURE_KEYS + ["roles"]})
    return records


def similarity(A):
    L, H, Q, K = A.shape
    finite = np.isfinite(A).all(axis=(2, 3))
    per_layer = []
    for l in range(L):
        m = [[None] * H for _ in range(H)]
        for h in range(H):
            for g in range(H):
                if finite[l, h] and finite[l, g]:
                    m[h][g] = 0.0 if h == g else js_rows(A[l, h], A[l, g])
        per_layer.append(m)
    n = L * H
    full = [[None] * n for _ in range(n)]
    for x in range(n):
        for y in range(x, n):
            lx, hx = divmod(x, H)
            ly, hy = divmod(y, H)
            if finite[lx, hx] and finite[ly, hy]:
                v = 0.0 if x == y else js_rows(A[lx, hx], A[ly, hy])
                full[x][y] = full[y][x] = v
    # the per-layer blocks must be the diagonal blocks of the full matrix
    for l in range(L):
        for h in range(H):
            for g in range(H):
                u, v = per_layer[l][h][g], full[l * H + h][l * H + g]
                assert (u is None and v is None) or abs(u - v) <= 1e-15 * max(1.0, abs(u)), (u, v)
    return per_layer, full


def received_shares(A):
    """r_l[j] = mean over the finite heads h and the queries i of A[l,h,i,j]; None for a layer with none."""
    L, H, Q, K = A.shape
    finite = np.isfinite(A).all(axis=(2, 3))
    shares = []
    for l in range(L):
        hs = [h for h in range(H) if finite[l, h]]
        if not hs:
            shares.append(None)
            continue
        r = np.zeros(K)
        for h in hs:
            for i in range(Q):
                r += A[l, h, i]
        shares.append(r / (len(hs) * Q))
    return shares


def outliers(A, labels=None, prefix=0):
    L, H, Q, K = A.shape
    shares = received_shares(A)
    flagged = {}
    zscores = []
    for l in range(L):
        r = shares[l]
        if r is None:
            zscores.append(None)
            continue
        med = float(np.median(r))
        mad = float(np.median(np.abs(r - med)))
        z = np.zeros(K)
        for j in range(K):
            if mad > 0:
                z[j] = MODZ_CONST * (r[j] - med) / mad
            else:
                z[j] = math.inf if r[j] > med else 0.0
        zscores.append({"median": med, "mad": mad})
        for j in range(K):
            if z[j] > OUTLIER_Z and r[j] * K >= OUTLIER_MIN_RATIO:
                flagged.setdefault(j, []).append(l)
    out = []
    analysed = [l for l in range(L) if shares[l] is not None]
    for j, layers in flagged.items():
        vals = [float(shares[l][j]) for l in analysed]
        out.append({
            "position": j,
            "token": labels[j] if labels is not None else None,
            "prefix": j < prefix,
            "layers": layers,
            "layer_count": len(layers),
            "max_share": max(vals),
            "mean_share": sum(vals) / len(vals),
            "max_ratio": max(vals) * K,
            "shares": [None if shares[l] is None else float(shares[l][j]) for l in range(L)],
        })
    out.sort(key=lambda o: (-o["layer_count"], -o["max_share"], o["position"]))
    return out, [None if s is None else s.tolist() for s in shares], zscores


def grid_LH(records, key, L, H):
    g = [[None] * H for _ in range(L)]
    for r in records:
        g[r["layer"]][r["head"]] = r[key]
    return g


def tl_variants(A, labels, ids):
    L, H = A.shape[:2]
    out = {}
    for name, eb, ec in (("exclude_bos", True, False), ("exclude_current_token", False, True),
                         ("exclude_bos_and_current_token", True, True)):
        recs = analyse(A, labels=labels, ids=ids, exclude_bos=eb, exclude_current=ec)
        out[name] = {k: grid_LH(recs, k, L, H) for k in ("previous_token", "duplicate_token", "induction")}
    return out


def special_positions(labels):
    if labels is None:
        return None
    return {"cls": [j for j, t in enumerate(labels) if t in CLS_LABELS],
            "sep": [j for j, t in enumerate(labels) if t in SEP_LABELS],
            "punct": [j for j, t in enumerate(labels) if t in PUNCT_LABELS]}


def case_entry(file, A, labels=None, ids=None, grid=None, prefix=None, patch_sizes=(), note=""):
    L, H, Q, K = A.shape
    pre = prefix if prefix is not None else (1 if grid is not None else 0)
    records = analyse(A, labels=labels, ids=ids, grid=grid, prefix=pre)
    per_layer, full = similarity(A)
    outl, shares, robust = outliers(A, labels=labels, prefix=pre if grid is not None else 0)
    match = "ids" if ids is not None else ("strings" if labels is not None else None)
    S = Q
    pats = tl_patterns(S, ids if ids is not None else labels) if Q == K else (None, None, None)
    entry = {
        "file": file,
        "note": note,
        "shape": [L, H, Q, K],
        "token_match": match,
        "special_tokens": special_positions(labels),
        "tl_pattern_pairs": None if pats[1] is None else {
            "duplicate_token": [[int(i), int(j)] for i, j in zip(*np.nonzero(pats[1]))],
            "induction": [[int(i), int(j)] for i, j in zip(*np.nonzero(pats[2]))]},
        "tl_pairs": None if Q != K else {
            "previous_token": int(pats[0].sum()),
            "duplicate_token": None if pats[1] is None else int(pats[1].sum()),
            "induction": None if pats[2] is None else int(pats[2].sum())},
        "parameters": {
            "sink_tokens": DEFAULT_SINK_TOKENS, "exclude_bos": False, "exclude_current_token": False,
            "token_match": match, "similarity": "layer",
            "distance": {"mode": "grid" if grid is not None else "sequence", "grid": list(grid) if grid else None,
                         "prefix": pre, "patch_size": None,
                         "unit": "patches" if grid is not None else "tokens"},
            "outlier_z": OUTLIER_Z, "outlier_ratio": OUTLIER_MIN_RATIO,
        },
        "records": records,
        "variants": tl_variants(A, labels, ids) if Q == K else {},
        "similarity_layer": per_layer,
        "similarity_all": full,
        "received_share": shares,
        "received_share_median_mad": robust,
        "outlier_tokens": outl,
    }
    entry["variants"]["sink_share_k1"] = grid_LH(analyse(A, labels=labels, ids=ids, grid=grid, prefix=pre,
                                                         sink_tokens=1), "sink_share", L, H)
    entry["variants"]["sink_share_k2"] = grid_LH(analyse(A, labels=labels, ids=ids, grid=grid, prefix=pre,
                                                         sink_tokens=2), "sink_share", L, H)
    for ps in patch_sizes:
        recs = analyse(A, labels=labels, ids=ids, grid=grid, prefix=pre, patch_size=ps)
        entry["variants"][f"mean_attention_distance_patch_size_{ps}"] = grid_LH(recs, "mean_attention_distance", L, H)
    return entry


# ----------------------------------------------------------------------------------------------------------------
# Synthetic dumps
# ----------------------------------------------------------------------------------------------------------------

def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def mix(target, noise_scale, weight):
    """weight·target + (1 − weight)·softmax(noise) per row; target rows sum to 1."""
    S = target.shape[-1]
    noise = softmax(rng.normal(size=target.shape) * noise_scale)
    return weight * target + (1 - weight) * noise


# --- text: L=2, H=3, S=12; token_ids make "The" (1) and "the" (5, 9) the same token; strings do not
TEXT_TOKENS = ["[CLS]", "The", "cat", "sat", ".", "the", "cat", "ran", ",", "the", "cat", "[SEP]"]
TEXT_IDS = np.array([101, 1996, 4937, 2938, 1012, 1996, 4937, 2743, 1010, 1996, 4937, 102], dtype=np.int64)
S = len(TEXT_TOKENS)
Lt, Ht = 2, 3
text = np.zeros((Lt, Ht, S, S))
eye = np.eye(S)
# L0H0 previous-token head (row 0 has no previous token: it attends to itself)
t = np.zeros((S, S)); t[0, 0] = 1
for i in range(1, S):
    t[i, i - 1] = 1
text[0, 0] = mix(t, 1.0, 0.85)
# L0H1 next-token head (the last row attends to itself)
t = np.zeros((S, S)); t[S - 1, S - 1] = 1
for i in range(S - 1):
    t[i, i + 1] = 1
text[0, 1] = mix(t, 1.0, 0.8)
# L0H2 broad: nearly uniform
text[0, 2] = softmax(rng.normal(size=(S, S)) * 0.05)
# L1H0 induction head (by ids): targets j with ids[j-1] == ids[i], 1 <= j <= i; otherwise [CLS]
_, dup_ids, ind_ids = tl_patterns(S, TEXT_IDS.tolist())
t = np.zeros((S, S))
for i in range(S):
    if ind_ids[i].sum() > 0:
        t[i] = ind_ids[i] / ind_ids[i].sum()
    else:
        t[i, 0] = 1
text[1, 0] = mix(t, 1.0, 0.8)
# L1H1 duplicate-token head (by ids), otherwise [SEP] (Clark's "no-op")
t = np.zeros((S, S))
for i in range(S):
    if dup_ids[i].sum() > 0:
        t[i] = dup_ids[i] / dup_ids[i].sum()
    else:
        t[i, S - 1] = 1
text[1, 1] = mix(t, 1.0, 0.8)
# L1H2 causal sink head: exact zeros above the diagonal, 0.75 on token 0
x = softmax(np.where(np.tril(np.ones((S, S))) > 0, rng.normal(size=(S, S)), -np.inf))
t = np.zeros((S, S)); t[:, 0] = 1
text[1, 2] = 0.75 * t + 0.25 * x
text32 = text.astype(np.float32)
assert np.all(text32[1, 2][np.triu_indices(S, 1)] == 0)

np.savez(os.path.join(HERE, "text.npz"), attentions=text32, tokens=np.array(TEXT_TOKENS), token_ids=TEXT_IDS)
np.savez(os.path.join(HERE, "text_strings.npz"), attentions=text32, tokens=np.array(TEXT_TOKENS))
text_nan = text32.copy()
text_nan[1, 1, 3, 4] = np.nan
np.savez(os.path.join(HERE, "text_nan.npz"), attentions=text_nan, tokens=np.array(TEXT_TOKENS),
         token_ids=TEXT_IDS)

# --- vit: CLS + 4×4 patch grid, L=2, H=3, S=17; patch 9 (token 10) gets abnormal attention in every head and layer
GR, GC = 4, 4
Sv = 1 + GR * GC
Lv, Hv = 2, 3
vit = np.zeros((Lv, Hv, Sv, Sv))
coords = [(p // GC, p % GC) for p in range(GR * GC)]
for l in range(Lv):
    for h in range(Hv):
        logits = rng.normal(size=(Sv, Sv)) * 0.5
        if h == 0:  # local head: Gaussian in grid distance
            for q in range(GR * GC):
                for k in range(GR * GC):
                    d2 = (coords[q][0] - coords[k][0]) ** 2 + (coords[q][1] - coords[k][1]) ** 2
                    logits[1 + q, 1 + k] += -d2 / (1.0 + l)
        elif h == 2:  # CLS sink head
            logits[:, 0] += 3.0
        logits[:, 1 + 9] += 3.0          # the "register" artefact token
        if l == 1:
            logits[:, 1 + 2] += 1.5      # a second, weaker one in layer 1 only
        vit[l, h] = softmax(logits)
vit32 = vit.astype(np.float32)
with h5py.File(os.path.join(HERE, "vit.h5"), "w", libver=("earliest", "v110")) as f:
    f.create_dataset("attentions", data=vit32)
    f.attrs["model"] = "synthetic ViT, CLS + 4x4 patches (make_heads_cases.py)"
    f.attrs["patch_grid"] = np.array([GR, GC], dtype=np.int64)
    f.attrs["prefix_tokens"] = np.int64(1)

# ----------------------------------------------------------------------------------------------------------------
# Hand-worked tiny cases (files + closed-form values)
# ----------------------------------------------------------------------------------------------------------------

hand = {}

prev3 = np.array([[[[1, 0, 0], [1, 0, 0], [0, 1, 0]]]], dtype=np.float32)
np.save(os.path.join(HERE, "hand_prev3.npy"), prev3)
next3 = np.array([[[[0, 1, 0], [0, 0, 1], [0, 0, 1]]]], dtype=np.float32)
np.save(os.path.join(HERE, "hand_next3.npy"), next3)
uni4 = np.full((1, 1, 4, 4), 0.25, dtype=np.float32)
np.save(os.path.join(HERE, "hand_uniform4.npy"), uni4)

# induction / duplicate: tokens A B C A B C; head 0 a perfect induction head, head 1 a perfect duplicate head,
# rows without a target put everything on position 0
ind6 = np.zeros((1, 2, 6, 6), dtype=np.float32)
for i in range(3):
    ind6[0, 0, i, 0] = 1
    ind6[0, 1, i, 0] = 1
for i, j in ((3, 1), (4, 2), (5, 3)):
    ind6[0, 0, i, j] = 1
for i, j in ((3, 0), (4, 1), (5, 2)):
    ind6[0, 1, i, j] = 1
IND6_TOKENS = ["A", "B", "C", "A", "B", "C"]
np.savez(os.path.join(HERE, "hand_induction6.npz"), attentions=ind6, tokens=np.array(IND6_TOKENS),
         token_ids=np.array([7, 8, 9, 7, 8, 9], dtype=np.int64))

# tokens X A A with the identity map: the induction pattern's only 1 is on the diagonal (2, 2)
rep3 = np.eye(3, dtype=np.float32)[None, None]
np.savez(os.path.join(HERE, "hand_repeat3.npz"), attentions=rep3, tokens=np.array(["X", "A", "A"]))

# grid 2×3 + CLS: every patch query puts 0.5 on CLS and 0.5 on patch 1 = (row 0, col 1); the CLS row is uniform
g23 = np.zeros((1, 1, 7, 7), dtype=np.float32)
g23[0, 0, 0, :] = 1 / 7
for q in range(1, 7):
    g23[0, 0, q, 0] = 0.5
    g23[0, 0, q, 2] = 0.5
with h5py.File(os.path.join(HERE, "hand_grid23.h5"), "w", libver=("earliest", "v110")) as f:
    f.create_dataset("attentions", data=g23)
    f.attrs["patch_grid"] = np.array([2, 3], dtype=np.int64)
    f.attrs["prefix_tokens"] = np.int64(1)

# JS: three heads on 2×2 — identity, swap, uniform
js3 = np.array([[[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0.5, 0.5], [0.5, 0.5]]]], dtype=np.float32)
np.save(os.path.join(HERE, "hand_js.npy"), js3)

# outlier: every query puts 0.6 on token 3, 0.1 on token 6 and 0.0375 on the 8 others (K = 10): median 0.0375,
# MAD 0, so tokens 3 and 6 both have z = +inf; only token 3 (6 × uniform) passes the ratio test, token 6 (1 ×) does not
out10 = np.full((1, 1, 10, 10), 0.0375, dtype=np.float32)
out10[0, 0, :, 3] = 0.6
out10[0, 0, :, 6] = 0.1
np.save(os.path.join(HERE, "hand_outlier10.npy"), out10)

f64 = lambda a: a.astype(np.float64)


def check(value, expected, what):
    assert value is not None and abs(value - expected) <= 1e-12, (what, value, expected)
    return expected


r = analyse(f64(prev3))[0]
hand["prev3"] = {
    "file": "hand_prev3.npy", "attention": prev3[0, 0].tolist(),
    "expected": {
        "entropy": check(r["entropy"], 0.0, "prev3 entropy"),
        "attn_previous": check(r["attn_previous"], 2 / 3, "prev3 Clark previous: (A[1,0]+A[2,1])/3"),
        "attn_next": check(r["attn_next"], 0.0, "prev3 next"),
        "attn_self": check(r["attn_self"], 1 / 3, "prev3 self"),
        "attn_first": check(r["attn_first"], 2 / 3, "prev3 first"),
        "previous_token": check(r["previous_token"], 2 / 3, "prev3 TL default"),
        "previous_token_exclude_bos": check(analyse(f64(prev3), exclude_bos=True)[0]["previous_token"], 1.0,
                                            "prev3 TL exclude_bos"),
        "mean_attention_distance": check(r["mean_attention_distance"], 2 / 3, "prev3 MAD tokens"),
        "sink_share": check(r["sink_share"], 1.0, "prev3 sink k=4 clamps to 3"),
        "sink_share_k1": check(analyse(f64(prev3), sink_tokens=1)[0]["sink_share"], 2 / 3, "prev3 sink k=1"),
        "roles": r["roles"],
    },
    "why": "rows 1 and 2 attend to i-1; row 0 (no previous token) attends to itself. Clark and TL divide by 3 "
           "rows (TL: by ΣA = 3). TL with exclude_bos zeroes column 0, which removes A[1,0] from numerator and "
           "denominator, leaving A[2,1]/A[2,1] = 1. stats' previous_token (mean over rows 1..S-1) would be 1.",
}
assert r["roles"] == ["previous", "sink"], r["roles"]

r = analyse(f64(next3))[0]
hand["next3"] = {
    "file": "hand_next3.npy", "attention": next3[0, 0].tolist(),
    "expected": {
        "attn_next": check(r["attn_next"], 2 / 3, "next3 next"),
        "attn_previous": check(r["attn_previous"], 0.0, "next3 previous"),
        "attn_self": check(r["attn_self"], 1 / 3, "next3 self"),
        "previous_token": check(r["previous_token"], 0.0, "next3 TL previous"),
        "mean_attention_distance": check(r["mean_attention_distance"], 2 / 3, "next3 MAD"),
        "roles": r["roles"],
    },
    "why": "query i attends to key i+1 ('next', Clark's 'right' = np.eye(n, n, 1)); the last row attends to itself.",
}
assert r["roles"] == ["next", "sink"], r["roles"]

r = analyse(f64(uni4))[0]
hand["uniform4"] = {
    "file": "hand_uniform4.npy", "attention": uni4[0, 0].tolist(),
    "expected": {
        "entropy": check(r["entropy"], math.log(4), "uniform entropy ln 4"),
        "mean_row_max": check(r["mean_row_max"], 0.25, "uniform row max"),
        "attn_previous": check(r["attn_previous"], 3 * 0.25 / 4, "uniform previous"),
        "attn_next": check(r["attn_next"], 3 * 0.25 / 4, "uniform next"),
        "previous_token": check(r["previous_token"], 0.75 / 4, "uniform TL previous"),
        "mean_attention_distance": check(r["mean_attention_distance"], 1.25, "uniform MAD (6+4+4+6)/16"),
        "sink_share": check(r["sink_share"], 1.0, "uniform sink k=4 = all keys"),
        "sink_share_k1": check(analyse(f64(uni4), sink_tokens=1)[0]["sink_share"], 0.25, "uniform sink k=1"),
        "roles": r["roles"],
    },
}

ra = analyse(f64(ind6), labels=IND6_TOKENS, ids=[7, 8, 9, 7, 8, 9])
rb = analyse(f64(ind6), labels=IND6_TOKENS, ids=[7, 8, 9, 7, 8, 9], exclude_bos=True)
hand["induction6"] = {
    "file": "hand_induction6.npz", "tokens": IND6_TOKENS, "attention": ind6[0].tolist(),
    "duplicate_pairs": [[3, 0], [4, 1], [5, 2]], "induction_pairs": [[3, 1], [4, 2], [5, 3]],
    "expected": {
        "head0_induction": check(ra[0]["induction"], 0.5, "ind6 h0 induction 3/6"),
        "head0_induction_exclude_bos": check(rb[0]["induction"], 1.0, "ind6 h0 induction exclude_bos 3/3"),
        "head0_duplicate_token": check(ra[0]["duplicate_token"], 0.0, "ind6 h0 duplicate"),
        "head0_previous_token": check(ra[0]["previous_token"], 1 / 6, "ind6 h0 previous: A[1,0] only"),
        "head0_previous_token_exclude_bos": check(rb[0]["previous_token"], 0.0, "ind6 h0 previous exclude_bos"),
        "head1_duplicate_token": check(ra[1]["duplicate_token"], 0.5, "ind6 h1 duplicate 3/6"),
        "head1_duplicate_token_exclude_bos": check(rb[1]["duplicate_token"], 1.0,
                                                   "ind6 h1 duplicate exclude_bos: (3,0) removed, 2/2"),
        "head1_induction": check(ra[1]["induction"], 0.0, "ind6 h1 induction"),
    },
}

r0 = analyse(f64(rep3), labels=["X", "A", "A"])[0]
r1 = analyse(f64(rep3), labels=["X", "A", "A"], exclude_current=True)[0]
assert r1["induction"] is None
hand["repeat3"] = {
    "file": "hand_repeat3.npz", "tokens": ["X", "A", "A"], "attention": rep3[0, 0].tolist(),
    "induction_pairs": [[2, 2]], "duplicate_pairs": [[2, 1]],
    "expected": {
        "induction": check(r0["induction"], 1 / 3, "repeat3 induction: the diagonal (2,2)"),
        "duplicate_token": check(r0["duplicate_token"], 0.0, "repeat3 duplicate"),
        "induction_exclude_current_token": None,
        "attn_self": check(r0["attn_self"], 1.0, "repeat3 self"),
        "roles": r0["roles"],
    },
    "why": "for two equal consecutive tokens the induction pattern has a 1 on the diagonal; with "
           "exclude_current_token the diagonal is zeroed, ΣA' = 0 and the score is null (TransformerLens: 0/0 = nan).",
}

rg = analyse(f64(g23), grid=(2, 3), prefix=1)[0]
rg16 = analyse(f64(g23), grid=(2, 3), prefix=1, patch_size=16)[0]
mad23 = 0.5 * (3 + 2 * math.sqrt(2)) / 6
hand["grid23"] = {
    "file": "hand_grid23.h5", "grid": [2, 3], "prefix_tokens": 1, "attention": g23[0, 0].tolist(),
    "expected": {
        "mean_attention_distance": check(rg["mean_attention_distance"], mad23,
                                         "grid23 MAD = 0.5·(1+0+1+√2+1+√2)/6"),
        "mean_attention_distance_patch_size_16": check(rg16["mean_attention_distance"], 16 * mad23, "grid23 ×16"),
        "column_major_would_give": 0.5 * (1 + 0 + math.sqrt(2) + 1 + math.sqrt(5) + 2) / 6,
        "renormalised_would_give": (3 + 2 * math.sqrt(2)) / 6,
    },
    "why": "patch p sits at (p // 3, p % 3); every patch query puts 0.5 on patch 1 = (0,1) and 0.5 on CLS, which is "
           "dropped without renormalising the remaining 0.5.",
}

pl, full = similarity(f64(js3))
ln2 = math.log(2)
js_id_uni = 0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * math.log(2)
hand["js3"] = {
    "file": "hand_js.npy", "attention": js3[0].tolist(),
    "expected": {
        "js_identity_swap": check(pl[0][0][1], ln2, "JS identity vs swap = ln 2"),
        "js_identity_uniform": check(pl[0][0][2], js_id_uni, "JS identity vs uniform"),
        "js_swap_uniform": check(pl[0][1][2], js_id_uni, "JS swap vs uniform"),
        "matrix": pl[0],
    },
    "why": "JS([1,0] ‖ [½,½]) = ½·1·ln(1/¾) + ½(½ ln(½/¾) + ½ ln(½/¼)) = ½ln(4/3) + ¼ln(2/3) + ¼ln 2.",
}

o, shares, _ = outliers(f64(out10))
assert len(o) == 1 and o[0]["position"] == 3
hand["outlier10"] = {
    "file": "hand_outlier10.npy", "attention": out10[0, 0].tolist(),
    "expected": {
        "received_share": shares[0],
        "outlier_tokens": o,
    },
    "why": "received shares 0.0375 ×8, 0.6 (token 3), 0.1 (token 6): median 0.0375, MAD 0, so tokens 3 and 6 have "
           "z = +inf; token 3's share is 6 × uniform (>= 5): flagged; token 6's is 1 × uniform: not flagged. "
           "Float32 storage makes the shares exact only to ~1e-8.",
}

# ----------------------------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------------------------

cases = {}
cases["text"] = case_entry("text.npz", f64(text32), labels=TEXT_TOKENS, ids=TEXT_IDS.tolist(), patch_sizes=(),
                           note="token_ids present: duplicates by id ('The' == 'the')")
cases["text_strings"] = case_entry("text_strings.npz", f64(text32), labels=TEXT_TOKENS,
                                   note="no token_ids: duplicates by exact string ('The' != 'the')")
cases["text_nan"] = case_entry("text_nan.npz", f64(text_nan), labels=TEXT_TOKENS, ids=TEXT_IDS.tolist(),
                               note="NaN at [1,1,3,4]: layer 1 head 1 is null everywhere, left out of layer 1's "
                                    "received shares")
cases["vit"] = case_entry("vit.h5", f64(vit32), grid=(GR, GC), prefix=1, patch_sizes=(16,),
                          note="patch_grid [4,4], prefix_tokens 1, no tokens; token 10 (patch 9) is the artefact")

# sanity: the designed heads are what they should be
T = {(r["layer"], r["head"]): r for r in cases["text"]["records"]}
assert "previous" in T[0, 0]["roles"] and "next" in T[0, 1]["roles"] and "broad" in T[0, 2]["roles"]
assert max(T, key=lambda k: T[k]["induction"]) == (1, 0)          # only 4 of 12 rows have an induction target
assert max(T, key=lambda k: T[k]["duplicate_token"]) == (1, 1)    # only 4 of 12 rows have an earlier duplicate
assert "sink" in T[1, 2]["roles"] and "sep" in T[1, 1]["roles"]
assert any(o["position"] == 10 for o in cases["vit"]["outlier_tokens"])

# real dumps (read only)
with h5py.File(os.path.join(REAL, "minilm6_zen_layers_f16.h5"), "r") as f:
    zen = np.stack([f[f"layer_{l:02d}/attn"][()] for l in range(6)])
    zen_tokens = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in f["tokens"][()]]
assert zen.dtype == np.float16
cases["minilm6_zen"] = case_entry("../../real/minilm6_zen_layers_f16.h5", f64(zen), labels=zen_tokens,
                                  note="float16 per-layer datasets /layer_0N/attn; tokens only (no ids): "
                                       "duplicates by string")

with h5py.File(os.path.join(REAL, "vits14_board_small.h5"), "r") as f:
    board = f["attentions"][()]
    grid = tuple(int(x) for x in f.attrs["patch_grid"])
    pre = int(f.attrs["prefix_tokens"])
assert board.dtype == np.float16 and grid == (16, 16) and pre == 1
cases["vits14_board"] = case_entry("../../real/vits14_board_small.h5", f64(board), grid=grid, prefix=pre,
                                   patch_sizes=(14,),
                                   note="layers 9-11 of a DINOv2-style ViT-S/14 (file layers 0-2); no tokens; "
                                        "patch size 14 is not stored in the file (give --patch-size 14)")


# ----------------------------------------------------------------------------------------------------------------
# Second derivations (vectorised, following the published procedures step by step) must agree with the loops
# ----------------------------------------------------------------------------------------------------------------

def tl_patterns_by_steps(ids):
    """TransformerLens's steps: tile the ids into (S, S), compare with the transpose, zero the diagonal, tril;
    induction = roll the duplicate pattern one column right, zero column 0, tril."""
    t = np.tile(np.asarray(ids)[None, :], (len(ids), 1))
    eq = np.equal(t, t.T).astype(float)
    np.fill_diagonal(eq, 0)
    dup = np.tril(eq)
    rolled = np.roll(dup, 1, axis=1)
    rolled[:, 0] = 0
    return dup, np.tril(rolled)


for ids in (TEXT_IDS.tolist(), TEXT_TOKENS, zen_tokens, ["X", "A", "A"], [7, 8, 9, 7, 8, 9]):
    _, d1, i1 = tl_patterns(len(ids), ids)
    d2, i2 = tl_patterns_by_steps(ids)
    assert np.array_equal(d1, d2) and np.array_equal(i1, i2)


def mad_vectorised(A, grid, prefix, patch_size=1.0):
    """probing-vits compute_mean_attention_dist, generalised to rows × cols (square in the original)."""
    rows, cols = grid
    n = rows * cols
    yy, xx = np.divmod(np.arange(n), cols)
    d = patch_size * np.sqrt((yy[:, None] - yy[None, :]) ** 2 + (xx[:, None] - xx[None, :]) ** 2)
    w = A[..., prefix:, prefix:]
    return (w * d).sum(-1).mean(-1)


for name, arr, grid_, pre_, ps in (("vit", vit32, (GR, GC), 1, 16), ("vits14_board", board, grid, pre, 14)):
    vec = mad_vectorised(arr.astype(np.float64), grid_, pre_, ps)
    ref = cases[name]["variants"][f"mean_attention_distance_patch_size_{ps}"]
    assert np.allclose(vec, np.array(ref), rtol=1e-13, atol=0), name
    vec1 = mad_vectorised(arr.astype(np.float64), grid_, pre_, 1.0)
    assert np.allclose(vec1, np.array(grid_LH(cases[name]["records"], "mean_attention_distance", *arr.shape[:2])),
                       rtol=1e-13, atol=0), name



def check_with_h5dump(path, values):
    """The tool links Debian's libhdf5 1.10.8: its h5dump must read the header and print exactly these values."""
    if not os.path.exists("/usr/bin/h5dump"):
        return
    r = subprocess.run(["/usr/bin/h5dump", "-H", "-p", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    txt = subprocess.run(["/usr/bin/h5dump", "-d", "/attentions", "-y", "-w", "0", "-m", "%.17g", path],
                         capture_output=True, text=True, check=True).stdout
    body = txt.split("DATA {", 1)[1].rsplit("}", 3)[0]
    vals = np.array([float(x) for x in body.replace("\n", " ").split(",") if x.strip()])
    assert vals.shape == (values.size,) and np.array_equal(vals, values.astype(np.float64).ravel()), path


check_with_h5dump(os.path.join(HERE, "vit.h5"), vit32)
check_with_h5dump(os.path.join(HERE, "hand_grid23.h5"), g23)


def clean(x):
    if isinstance(x, float):
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if isinstance(x, (np.floating,)):
        return clean(float(x))
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    return x


out = {
    "generator": "make_heads_cases.py (numpy %s, h5py %s), seed %d" % (np.__version__, h5py.__version__, SEED),
    "spec": "docs/heads.md",
    "conventions": "float64 from the stored values; entropy and JS in nats; null = undefined; records in layer, "
                   "head order; similarity_all is indexed layer*H + head; received_share[l][j] is the mean over "
                   "heads and queries of A[l,h,i,j]",
    "cases": cases,
    "hand_worked": hand,
}
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(clean(out), f, ensure_ascii=False, allow_nan=False)
print("wrote expected.json (%d bytes)" % os.path.getsize(os.path.join(HERE, "expected.json")))
for name, c in cases.items():
    print(name, "outliers:", [(o["position"], o["token"], o["layers"]) for o in c["outlier_tokens"]])
