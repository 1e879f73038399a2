#!/usr/bin/env python3
"""Attention whose axes are not in attninspect's default order, for --axes and the `axes` attribute (numpy + h5py).
Made from ../batch_LBHQK.npy (3 layers, a batch of 3, 2 heads, 10 x 10), so every case has a known answer:

  batch_BLHQK.npy      the same array with the batch axis first: (B, L, H, Q, K) = transpose(1, 0, 2, 3, 4)
  batch_BLHQK_axes.h5  the same in HDF5 with the root attribute axes = "batch,layer,head,query,key"
  layer2_BHQK.npy      layer 2 alone, a batch of 3: (B, H, Q, K), what np.save(out.attentions[2]) writes

Expected: --axes B,L,H,Q,K (or the attribute) with --batch b reads what batch_LBHQK.npy reads with --batch b;
layer2_BHQK.npy with --axes B,H,Q,K --batch b is layer 2 of that.
"""
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
lbhqk = np.load(os.path.join(HERE, "..", "batch_LBHQK.npy"))
blhqk = np.ascontiguousarray(lbhqk.transpose(1, 0, 2, 3, 4))
np.save(os.path.join(HERE, "batch_BLHQK.npy"), blhqk)
np.save(os.path.join(HERE, "layer2_BHQK.npy"), np.ascontiguousarray(lbhqk[2]))
with h5py.File(os.path.join(HERE, "batch_BLHQK_axes.h5"), "w", libver=("earliest", "v110")) as f:
    f["attentions"] = blhqk
    f.attrs["axes"] = "batch,layer,head,query,key"
