import ArgumentParser
import AttnCore
import AttnReader
import AttnAnalysis
import AttnSource

/// Where attention comes from: every subcommand takes these.
struct InputOptions: ParsableArguments {
    @Argument(help: "The dump: .npy, .npz, HDF5 (.h5) or .safetensors.")
    var file: String

    @Option(help: "The dataset (HDF5 path or NPZ member) holding attention, or an HDF5 group of per-layer datasets.")
    var dataset: String?

    /// `--batch B`, or `--batch all` (stats over every sample).
    enum BatchOption: ExpressibleByArgument, Equatable {
        case index(Int)
        case all
        init?(argument: String) {
            if argument == "all" { self = .all } else if let n = Int(argument) { self = .index(n) } else { return nil }
        }
    }

    @Option(
        name: .customLong("batch"), parsing: .unconditional,
        help:
            """
            The sample to read when the data has a batch axis (default 0); with stats, all: every sample, as mean \
            and standard deviation.
            """
    )
    var batchOption: BatchOption?

    /// The sample asked for, when one is.
    var batch: Int? { if case .index(let b) = batchOption { return b } else { return nil } }
    var allSamples: Bool { batchOption == .all }

    @Option(help: "The number of heads, for Q and K stored as [layer, position, head·dim].")
    var heads: Int?

    enum RawType: String, ExpressibleByArgument, CaseIterable { case bfloat16 }

    @Option(
        help:
            """
            Read raw 2-byte data as this type: bfloat16 (an .npy of dtype |V2, as numpy saves ml_dtypes' \
            bfloat16, or HDF5 2-byte opaque or bitfield data).
            """
    )
    var dtype: RawType?

    @Option(
        help:
            """
            The order of the stored attention's axes, e.g. B,H,Q,K (one layer of a batch), L,B,H,Q,K, B,L,H,Q,K \
            (letters or layer,batch,head,query,key; default: the file's axes attribute, else by the number of \
            axes); or of q and k's: L,B,S,HD (projections, split by --heads), L,H,S,D, B,L,H,S,D, L,B,S,H,D \
            (default: the file's qk_axes attribute).
            """
    )
    var axes: String?

    @Flag(name: .customLong("from-qk"), help: "Recompute attention from q and k even when the file stores attention.")
    var fromQK = false

    @Flag(
        inversion: .prefixedNo,
        help:
            """
            With q and k: mask keys after the query (causal attention); the default is the file's causal \
            attribute, else not causal.
            """
    )
    var causal: Bool?

    @Option(
        parsing: .unconditional,
        help: "With q and k: the factor applied to Q·Kᵀ (default: the file's scale attribute, else 1/√d).")
    var scale: Double?

    @Option(
        parsing: .unconditional,
        help:
            """
            With q and k (and causal): a sliding window of W keys, key j visible to query i when i − W < j ≤ i \
            (Mistral, Gemma 2); 0 for none (default: the file's sliding_window and layer_types attributes).
            """
    )
    var window: Int?

    @Option(
        name: .customLong("window-layers"),
        help: "The layers --window applies to: even, odd, or a list such as 0,2,4 (default: every layer).")
    var windowLayersText: String?

    var windowLayers: WindowLayers? { windowLayersText.flatMap(WindowLayers.init) }

    @Option(
        parsing: .unconditional,
        help:
            """
            With q and k: logit soft-capping, C·tanh(s/C) on the scaled scores before the mask (Gemma 2); 0 for \
            none (default: the file's attn_logit_softcapping attribute).
            """
    )
    var softcap: Double?

    @Flag(
        inversion: .prefixedNo,
        help:
            """
            With q and k: add BLOOM's ALiBi bias, slope_h·(j − i), to the scaled scores (default: the file's alibi \
            attribute, else none).
            """
    )
    var alibi: Bool?

    @Option(
        parsing: .unconditional,
        help:
            """
            Only the first N tokens are real: the rest is padding, excluded from every analysis (overrides the \
            file's attention_mask or lengths).
            """
    )
    var length: Int?

    @Flag(name: [.customShort("q"), .long], help: "Print nothing on stderr but errors: no notes, no progress.")
    var quiet = false

    @Flag(help: "Replace an existing output file even if it holds another kind of data (an input is never replaced).")
    var force = false

    @Option(
        name: .customLong("max-memory"),
        help:
            """
            The most memory one layer's work may take, e.g. 512M or 8G (default: half of this machine's memory); \
            larger work is refused with its estimate.
            """
    )
    var maxMemory: String?

    @Flag(
        name: .customLong("keep-padding"),
        help: "Ignore the file's attention_mask or lengths: analyse every position, padding included.")
    var keepPadding = false

    func validate() throws {
        if let maxMemory, MemoryBudget.parseSize(maxMemory) == nil {
            throw ValidationError("--max-memory expects a size such as 512M, 8G or 1.5GiB, got '\(maxMemory)'")
        }
        if let length, length <= 0 { throw ValidationError("--length must be positive, got \(length)") }
        if keepPadding && length != nil {
            throw ValidationError("--keep-padding and --length are exclusive: choose one")
        }
        if let heads, heads <= 0 { throw ValidationError("--heads must be positive, got \(heads)") }
        if let batch, batch < 0 { throw ValidationError("--batch must be 0 or more, got \(batch)") }
        if dataset == "" {
            throw ValidationError(
                "--dataset needs a name (an HDF5 path, NPZ member or safetensors tensor), got an empty one")
        }
        if fromQK, let dataset {
            throw ValidationError(
                """
                --from-qk recomputes attention from the file's q and k, so --dataset \(dataset) (which chooses \
                stored attention) cannot go with it
                """
            )
        }
        if let scale, !(scale.isFinite && scale > 0) {
            throw ValidationError("--scale must be a positive number, got \(scale)")
        }
        if let axes, DeclaredAxes(axes, origin: "--axes") == nil {
            throw ValidationError(
                """
                --axes expects letters in order: L, B, H, Q, K for attention (or layer, batch, head, query, key), L, \
                B, H, S, D or HD for q and k; got '\(axes)'
                """
            )
        }
        if let axes, fromQK, DeclaredAxes(axes, origin: "--axes")?.isQueryKey == false {
            throw ValidationError(
                "--axes \(axes) describes stored attention; with --from-qk give q and k's axes (L,B,S,HD, L,H,S,D, ...)"
            )
        }
        if let window, window < 0 { throw ValidationError("--window must be 0 (none) or more, got \(window)") }
        if let windowLayersText {
            if WindowLayers(windowLayersText) == nil {
                throw ValidationError(
                    "--window-layers expects even, odd or layer numbers such as 0,2,4, got '\(windowLayersText)'")
            }
            if (window ?? 0) == 0 { throw ValidationError("--window-layers goes with --window W (W > 0)") }
        }
        if (window ?? 0) > 0 && causal == false {
            throw ValidationError(
                """
                --window is a sliding window over the keys before each query (i − W < j ≤ i), so it needs causal \
                masking: drop --no-causal
                """
            )
        }
        if let softcap, !(softcap.isFinite && softcap >= 0) {
            throw ValidationError("--softcap must be 0 (none) or a positive number, got \(softcap)")
        }
    }

    /// Opens the file and the attention in it (stored, or recomputed from Q and K); `sample` overrides `--batch`.
    /// `checksLayerMemory` false: attention whose layer exceeds --max-memory is opened too (for `info`).
    func open(sample: Int? = nil, allowAllSamples: Bool = false, checksLayerMemory: Bool = true) throws -> OpenedDump {
        if allSamples && !allowAllSamples {
            throw ValidationError(
                """
                --batch all is for stats (mean and standard deviation over the samples); choose one sample with \
                --batch B
                """
            )
        }
        return try OpenedDump.open(
            file, options: sourceOptions(sample: sample, checksLayerMemory: checksLayerMemory), note: Console.noteOnce)
    }

    /// The options as the source layer takes them; `sample` overrides `--batch`.
    func sourceOptions(sample: Int? = nil, checksLayerMemory: Bool = true) -> SourceOptions {
        SourceOptions(
            dataset: dataset, batch: sample ?? batch, heads: heads, rawAs: dtype.map { _ in ElementType.bfloat16 },
            fromQK: fromQK,
            scale: scale, causal: causal, window: window, windowLayers: windowLayers, softcap: softcap, alibi: alibi,
            axes: axes.flatMap { DeclaredAxes($0, origin: "--axes \($0)") },
            padding: keepPadding ? .keep : .exclude(length: length),
            checksLayerMemory: checksLayerMemory)
    }
}

extension HeadFusion: ExpressibleByArgument {}
extension PatchGrid: ExpressibleByArgument {}

/// A command that reads a dump: it takes --quiet, --force and --max-memory through InputOptions.
protocol ReadsDump: GlobalOptions {
    var input: InputOptions { get }
}

extension ReadsDump {
    var isQuiet: Bool { input.quiet }
    var forcesOutput: Bool { input.force }
    var memoryLimit: Int? { input.maxMemory.flatMap(MemoryBudget.parseSize) }
}

extension AttnInspect.Diff: ReadsDump {}
extension AttnInspect.Entropy: ReadsDump {}
extension AttnInspect.Flow: ReadsDump {}
extension AttnInspect.Grid: ReadsDump {}
extension AttnInspect.Heads: ReadsDump {}
extension AttnInspect.Heatmap: ReadsDump {}
extension AttnInspect.Info: ReadsDump {}
extension AttnInspect.Rollout: ReadsDump {}
extension AttnInspect.Show: ReadsDump {}
extension AttnInspect.Stats: ReadsDump {}
extension AttnInspect.Tokens: ReadsDump {}
extension AttnInspect.Verify: ReadsDump {}
extension AttnInspect.Report: ReadsDump {}
