#!/usr/bin/env python3
"""torch.save files as PyTorch users write them, for attninspect's torch.save reader, each with the reference it
must read as, written by numpy. Run with torch (CPU), transformers 5 and numpy: python3 make_torch_cases.py
(seed 20261206). The models are randomly initialised from a config: nothing is downloaded.

From a BertModel (2 layers, 4 heads, 9 tokens; out.attentions with attn_implementation="eager"):
  bert_reference.npy       (L, H, S, S) float32   numpy's copy of the attention: what every file below reads as
  bert_reference_f16.npy   the same rounded to float16 (numpy), for bert_stacked_f16.pt
  bert_reference_bf16.npy  the same rounded to bfloat16 by torch, stored as float32 (exact), for bert_dict_bf16.pt
  bert_tuple.pt            torch.save(out.attentions): a tuple of per-layer (1, H, S, S) tensors
  bert_stacked_f16.pt      torch.save(torch.stack(out.attentions).half()): one (L, 1, H, S, S) tensor
  bert_dict_bf16.pt        torch.save({"attentions": tuple in bfloat16, "tokens": [...], "model": ...})
  bert_views.pt            {"attentions": a transposed view at a storage offset, "layer_inner": a view whose
                           layer axis is not outermost in its storage}: non-contiguous views, saved as they are
  bert_tuple_be.pt         bert_tuple.pt rewritten big-endian (byteorder "big", every storage byte-swapped), as
                           torch.save writes on a big-endian machine
  tokens.txt               the token labels, one per line

From a LlamaModel (2 layers, 4 query heads over 2 key heads, 12 tokens, causal; q and k captured after the
rotary embedding, as the eager attention function receives them, k before repeat_kv):
  llama_qk.pt              {"attentions": (L, H, S, S), "q": (L, H, S, d), "k": (L, H_kv, S, d), "causal": True,
                           "num_key_value_heads": 2}: verify recomputes the model's attention from q and k
  llama_reference.npy      numpy's copy of the model's attention
  llama_qk_prerope.pt      the same with q and k taken before the rotary embedding (q_proj and k_proj outputs):
                           verify must fail it
  llama_qk_f16.pt          llama_qk.pt with q and k in float16: verify passes it at the 16-bit tolerance (2e-2)
"""
import collections
import io
import os
import zipfile

import numpy as np
import torch
from transformers import BertConfig, BertModel, LlamaConfig, LlamaModel
import transformers.models.llama.modeling_llama as llama_module

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(20261206)


def save(obj, name):
    torch.save(obj, os.path.join(HERE, name))
    print(name)


# BERT: stored attention.
bert = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=32, attn_implementation="eager")).eval()
with torch.no_grad():
    for name, p in bert.named_parameters():
        if ("query" in name or "key" in name) and name.endswith("weight"):
            p.mul_(6.0)  # sharper attention than the default initialisation gives
ids = torch.randint(0, 100, (1, 9))
with torch.no_grad():
    out = bert(input_ids=ids, output_attentions=True)
attentions = out.attentions
tokens = ["[CLS]"] + [f"tok{int(i)}" for i in ids[0, 1:-1]] + ["[SEP]"]
stacked = torch.stack(attentions)[:, 0]  # (L, H, S, S)
np.save(os.path.join(HERE, "bert_reference.npy"), stacked.numpy().astype(np.float32))
np.save(os.path.join(HERE, "bert_reference_f16.npy"), stacked.numpy().astype(np.float16))
np.save(os.path.join(HERE, "bert_reference_bf16.npy"), stacked.bfloat16().float().numpy())
with open(os.path.join(HERE, "tokens.txt"), "w") as f:
    f.write("\n".join(tokens) + "\n")

save(attentions, "bert_tuple.pt")
save(torch.stack(attentions).half(), "bert_stacked_f16.pt")
save({"attentions": tuple(a.bfloat16() for a in attentions), "tokens": tokens,
      "model": "BertModel, random init (transformers 5)"}, "bert_dict_bf16.pt")
L, H, S, _ = stacked.shape
transposed = stacked.transpose(-1, -2).contiguous()
padded = torch.cat([torch.full((1, H, S, S), 7.0), transposed])
offset_view = padded[1:].transpose(-1, -2)  # storage offset H*S*S, strides (H*S*S, S*S, 1, S)
layer_inner = stacked.transpose(0, 1).contiguous().transpose(0, 1)  # strides (S*S, L*S*S, S, 1)
assert not offset_view.is_contiguous() and offset_view.storage_offset() == H * S * S
assert not layer_inner.is_contiguous()
assert torch.equal(offset_view, stacked) and torch.equal(layer_inner, stacked)
save({"attentions": offset_view, "layer_inner": layer_inner}, "bert_views.pt")

# The same file as a big-endian machine writes it: byteorder "big" and every storage record byte-swapped.
with zipfile.ZipFile(os.path.join(HERE, "bert_tuple.pt")) as source, \
        zipfile.ZipFile(os.path.join(HERE, "bert_tuple_be.pt"), "w", zipfile.ZIP_STORED) as target:
    for info in source.infolist():
        data = source.read(info.filename)
        if info.filename.endswith("/byteorder"):
            data = b"big"
        elif "/data/" in info.filename:
            data = np.frombuffer(data, dtype="<f4").astype(">f4").tobytes()
        target.writestr(info.filename.replace("bert_tuple/", "bert_tuple_be/"), data)
print("bert_tuple_be.pt")

# Llama with grouped-query attention: q and k as the eager attention function receives them.
llama = LlamaModel(LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                               attn_implementation="eager")).eval()
with torch.no_grad():
    for name, p in llama.named_parameters():
        if ("q_proj" in name or "k_proj" in name) and name.endswith("weight"):
            p.mul_(8.0)
captured = []
original = llama_module.eager_attention_forward


def capture(module, query, key, *args, **kwargs):
    captured.append((query.detach().clone(), key.detach().clone()))
    return original(module, query, key, *args, **kwargs)


llama_module.eager_attention_forward = capture
projections = {"q": [], "k": []}  # q_proj and k_proj outputs: q and k before the rotary embedding
hooks = [getattr(layer.self_attn, name + "_proj").register_forward_hook(
    lambda m, i, o, name=name: projections[name].append(o.detach().clone())) for layer in llama.layers
    for name in ("q", "k")]
try:
    with torch.no_grad():
        out = llama(input_ids=torch.randint(0, 100, (1, 12)), output_attentions=True)
finally:
    llama_module.eager_attention_forward = original
    for hook in hooks:
        hook.remove()
llama_attention = torch.stack(out.attentions)[:, 0]
np.save(os.path.join(HERE, "llama_reference.npy"), llama_attention.numpy().astype(np.float32))
save({"attentions": llama_attention, "q": torch.stack([q[0] for q, _ in captured]),
      "k": torch.stack([k[0] for _, k in captured]), "causal": True, "num_key_value_heads": 2,
      "model": "LlamaModel, random init (transformers 5)"}, "llama_qk.pt")


def heads_first(x, heads):
    """(1, S, heads·d) → (heads, S, d)."""
    return x[0].reshape(x.shape[1], heads, -1).transpose(0, 1)


save({"attentions": llama_attention, "q": torch.stack([heads_first(q, 4) for q in projections["q"]]),
      "k": torch.stack([heads_first(k, 2) for k in projections["k"]]), "causal": True,
      "model": "LlamaModel, random init (transformers 5); q and k before the rotary embedding"}, "llama_qk_prerope.pt")
save({"attentions": llama_attention, "q": torch.stack([q[0] for q, _ in captured]).half(),
      "k": torch.stack([k[0] for _, k in captured]).half(), "causal": True,
      "model": "LlamaModel, random init (transformers 5); q and k in float16"}, "llama_qk_f16.pt")
