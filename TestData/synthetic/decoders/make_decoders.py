#!/usr/bin/env python3
"""Decoder-only models' attention and the q and k it came from, written by the real models of transformers
(randomly initialised from a config: nothing is downloaded), for attninspect's recomputation rules: grouped-query
attention, sliding windows, logit soft-capping, a scale other than 1/sqrt(d), ALiBi.

Run with torch (CPU) and transformers 5 and h5py: python3 make_decoders.py (seed 20261206). Each file holds
  attentions (L, H, S, S) float32  the model's own attention (output_attentions=True, attn_implementation="eager")
  q (L, H, S, d), k (L, H_kv, S, d) float32  what the attention function was given: after the rotary embedding,
                                   k before repeat_kv (Llama, Mistral, Gemma 2; captured by wrapping the module's
                                   eager_attention_forward); BLOOM's from its fused query_key_value projection
and the root attributes that say how the model computed it, named as in Hugging Face configs: causal, scale
(Gemma 2: query_pre_attn_scalar^-1/2), num_key_value_heads, sliding_window and layer_types, attn_logit_softcapping,
alibi, model. The projections' weights are multiplied by 8 after initialisation so that the scores span several
units (with the default initialisation every rule would change the attention by less than float32 rounding).

  llama_gqa.h5      Llama, 4 query heads over 2 key heads (GQA), causal
  mistral_window.h5 Mistral, 4 over 2 heads, sliding window 4 on every layer
  gemma2.h5         Gemma 2, 4 over 2 heads, query_pre_attn_scalar 24 (head_dim 16), attn_logit_softcapping 2,
                    sliding window 4 on layers 0 and 2 (layer_types alternating, as Gemma 2's)
  bloom_alibi.h5    BLOOM, 3 heads (ALiBi slopes 1/16, 1/256, 1/4: not a power of two), causal
"""
import os

import h5py
import numpy as np
import torch
from transformers import (BloomConfig, BloomModel, Gemma2Config, Gemma2Model, LlamaConfig, LlamaModel, MistralConfig,
                          MistralModel)
import transformers.models.gemma2.modeling_gemma2 as gemma2_module
import transformers.models.llama.modeling_llama as llama_module
import transformers.models.mistral.modeling_mistral as mistral_module

HERE = os.path.dirname(os.path.abspath(__file__))
S = 12
torch.manual_seed(20261206)


def sharpen(model, names):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if any(n in name for n in names) and name.endswith("weight"):
                p.mul_(8.0)


def run_captured(module, model, ids):
    """The model's attentions and the (q, k) its eager attention function received, per layer."""
    captured = []
    original = module.eager_attention_forward

    def capture(mod, query, key, *args, **kwargs):
        captured.append((query.detach().clone(), key.detach().clone()))
        return original(mod, query, key, *args, **kwargs)

    module.eager_attention_forward = capture
    try:
        with torch.no_grad():
            out = model(input_ids=ids, output_attentions=True)
    finally:
        module.eager_attention_forward = original
    return out.attentions, captured


def write(name, attentions, qk, attrs):
    attn = torch.stack(attentions)[:, 0].float().numpy()
    q = torch.stack([c[0][0] for c in qk]).float().numpy()
    k = torch.stack([c[1][0] for c in qk]).float().numpy()
    with h5py.File(os.path.join(HERE, name), "w", libver=("earliest", "v110")) as f:
        f["attentions"] = attn
        f["q"] = q
        f["k"] = k
        for key, value in attrs.items():
            if isinstance(value, list) and value and isinstance(value[0], str):
                f.attrs.create(key, value, dtype=h5py.string_dtype())
            else:
                f.attrs[key] = value
    print(name, attn.shape, q.shape, k.shape)


ids = torch.randint(0, 100, (1, S))
common = dict(vocab_size=100, hidden_size=64, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=64, attn_implementation="eager")

llama = LlamaModel(LlamaConfig(num_hidden_layers=2, **common)).eval()
sharpen(llama, ["q_proj", "k_proj"])
a, qk = run_captured(llama_module, llama, ids)
write("llama_gqa.h5", a, qk, {"causal": np.int8(1), "num_key_value_heads": np.int64(2),
                              "model": "LlamaModel, random init (transformers 5)"})

mistral = MistralModel(MistralConfig(num_hidden_layers=2, sliding_window=4, **common)).eval()
sharpen(mistral, ["q_proj", "k_proj"])
a, qk = run_captured(mistral_module, mistral, ids)
write("mistral_window.h5", a, qk, {"causal": np.int8(1), "sliding_window": np.int64(4),
                                   "model": "MistralModel, random init (transformers 5)"})

gemma_config = Gemma2Config(num_hidden_layers=3, head_dim=16, query_pre_attn_scalar=24, attn_logit_softcapping=2.0,
                            final_logit_softcapping=None, sliding_window=4, **common)
gemma = Gemma2Model(gemma_config).eval()
sharpen(gemma, ["q_proj", "k_proj"])
a, qk = run_captured(gemma2_module, gemma, ids)
write("gemma2.h5", a, qk, {"causal": np.int8(1), "scale": np.float64(24 ** -0.5), "attn_logit_softcapping": 2.0,
                           "sliding_window": np.int64(4), "layer_types": list(gemma_config.layer_types),
                           "model": "Gemma2Model, random init (transformers 5)"})

bloom = BloomModel(BloomConfig(vocab_size=100, hidden_size=48, n_layer=2, n_head=3,
                               attn_implementation="eager")).eval()
sharpen(bloom, ["query_key_value"])
fused = []
hooks = [block.self_attention.query_key_value.register_forward_hook(lambda m, i, o: fused.append(o.detach().clone()))
         for block in bloom.h]
with torch.no_grad():
    out = bloom(input_ids=ids, output_attentions=True)
for h in hooks:
    h.remove()
qk = [bloom.h[l].self_attention._reshape(fused[l])[:2] for l in range(len(bloom.h))]
write("bloom_alibi.h5", out.attentions, qk, {"causal": np.int8(1), "alibi": np.int8(1),
                                             "model": "BloomModel, random init (transformers 5)"})
