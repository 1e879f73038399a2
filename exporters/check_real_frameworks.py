"""Check the exporters with the real frameworks, on tiny randomly initialised models (no weights downloaded).

    python check_real_frameworks.py OUTDIR --attninspect BIN

Needs torch and any of transformers, timm and transformer_lens (2.x/3.x `HookedTransformer`, or 4.x
`TransformerBridge`); a framework that is missing is skipped with a note. For each model it writes a dump with
the adapter, then checks that attninspect reads it (info and stats exit 0) and that its per-head entropies equal
those of the framework's own attention, computed here in float64 (pad queries and keys dropped). For timm, the
attention recorded by `timm_attention` is compared with a recomputation from the `qkv` output; for
TransformerLens, the attention recomputed from the exported q, k, scale and causal flag with the pattern the
model computed. Not part of CI (no torch there). Exit status 1 on any failure.
"""
import argparse
import json
import os
import subprocess
import sys
import traceback

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attninspect_export import (export_hf, export_hf_vision, export_timm, export_transformer_lens,  # noqa: E402
                                timm_attention, to_numpy)
from selftest import Checker, causal_allowed, quoted_labels, row_entropy, softmax  # noqa: E402

TOLERANCE = 1e-5
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far",
         "away", "le", "chat", "dort", "bien", "ici"] + [f"w{i}" for i in range(40)]


class Context:
    def __init__(self, outdir, binary, checker):
        self.outdir, self.binary, self.checker = outdir, binary, checker

    def path(self, name):
        return os.path.join(self.outdir, name)

    def run(self, *arguments):
        return subprocess.run([self.binary, *arguments], capture_output=True, text=True)

    def check_dump(self, name, attentions, query_masks=None, key_masks=None, args=()):
        """attninspect reads `name` and reports the entropies of `attentions` [layer, batch, head, query, key]."""
        path = self.path(name)
        info = self.run("info", path, *args)
        self.checker.check(info.returncode == 0, f"{name}: info exited {info.returncode}: {info.stderr.strip()}")
        batch = attentions.shape[1]
        for b in range(batch):
            rows = np.flatnonzero(query_masks[b]) if query_masks is not None else np.arange(attentions.shape[-2])
            cols = np.flatnonzero(key_masks[b]) if key_masks is not None else np.arange(attentions.shape[-1])
            expected = row_entropy(attentions[:, b][:, :, rows][:, :, :, cols])
            selection = ["--batch", str(b)] if batch > 1 else []
            result = self.run("stats", path, "--json", *args, *selection)
            if result.returncode != 0:
                self.checker.check(False, f"{name}: stats {' '.join(args)} exited {result.returncode}: {result.stderr}")
                continue
            report = json.loads(result.stdout)
            found = np.full(expected.shape, np.nan)
            for record in report["records"]:
                found[record["layer"], record["head"]] = record["entropy"]
            difference = float(np.nanmax(np.abs(found - expected)))
            print(f"  {name} {' '.join(list(args) + selection)}: {report['layers']} layers, {report['heads']} heads, "
                  f"{report['queries']}×{report['keys']}, entropy max |Δ| {difference:.1e}")
            self.checker.check(difference < TOLERANCE and not np.isnan(found).any(),
                               f"{name}{selection}: entropies differ by {difference}")

    def info_labels(self, name, prefix="tokens ("):
        lines = self.run("info", self.path(name)).stdout.splitlines()
        return [quoted_labels(line) for line in lines if line.startswith(prefix)]

    def attributes(self, name):
        with h5py.File(self.path(name), "r") as f:
            return {key: f.attrs[key] for key in f.attrs}


def tokenizer(outdir):
    """A word-level tokenizer over WORDS that adds [CLS] and [SEP], built and saved locally (no download).

    It is loaded back from its folder so that `name_or_path` is a local path: TransformerLens reloads the
    tokenizer from there (`get_tokenizer_with_bos`).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    folder = os.path.join(outdir, "tokenizer")
    if not os.path.isdir(folder):
        core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
        core.pre_tokenizer = pre_tokenizers.Whitespace()
        core.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                            special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
        PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                sep_token="[SEP]", bos_token="[CLS]", eos_token="[SEP]").save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


# --------------------------------------------------------------------------------------------------------------

def check_hf_text(ctx):
    import torch
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, T5Config, T5Model

    torch.manual_seed(0)
    tok = tokenizer(ctx.outdir)
    bert = BertModel._from_config(BertConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=2,
                                             num_attention_heads=2, intermediate_size=64),
                                  attn_implementation="eager").eval()
    inputs = tok(["the cat sat on the mat", "a dog ran"], padding=True, return_tensors="pt")
    with torch.no_grad():
        outputs = bert(**inputs, output_attentions=True)
    export_hf(ctx.path("bert_batch.h5"), outputs, inputs, tokenizer=tok, model=bert)
    attention = np.stack([to_numpy(a) for a in outputs.attentions]).astype(np.float64)
    mask = to_numpy(inputs["attention_mask"])
    ctx.check_dump("bert_batch.h5", attention, mask, mask)
    ctx.checker.check(ctx.attributes("bert_batch.h5")["causal"] == 0, "bert: not causal")

    one = tok(["the cat sat on the mat"], padding="max_length", max_length=12, return_tensors="pt")
    with torch.no_grad():
        outputs = bert(**one, output_attentions=True)
    export_hf(ctx.path("bert_one.h5"), outputs, one, tokenizer=tok, model=bert)
    mask = to_numpy(one["attention_mask"])
    ctx.check_dump("bert_one.h5", np.stack([to_numpy(a) for a in outputs.attentions])[:, :1], mask, mask)
    real = tok.convert_ids_to_tokens(one["input_ids"][0][one["attention_mask"][0] == 1].tolist())
    ctx.checker.check(ctx.info_labels("bert_one.h5") == [real], f"bert_one: tokens {ctx.info_labels('bert_one.h5')}")

    gpt2 = GPT2LMHeadModel._from_config(GPT2Config(vocab_size=len(WORDS), n_positions=32, n_embd=32, n_layer=2,
                                                   n_head=2, bos_token_id=2, eos_token_id=3),
                                        attn_implementation="eager").eval()
    tok.padding_side = "left"
    inputs = tok(["the cat sat on the mat", "a dog ran"], padding=True, return_tensors="pt")
    tok.padding_side = "right"
    with torch.no_grad():
        outputs = gpt2(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], output_attentions=True)
    export_hf(ctx.path("gpt2_left_padded.h5"), outputs, inputs, tokenizer=tok, model=gpt2)
    mask = to_numpy(inputs["attention_mask"])
    ctx.check_dump("gpt2_left_padded.h5", np.stack([to_numpy(a) for a in outputs.attentions]), mask, mask)
    ctx.checker.check(ctx.attributes("gpt2_left_padded.h5")["causal"] == 1, "gpt2: causal found from the attention")

    t5 = T5Model._from_config(T5Config(vocab_size=len(WORDS), d_model=32, d_kv=8, num_heads=4, num_layers=2, d_ff=64,
                                       decoder_start_token_id=0), attn_implementation="eager").eval()
    source = tok(["the cat sat on the mat"], padding="max_length", max_length=10, return_tensors="pt")
    inputs = {"input_ids": source["input_ids"], "attention_mask": source["attention_mask"],
              "decoder_input_ids": tok(["le chat dort"], return_tensors="pt")["input_ids"]}
    with torch.no_grad():
        outputs = t5(**inputs, output_attentions=True)
    mask = to_numpy(source["attention_mask"])
    export_hf(ctx.path("t5_cross.h5"), outputs, inputs, tokenizer=tok, model=t5, part="cross")
    ctx.check_dump("t5_cross.h5", np.stack([to_numpy(a) for a in outputs.cross_attentions]), None, mask)
    keys = tok.convert_ids_to_tokens(source["input_ids"][0][source["attention_mask"][0] == 1].tolist())
    ctx.checker.check(ctx.info_labels("t5_cross.h5", "key tokens (") == [keys], "t5 cross: key tokens")
    export_hf(ctx.path("t5_decoder.h5"), outputs, inputs, tokenizer=tok, model=t5, part="decoder")
    ctx.check_dump("t5_decoder.h5", np.stack([to_numpy(a) for a in outputs.decoder_attentions]))
    ctx.checker.check(ctx.attributes("t5_decoder.h5")["causal"] == 1, "t5 decoder: causal")
    export_hf(ctx.path("t5_encoder.h5"), outputs, inputs, tokenizer=tok, model=t5, part="encoder")
    ctx.check_dump("t5_encoder.h5", np.stack([to_numpy(a) for a in outputs.encoder_attentions]), mask, mask)


def check_hf_vision(ctx):
    import torch
    from transformers import (DeiTConfig, DeiTModel, Dinov2WithRegistersConfig, Dinov2WithRegistersModel, ViTConfig,
                              ViTModel)

    torch.manual_seed(1)
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    cases = [
        ("vit.h5", ViTModel._from_config(ViTConfig(image_size=32, patch_size=8, **small),
                                         attn_implementation="eager"), (2, 3, 32, 32), [4, 4], 1, False),
        ("deit.h5", DeiTModel._from_config(DeiTConfig(image_size=32, patch_size=8, **small),
                                           attn_implementation="eager"), (1, 3, 32, 32), [4, 4], 2, False),
        ("dinov2_registers.h5", Dinov2WithRegistersModel._from_config(
            Dinov2WithRegistersConfig(image_size=32, patch_size=8, num_register_tokens=4, hidden_size=32,
                                      num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2),
            attn_implementation="eager"), (1, 3, 24, 40), [3, 5], 5, True),
    ]
    for name, model, size, grid, prefix, with_pixels in cases:
        pixels = torch.randn(*size)
        with torch.no_grad():
            outputs = model.eval()(pixel_values=pixels, output_attentions=True)
        export_hf_vision(ctx.path(name), outputs, model=model, pixel_values=pixels if with_pixels else None)
        attention = np.stack([to_numpy(a) for a in outputs.attentions])
        ctx.check_dump(name, attention)
        found = ctx.attributes(name)
        ctx.checker.check(list(found["patch_grid"]) == grid and found["prefix_tokens"] == prefix,
                          f"{name}: patch_grid {list(found['patch_grid'])}, prefix {found['prefix_tokens']}")


def check_timm(ctx):
    import timm
    import torch

    torch.manual_seed(2)
    for name, options, prefix in (("timm_vit.h5", {}, 1),
                                  ("timm_vit_reg_qknorm.h5", dict(reg_tokens=4, qk_norm=True), 5)):
        model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64, **options).eval()
        images = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            before = model(images)
        flags = [m.fused_attn for m in model.modules() if hasattr(m, "fused_attn")]
        attention = timm_attention(model, images)
        with torch.no_grad():
            after = model(images)
        ctx.checker.check(flags == [m.fused_attn for m in model.modules() if hasattr(m, "fused_attn")]
                          and torch.equal(before, after), f"{name}: fused_attn flags and outputs restored")

        # Independent: softmax(q·kᵀ·scale) from each block's qkv output, through q_norm and k_norm.
        recomputed = []
        handles = []
        for block in model.blocks:
            attn = block.attn

            def hook(module, args, output, attn=attn):
                b, n, _ = output.shape
                q, k, _ = output.reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
                q, k = attn.q_norm(q), attn.k_norm(k)
                recomputed.append(((q @ k.transpose(-2, -1)) * attn.scale).softmax(-1).double().numpy())
            handles.append(attn.qkv.register_forward_hook(hook))
        with torch.no_grad():
            model(images)
        for handle in handles:
            handle.remove()
        difference = float(np.abs(np.stack(recomputed) - attention).max())
        print(f"  {name}: timm_attention {attention.shape} vs recomputed from qkv: max |Δ| {difference:.1e}")
        ctx.checker.check(difference < 1e-5, f"{name}: timm_attention differs from the qkv recomputation")

        export_timm(ctx.path(name), model, images)
        ctx.check_dump(name, attention)
        found = ctx.attributes(name)
        ctx.checker.check(list(found["patch_grid"]) == [4, 4] and found["prefix_tokens"] == prefix,
                          f"{name}: patch_grid {list(found['patch_grid'])}, prefix {found['prefix_tokens']}")


def transformer_lens_models(outdir):
    """(name, model) pairs: HookedTransformer (TransformerLens < 4) or a native TransformerBridge (4.x).

    Each model gets a fresh tokenizer: TransformerLens pops `name_or_path` from the one it is given.
    """
    base = dict(n_layers=2, d_model=32, n_ctx=16, d_head=8, n_heads=4, act_fn="gelu", d_vocab=len(WORDS),
                attn_only=True)
    variants = [("tl_standard", {}), ("tl_rotary", dict(positional_embedding_type="rotary", rotary_dim=8)),
                ("tl_gqa", dict(n_key_value_heads=2)), ("tl_scale", dict(attn_scale=2.0))]
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError:
        import transformer_lens.model_bridge.sources.native as native
        for name, extra in variants:
            yield name, native.boot(dict(base, **extra), tokenizer=tokenizer(outdir))
        return
    # The decoder rules, which only HookedTransformer applies (TransformerLens 4's native model computes global
    # attention whatever use_local_attn says, and has no ALiBi): written as attributes, redone by attninspect.
    variants += [("tl_local", dict(use_local_attn=True, attn_types=["local", "global"], window_size=3)),
                 ("tl_softcap", dict(attn_scores_soft_cap=2.0, attn_scale=0.5)),
                 ("tl_alibi", dict(positional_embedding_type="alibi")),
                 ("tl_alibi3", dict(positional_embedding_type="alibi", n_heads=3))]
    for name, extra in variants:
        model = HookedTransformer(HookedTransformerConfig(**dict(base, **extra)))
        model.set_tokenizer(tokenizer(outdir))
        yield name, model


def check_transformer_lens(ctx):
    import torch

    torch.manual_seed(3)
    tok = tokenizer(ctx.outdir)
    tokens = tok(["the cat sat on the mat", "a dog ran far away ici"], return_tensors="pt")["input_ids"]
    for name, model in transformer_lens_models(ctx.outdir):
        model.eval()
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens)
        pattern = np.stack([to_numpy(cache[f"blocks.{l}.attn.hook_pattern"]) for l in range(model.cfg.n_layers)])
        try:
            export_transformer_lens(ctx.path(name + ".h5"), cache, model, input=tokens, pattern=True, qk=True)
        except ValueError as error:  # a rotary model without the rotated q and k; ALiBi slopes not BLOOM's
            ctx.checker.check("hook_rot_q" in str(error) or "ALiBi with 3 heads" in str(error), f"{name}: {error}")
            print(f"  {name}: q and k refused: {error}")
            export_transformer_lens(ctx.path(name + ".h5"), cache, model, input=tokens)
            ctx.check_dump(name + ".h5", pattern)
            continue
        with h5py.File(ctx.path(name + ".h5"), "r") as f:
            labels = f["tokens"].asstr()[()].tolist()
            q, k = f["q"][()].astype(np.float64), f["k"][()].astype(np.float64)
            scale, causal = float(f.attrs["scale"]), bool(f.attrs["causal"])
            rules = {key for key in ("sliding_window", "attn_logit_softcapping", "alibi") if key in f.attrs}
        if rules:  # attninspect redoes them from the file's attributes: verify and the entropies say how well
            verify = ctx.run("verify", ctx.path(name + ".h5"), "--batch", "0")
            line = [l for l in verify.stdout.splitlines() if "recomputed from q and k" in l]
            print(f"  {name}: {', '.join(sorted(rules))} written; verify: {line[0] if line else verify.stdout}")
            ctx.checker.check(verify.returncode == 0 and line and line[0].startswith("PASS"),
                              f"{name}: verify {verify.stdout}{verify.stderr}")
            ctx.check_dump(name + ".h5", pattern)
            ctx.check_dump(name + ".h5", pattern, args=("--from-qk",))
            continue
        k = np.repeat(k, q.shape[2] // k.shape[2], axis=2)  # grouped-query keys: kept by the exporter
        logits = np.einsum("lbhid,lbhjd->lbhij", q, k) * scale
        n = logits.shape[-1]
        recomputed = softmax(logits, causal_allowed(n) if causal else np.ones((n, n), dtype=bool))
        difference = float(np.abs(recomputed - pattern).max())
        print(f"  {name}: q/k {q.shape}, scale {scale:.4f}, causal {causal}: recomputed vs hook_pattern "
              f"max |Δ| {difference:.1e}")
        ctx.checker.check(difference < 1e-5, f"{name}: attention recomputed from q and k differs from hook_pattern")
        ctx.checker.check(labels == [tok.convert_ids_to_tokens(row) for row in tokens.tolist()],
                          f"{name}: tokens {labels}")
        ctx.check_dump(name + ".h5", pattern)
        ctx.check_dump(name + ".h5", pattern, args=("--from-qk", "--causal", "--scale", repr(scale)))


CHECKS = {"transformers (text)": check_hf_text, "transformers (vision)": check_hf_vision, "timm": check_timm,
          "transformer_lens": check_transformer_lens}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--attninspect", metavar="BIN", required=True)
    arguments = parser.parse_args()
    os.makedirs(arguments.outdir, exist_ok=True)
    checker = Checker()
    ctx = Context(arguments.outdir, arguments.attninspect, checker)
    for name, check in CHECKS.items():
        print(name)
        try:
            check(ctx)
        except ImportError as error:
            print(f"  skipped: {error}")
        except Exception:
            traceback.print_exc()
            checker.check(False, f"{name}: raised")
    if checker.failures:
        print(f"{len(checker.failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
