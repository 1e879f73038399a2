"""Self-test of attninspect_export: writes small dumps and the values attninspect must report for them.

    python3 exporters/selftest.py OUTDIR [--attninspect BIN]

Runs the writer on numpy arrays and the Hugging Face and TransformerLens adapters on small fake objects that
mimic the frameworks' (no framework needed; fixed seeds). Writes into OUTDIR one dump per case and
OUTDIR/expected.json with, for each dump, values computed independently in float64 numpy from the values as
stored: layers, heads, queries and keys kept, token labels kept, attributes, and per layer and head the mean
row entropy in nats (pad query rows and pad key columns dropped, rows not renormalised; for q and k, of
softmax(Q·Kᵀ·scale) with the causal mask). It also checks what it wrote with h5py, that bad inputs raise
ValueError and leave nothing behind, and, with --attninspect, that the binary reads every dump (info and stats
exit 0) and reports those values. Exit status 1 on any failure.
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attninspect_export import export_hf, export_hf_vision, export_transformer_lens, write_dump  # noqa: E402

#: Entropy tolerance (nats, absolute) between attninspect and the float64 references.
TOLERANCE = 1e-5
VOCAB = ["[PAD]", "[CLS]", "[SEP]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", "le", "chat",
         "dort", "<s>", "</s>", "ĠThe", "Ġcat", "Ġsat", "café", "日本"]


# --------------------------------------------------------------------------------------------------------------
# Fakes of the frameworks' objects
# --------------------------------------------------------------------------------------------------------------

class FakeTensor:
    """Just enough of a torch tensor: detach().cpu().float().numpy(), shape and indexing."""

    def __init__(self, array):
        self.array = np.asarray(array)
        self.shape = self.array.shape

    def detach(self):
        return self

    def cpu(self):
        return self

    def float(self):
        return FakeTensor(self.array.astype(np.float32))

    def numpy(self):
        return self.array

    def __getitem__(self, index):
        return FakeTensor(self.array[index])


class FakeTokenizer:
    def convert_ids_to_tokens(self, ids):
        return [VOCAB[i] for i in ids]


class FakeBertModel:
    config = SimpleNamespace(_name_or_path="fake/bert-tiny")


class FakeGPT2LMHeadModel:
    config = SimpleNamespace(_name_or_path="")


class FakeViTModel:
    config = SimpleNamespace(_name_or_path="fake/vit-tiny", image_size=32, patch_size=8)


class FakeDeiTModel:
    config = SimpleNamespace(_name_or_path="fake/deit-tiny", image_size=224, patch_size=8)


class FakeHookedTransformer:
    def __init__(self, **cfg):
        self.cfg = SimpleNamespace(**cfg)

    def to_str_tokens(self, ids):
        return [VOCAB[i] for i in np.asarray(ids.numpy() if hasattr(ids, "numpy") else ids).reshape(-1)]


class FakeActivationCache:
    """keys() and [] like TransformerLens's ActivationCache."""

    def __init__(self, tensors):
        self.tensors = tensors

    def keys(self):
        return self.tensors.keys()

    def __getitem__(self, key):
        return self.tensors[key]


# --------------------------------------------------------------------------------------------------------------
# float64 references
# --------------------------------------------------------------------------------------------------------------

def softmax(logits, allowed):
    """Softmax over the last axis where `allowed` (broadcast); not-allowed entries are exactly 0."""
    x = np.where(allowed, logits, -np.inf)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def causal_allowed(n):
    return np.tril(np.ones((n, n), dtype=bool))


def row_entropy(attention):
    """Mean over query rows of -Σ a ln a (0 ln 0 = 0), float64: [..., query, key] → [...]."""
    a = attention.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(a > 0, a * np.log(a), 0.0)
    return -plogp.sum(-1).mean(-1)


def recomputed(q, k, scale, causal):
    """softmax(Q·Kᵀ·scale) of [layer, head, position, dim] in float64, the causal mask optional."""
    logits = np.einsum("lhid,lhjd->lhij", q.astype(np.float64), k.astype(np.float64)) * scale
    n = q.shape[-2]
    return softmax(logits, causal_allowed(n) if causal else np.ones((n, n), dtype=bool))


def sample_record(attention, tokens=None, key_tokens=None, real_queries=None, real_keys=None):
    """Expected values of one sample of [layer, head, query, key]: pad rows and columns dropped."""
    rows = np.arange(attention.shape[-2]) if real_queries is None else np.flatnonzero(real_queries)
    cols = np.arange(attention.shape[-1]) if real_keys is None else np.flatnonzero(real_keys)
    kept = attention[:, :, rows][:, :, :, cols]
    return {"queries": len(rows), "keys": len(cols),
            "tokens": None if tokens is None else [tokens[i] for i in rows],
            "key_tokens": None if key_tokens is None else [key_tokens[j] for j in cols],
            "entropy": row_entropy(kept).tolist()}


def expectation(what, records, attributes, stats_args=(), qk_check=None):
    """The expected.json entry of one dump: sample 0's values at top level, every sample under `batch`."""
    first = records[0]
    entropy = np.array(first["entropy"])
    entry = {"what": what, "stats_args": list(stats_args), "layers": entropy.shape[0], "heads": entropy.shape[1]}
    entry.update(first)
    entry.update({"model": None, "patch_grid": None, "prefix_tokens": None, "causal": None, "scale": None})
    entry.update(attributes)
    entry["batch"] = None
    if len(records) > 1:
        all_entropies = np.array([r["entropy"] for r in records])
        entry["batch"] = {"size": len(records), "samples": records,
                          "entropy_mean": all_entropies.mean(0).tolist(), "entropy_std": all_entropies.std(0).tolist()}
    if qk_check:
        entry["from_qk_args"] = list(qk_check)
    return entry


# --------------------------------------------------------------------------------------------------------------
# The dumps
# --------------------------------------------------------------------------------------------------------------

def ids_of(words):
    return [VOCAB.index(w) for w in words]


def hf_text(outdir):
    """A BERT-like encoder, one sentence padded to 10 (8 real): padded keys get 0, pad queries attend anyway."""
    rng = np.random.default_rng(1)
    words = ["[CLS]", "the", "cat", "sat", "on", "the", "mat", "[SEP]", "[PAD]", "[PAD]"]
    mask = np.array([[1] * 8 + [0] * 2])
    attention = softmax(rng.normal(size=(2, 1, 3, 10, 10)) * 1.5, mask[0].astype(bool)).astype(np.float32)
    outputs = SimpleNamespace(attentions=tuple(FakeTensor(a) for a in attention))
    inputs = {"input_ids": FakeTensor(np.array([ids_of(words)])), "attention_mask": FakeTensor(mask)}
    export_hf(os.path.join(outdir, "hf_text.h5"), outputs, inputs, tokenizer=FakeTokenizer(), model=FakeBertModel())
    real = mask[0].astype(bool)
    return expectation("export_hf: encoder, batch of one right-padded to 10 tokens (8 real)",
                       [sample_record(attention[:, 0], words, real_queries=real, real_keys=real)],
                       {"model": "fake/bert-tiny (FakeBertModel)", "causal": False})


def hf_text_batch(outdir):
    """A GPT-2-like decoder, two sequences of 9: the second left-padded by 3; causal found from the attention."""
    rng = np.random.default_rng(2)
    words = [["<s>", "ĠThe", "Ġcat", "Ġsat", "on", "a", "mat", "café", "</s>"],
             ["[PAD]", "[PAD]", "[PAD]", "<s>", "ĠThe", "dog", "ran", "far", "</s>"]]
    mask = np.array([[1] * 9, [0] * 3 + [1] * 6])
    allowed = causal_allowed(9)[None] & mask[:, None, :].astype(bool)   # [batch, query, key]
    allowed |= ~allowed.any(-1, keepdims=True) & causal_allowed(9)[None]  # pad rows with no real key: causal only
    logits = rng.normal(size=(2, 2, 2, 9, 9)) * 1.5                      # [layer, batch, head, query, key]
    attention = softmax(logits, allowed[None, :, None]).astype(np.float32)
    outputs = SimpleNamespace(attentions=tuple(FakeTensor(a) for a in attention))
    inputs = {"input_ids": FakeTensor(np.array([ids_of(w) for w in words])), "attention_mask": FakeTensor(mask)}
    export_hf(os.path.join(outdir, "hf_text_batch.h5"), outputs, inputs, tokenizer=FakeTokenizer(),
              model=FakeGPT2LMHeadModel())
    records = [sample_record(attention[:, b], words[b], real_queries=mask[b], real_keys=mask[b]) for b in range(2)]
    return expectation("export_hf: decoder-only, batch of 2 with tokens [2, 9], sample 1 left-padded by 3",
                       records, {"model": "FakeGPT2LMHeadModel", "causal": True})


def hf_cross(outdir):
    """An encoder-decoder's cross-attention: 5 decoder tokens over 8 encoder tokens, 2 of them padding."""
    rng = np.random.default_rng(3)
    source = ["[CLS]", "the", "cat", "sat", "on", "[SEP]", "[PAD]", "[PAD]"]
    target = ["<s>", "le", "chat", "dort", "</s>"]
    mask = np.array([[1] * 6 + [0] * 2])
    attention = softmax(rng.normal(size=(3, 1, 2, 5, 8)) * 1.5, mask[0].astype(bool)).astype(np.float32)
    outputs = SimpleNamespace(cross_attentions=tuple(FakeTensor(a) for a in attention))
    inputs = {"input_ids": FakeTensor(np.array([ids_of(source)])), "attention_mask": FakeTensor(mask),
              "decoder_input_ids": FakeTensor(np.array([ids_of(target)]))}
    export_hf(os.path.join(outdir, "hf_cross.h5"), outputs, inputs, tokenizer=FakeTokenizer(), part="cross",
              model_name="fake/marian-tiny")
    return expectation("export_hf part='cross': 5 decoder queries × 8 encoder keys (the mask: 6 real keys)",
                       [sample_record(attention[:, 0], target, source, real_keys=mask[0].astype(bool))],
                       {"model": "fake/marian-tiny", "cross_attention": 1})


def hf_vit(outdir):
    """A ViT: 32×32 image, 8×8 patches → 4×4 grid after CLS (17 tokens), from the config."""
    rng = np.random.default_rng(4)
    attention = softmax(rng.normal(size=(3, 1, 2, 17, 17)) * 2.0, True).astype(np.float32)
    outputs = SimpleNamespace(attentions=tuple(FakeTensor(a) for a in attention))
    export_hf_vision(os.path.join(outdir, "hf_vit.h5"), outputs, model=FakeViTModel())
    return expectation("export_hf_vision: ViT, patch grid 4×4 from config.image_size / patch_size, CLS",
                       [sample_record(attention[:, 0])],
                       {"model": "fake/vit-tiny (FakeViTModel)", "patch_grid": [4, 4], "prefix_tokens": 1,
                        "causal": False})


def hf_deit(outdir):
    """A DeiT on a 24×32 image (not its config's 224): 3×4 grid after CLS and distillation tokens (14 tokens)."""
    rng = np.random.default_rng(5)
    attention = softmax(rng.normal(size=(2, 1, 3, 14, 14)) * 2.0, True).astype(np.float32)
    outputs = SimpleNamespace(attentions=tuple(FakeTensor(a) for a in attention))
    export_hf_vision(os.path.join(outdir, "hf_deit.h5"), outputs, model=FakeDeiTModel(),
                     pixel_values=FakeTensor(np.zeros((1, 3, 24, 32), dtype=np.float32)))
    return expectation("export_hf_vision: DeiT, grid 3×4 from pixel_values, 2 prefix tokens",
                       [sample_record(attention[:, 0])],
                       {"model": "fake/deit-tiny (FakeDeiTModel)", "patch_grid": [3, 4], "prefix_tokens": 2,
                        "causal": False})


def tl_qk(outdir):
    """A TransformerLens cache, q and k only, causal, cfg.attn_scale 2 (scale 0.5, not 1/√8)."""
    rng = np.random.default_rng(6)
    layers, heads, positions, d_head = 2, 4, 12, 8
    q = rng.normal(size=(layers, 1, positions, heads, d_head)).astype(np.float32)  # hook_q: [batch, pos, head, d]
    k = rng.normal(size=(layers, 1, positions, heads, d_head)).astype(np.float32)
    ids = np.array([ids_of(["<s>", "the", "cat", "sat", "on", "the", "mat", "a", "dog", "ran", "far", "</s>"])])
    cache = FakeActivationCache({f"blocks.{l}.attn.{hook}": FakeTensor(t[l])
                                 for l in range(layers) for hook, t in (("hook_q", q), ("hook_k", k))})
    model = FakeHookedTransformer(n_heads=heads, d_head=d_head, attn_scale=2.0, use_attn_scale=True,
                                  attention_dir="causal", model_name="fake-attn-only-2l")
    export_transformer_lens(os.path.join(outdir, "tl_qk.h5"), cache, model, input=FakeTensor(ids),
                            pattern=False, qk=True)
    attention = recomputed(q[:, 0].transpose(0, 2, 1, 3), k[:, 0].transpose(0, 2, 1, 3), 0.5, causal=True)
    tokens = [VOCAB[i] for i in ids[0]]
    return expectation("export_transformer_lens qk=True: q and k [2, 4, 12, 8], causal, scale 0.5",
                       [sample_record(attention, tokens)],
                       {"model": "fake-attn-only-2l", "causal": True, "scale": 0.5})


def tl_pattern(outdir):
    """A TransformerLens cache with hook_pattern and grouped-query q/k (2 key heads for 4 query heads), batch 2."""
    rng = np.random.default_rng(7)
    layers, heads, kv_heads, positions, d_head = 3, 4, 2, 7, 8
    q = rng.normal(size=(layers, 2, positions, heads, d_head)).astype(np.float32)
    k = rng.normal(size=(layers, 2, positions, kv_heads, d_head)).astype(np.float32)
    q_heads = q.transpose(0, 1, 3, 2, 4)                                      # [layer, batch, head, pos, d]
    k_heads = np.repeat(k, heads // kv_heads, axis=3).transpose(0, 1, 3, 2, 4)
    scale = 1 / math.sqrt(d_head)
    pattern = np.stack([recomputed(q_heads[:, b], k_heads[:, b], scale, causal=True) for b in range(2)], axis=1)
    pattern = pattern.astype(np.float32)
    tensors = {}
    for l in range(layers):
        tensors[f"blocks.{l}.attn.hook_pattern"] = FakeTensor(pattern[l])
        tensors[f"blocks.{l}.attn.hook_q"] = FakeTensor(q[l])
        tensors[f"blocks.{l}.attn.hook_k"] = FakeTensor(k[l])
    ids = np.array([ids_of(["<s>", "the", "cat", "sat", "on", "a", "mat"]),
                    ids_of(["<s>", "a", "dog", "ran", "far", "</s>", "</s>"])])
    model = FakeHookedTransformer(n_heads=heads, d_head=d_head, attn_scale=math.sqrt(d_head), use_attn_scale=True,
                                  attention_dir="causal", model_name="fake-gqa-3l")
    export_transformer_lens(os.path.join(outdir, "tl_pattern.h5"), FakeActivationCache(tensors), model,
                            input=FakeTensor(ids), pattern=True, qk=True)
    records = [sample_record(pattern[:, b], [VOCAB[i] for i in ids[b]]) for b in range(2)]
    return expectation("export_transformer_lens pattern=True, qk=True: batch 2, grouped-query keys kept; "
                       "stored pattern = recomputed causal attention",
                       records, {"model": "fake-gqa-3l", "causal": True, "scale": scale},
                       qk_check=["--from-qk"])


def tl_rules(outdir):
    """A TransformerLens model with local attention on layer 0 (window 3), soft-capped scores (cap 2) and ALiBi
    (4 heads), as TransformerLens 3 computes them: the exporter writes the rules, attninspect redoes them."""
    rng = np.random.default_rng(11)
    layers, heads, positions, d_head, window, cap = 2, 4, 9, 8, 3, 2.0
    q = (rng.normal(size=(layers, 1, positions, heads, d_head)) * 1.5).astype(np.float32)
    k = (rng.normal(size=(layers, 1, positions, heads, d_head)) * 1.5).astype(np.float32)
    scale = 1 / math.sqrt(d_head)
    logits = np.einsum("lhid,lhjd->lhij", q[:, 0].transpose(0, 2, 1, 3).astype(np.float64),
                       k[:, 0].transpose(0, 2, 1, 3).astype(np.float64)) * scale
    logits = cap * np.tanh(logits / cap)
    slopes = 2.0 ** (-8.0 * np.arange(1, heads + 1) / heads)        # TransformerLens's (= BLOOM's for 4 heads)
    i, j = np.arange(positions)[:, None], np.arange(positions)[None, :]
    logits = logits + slopes[None, :, None, None] * np.minimum(j - i, 0)
    local = (j <= i) & (j > i - window)
    pattern = np.stack([softmax(logits[l], local if l == 0 else causal_allowed(positions)) for l in range(layers)])
    pattern = pattern.astype(np.float32)
    tensors = {}
    for l in range(layers):
        tensors[f"blocks.{l}.attn.hook_pattern"] = FakeTensor(pattern[l][None])
        tensors[f"blocks.{l}.attn.hook_q"] = FakeTensor(q[l])
        tensors[f"blocks.{l}.attn.hook_k"] = FakeTensor(k[l])
    model = FakeHookedTransformer(n_heads=heads, d_head=d_head, attn_scale=math.sqrt(d_head), use_attn_scale=True,
                                  attention_dir="causal", model_name="fake-rules-2l", positional_embedding_type="alibi",
                                  attn_scores_soft_cap=cap, window_size=window)
    model.blocks = [SimpleNamespace(attn=SimpleNamespace(attn_type=t)) for t in ("local", "global")]
    export_transformer_lens(os.path.join(outdir, "tl_rules.h5"), FakeActivationCache(tensors), model,
                            pattern=True, qk=True)
    return expectation("export_transformer_lens with local attention (layer 0, window 3), soft-capped scores (2) and "
                       "ALiBi: the rules written as attributes; stored pattern = attention recomputed under them",
                       [sample_record(pattern)], {"model": "fake-rules-2l", "causal": True, "scale": scale},
                       qk_check=["--from-qk"])


def arrays_f16_gzip(outdir):
    """write_dump on numpy arrays: float16, gzip, one chunk per layer and head; references from the float16 values."""
    rng = np.random.default_rng(8)
    attention = softmax(rng.normal(size=(3, 2, 16, 16)) * 2.0, True)
    tokens = [f"t{i}" for i in range(15)] + ["日本"]
    write_dump(os.path.join(outdir, "arrays_f16_gzip.h5"), attentions=attention, tokens=tokens,
               model="arrays, float16", dtype="float16", compression="gzip")
    stored = attention.astype(np.float16)
    return expectation("write_dump: attentions [3, 2, 16, 16] as float16, gzip, chunks [1, 1, 16, 16]",
                       [sample_record(stored, tokens)], {"model": "arrays, float16"})


def arrays_gqa(outdir):
    """write_dump with grouped-query q and k: 4 query heads over 2 key heads, causal (query head h uses key head
    h // 2, as Hugging Face's repeat_kv); the reference repeats k, attninspect must not need to."""
    rng = np.random.default_rng(10)
    q = rng.normal(size=(2, 4, 10, 8)).astype(np.float32)
    k = rng.normal(size=(2, 2, 10, 8)).astype(np.float32)
    write_dump(os.path.join(outdir, "arrays_gqa.h5"), q=q, k=k, causal=True, model="arrays, GQA")
    attention = recomputed(q, np.repeat(k, 2, axis=1), 1 / np.sqrt(8), causal=True)
    return expectation("write_dump: q [2, 4, 10, 8] and k [2, 2, 10, 8] (grouped-query), causal",
                       [sample_record(attention)], {"model": "arrays, GQA", "causal": True})


def arrays_per_layer(outdir):
    """write_dump per_layer=True: /layer_00/attn, q, k; the attention is softmax(Q·Kᵀ/√d) of the q and k."""
    rng = np.random.default_rng(9)
    q = rng.normal(size=(2, 3, 11, 4)).astype(np.float32)
    k = rng.normal(size=(2, 3, 11, 4)).astype(np.float32)
    attention = recomputed(q, k, 0.5, causal=False).astype(np.float32)
    write_dump(os.path.join(outdir, "arrays_per_layer.h5"), attentions=attention, q=q, k=k, num_heads=3,
               model="arrays, per layer", causal=False, per_layer=True)
    return expectation("write_dump per_layer=True: /layer_00 and /layer_01 each with attn, q, k",
                       [sample_record(attention)], {"model": "arrays, per layer", "causal": False},
                       qk_check=["--from-qk"])


DUMPS = {"hf_text.h5": hf_text, "hf_text_batch.h5": hf_text_batch, "hf_cross.h5": hf_cross, "hf_vit.h5": hf_vit,
         "hf_deit.h5": hf_deit, "tl_qk.h5": tl_qk, "tl_pattern.h5": tl_pattern, "tl_rules.h5": tl_rules,
         "arrays_f16_gzip.h5": arrays_f16_gzip, "arrays_per_layer.h5": arrays_per_layer, "arrays_gqa.h5": arrays_gqa}


# --------------------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------------------

class Checker:
    def __init__(self):
        self.failures = []

    def check(self, condition, message):
        if not condition:
            self.failures.append(message)
            print(f"FAIL: {message}")


def check_layouts(outdir, checker):
    """What the writer put in the files, read back with h5py."""
    with h5py.File(os.path.join(outdir, "hf_text.h5"), "r") as f:
        checker.check(f["attentions"].shape == (2, 3, 10, 10) and f["attentions"].dtype == np.float32,
                      "hf_text.h5: attentions [2, 3, 10, 10] float32")
        checker.check(f["attention_mask"].dtype == np.int8 and f["attention_mask"].shape == (10,),
                      "hf_text.h5: attention_mask int8 [10]")
        checker.check(h5py.check_string_dtype(f["tokens"].dtype).encoding == "utf-8"
                      and h5py.check_string_dtype(f["tokens"].dtype).length is None,
                      "hf_text.h5: tokens are variable-length UTF-8")
        checker.check(f.attrs["causal"] == 0 and f.attrs["causal"].dtype == np.int8, "hf_text.h5: causal int8 0")
    with h5py.File(os.path.join(outdir, "hf_text_batch.h5"), "r") as f:
        checker.check(f["attentions"].shape == (2, 2, 2, 9, 9) and f["tokens"].shape == (2, 9)
                      and f["attention_mask"].shape == (2, 9), "hf_text_batch.h5: batch axis kept")
        checker.check(f["tokens"].asstr()[1, 3] == "<s>" and f["tokens"].asstr()[0, 7] == "café",
                      "hf_text_batch.h5: tokens per sample")
    with h5py.File(os.path.join(outdir, "hf_deit.h5"), "r") as f:
        checker.check(list(f.attrs["patch_grid"]) == [3, 4] and f.attrs["prefix_tokens"] == 2,
                      "hf_deit.h5: patch_grid [3, 4], prefix_tokens 2")
    with h5py.File(os.path.join(outdir, "tl_qk.h5"), "r") as f:
        checker.check(set(f.keys()) == {"q", "k", "tokens"} and f["q"].shape == (2, 4, 12, 8),
                      "tl_qk.h5: q and k [2, 4, 12, 8] and tokens only")
        checker.check(f.attrs["scale"].dtype == np.float64 and f.attrs["scale"] == 0.5 and f.attrs["causal"] == 1,
                      "tl_qk.h5: scale float64 0.5, causal 1")
    with h5py.File(os.path.join(outdir, "tl_pattern.h5"), "r") as f:
        checker.check(f["k"].shape == (3, 2, 2, 7, 8) and f.attrs["num_key_value_heads"] == 2,
                      "tl_pattern.h5: grouped-query keys keep their 2 heads")
    with h5py.File(os.path.join(outdir, "arrays_f16_gzip.h5"), "r") as f:
        a = f["attentions"]
        checker.check(a.dtype == np.float16 and a.compression == "gzip" and a.chunks == (1, 1, 16, 16),
                      "arrays_f16_gzip.h5: float16, gzip, chunks [1, 1, 16, 16]")
    with h5py.File(os.path.join(outdir, "arrays_per_layer.h5"), "r") as f:
        checker.check(sorted(f["layer_01"].keys()) == ["attn", "k", "q"] and f["layer_01/attn"].shape == (3, 11, 11)
                      and f.attrs["num_heads"] == 3, "arrays_per_layer.h5: /layer_01/{attn,q,k}, num_heads 3")


def check_adapter_details(outdir, checker):
    """Adapter behaviour that no dump above shows: a partial TransformerLens cache, an explicit override."""
    rng = np.random.default_rng(10)
    pattern = softmax(rng.normal(size=(1, 2, 5, 5)), causal_allowed(5))
    cache = {f"blocks.{l}.attn.hook_pattern": FakeTensor(pattern) for l in (1, 3)}
    model = FakeHookedTransformer(n_heads=2, d_head=4, attention_dir="causal", model_name="partial")
    path = os.path.join(outdir, "partial_cache.h5")
    export_transformer_lens(path, cache, model, causal=False)
    with h5py.File(path, "r") as f:
        checker.check(list(f.attrs["layer_numbers"]) == [1, 3] and f["attentions"].shape == (2, 2, 5, 5),
                      "partial TransformerLens cache: layers 1 and 3 written, their numbers in layer_numbers")
        checker.check(f.attrs["causal"] == 0, "write options given to an adapter win over what it finds")
    os.unlink(path)


def check_validation(outdir, checker):
    """Bad inputs raise ValueError with a message naming the problem, and leave no file behind."""
    rng = np.random.default_rng(11)
    good = softmax(rng.normal(size=(2, 2, 5, 5)), True)
    qk = rng.normal(size=(2, 2, 5, 4))
    cases = [
        ("attention of rank 3", dict(attentions=good[0]), "expected 4 axes"),
        ("q without k", dict(q=qk), "q and k go together"),
        ("nothing", dict(), "nothing to write"),
        ("q and k of different shapes", dict(q=qk, k=qk[:, :, :4]), "same shape"),
        ("layers differ", dict(attentions=good, q=qk[:1], k=qk[:1]), "layers"),
        ("NaN", dict(attentions=np.where(np.eye(5, dtype=bool), np.nan, good)), "NaN or infinite"),
        ("float16 overflow", dict(q=qk * 1e5, k=qk, dtype="float16"), "overflow float16"),
        ("tokens too few", dict(attentions=good, tokens=["a"] * 4), "expected [5] labels"),
        ("tokens not str", dict(attentions=good, tokens=[1, 2, 3, 4, 5]), "must be str"),
        ("mask length", dict(attentions=good, attention_mask=[1] * 6), "one value per key"),
        ("mask all padding", dict(attentions=good, attention_mask=[0] * 5), "no real token"),
        ("grid too large", dict(attentions=good, patch_grid=[2, 3]), "must be the 5 keys"),
        ("grid and prefix disagree", dict(attentions=good, patch_grid=[2, 2], prefix_tokens=0), "must be the 5 keys"),
        ("prefix without grid", dict(attentions=good, prefix_tokens=1), "needs patch_grid"),
        ("scale without q and k", dict(attentions=good, scale=0.5), "give q and k"),
        ("causal cross-attention", dict(attentions=good[..., :4], causal=True), "needs self-attention"),
        ("num_heads", dict(attentions=good, num_heads=3), "num_heads is 3"),
        ("dtype", dict(attentions=good, dtype="bfloat16"), "dtype must be"),
        ("compression", dict(attentions=good, compression="lzf"), "compression must be"),
    ]
    path = os.path.join(outdir, "invalid.h5")
    for name, arguments, fragment in cases:
        try:
            write_dump(path, **arguments)
            checker.check(False, f"validation: {name}: no ValueError")
        except ValueError as error:
            checker.check(fragment in str(error), f"validation: {name}: message {str(error)!r} lacks {fragment!r}")
        checker.check(not os.path.exists(path), f"validation: {name}: a file was left behind")

    # A failure while writing (an attribute h5py cannot store) leaves the old file as it was and no temporary.
    write_dump(path, attentions=good, model="first")
    try:
        write_dump(path, attentions=good, model="second", attributes={"unstorable": {"a": 1}})
        checker.check(False, "atomic write: an unstorable attribute raised nothing")
    except (TypeError, ValueError):
        pass
    with h5py.File(path, "r") as f:
        checker.check(f.attrs["model"] == "first", "atomic write: the old file was changed by a failed write")
    os.unlink(path)
    leftovers = [n for n in os.listdir(outdir) if n.endswith(".tmp")]
    checker.check(not leftovers, f"atomic write: temporary files left: {leftovers}")


def run(binary, *arguments):
    return subprocess.run([binary, *arguments], capture_output=True, text=True)


def quoted_labels(line):
    """The labels of an `info` line such as `tokens (3): "a" "b" "c"`."""
    return [json.loads(m) for m in re.findall(r'"(?:[^"\\]|\\.)*"', line.split(":", 1)[1])]


def check_binary(binary, outdir, expected, checker):
    """attninspect reads every dump and reports the expected values (entropies within TOLERANCE)."""
    def close(found, wanted):
        return np.allclose(np.array(found, dtype=float), np.array(wanted, dtype=float), rtol=0, atol=TOLERANCE)

    def stats(name, args):
        result = run(binary, "stats", os.path.join(outdir, name), "--json", *args)
        checker.check(result.returncode == 0, f"{name}: stats {' '.join(args)} exited {result.returncode}: "
                                              f"{result.stderr.strip()}")
        return json.loads(result.stdout) if result.returncode == 0 else None

    def entropies(report, field="entropy"):
        table = np.full((report["layers"], report["heads"]), np.nan)
        for record in report["records"]:
            table[record["layer"], record["head"]] = record[field]
        return table

    for name, entry in expected.items():
        args = entry["stats_args"]
        info = run(binary, "info", os.path.join(outdir, name), *args)
        checker.check(info.returncode == 0, f"{name}: info exited {info.returncode}: {info.stderr.strip()}")
        samples = entry["batch"]["samples"] if entry["batch"] else [entry]
        for index, sample in enumerate(samples):
            batch = ["--batch", str(index)] if entry["batch"] else []
            report = stats(name, args + batch)
            if report is None:
                continue
            shape = [report[key] for key in ("layers", "heads", "queries", "keys")]
            wanted = [entry["layers"], entry["heads"], sample["queries"], sample["keys"]]
            checker.check(shape == wanted, f"{name}{batch}: stats shape {shape}, expected {wanted}")
            checker.check(close(entropies(report), sample["entropy"]), f"{name}{batch}: entropies differ: "
                          f"{entropies(report).tolist()} vs {sample['entropy']}")
            labels = run(binary, "info", os.path.join(outdir, name), *args, *batch).stdout.splitlines()
            tokens = [quoted_labels(l) for l in labels if l.startswith("tokens (")]
            if sample["tokens"] is not None:
                checker.check(tokens == [sample["tokens"]], f"{name}{batch}: info tokens {tokens}")
            key_tokens = [quoted_labels(l) for l in labels if l.startswith("key tokens (")]
            if sample["key_tokens"] is not None:
                checker.check(key_tokens == [sample["key_tokens"]], f"{name}{batch}: info key tokens {key_tokens}")
        if entry["batch"]:
            report = stats(name, args + ["--batch", "all"])
            if report is not None:
                checker.check(close(entropies(report), entry["batch"]["entropy_mean"])
                              and close(entropies(report, "entropy_std"), entry["batch"]["entropy_std"]),
                              f"{name}: --batch all mean and std differ")
        if "from_qk_args" in entry:
            report = stats(name, entry["from_qk_args"])
            if report is not None:
                checker.check(close(entropies(report), entry["entropy"]),
                              f"{name}: {' '.join(entry['from_qk_args'])} entropies differ")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir", help="where to write the dumps and expected.json (created if missing)")
    parser.add_argument("--attninspect", metavar="BIN", help="also check that this attninspect binary reads them")
    arguments = parser.parse_args()
    os.makedirs(arguments.outdir, exist_ok=True)

    checker = Checker()
    expected = {name: make(arguments.outdir) for name, make in DUMPS.items()}
    with open(os.path.join(arguments.outdir, "expected.json"), "w") as f:
        json.dump({"tolerance": TOLERANCE, "dumps": expected}, f, indent=1, ensure_ascii=False)
    check_layouts(arguments.outdir, checker)
    check_adapter_details(arguments.outdir, checker)
    check_validation(arguments.outdir, checker)
    if arguments.attninspect:
        check_binary(arguments.attninspect, arguments.outdir, expected, checker)

    sizes = ", ".join(f"{n} {os.path.getsize(os.path.join(arguments.outdir, n))} B" for n in DUMPS)
    print(f"wrote {len(DUMPS)} dumps and expected.json in {arguments.outdir}: {sizes}")
    if checker.failures:
        print(f"{len(checker.failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed" + (" (attninspect included)" if arguments.attninspect else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
