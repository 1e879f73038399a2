#!/usr/bin/env python3
"""A TransformerLens activation cache saved as PyTorch users save it: torch.save(cache.cache_dict, "tl_cache.pt").
Run with TransformerLens 3 (HookedTransformer), torch (CPU): python3 make_tl_cache.py (seed 20261206). The model is
randomly initialised from a config: a 2-layer attention-only model with rotary embeddings and grouped-query
attention (4 query heads over 2 key heads), run on 7 tokens.

  tl_cache.pt  every hook of the run under TransformerLens's names: blocks.N.attn.hook_pattern [batch, head, query,
               key], hook_q / hook_k [batch, position, head, d_head] (before the rotation), hook_rot_q / hook_rot_k
               (after it; k with 2 heads), hook_attn_scores, hook_v, hook_z, the residual stream, ...
Expected: the attention is the hook_pattern family; recomputed from hook_rot_q / hook_rot_k with --causal it equals
hook_pattern (verify, float32 tolerance 1e-4).
"""
import os

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(20261206)
cfg = HookedTransformerConfig(n_layers=2, d_model=32, n_ctx=16, d_head=8, n_heads=4, n_key_value_heads=2,
                              d_vocab=50, act_fn="gelu", attn_only=True, positional_embedding_type="rotary",
                              rotary_dim=8)
model = HookedTransformer(cfg).eval()
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith(("W_Q", "W_K", "_W_K")):
            p.mul_(4.0)  # sharper attention than the default initialisation gives
    _, cache = model.run_with_cache(torch.randint(0, 50, (1, 7)))
torch.save(dict(cache.cache_dict), os.path.join(HERE, "tl_cache.pt"))
print("tl_cache.pt", sorted(k for k in cache.cache_dict if k.startswith("blocks.0.attn")))
