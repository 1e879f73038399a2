import Testing
import Foundation
import AttnCore
import AttnTestSupport

/// torch.save files made by TestData/synthetic/torch/make_torch_cases.py (torch 2.13, transformers 5.25).
@Suite("Command line: torch.save files")
struct TorchCLITests {
    static func torch(_ name: String) -> String { Fixtures.path("synthetic/torch/" + name) }

    @Test("verify: Llama's own attention equals the one recomputed from the q and k of a torch.save file (GQA, causal)")
    func verifyLlama() throws {
        let r = try Run(["verify", Self.torch("llama_qk.pt")])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("PASS stored attention equals softmax(q·kᵀ/√d, causal)"), "\(r.stdout)")
    }

    @Test(
        """
        a TransformerLens cache saved with torch.save (rotary, grouped-query): hook_pattern is the attention, \
        hook_rot_q and hook_rot_k ([batch, position, head, dim]) recompute it exactly
        """
    )
    func transformerLensCache() throws {
        let r = try Run(["verify", Self.torch("tl_cache.pt"), "--causal", "-q"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("from blocks.#.attn.hook_pattern (2 datasets, one per layer)"), "\(r.stdout)")
        #expect(r.stdout.contains("PASS stored attention equals softmax(q·kᵀ/√d, causal)"), "\(r.stdout)")
        #expect(r.stdout.contains("tolerance 0.0001)"), "\(r.stdout)")
        let info = try Run(["info", Self.torch("tl_cache.pt"), "--from-qk", "--causal", "-q"])
        #expect(info.stdout.contains("recomputed from blocks.#.attn.hook_rot_q"), "\(info.stdout)")
        #expect(info.stdout.contains("axes as stored: [batch, position, head, dim]"), "\(info.stdout)")
        #expect(info.stdout.contains("key heads: 2"), "\(info.stdout)")
    }

    @Test(
        """
        verify's q/k tolerance follows the dtype: float32 q and k taken before the rotary embedding fail at 1e-4; \
        float16 q and k pass at 2e-2 (their |Δ| is 4.3e-4) and fail at 1e-4
        """
    )
    func verifyTolerance() throws {
        let prerope = try Run(["verify", Self.torch("llama_qk_prerope.pt"), "-q"])
        #expect(prerope.status == 1 && prerope.stdout.contains("FAIL stored attention equals"), "\(prerope.stdout)")
        #expect(prerope.stdout.contains("tolerance 0.0001)"), "\(prerope.stdout)")
        let half = try Run(["verify", Self.torch("llama_qk_f16.pt"), "-q"])
        #expect(half.status == 0 && half.stdout.contains("tolerance 0.02)"), "\(half.stdout)")
        let strict = try Run(["verify", Self.torch("llama_qk_f16.pt"), "-q", "--qk-tolerance", "1e-4"])
        #expect(strict.status == 1, "\(strict.stdout)")
        #expect(try Run(["verify", Self.torch("llama_qk.pt"), "-q"]).stdout.contains("tolerance 0.0001)"))
    }

    @Test("stats of every layout equal the stats of numpy's copy; tokens come from the pickled list of strings")
    func statsAgree() throws {
        func stats(_ file: String, _ extra: [String] = []) throws -> String { try statsCSV([file] + extra) }
        let reference = try stats(Self.torch("bert_reference.npy"))
        for file in ["bert_tuple.pt", "bert_tuple_be.pt", "bert_views.pt"] {
            #expect(try stats(Self.torch(file)) == reference, "\(file)")
        }
        #expect(try stats(Self.torch("bert_views.pt"), ["--dataset", "layer_inner"]) == reference)
        #expect(try stats(Self.torch("bert_stacked_f16.pt")) == stats(Self.torch("bert_reference_f16.npy")))
        let tokens = try Run(["tokens", Self.torch("bert_dict_bf16.pt"), "--query", "0", "--quiet"])
        #expect(tokens.status == 0 && tokens.stdout.hasPrefix("[CLS] ("), "\(tokens.stdout)\(tokens.stderr)")
        let info = try Run(["info", Self.torch("bert_tuple.pt")])
        #expect(
            info.stdout.contains("format: PyTorch (torch.save, zip)")
                && info.stdout.contains("source: stored attention in [#] (2 datasets, one per layer)"), "\(info.stdout)"
        )
    }
}

extension HostileInputCLITests {
    @Test(
        """
        torch.save files that name other globals, opcodes or layouts: one line naming what was found, nothing run, \
        no file touched
        """,
        arguments: [
            ("torch_posix_system.pt", "names the Python global posix.system"),
            ("torch_exec.pt", "names the Python global __builtin__.exec"),
            ("torch_build.pt", "holds pickle opcode BUILD (0x62)"),
            ("torch_parameter.pt", "names the Python global torch._utils._rebuild_parameter"),
            ("torch_legacy.pt", "legacy format (before PyTorch 1.6"),
            ("torch_script.pt", "is a TorchScript archive (torch.jit.save)"),
            ("torch_plain.pkl", "is a Python pickle, which attninspect never unpickles"),
            ("torch_cycle.pt", "nests containers more than 64 deep"),
            ("torch_deep.pt", "nests tuples more than 64 deep"),
            ("torch_memo_bomb.pt", "names more than 100000 values"),
            ("torch_short_storage.pt", "its storage claims 16 elements of float32, but the record"),
            ("torch_past_storage.pt", "reaches past the 16 elements of storage 0"),
            ("torch_missing_record.pt", "its storage record torch_missing_record/data/0 is missing"),
            ("torch_negative_offset.pt", "rebuilds a tensor from unexpected arguments"),
            ("torch_text_bomb.pt", "names more than 4194304 strings or 64 MiB of tensor names"),
            ("torch_name_bomb.pt", "names more than 4194304 strings or 64 MiB of tensor names")
        ])
    func torchRefusals(file: String, message: String) throws {
        let marker = "/tmp/attninspect-pwned-torch"
        try? FileManager.default.removeItem(atPath: marker)
        let scratch = try Scratch()
        for command in ["info", "stats"] {
            try refused([command, Self.hostile(file)], message, cwd: scratch.path)
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
        #expect(scratch.contents.isEmpty)
    }

    @Test("a tensor with an empty axis whose other axes' product overflows: info lists it, stats refuses it, no crash")
    func torchZeroAxis() throws {
        let info = try Run(["info", Self.hostile("torch_zero_axis.pt"), "-q"])
        #expect(info.status == 1 && info.stdout.contains("(0, 281474976710656, 281474976710656)"), "\(info.stdout)")
        try refused(
            ["stats", Self.hostile("torch_zero_axis.pt")],
            "axis head has length 0 in shape (0, 281474976710656, 281474976710656)")
    }
}
