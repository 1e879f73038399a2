#!/usr/bin/env python3
"""Per-layer attention under the names frameworks give it, for the layer families (numpy + h5py + safetensors).
Made from ../base_f32.npy (3 layers, 2 heads, 10 x 10), so each must read as that file does:

  savez_arr.npz           np.savez(*layers): members arr_0, arr_1, arr_2 (what np.savez(*out.attentions) writes)
  layers_dotted.safetensors  tensors model.layers.{0,1,2}.self_attn (Llama-style module names)
  bert_dotted.h5          datasets encoder.layer.{0,1,2}.attention.self (BERT-style module names)
  two_families.npz        arr_{0,1,2} and other_{0,1,2} (other_ = arr_ reversed): ambiguous without --dataset
"""
import os

import h5py
import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
base = np.load(os.path.join(HERE, "..", "base_f32.npy"))
np.savez(os.path.join(HERE, "savez_arr.npz"), *base)
save_file({f"model.layers.{i}.self_attn": np.ascontiguousarray(base[i]) for i in range(3)},
          os.path.join(HERE, "layers_dotted.safetensors"))
with h5py.File(os.path.join(HERE, "bert_dotted.h5"), "w", libver=("earliest", "v110")) as f:
    for i in range(3):
        f[f"encoder.layer.{i}.attention.self"] = base[i]
np.savez(os.path.join(HERE, "two_families.npz"), **{f"arr_{i}": base[i] for i in range(3)},
         **{f"other_{i}": base[2 - i] for i in range(3)})
