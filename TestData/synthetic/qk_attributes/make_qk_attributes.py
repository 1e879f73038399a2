"""Q/K dumps whose root attributes say how to recompute attention: `causal` and `scale`.

Run from this directory: python3 make_qk_attributes.py (numpy + h5py + safetensors, seed 5). The expected values are
float64 numpy: softmax(q·kᵀ·scale) with keys after the query masked when causal, from q and k as stored (float32).

  qk_causal_scale.h5           q, k (L=2, H=2, S=6, d=4) f32; attrs causal = numpy True (h5py's bool enum), scale = 0.3
  qk_causal_int.h5             the same q, k; attrs causal = int8 1 (no scale: 1/√d)
  qk_causal_meta.safetensors   the same q, k; __metadata__ {"causal": "true", "scale": "0.3"}
  qk_bad_causal.h5             the same q, k; attr causal = "maybe" (an error unless --causal/--no-causal)
  qk_bad_scale.h5              the same q, k; attr scale = -1.0 (an error unless --scale)
  expected.json                per layer, per head: the mean row entropy (nats) of causal+0.3, causal+1/√d,
                               not causal+0.3 and not causal+1/√d
"""
import json
import numpy as np
import h5py
from safetensors.numpy import save_file

rng = np.random.default_rng(5)
L, H, S, d = 2, 2, 6, 4
q = rng.normal(size=(L, H, S, d)).astype(np.float32)
k = rng.normal(size=(L, H, S, d)).astype(np.float32)


def attention(scale, causal):
    logits = np.einsum("lhid,lhjd->lhij", q.astype(np.float64), k.astype(np.float64)) * scale
    if causal:
        logits = np.where(np.tril(np.ones((S, S), bool)), logits, -np.inf)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def entropy(a):
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(a > 0, a * np.log(a), 0.0)
    return (-plogp.sum(-1).mean(-1)).tolist()


def write_h5(name, **attrs):
    with h5py.File(name, "w") as f:
        f["q"] = q
        f["k"] = k
        for key, value in attrs.items():
            f.attrs[key] = value


write_h5("qk_causal_scale.h5", causal=np.bool_(True), scale=np.float64(0.3))
write_h5("qk_causal_int.h5", causal=np.int8(1))
write_h5("qk_bad_causal.h5", causal="maybe")
write_h5("qk_bad_scale.h5", scale=np.float64(-1.0))
save_file({"q": np.ascontiguousarray(q), "k": np.ascontiguousarray(k)}, "qk_causal_meta.safetensors",
          metadata={"causal": "true", "scale": "0.3"})

default = 1 / np.sqrt(d)
expected = {
    "causal_scale": entropy(attention(0.3, True)),
    "causal_default": entropy(attention(default, True)),
    "plain_scale": entropy(attention(0.3, False)),
    "plain_default": entropy(attention(default, False)),
}
with open("expected.json", "w") as f:
    json.dump(expected, f, indent=1)
