#!/usr/bin/env python3
"""Reference fixtures for `attninspect flow` (attention flow, Abnar & Zuidema 2020).

Run from this directory:  python3 make_flow_cases.py [--no-real]
(about 15-20 minutes on one core, nearly all of it the real case; `--no-real` keeps the real case from the
existing expected.json and takes a few seconds.)
Needs numpy, networkx (written against 3.6.1) and scipy (only for one of the cross-checks).

Writes
  random_L3H2S6.npy   float32 (3,2,6,6), random softmax rows
  sparse_L2H2S5.npy   float32 (2,2,5,5), exact zeros and causal heads, so some capacities are 0
  expected.json       for every case and every layer N: the S x S flow matrix (float64)
and reads (does not copy) ../../real/minilm6_pride_LHSS_f32.npy (float32 (6,12,28,28)).

The pipeline is an independent reimplementation of the reference (samiraabnar/attention_flow:
`attention_graph_util.py` get_adjmat / draw_attention_graph / compute_flows, and the notebooks'
head mean + identity + row renormalisation and `convert_adjmat_tomats`); see README.md for the mapping
and the quirks. Every max-flow value is computed with networkx's Edmonds-Karp, as the reference does,
and then checked other ways: preflow-push (all cases, <= 1e-9), scipy's int32 max-flow on capacities
scaled by 2**30 (all cases, within its rounding bound), and a min-cut optimality certificate for the
Edmonds-Karp flow itself (synthetic cases, <= 1e-9; it costs as much as Edmonds-Karp on the real case).

Deterministic: fixed seed; two runs give byte-identical .npy and .json files.
"""
import json
import os
import sys
import time

import numpy as np
import networkx as nx
from networkx.algorithms.flow import edmonds_karp, preflow_push

SEED = 20250214
HERE = os.path.dirname(os.path.abspath(__file__))
REAL = os.path.join(HERE, "..", "..", "real", "minilm6_pride_LHSS_f32.npy")
TOL = 1e-9


# ----------------------------------------------------------------------------- the pipeline

def residual_mean(att):
    """A_hat[l] = rows-normalised(mean over heads of att[l] + I), in float64 from the stored values.

    (The reference notebooks: `att.sum(axis=1)/att.shape[1]`, `+ np.eye(S)[None]`, divided by
    `.sum(axis=-1)[..., None]`.)"""
    a = np.asarray(att, dtype=np.float64)
    L, H, S, S2 = a.shape
    assert S == S2, "attention flow needs self-attention"
    m = a.sum(axis=1) / H + np.eye(S)[None, ...]
    return m / m.sum(axis=-1)[..., None]


def node(layer, token, S):
    """Graph node index: layer 0 holds the input tokens, layer l+1 the tokens after attention layer l."""
    return layer * S + token


def flow_graph(ahat):
    """The layered flow network: node (l+1, i) -> node (l, j) with capacity ahat[l, i, j].

    Like the reference (adjacency matrix -> nx.from_numpy_array), only non-zero entries become edges,
    the nodes are 0 .. (L+1)*S-1 and the edges are added in row-major order of the adjacency matrix."""
    L, S, _ = ahat.shape
    G = nx.DiGraph()
    G.add_nodes_from(range((L + 1) * S))
    for l in range(L):
        for i in range(S):
            for j in range(S):
                c = float(ahat[l, i, j])
                if c != 0.0:
                    G.add_edge(node(l + 1, i, S), node(l, j, S), weight=c, capacity=c)
    return G


def flow_graph_like_reference(ahat):
    """The same graph built the way the reference builds it (get_adjmat + draw_attention_graph,
    with nx.from_numpy_array, the networkx 3 name of from_numpy_matrix). Used only to check flow_graph."""
    L, S, _ = ahat.shape
    n = (L + 1) * S
    adj = np.zeros((n, n))
    for l in range(L):
        adj[(l + 1) * S:(l + 2) * S, l * S:(l + 1) * S] = ahat[l]
    G = nx.from_numpy_array(adj, create_using=nx.DiGraph())
    for u in range(n):
        for v in range(n):
            nx.set_edge_attributes(G, {(u, v): adj[u, v]}, "capacity")   # absent edges: silently ignored
    return G


def flow_matrix(G, S, layer, values=None, flow_func=edmonds_karp):
    """F[i, j] = max-flow (Edmonds-Karp) from node (layer+1, i) to input node (0, j); rows / row sums."""
    F = np.zeros((S, S))
    for i in range(S):
        for j in range(S):
            v = nx.maximum_flow_value(G, node(layer + 1, i, S), node(0, j, S), flow_func=flow_func)
            F[i, j] = v
            if values is not None:
                values.append((node(layer + 1, i, S), node(0, j, S), v))
        F[i] /= F[i].sum()     # the reference divides unguarded (0/0 -> NaN); with + I a sum is never 0
    return F


# ----------------------------------------------------------------------------- cross-checks

def certificate_gap(G, s, t):
    """|Edmonds-Karp flow value - capacity of the cut it induces|, after checking the flow is feasible.

    A feasible flow whose value equals the capacity of some s-t cut is maximum (max-flow min-cut), so a gap
    of ~0 proves the value without trusting any max-flow code."""
    value, flow = nx.maximum_flow(G, s, t, flow_func=edmonds_karp)
    net = {n: 0.0 for n in G}
    for u, v, d in G.edges(data=True):
        f = flow[u][v]
        assert -1e-15 <= f <= d["capacity"] + 1e-15, (u, v, f, d["capacity"])
        net[u] -= f
        net[v] += f
    for n, x in net.items():
        if n == s:
            assert abs(x + value) <= 1e-12
        elif n == t:
            assert abs(x - value) <= 1e-12
        else:
            assert abs(x) <= 1e-12, (n, x)
    # source side: reachable from s through edges with residual capacity
    side, stack = {s}, [s]
    while stack:
        u = stack.pop()
        nbrs = [(v, G[u][v]["capacity"] - flow[u][v]) for v in G.successors(u)]
        nbrs += [(w, flow[w][u]) for w in G.predecessors(u)]
        for v, r in nbrs:
            if r > 1e-14 and v not in side:
                side.add(v)
                stack.append(v)
    assert t not in side
    cut = sum(d["capacity"] for u, v, d in G.edges(data=True) if u in side and v not in side)
    return abs(cut - value)


def scipy_values(G, pairs):
    """Max-flow values from scipy's integer max-flow on capacities scaled by 2**30 and rounded (None if no
    scipy). scipy works in int32, so this is only a coarse check: rounding moves each capacity by at most
    2**-31, hence a value by at most (number of edges) * 2**-31 -- the bound `check` uses for it."""
    try:
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import maximum_flow
    except ImportError:
        return None
    scale = 2.0 ** 30
    n = G.number_of_nodes()
    rows, cols, caps = zip(*[(u, v, int(round(d["capacity"] * scale))) for u, v, d in G.edges(data=True)])
    M = csr_matrix((np.array(caps, dtype=np.int32), (rows, cols)), shape=(n, n))
    return [maximum_flow(M, s, t).flow_value / scale for s, t in pairs]


def check(G, values, do_certificate):
    """Asserts that every Edmonds-Karp value agrees with the other methods within TOL; returns the gaps."""
    gaps = {"preflow_push": 0.0, "scipy_scaled_int": None, "min_cut_certificate": None}
    for s, t, v in values:
        w = nx.maximum_flow_value(G, s, t, flow_func=preflow_push)
        gaps["preflow_push"] = max(gaps["preflow_push"], abs(v - w))
    sv = scipy_values(G, [(s, t) for s, t, _ in values])
    if sv is not None:
        gaps["scipy_scaled_int"] = max(abs(v - w) for (_, _, v), w in zip(values, sv))
    if do_certificate:
        gaps["min_cut_certificate"] = max(certificate_gap(G, s, t) for s, t, _ in values)
    assert gaps["preflow_push"] <= TOL, gaps
    assert gaps["min_cut_certificate"] is None or gaps["min_cut_certificate"] <= TOL, gaps
    assert gaps["scipy_scaled_int"] is None or gaps["scipy_scaled_int"] <= G.number_of_edges() * 2.0 ** -31, gaps
    return gaps


# ----------------------------------------------------------------------------- the cases

def softmax_rows(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def make_random(rng):
    return softmax_rows(rng.standard_normal((3, 2, 6, 6)) * 1.5).astype(np.float32)


def make_sparse(rng):
    """(2,2,5,5). Layer 0: head 0 causal, head 1 dense with 6 exact zeros above the diagonal, so the head
    mean is 0 at (0,2) (0,3) (0,4) (1,3) (1,4) (3,4). Layer 1: both heads causal (head 1 with two extra
    zeros and a one-hot row), so the layer-1 mean is lower-triangular and many flows are exactly 0."""
    S = 5
    causal = np.tril(np.ones((S, S), dtype=bool))
    a = softmax_rows(rng.standard_normal((2, 2, S, S)) * 1.5)
    a[0, 0][~causal] = 0.0
    for i, j in [(0, 2), (0, 3), (0, 4), (1, 3), (1, 4), (3, 4)]:
        a[0, 1, i, j] = 0.0
    a[1, 0][~causal] = 0.0
    a[1, 1][~causal] = 0.0
    a[1, 1, 3, 1] = 0.0
    a[1, 1, 4, 2] = 0.0
    a[1, 1, 2] = [1.0, 0.0, 0.0, 0.0, 0.0]
    a /= a.sum(axis=-1, keepdims=True)
    return a.astype(np.float32)


def run_case(name, att, source, layers, certificate):
    L, H, S, _ = att.shape
    ahat = residual_mean(att)
    G = flow_graph(ahat)
    capacity_zeros = int((ahat == 0).sum())
    case = {
        "source": source,
        "shape": [L, H, S, S],
        "dtype": str(att.dtype),
        "zero_capacities": capacity_zeros,
        "layers": {},
    }
    gaps_all = {}
    t0 = time.perf_counter()
    for N in layers:
        values = []
        F = flow_matrix(G, S, N, values)
        assert np.isfinite(F).all()
        assert np.allclose(F.sum(axis=1), 1.0, atol=1e-12)
        gaps = check(G, values, certificate)
        for k, g in gaps.items():
            if g is not None:
                gaps_all[k] = max(gaps_all.get(k, 0.0), g)
        case["layers"][str(N)] = F.tolist()
        print(f"  {name} layer {N} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        case.setdefault("exact_zero_flows", {})[str(N)] = int((F == 0).sum())
    case["max_abs_gap_vs_edmonds_karp"] = gaps_all
    # What the reference gets when the head mean is taken in float32 (attentions from torch are float32):
    # the fixture's values are float64 throughout; this is how far the two differ (last layer; both sides
    # with preflow-push here, which is much faster than Edmonds-Karp on the real case and agrees to 1e-9).
    ahat32 = att.sum(axis=1) / np.float32(H) + np.eye(S)[None, ...]
    ahat32 = ahat32 / ahat32.sum(axis=-1)[..., None]
    F32 = flow_matrix(flow_graph(ahat32), S, L - 1, flow_func=preflow_push)
    F64 = flow_matrix(G, S, L - 1, flow_func=preflow_push)
    case["last_layer_max_abs_diff_float32_head_mean"] = float(np.abs(F32 - F64).max())
    print(f"{name}: shape {tuple(att.shape)} layers {list(layers)} zero capacities {capacity_zeros} "
          f"gaps {gaps_all} f32-mean diff {case['last_layer_max_abs_diff_float32_head_mean']:.2e} "
          f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return case


def main():
    """`--no-real` copies the real case from the existing expected.json instead of recomputing it (the
    real case takes ~15 minutes: 4704 Edmonds-Karp max-flows on a 196-node, 4704-edge graph)."""
    reuse_real = "--no-real" in sys.argv[1:]
    os.chdir(HERE)
    rng = np.random.default_rng(SEED)
    random_case = make_random(rng)
    sparse_case = make_sparse(rng)
    np.save("random_L3H2S6.npy", random_case)
    np.save("sparse_L2H2S5.npy", sparse_case)

    # the reimplemented graph is the reference's graph (same nodes, edges, capacities, edge order)
    for att in (random_case, sparse_case):
        ahat = residual_mean(att)
        mine, theirs = flow_graph(ahat), flow_graph_like_reference(ahat)
        assert list(mine.nodes) == list(theirs.nodes)
        assert list(mine.edges) == list(theirs.edges)
        assert all(mine[u][v]["capacity"] == theirs[u][v]["capacity"] for u, v in mine.edges)

    real = np.load(REAL)
    assert real.shape == (6, 12, 28, 28) and real.dtype == np.float32, (real.shape, real.dtype)

    out = {
        "schema": "attninspect-flow-expected/1",
        "reference": "samiraabnar/attention_flow: attention_graph_util.py (get_adjmat, draw_attention_graph, "
                     "compute_flows), notebooks (bert_example.ipynb: head mean + I, row renormalisation, "
                     "convert_adjmat_tomats)",
        "definition": "Ahat[l] = rownorm(mean_h A[l] + I) in float64 from the stored values; node (l+1,i) -> "
                      "(l,j) capacity Ahat[l,i,j]; layers[N][i][j] = maxflow((N+1,i) -> (0,j)) (networkx "
                      "edmonds_karp) / sum_j of the same; N = 0-based attention layer; rows = tokens after "
                      "layer N, columns = input tokens",
        "networkx": nx.__version__,
        "cases": {
            "random_L3H2S6": run_case("random_L3H2S6", random_case, "random_L3H2S6.npy", range(3), True),
            "sparse_L2H2S5": run_case("sparse_L2H2S5", sparse_case, "sparse_L2H2S5.npy", range(2), True),
        },
    }
    if reuse_real:
        with open("expected.json") as f:
            out["cases"]["minilm6_pride"] = json.load(f)["cases"]["minilm6_pride"]
    else:
        out["cases"]["minilm6_pride"] = run_case("minilm6_pride", real, "../../real/minilm6_pride_LHSS_f32.npy",
                                                 range(6), False)
    with open("expected.json", "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"expected.json: {os.path.getsize('expected.json')} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
