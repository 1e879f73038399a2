#!/usr/bin/env python3
"""Times the reference attention-flow pipeline (samiraabnar/attention_flow) on an attention dump.

usage: flow_reference.py FILE [--layer N] [--all-layers] [--out F.npy]

FILE: .npy (L,H,S,S) or .h5 — either one 4-d dataset (`attentions`, `attention`, `attn`) or one (H,S,S)
dataset per layer (e.g. `/layer_00/attn`, `/layers/3/attention`, `/attn_7`), ordered by the layer number.

What is timed is what the reference does (attention_graph_util.py and its notebooks), written out here:
  1. prepare: head mean (`sum(axis=1)/H`), `+ np.eye(S)`, rows divided by their sums, in float64;
  2. graph:   the (L+1)S x (L+1)S adjacency matrix (get_adjmat), `nx.from_numpy_array(..., DiGraph)` and
              one `nx.set_edge_attributes(G, {(i, j): A[i, j]}, 'capacity')` call per matrix entry
              (draw_attention_graph, without the drawing);
  3. flows:   `nx.maximum_flow_value(G, u, v, flow_func=edmonds_karp)` for every token u after layer N and
              every input token v, each row then divided by its sum (compute_flows).
By default only layer N (default the last) is computed: S*S max-flow calls. The reference's compute_flows
does every layer (L*S*S calls); `--all-layers` does that. Prints wall and CPU seconds of each phase and the
number of max-flow calls. `--out` saves layer N's S x S flow matrix as float64 .npy.
"""
import argparse
import re
import sys
import time

import numpy as np
import networkx as nx
from networkx.algorithms.flow import edmonds_karp


def load(path):
    """Returns the attention as a float64 (L,H,S,S) array."""
    if path.endswith(".npy"):
        a = np.load(path)
    elif path.endswith((".h5", ".hdf5")):
        import h5py
        with h5py.File(path, "r") as f:
            found = []
            f.visititems(lambda name, obj: found.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)
            names = [(n, d) for n, d in found if n.split("/")[-1] in ("attentions", "attention", "attn")
                     or re.fullmatch(r"attn_\d+", n.split("/")[-1])]
            four = [(n, d) for n, d in names if d.ndim == 4]
            if four:
                a = four[0][1][()]
            else:
                three = [(n, d) for n, d in names if d.ndim == 3]
                if not three:
                    sys.exit(f"flow_reference.py: {path}: no attention dataset found")
                key = lambda nd: [int(x) for x in re.findall(r"\d+", nd[0])]
                a = np.stack([d[()] for n, d in sorted(three, key=key)])
    else:
        sys.exit(f"flow_reference.py: {path}: expected .npy or .h5")
    if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
        sys.exit(f"flow_reference.py: {path}: expected (L,H,S,S), found {a.shape}")
    return np.asarray(a, dtype=np.float64), a.dtype


class Clock:
    def __init__(self):
        self.rows = []

    def __call__(self, name):
        clock = self

        class Phase:
            def __enter__(self):
                self.w, self.c = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                clock.rows.append((name, time.perf_counter() - self.w, time.process_time() - self.c))
        return Phase()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--layer", type=int, default=None, help="0-based attention layer N (default: the last)")
    ap.add_argument("--all-layers", action="store_true", help="every layer, as compute_flows does")
    ap.add_argument("--out", help="write layer N's flow matrix (float64 .npy)")
    args = ap.parse_args()

    clock = Clock()
    with clock("load"):
        att, dtype = load(args.file)
    L, H, S, _ = att.shape
    N = L - 1 if args.layer is None else args.layer
    if not 0 <= N < L:
        sys.exit(f"flow_reference.py: layer {N} out of range 0..{L - 1}")
    layers = range(L) if args.all_layers else [N]

    with clock("prepare"):
        m = att.sum(axis=1) / H
        m = m + np.eye(S)[None, ...]
        m = m / m.sum(axis=-1)[..., None]

    with clock("graph"):
        n = (L + 1) * S
        adj = np.zeros((n, n))
        for l in range(L):
            adj[(l + 1) * S:(l + 2) * S, l * S:(l + 1) * S] = m[l]
        G = nx.from_numpy_array(adj, create_using=nx.DiGraph())
        for u in range(n):
            for v in range(n):
                nx.set_edge_attributes(G, {(u, v): adj[u, v]}, "capacity")

    calls = 0
    flows = {}
    with clock("flows"):
        for l in layers:
            F = np.zeros((S, S))
            for i in range(S):
                for j in range(S):
                    F[i, j] = nx.maximum_flow_value(G, (l + 1) * S + i, j, flow_func=edmonds_karp)
                    calls += 1
                F[i] /= F[i].sum()
            flows[l] = F

    if args.out:
        np.save(args.out, flows[N])

    total_w = sum(r[1] for r in clock.rows)
    total_c = sum(r[2] for r in clock.rows)
    print(f"file: {args.file}  shape (L,H,S,S) = {(L, H, S, S)} {dtype}  layers: "
          f"{'all (0..%d)' % (L - 1) if args.all_layers else N}  graph: {G.number_of_nodes()} nodes, "
          f"{G.number_of_edges()} edges  networkx {nx.__version__}")
    for name, w, c in clock.rows:
        print(f"  {name:8s} {w:10.3f} s wall {c:10.3f} s cpu")
    print(f"  {'total':8s} {total_w:10.3f} s wall {total_c:10.3f} s cpu")
    print(f"max-flow calls: {calls}  ({1e3 * clock.rows[-1][1] / calls:.2f} ms each)")
    print(f"seconds: {total_w:.3f}")


if __name__ == "__main__":
    main()
