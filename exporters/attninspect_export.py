"""Write attention dumps that attninspect reads: the canonical HDF5 layout, from arrays or from a framework.

Only numpy and h5py are imported here. The adapters for Hugging Face transformers, timm and TransformerLens
take the framework's own objects and import nothing from it, except `export_timm`, which imports torch when
called. Tensors are accepted by duck typing: anything with `detach` (a torch tensor) goes through
`.detach().cpu().float().numpy()`, anything else through `np.asarray`.

Axes, as attninspect names them (L layers, B batch samples, H heads, Q queries, K keys, S positions, d head
dimension):

    attentions      (L, H, Q, K) or (L, B, H, Q, K)    attention probabilities, A[l, h, i, :] is query i's row
    q, k            (L, H, S, d) or (L, B, H, S, d)    per-head queries and keys (self-attention)
    tokens          (Q,) or (B, Q)                     variable-length UTF-8 labels of the queries
    key_tokens      (K,) or (B, K)                     labels of the keys, for cross-attention
    attention_mask  (K,) or (B, K)                     int8, 1 for a real token, 0 for padding

Root attributes: model (str), patch_grid ([rows, cols]), prefix_tokens (int), causal (int8 0/1), scale (float64),
num_heads (int), axes (str, for a single attention tensor: "layer,head,query,key" or "layer,batch,head,query,key"),
qk_axes (str, for single q and k tensors: "layer,head,position,dim" or "layer,batch,head,position,dim"),
num_key_value_heads (int, when k has fewer heads than q), plus any given in `attributes` (sliding_window,
layer_types, attn_logit_softcapping, alibi for decoder rules). See README.md beside this file.

    from attninspect_export import write_dump, export_hf
    write_dump("dump.h5", attentions=attn, tokens=["[CLS]", "hello", "[SEP]"], model="my-bert")
    export_hf("dump.h5", model(**inputs, output_attentions=True), inputs, tokenizer=tok, model=model)
"""
import math
import os
import tempfile

import h5py
import numpy as np

__all__ = [
    "write_dump",
    "export_hf",
    "export_hf_vision",
    "timm_attention",
    "export_timm",
    "export_transformer_lens",
    "to_numpy",
]

#: HDF5 1.10 (Debian 12's, which attninspect links) reads files written with these format versions.
_LIBVER = ("earliest", "v110")
_GZIP_LEVEL = 4


# --------------------------------------------------------------------------------------------------------------
# The writer
# --------------------------------------------------------------------------------------------------------------

def to_numpy(value):
    """A numpy array from a torch tensor (any device or dtype, bfloat16 included) or anything array-like."""
    if hasattr(value, "detach"):
        return value.detach().cpu().float().numpy()
    return np.asarray(value)


def write_dump(path, attentions=None, q=None, k=None, tokens=None, key_tokens=None, attention_mask=None,
               model=None, patch_grid=None, prefix_tokens=None, causal=None, scale=None, num_heads=None,
               dtype="float32", compression=None, per_layer=False, attributes=None):
    """Write one dump in the canonical HDF5 layout, atomically (a temporary file beside `path`, then a rename).

    Args:
        path: the HDF5 file to write (replaced if it exists).
        attentions: attention probabilities [layer, head, query, key] or [layer, batch, head, query, key].
        q, k: per-head queries and keys [layer, head, position, dim] or [layer, batch, head, position, dim], the
            same shape (attninspect recomputes self-attention from them: softmax(Q·Kᵀ·scale) per layer and head).
        tokens: labels of the queries, [query] or [batch, query] (strings).
        key_tokens: labels of the keys when they are other tokens than the queries (cross-attention).
        attention_mask: 1 (or True) for a real token, 0 for padding, [key] or [batch, key]; stored as int8.
        model: a description of the model (root attribute `model`).
        patch_grid: (rows, cols) of image patches among the keys (vision).
        prefix_tokens: tokens before the patches (CLS, distillation, registers); with `patch_grid` and without
            this, the keys left over by the grid.
        causal: whether each query sees only the keys up to itself (decoder self-attention); stored as int8.
        scale: the factor applied to Q·Kᵀ before the softmax, when it is not 1/√d (needs q and k).
        num_heads: the number of heads, checked against the head axis.
        dtype: "float32" or "float16" for attentions, q and k.
        compression: None or "gzip" (level 4, one chunk per layer and head).
        per_layer: write `/layer_00/attn`, `/layer_00/q`, `/layer_00/k`, ... instead of one dataset each.
        attributes: more root attributes {name: str, int, float or list of them}, shown by `attninspect info`.

    Raises:
        ValueError: when the inputs do not form a dump attninspect can read; the message says what was expected.
    """
    if compression not in (None, "gzip"):
        raise ValueError(f"compression must be None or 'gzip', not {compression!r}")
    arrays = _checked_arrays(attentions, q, k, dtype)
    geometry = _geometry(arrays)
    datasets = dict(arrays)
    labels = {}
    if tokens is not None:
        labels["tokens"] = _checked_labels("tokens", tokens, geometry["batch"], geometry["queries"])
    if key_tokens is not None:
        labels["key_tokens"] = _checked_labels("key_tokens", key_tokens, geometry["batch"], geometry["keys"])
    if attention_mask is not None:
        datasets["attention_mask"] = _checked_mask(attention_mask, geometry["batch"], geometry["keys"])
    root = _checked_attributes(geometry, model, patch_grid, prefix_tokens, causal, scale, num_heads, attributes)
    if geometry["has_attentions"] and not per_layer and "axes" not in root:
        # What the attention's axes are, so that attninspect need not infer it from their number.
        root["axes"] = "layer,batch,head,query,key" if geometry["batch"] is not None else "layer,head,query,key"
    if geometry["has_qk"] and not per_layer and "qk_axes" not in root:
        root["qk_axes"] = ("layer,batch,head,position,dim" if geometry["batch"] is not None
                           else "layer,head,position,dim")
    if geometry["key_heads"] is not None and geometry["key_heads"] != geometry["heads"]:
        root.setdefault("num_key_value_heads", np.int64(geometry["key_heads"]))

    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                             dir=directory)
    os.close(descriptor)
    try:
        with h5py.File(temporary, "w", libver=_LIBVER) as f:
            _write_tensors(f, datasets, geometry["layers"], compression, per_layer)
            for name, value in labels.items():
                f.create_dataset(name, data=value, dtype=h5py.string_dtype("utf-8"))
            for name, value in root.items():
                f.attrs[name] = value
        _give_default_permissions(temporary)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _checked_arrays(attentions, q, k, dtype):
    """{name: array in `dtype`} for the attention and/or q and k, each checked for rank and finite values."""
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be 'float32' or 'float16', not {dtype!r}")
    if (q is None) != (k is None):
        raise ValueError("q and k go together: give both, or neither")
    if attentions is None and q is None:
        raise ValueError("nothing to write: give attentions, or q and k")
    arrays = {}
    for name, value, axes in (("attentions", attentions, "query, key"), ("q", q, "position, dim"),
                              ("k", k, "position, dim")):
        if value is None:
            continue
        array = to_numpy(value)
        if array.ndim not in (4, 5):
            raise ValueError(f"{name}: expected 4 axes [layer, head, {axes}] or 5 [layer, batch, head, {axes}], "
                             f"found shape {array.shape}")
        if 0 in array.shape:
            raise ValueError(f"{name}: an axis has length 0 in shape {array.shape}")
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
            raise ValueError(f"{name}: expected real numbers, found dtype {array.dtype}")
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ValueError(f"{name}: {bad} values are NaN or infinite")
        with np.errstate(over="ignore"):
            stored = array.astype(dtype)
        if not np.all(np.isfinite(stored)):
            raise ValueError(f"{name}: values beyond ±65504 overflow float16: write float32")
        arrays[name] = stored
    if q is not None:
        qs, ks = arrays["q"].shape, arrays["k"].shape
        same_but_heads = len(qs) == len(ks) and all(a == b for i, (a, b) in enumerate(zip(qs, ks)) if i != len(qs) - 3)
        if not same_but_heads or qs[-3] % ks[-3] != 0:
            raise ValueError(f"q {qs} and k {ks} must have the same shape [layer, (batch,) head, position, dim], "
                             "or k fewer heads dividing q's (grouped-query attention); for cross-attention write "
                             "attentions")
    return arrays


def _geometry(arrays):
    """Layers, batch (None without a batch axis), heads, queries and keys, checked across attentions, q and k."""
    shapes = []
    if "attentions" in arrays:
        a = arrays["attentions"].shape
        shapes.append(("attentions", a[0], a[1] if len(a) == 5 else None, a[-3], a[-2], a[-1]))
    if "q" in arrays:
        s = arrays["q"].shape
        shapes.append(("q and k", s[0], s[1] if len(s) == 5 else None, s[-3], s[-2], s[-2]))
    first = shapes[0]
    for other in shapes[1:]:
        for index, axis in ((1, "layers"), (2, "batch samples"), (3, "heads"), (4, "queries"), (5, "keys")):
            if other[index] != first[index]:
                raise ValueError(f"{first[0]} has {first[index]} {axis} but {other[0]} has {other[index]}: "
                                 "they must describe the same attention")
    return {"layers": first[1], "batch": first[2], "heads": first[3], "queries": first[4], "keys": first[5],
            "has_qk": "q" in arrays, "has_attentions": "attentions" in arrays,
            "key_heads": arrays["k"].shape[-3] if "k" in arrays else None}


def _checked_labels(name, labels, batch, count):
    """Token labels as an object array of str, [count] or [batch, count]."""
    array = np.array(labels, dtype=object)
    allowed = [(count,)] + ([(batch, count)] if batch is not None else [])
    if array.shape not in allowed:
        raise ValueError(f"{name}: expected {' or '.join(str(list(s)) for s in allowed)} labels, "
                         f"found shape {list(array.shape)}")
    for label in array.flat:
        if not isinstance(label, str):
            raise ValueError(f"{name}: labels must be str, found {type(label).__name__} {label!r}")
    return array


def _checked_mask(mask, batch, keys):
    """The padding mask as int8 0/1, [keys] or [batch, keys], with at least one real token per row."""
    array = to_numpy(mask)
    allowed = [(keys,)] + ([(batch, keys)] if batch is not None else [])
    if array.shape not in allowed:
        raise ValueError(f"attention_mask: expected shape {' or '.join(str(list(s)) for s in allowed)} "
                         f"(one value per key), found {list(array.shape)}")
    real = (array != 0).astype(np.int8)
    if np.any(real.reshape(-1, keys).sum(axis=1) == 0):
        raise ValueError("attention_mask: a row has no real token (every value 0)")
    return real


def _checked_attributes(geometry, model, patch_grid, prefix_tokens, causal, scale, num_heads, extra):
    """The root attributes to write, checked against the attention's geometry."""
    root = {}
    if model is not None:
        if not isinstance(model, str):
            raise ValueError(f"model must be a str describing the model, not {type(model).__name__}")
        root["model"] = model
    if prefix_tokens is not None and patch_grid is None:
        raise ValueError("prefix_tokens needs patch_grid: it counts the tokens before the patches")
    if patch_grid is not None:
        grid = [int(n) for n in np.asarray(patch_grid).reshape(-1)]
        if len(grid) != 2 or min(grid) <= 0:
            raise ValueError(f"patch_grid must be two positive numbers [rows, cols], not {patch_grid!r}")
        patches = grid[0] * grid[1]
        prefix = geometry["keys"] - patches if prefix_tokens is None else int(prefix_tokens)
        if prefix < 0 or prefix + patches != geometry["keys"]:
            raise ValueError(f"patch_grid {grid[0]}×{grid[1]} = {patches} patches plus {prefix} prefix tokens "
                             f"must be the {geometry['keys']} keys of the attention")
        root["patch_grid"] = np.array(grid, dtype=np.int64)
        root["prefix_tokens"] = np.int64(prefix)
    if causal is not None:
        if causal and geometry["queries"] != geometry["keys"]:
            raise ValueError(f"causal needs self-attention, but queries ({geometry['queries']}) "
                             f"≠ keys ({geometry['keys']})")
        root["causal"] = np.int8(1 if causal else 0)
    if scale is not None:
        if not geometry["has_qk"]:
            raise ValueError("scale is the factor for recomputing attention from q and k: give q and k")
        if not (math.isfinite(float(scale)) and float(scale) > 0):
            raise ValueError(f"scale must be a positive finite number, not {scale!r}")
        root["scale"] = np.float64(scale)
    if num_heads is not None:
        if int(num_heads) != geometry["heads"]:
            raise ValueError(f"num_heads is {num_heads} but the head axis has {geometry['heads']}")
        root["num_heads"] = np.int64(num_heads)
    for name, value in (extra or {}).items():
        if name in root:
            raise ValueError(f"attributes: {name!r} is set by its own argument")
        root[name] = value
    return root


def _write_tensors(f, arrays, layers, compression, per_layer):
    """attentions, q, k (and the mask) into `f`: whole, or one group per layer (`/layer_00/attn`, ...)."""
    for name, array in arrays.items():
        if name == "attention_mask":
            f.create_dataset(name, data=array)
        elif per_layer:
            width = max(2, len(str(layers - 1)))
            for layer in range(layers):
                target = f"layer_{layer:0{width}d}/" + ("attn" if name == "attentions" else name)
                _create(f, target, array[layer], compression)
        else:
            _create(f, name, array, compression)


def _create(f, name, array, compression):
    """One dataset, contiguous, or gzip-compressed in chunks of one [query, key] (or [position, dim]) block."""
    if compression is None:
        f.create_dataset(name, data=array)
    else:
        chunks = (1,) * (array.ndim - 2) + array.shape[-2:]
        f.create_dataset(name, data=array, chunks=chunks, compression="gzip", compression_opts=_GZIP_LEVEL)


def _give_default_permissions(path):
    """mkstemp makes files readable by their owner only; give the permissions a new file would have."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


# --------------------------------------------------------------------------------------------------------------
# Hugging Face transformers
# --------------------------------------------------------------------------------------------------------------

def export_hf(path, outputs, inputs=None, tokenizer=None, model=None, part=None, model_name=None,
              **write_options):
    """Write a Hugging Face text model's attention, with tokens and padding mask.

    Run the model with `output_attentions=True` (and `attn_implementation="eager"` when loading it: the SDPA
    and flash kernels do not return attention). A batch of one is written without a batch axis.

    Args:
        outputs: the model's output, with `attentions` (a tuple of L tensors [batch, head, query, key]) or, for an
            encoder-decoder, `encoder_attentions`, `decoder_attentions` and `cross_attentions`.
        inputs: what the model was called with (a BatchEncoding or dict): `input_ids` and `attention_mask`
            label and mask the tokens; for `part="decoder"` or `"cross"`, `decoder_input_ids` (and
            `decoder_attention_mask`) label the decoder's tokens.
        tokenizer: turns ids into labels (`convert_ids_to_tokens`); without it, no labels are written.
        model: the model, for its description (`config._name_or_path` and class name).
        part: None for `outputs.attentions` (an encoder-only or decoder-only model); "encoder", "decoder" or
            "cross" for an encoder-decoder's self-attention of either side or the decoder's attention to the
            encoder (queries = decoder tokens, keys = encoder tokens, the mask describing the keys).
        model_name: the `model` attribute, instead of the description of `model`.
        write_options: more arguments of `write_dump` (dtype, compression, per_layer, ...); they win over the
            values found here (e.g. `causal=False`).

    Without `part`, the attention is marked causal when no real query gives any weight to a later key.
    """
    parts = {None: "attentions", "encoder": "encoder_attentions", "decoder": "decoder_attentions",
             "cross": "cross_attentions"}
    if part not in parts:
        raise ValueError(f"part must be None, 'encoder', 'decoder' or 'cross', not {part!r}")
    layers = getattr(outputs, parts[part], None)
    if not layers:
        raise ValueError(f"outputs has no {parts[part]}: run the model with output_attentions=True "
                         "(and load it with attn_implementation='eager')")
    attentions = np.stack([to_numpy(layer) for layer in layers])  # [layer, batch, head, query, key]
    inputs = inputs or {}
    encoder_ids, encoder_mask = inputs.get("input_ids"), inputs.get("attention_mask")
    decoder_ids, decoder_mask = inputs.get("decoder_input_ids"), inputs.get("decoder_attention_mask")
    found = {"attentions": attentions, "model": model_name or _describe_hf_model(model)}
    if part == "decoder":
        query_ids, mask = decoder_ids, decoder_mask
    elif part == "cross":
        query_ids, mask = decoder_ids, encoder_mask
        found["key_tokens"] = _hf_tokens(tokenizer, encoder_ids)
    else:
        query_ids, mask = encoder_ids, encoder_mask
    found["tokens"] = _hf_tokens(tokenizer, query_ids)
    found["attention_mask"] = None if mask is None else to_numpy(mask)
    if part is None:
        found["causal"] = _looks_causal(attentions, found["attention_mask"])
    elif part != "cross":
        found["causal"] = part == "decoder"
    found.update(write_options)
    if part == "cross":
        # The keys are the encoder's tokens, even when there are as many as the decoder's.
        found["attributes"] = {"cross_attention": 1, **(found.get("attributes") or {})}
    write_dump(path, **_without_single_batch(found))


def export_hf_vision(path, outputs, model=None, pixel_values=None, model_name=None, **write_options):
    """Write a Hugging Face vision transformer's attention with its patch grid (ViT, DeiT, DINOv2, ...).

    The grid is the image size over the patch size: from `pixel_values` ([batch, channels, height, width]) when
    given (needed when the model interpolates its position embeddings for another size), else from
    `model.config.image_size` and `patch_size`. The tokens before the patches are whatever the grid leaves:
    1 for ViT's CLS, 2 for DeiT's CLS and distillation tokens, 1 + registers for DINOv2 with registers.

    Args:
        outputs: the model's output with `attentions`, a tuple of L tensors [batch, head, token, token].
        model: the model, for `config.image_size`, `config.patch_size` and its description.
        pixel_values: the images the model saw, for their height and width.
        model_name: the `model` attribute, instead of the description of `model`.
        write_options: more arguments of `write_dump`; they win over the values found here.
    """
    if not getattr(outputs, "attentions", None):
        raise ValueError("outputs has no attentions: run the model with output_attentions=True "
                         "(and load it with attn_implementation='eager')")
    attentions = np.stack([to_numpy(layer) for layer in outputs.attentions])
    config = getattr(model, "config", None)
    patch = _pair(getattr(config, "patch_size", None), "model.config.patch_size")
    if pixel_values is not None:
        size = tuple(np.shape(pixel_values)[-2:])
    else:
        size = _pair(getattr(config, "image_size", None), "model.config.image_size (or give pixel_values)")
    grid = [size[0] // patch[0], size[1] // patch[1]]
    found = {"attentions": attentions, "patch_grid": grid, "causal": False,
             "model": model_name or _describe_hf_model(model)}
    found.update(write_options)
    write_dump(path, **_without_single_batch(found))


def _hf_tokens(tokenizer, ids):
    """Token labels [position] or [batch, position] from ids, or None without a tokenizer or ids."""
    if tokenizer is None or ids is None:
        return None
    rows = np.asarray(to_numpy(ids)).astype(np.int64)
    labels = [tokenizer.convert_ids_to_tokens([int(i) for i in row]) for row in np.atleast_2d(rows)]
    return labels if rows.ndim == 2 else labels[0]


def _describe_hf_model(model):
    """'name (ClassName)' from a Hugging Face model, the class name alone for one built from a config."""
    if model is None:
        return None
    name = getattr(getattr(model, "config", None), "_name_or_path", "") or getattr(model, "name_or_path", "")
    return f"{name} ({type(model).__name__})" if name else type(model).__name__


def _looks_causal(attentions, mask):
    """Whether no real query of [layer, batch, head, query, key] gives weight to a key after it."""
    queries, keys = attentions.shape[-2:]
    if queries != keys or queries < 2:
        return None
    later = np.triu(np.ones((queries, keys), dtype=bool), 1)
    real = np.ones((attentions.shape[1], queries), dtype=bool) if mask is None else \
        np.broadcast_to(np.asarray(mask) != 0, (attentions.shape[1], queries))
    for sample in range(attentions.shape[1]):
        rows = later & real[sample][:, None]
        if np.any(attentions[:, sample][..., rows] != 0):
            return False
    return True


def _pair(value, what):
    """(rows, cols) from an int or a pair."""
    if value is None:
        raise ValueError(f"{what} is needed for the patch grid")
    pair = [int(n) for n in np.asarray(value).reshape(-1)]
    if len(pair) == 1:
        pair = pair * 2
    if len(pair) != 2 or min(pair) <= 0:
        raise ValueError(f"{what} must be a positive int or a pair, not {value!r}")
    return pair


def _without_single_batch(found):
    """write_dump arguments with a batch axis of one removed: [L, 1, H, Q, K] → [L, H, Q, K], [1, S] → [S]."""
    attentions = found.get("attentions")
    tensors = [t for t in (attentions, found.get("q")) if t is not None]
    if not tensors or np.ndim(tensors[0]) != 5 or np.shape(tensors[0])[1] != 1:
        return found
    trimmed = dict(found)
    for name in ("attentions", "q", "k"):
        if trimmed.get(name) is not None:
            trimmed[name] = trimmed[name][:, 0]
    for name in ("tokens", "key_tokens", "attention_mask"):
        value = trimmed.get(name)
        if value is not None and np.ndim(np.array(value, dtype=object)) == 2:
            trimmed[name] = value[0]
    return trimmed


# --------------------------------------------------------------------------------------------------------------
# timm
# --------------------------------------------------------------------------------------------------------------

def timm_attention(model, images):
    """Run a timm vision transformer and return its attention, [layer, batch, head, token, token] (numpy).

    timm's Attention modules call the fused `scaled_dot_product_attention`, which never materialises the
    attention. For the run, every module with a `fused_attn` flag and an `attn_drop` submodule (Attention,
    EVA's attention, ...) is switched to its explicit path, softmax(q·kᵀ·scale) followed by `attn_drop`, and a
    forward hook on `attn_drop` records its input: the attention exactly as the model computed it (q_norm,
    k_norm and rotary embeddings included). The flags and hooks are restored afterwards. The model is run
    under `torch.no_grad()`; put it in eval mode first.
    """
    import torch

    blocks = [m for m in model.modules() if hasattr(m, "fused_attn") and hasattr(m, "attn_drop")]
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no attention module with fused_attn and attn_drop")
    recorded = [None] * len(blocks)

    def recorder(index):
        def hook(module, args, output):
            recorded[index] = args[0].detach().float().cpu().numpy()
        return hook

    flags = [m.fused_attn for m in blocks]
    handles = [m.attn_drop.register_forward_hook(recorder(i)) for i, m in enumerate(blocks)]
    try:
        for m in blocks:
            m.fused_attn = False
        with torch.no_grad():
            model(images)
    finally:
        for m, flag in zip(blocks, flags):
            m.fused_attn = flag
        for handle in handles:
            handle.remove()
    missing = [i for i, a in enumerate(recorded) if a is None]
    if missing:
        raise ValueError(f"attention modules {missing} did not run")
    return np.stack(recorded)


def export_timm(path, model, images, model_name=None, **write_options):
    """Run a timm ViT on `images` ([batch, channels, height, width]) and write its attention.

    The patch grid is `model.patch_embed.grid_size` (or, for a model built with `dynamic_img_size=True`, the
    images' size over the patch size), the prefix `model.num_prefix_tokens` (CLS and register tokens).
    A batch of one is written without a batch axis.
    """
    attentions = timm_attention(model, images)
    embed = model.patch_embed
    if getattr(embed, "dynamic_img_size", False) and hasattr(embed, "dynamic_feat_size"):
        grid = list(embed.dynamic_feat_size(tuple(images.shape[-2:])))
    else:
        grid = list(embed.grid_size)
    name = model_name or getattr(model, "pretrained_cfg", {}).get("architecture") or type(model).__name__
    found = {"attentions": attentions, "patch_grid": grid, "prefix_tokens": int(model.num_prefix_tokens),
             "causal": False, "model": name}
    found.update(write_options)
    write_dump(path, **_without_single_batch(found))


# --------------------------------------------------------------------------------------------------------------
# TransformerLens
# --------------------------------------------------------------------------------------------------------------

def export_transformer_lens(path, cache, model, input=None, pattern=True, qk=False, model_name=None,
                            **write_options):
    """Write the attention in a TransformerLens `ActivationCache` (or a dict of the same names).

    Args:
        cache: from `model.run_with_cache(...)`, holding `blocks.{l}.attn.hook_pattern` [batch, head, query, key]
            for `pattern`, and `blocks.{l}.attn.hook_q` / `hook_k` [batch, position, head, d_head] (or
            `hook_rot_q` / `hook_rot_k` for rotary models, refused without them) for `qk`. Every layer cached
            is written, in order; when they are not 0...L-1, their numbers go in the attribute `layer_numbers`.
        model: the HookedTransformer, for `cfg` (heads, d_head, attention scale and direction) and
            `to_str_tokens`.
        input: what the model was run on (a str, a list of str, or token ids [batch, position]), for the labels.
        pattern: write the stored attention (`attentions`).
        qk: write `q` and `k` [layer, batch, head, position, d_head] with the `scale` attninspect needs to
            recompute the attention (1 / cfg.attn_scale), and the decoder rules the model applies (local attention
            as `sliding_window` and `layer_types`, `attn_logit_softcapping`, `alibi`). Grouped-query keys keep
            their heads (`num_key_value_heads`).
        model_name: the `model` attribute, instead of `cfg.model_name`.
        write_options: more arguments of `write_dump`; they win over the values found here.
    """
    if not (pattern or qk):
        raise ValueError("nothing to write: ask for pattern, qk or both")
    cfg = model.cfg
    names = {"pattern": "hook_pattern", "q": "hook_q", "k": "hook_k"}
    if qk and _cache_layers(cache, "hook_rot_q"):
        names.update(q="hook_rot_q", k="hook_rot_k")
    elif qk and getattr(cfg, "positional_embedding_type", None) == "rotary":
        raise ValueError("rotary model, but the cache has no hook_rot_q / hook_rot_k (TransformerLens 4 does not "
                         "expose them): hook_q and hook_k are before the rotation; write the pattern only (qk=False)")
    layers = _cache_layers(cache, names["pattern"] if pattern else names["q"])
    if not layers:
        raise ValueError(f"the cache holds no blocks.*.attn.{names['pattern'] if pattern else names['q']}: "
                         "run run_with_cache without a names_filter that drops it")
    found = {"model": model_name or getattr(cfg, "model_name", None),
             "causal": getattr(cfg, "attention_dir", "causal") == "causal"}
    if layers != list(range(len(layers))):
        found["attributes"] = {"layer_numbers": np.array(layers, dtype=np.int64)}
    if pattern:
        found["attentions"] = np.stack([to_numpy(_cache_get(cache, l, names["pattern"])) for l in layers])
    if qk:
        found["scale"], rules = _transformer_lens_rules(cfg, model, layers)
        if rules:
            found["attributes"] = {**found.get("attributes", {}), **rules}
        found["q"] = np.stack([_heads_first(_cache_get(cache, l, names["q"]), cfg) for l in layers])
        found["k"] = np.stack([_heads_first(_cache_get(cache, l, names["k"]), cfg) for l in layers])
    found["tokens"] = _transformer_lens_tokens(model, input)
    found.update(write_options)
    write_dump(path, **_without_single_batch(found))


def _cache_layers(cache, hook):
    """The layer numbers l with `blocks.{l}.attn.{hook}` in the cache, in order."""
    prefix, suffix = "blocks.", ".attn." + hook
    numbers = [key[len(prefix):-len(suffix)] for key in cache.keys()
               if key.startswith(prefix) and key.endswith(suffix)]
    return sorted(int(n) for n in numbers if n.isdigit())


def _cache_get(cache, layer, hook):
    key = f"blocks.{layer}.attn.{hook}"
    if key not in cache.keys():
        raise ValueError(f"the cache has no {key}")
    return cache[key]


def _heads_first(tensor, cfg):
    """[batch, position, head, d_head] → [batch, head, position, d_head]; grouped-query keys keep their heads."""
    array = to_numpy(tensor)
    if array.ndim != 4:
        raise ValueError(f"expected q or k as [batch, position, head, d_head], found shape {array.shape}")
    if cfg.n_heads % array.shape[2]:
        raise ValueError(f"{array.shape[2]} key/value heads do not divide {cfg.n_heads} query heads")
    return array.transpose(0, 2, 1, 3)


def _transformer_lens_rules(cfg, model, layers):
    """The scale on Q·Kᵀ and the decoder rules (attributes) as TransformerLens's attention applies them, for the
    layers written; refuses what attninspect cannot redo from q and k."""
    if getattr(cfg, "scale_attn_by_inverse_layer_idx", False):
        raise ValueError("the attention scale differs per layer (scale_attn_by_inverse_layer_idx), but a dump "
                         "has one scale: write the pattern only (qk=False)")
    attributes = {}
    causal = getattr(cfg, "attention_dir", "causal") == "causal"
    if getattr(cfg, "positional_embedding_type", None) == "alibi":
        # slope_h·(j − i) on the scaled scores; TransformerLens's slopes 2^(-8(h+1)/H) are BLOOM's only when H is a
        # power of two, and its bias is 0 (not positive) after the query, which only a causal mask hides.
        heads = cfg.n_heads
        if heads & (heads - 1) or not causal:
            raise ValueError(f"ALiBi with {heads} heads{'' if causal else ' and bidirectional attention'}: "
                             "TransformerLens's slopes are a plain geometric series, BLOOM's (which attninspect "
                             "uses) interleave them when the head count is not a power of two; write the pattern "
                             "only (qk=False)")
        attributes["alibi"] = np.int8(1)
    cap = getattr(cfg, "attn_scores_soft_cap", -1.0) or -1.0
    if cap > 0:  # cap·tanh(s/cap) on the scaled scores, before the mask: as attninspect applies it
        attributes["attn_logit_softcapping"] = float(cap)
    # Local attention: only where the blocks apply it (TransformerLens 3 with use_local_attn; TransformerLens 4's
    # native model computes global attention whatever the config says). Query i sees keys i − W < j ≤ i.
    kinds = [getattr(getattr(_block(model, l), "attn", None), "attn_type", "global") for l in layers]
    if "local" in kinds:
        if not causal:
            raise ValueError("local attention without a causal mask: write the pattern only (qk=False)")
        attributes["sliding_window"] = np.int64(cfg.window_size)
        attributes["layer_types"] = ["sliding_attention" if kind == "local" else "full_attention" for kind in kinds]
    if not getattr(cfg, "use_attn_scale", True):
        return 1.0, attributes
    attn_scale = float(getattr(cfg, "attn_scale", 0) or 0)
    return 1.0 / (attn_scale if attn_scale > 0 else math.sqrt(cfg.d_head)), attributes  # TL 4: -1 means √d_head


def _block(model, layer):
    blocks = getattr(model, "blocks", None)
    try:
        return blocks[layer] if blocks is not None else None
    except (IndexError, TypeError):
        return None


def _transformer_lens_tokens(model, input):
    """Labels from `model.to_str_tokens`: [position] for one sequence, [batch, position] for several."""
    if input is None:
        return None
    if not isinstance(input, (str, list)) and len(input.shape) == 2:
        return [list(model.to_str_tokens(input[b])) for b in range(input.shape[0])]
    labels = model.to_str_tokens(input)
    return [list(row) for row in labels] if isinstance(input, list) else list(labels)
