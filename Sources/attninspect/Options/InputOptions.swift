import ArgumentParser
import AttnCore
import AttnReader
import AttnAnalysis

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

    @Option(name: .customLong("batch"), parsing: .unconditional, help: "The sample to read when the data has a batch axis (default 0); with stats, all: every sample, as mean and standard deviation.")
    var batchOption: BatchOption?

    /// The sample asked for, when one is.
    var batch: Int? { if case .index(let b) = batchOption { return b } else { return nil } }
    var allSamples: Bool { batchOption == .all }

    @Option(help: "The number of heads, for Q and K stored as [layer, position, head·dim].")
    var heads: Int?

    enum RawType: String, ExpressibleByArgument, CaseIterable { case bfloat16 }

    @Option(help: "Read raw 2-byte data as this type: bfloat16 (an .npy of dtype |V2, as numpy saves ml_dtypes' bfloat16, or HDF5 2-byte opaque or bitfield data).")
    var dtype: RawType?

    @Flag(name: .customLong("from-qk"), help: "Recompute attention from q and k even when the file stores attention.")
    var fromQK = false

    @Flag(inversion: .prefixedNo, help: "With q and k: mask keys after the query (causal attention); the default is the file's causal attribute, else not causal.")
    var causal: Bool?

    @Option(parsing: .unconditional, help: "With q and k: the factor applied to Q·Kᵀ (default: the file's scale attribute, else 1/√d).")
    var scale: Double?

    @Option(parsing: .unconditional, help: "Only the first N tokens are real: the rest is padding, excluded from every analysis (overrides the file's attention_mask or lengths).")
    var length: Int?

    @Flag(name: [.customShort("q"), .long], help: "Print nothing on stderr but errors: no notes, no progress.")
    var quiet = false

    @Flag(help: "Replace an existing output file even if it holds another kind of data (an input is never replaced).")
    var force = false

    @Option(name: .customLong("max-memory"), help: "The most memory one layer's work may take, e.g. 512M or 8G (default: half of this machine's memory); larger work is refused with its estimate.")
    var maxMemory: String?

    @Flag(name: .customLong("keep-padding"), help: "Ignore the file's attention_mask or lengths: analyse every position, padding included.")
    var keepPadding = false

    func validate() throws {
        if let maxMemory, MemoryBudget.parseSize(maxMemory) == nil {
            throw ValidationError("--max-memory expects a size such as 512M, 8G or 1.5GiB, got '\(maxMemory)'")
        }
        if let length, length <= 0 { throw ValidationError("--length must be positive, got \(length)") }
        if keepPadding && length != nil { throw ValidationError("--keep-padding and --length are exclusive: choose one") }
        if let heads, heads <= 0 { throw ValidationError("--heads must be positive, got \(heads)") }
        if let batch, batch < 0 { throw ValidationError("--batch must be 0 or more, got \(batch)") }
        if dataset == "" { throw ValidationError("--dataset needs a name (an HDF5 path, NPZ member or safetensors tensor), got an empty one") }
        if fromQK, let dataset {
            throw ValidationError("--from-qk recomputes attention from the file's q and k, so --dataset \(dataset) (which chooses stored attention) cannot go with it")
        }
        if let scale, !(scale.isFinite && scale > 0) { throw ValidationError("--scale must be a positive number, got \(scale)") }
    }

    /// Opens the file and the attention in it (stored, or recomputed from Q and K); `sample` overrides `--batch`.
    /// `checksLayerMemory` false: attention whose layer exceeds --max-memory is opened too (for `info`).
    func open(sample: Int? = nil, allowAllSamples: Bool = false, checksLayerMemory: Bool = true) throws -> OpenedDump {
        if allSamples && !allowAllSamples {
            throw ValidationError("--batch all is for stats (mean and standard deviation over the samples); choose one sample with --batch B")
        }
        let opened = try OpenedDump.open(file, options: ReadOptions(dataset: dataset, batch: sample ?? batch, heads: heads, fromQK: fromQK,
                                                                       checksLayerMemory: checksLayerMemory),
                                         rawAs: dtype.map { _ in ElementType.bfloat16 }, scale: scale, causal: causal,
                                         padding: keepPadding ? .keep : .exclude(length: length))
        if let why = opened.file.unreadableTokenLabels() { Console.noteOnce("\(file): no token labels used: \(why)") }
        if let b = opened.layout.summary.batch, batchOption == nil, sample == nil, b.size > 1 {
            Console.note("\(file): batch axis of \(b.size) samples, using sample \(b.used) (choose with --batch B)")
        }
        return opened
    }
}

struct OpenedDump {
    let file: DumpFile
    let layout: AttentionLayout
    let source: AttentionSource
    /// The real tokens when padding is excluded.
    var padding: TokenSelection? = nil

    /// What to do with padding: keep every position, or exclude the pads that `--length` or the
    /// file's attention_mask or lengths give.
    enum PaddingChoice { case keep, exclude(length: Int?) }

    /// Opens `path` and the attention in it: stored, or recomputed from Q and K with `scale` and `causal`;
    /// padding excluded unless `padding` is `.keep` (the selection is said on stderr).
    static func open(_ path: String, options: ReadOptions = ReadOptions(), rawAs: ElementType? = nil,
                     scale: Double? = nil, causal: Bool? = nil, padding: PaddingChoice = .exclude(length: nil)) throws -> OpenedDump {
        let dump = try DumpFile(path: path, rawAs: rawAs)
        let layout = try AttentionLayout.resolve(dump, options: options)
        var source: AttentionSource
        var recomputation = Recomputation(scale: scale, causal: causal ?? false)
        switch layout {
        case .attention(let stored):
            if causal == true || scale != nil {
                throw DumpError(file: path, "--causal and --scale apply to attention recomputed from q and k, but this file's attention is stored (\(stored.summary.datasets)); add --from-qk if the file has q and k")
            }
            source = stored
        case .queryKey(let qk):
            recomputation = try Recomputation(in: dump, scale: scale, causal: causal)
            source = RecomputedAttention(qk, scale: recomputation.scale, causal: recomputation.causal)
        }
        if case .exclude(let length) = padding,
           let selection = try Padding.selection(in: dump, positions: source.keyCount, batch: options.batch, length: length), !selection.keepsAll {
            let selfAttention = source.queryCount == source.keyCount
            switch layout {
            case .attention(let stored):
                source = SelectedAttention(stored, queries: selfAttention ? selection : nil, keys: selection)
            case .queryKey(let qk):
                source = RecomputedAttention(SelectedQueryKey(qk, selection: selection), scale: recomputation.scale, causal: recomputation.causal)
            }
            Console.noteOnce("\(path): \(selection.origin) keeps \(selection.kept.count) of \(selection.total) \(selfAttention ? "tokens" : "keys"); padding is excluded (--keep-padding to include it)")
            return OpenedDump(file: dump, layout: layout, source: source, padding: selection)
        }
        return OpenedDump(file: dump, layout: layout, source: source)
    }

    /// Whether the dump looks like a vision transformer's: a grid requested or declared (`patch_grid`),
    /// or no token labels and a perfect square of side ≥ 7 patches after `prefix` tokens.
    func looksLikeVision(gridRequested: Bool, prefix: Int) throws -> Bool {
        if try gridRequested || declaredGrid() != nil { return true }
        return source.tokens == nil && (PatchGrid.square(holding: source.queryCount - prefix)?.rows ?? 0) >= 7
    }

    /// A layer index as given (negative counts from the end), checked.
    func layer(_ requested: Int) throws -> Int {
        let count = source.layerCount
        let index = requested < 0 ? count + requested : requested
        guard index >= 0 && index < count else {
            throw DumpError(file: file.path, "layer \(requested) is out of range: the dump has \(count) layers (0...\(count - 1), or -\(count)...-1 from the end)")
        }
        return index
    }

    /// A head fusion, with a head index checked against the dump.
    func fusion(_ fusion: HeadFusion) throws -> HeadFusion {
        if case .head(let h) = fusion, h < 0 || h >= source.headCount {
            throw DumpError(file: file.path, "head \(h) is out of range: the dump has \(source.headCount) heads (0...\(source.headCount - 1))")
        }
        return fusion
    }

    /// The file's `patch_grid` attribute, checked: nil when it has none, an error when it is not two positive integers.
    func declaredGrid() throws -> PatchGrid? {
        guard let attribute = file.attribute("patch_grid") else { return nil }
        guard let declared = attribute.integerValues, declared.count == 2, declared[0] > 0, declared[1] > 0,
              declared[0] <= 1 << 20, declared[1] <= 1 << 20 else {
            throw DumpError(file: file.path, "attribute patch_grid should be [rows, columns], two positive integers, found \(attribute); give the grid with --grid ROWSxCOLS")
        }
        return PatchGrid(rows: declared[0], columns: declared[1])
    }

    /// The file's `prefix_tokens` attribute, checked: nil when it has none, an error when it is not one integer ≥ 0.
    func declaredPrefix() throws -> Int? {
        guard let attribute = file.attribute("prefix_tokens") else { return nil }
        guard let values = attribute.integerValues, values.count == 1, values[0] >= 0 else {
            throw DumpError(file: file.path, "attribute prefix_tokens should be one integer, 0 or more, found \(attribute); give it with --prefix N")
        }
        return values[0]
    }

    /// The patch grid: `--grid`, else the file's `patch_grid` attribute, else square.
    func patchGrid(_ requested: PatchGrid?, prefix: Int) throws -> PatchGrid {
        if let requested { return requested }
        if let declared = try declaredGrid() { return declared }
        let patches = source.keyCount - prefix
        guard let square = PatchGrid.square(holding: patches) else {
            throw DumpError(file: file.path, "\(patches) keys remain after \(prefix) prefix token(s), which is not a perfect square; give the grid with --grid HxW (and --prefix)")
        }
        return square
    }

    /// The number of prefix tokens: `--prefix`, else the file's `prefix_tokens` attribute, else 1;
    /// checked against the number of keys.
    func prefix(_ requested: Int?) throws -> Int {
        let declared = try declaredPrefix()
        let value = requested ?? declared ?? 1
        guard value >= 0 && value < source.keyCount else {
            let origin = requested != nil ? "--prefix is \(value)" : declared != nil ? "the file's prefix_tokens attribute is \(value)"
                : "the default of 1 prefix token (CLS; the file declares no prefix_tokens)"
            throw DumpError(file: file.path, "\(origin), but the attention has \(source.keyCount) key(s): expected 0...\(source.keyCount - 1) prefix tokens before the patches; give --prefix N")
        }
        return value
    }

    /// Runs an analysis step, reporting its errors against this file.
    func analysing<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as AnalysisError {
            throw DumpError(file: file.path, error.message)
        }
    }
}

extension HeadFusion: ExpressibleByArgument {}
extension PatchGrid: ExpressibleByArgument {}

// Every command that reads a dump takes --quiet and --force through InputOptions.
extension AttnInspect.Entropy: GlobalOptions { var isQuiet: Bool { input.quiet }; var forcesOutput: Bool { input.force }; var memoryLimit: Int? { input.maxMemory.flatMap(MemoryBudget.parseSize) } }
extension AttnInspect.Flow: GlobalOptions { var isQuiet: Bool { input.quiet }; var forcesOutput: Bool { input.force }; var memoryLimit: Int? { input.maxMemory.flatMap(MemoryBudget.parseSize) } }
extension AttnInspect.Grid: GlobalOptions { var isQuiet: Bool { input.quiet }; var forcesOutput: Bool { input.force }; var memoryLimit: Int? { input.maxMemory.flatMap(MemoryBudget.parseSize) } }
extension AttnInspect.Heads: GlobalOptions { var isQuiet: Bool { input.quiet }; var forcesOutput: Bool { input.force }; var memoryLimit: Int? { input.maxMemory.flatMap(MemoryBudget.parseSize) } }
extension AttnInspect.Heatmap: GlobalOptions { var isQuiet: Bool { input.quiet }; var forcesOutput: Bool { input.force }; var memoryLimit: Int? { input.maxMemory.flatMap(MemoryBudget.parseSize) } }
extension AttnInspect.Info: GlobalOptions { var isQuiet: Bool { input.quiet }; var forcesOutput: Bool { input.force }; var memoryLimit: Int? { input.maxMemory.flatMap(MemoryBudget.parseSize) } }
extension AttnInspect.Rollout: GlobalOptions { var isQuiet: Bool { input.quiet }; var forcesOutput: Bool { input.force }; var memoryLimit: Int? { input.maxMemory.flatMap(MemoryBudget.parseSize) } }
extension AttnInspect.Show: GlobalOptions { var isQuiet: Bool { input.quiet }; var forcesOutput: Bool { input.force }; var memoryLimit: Int? { input.maxMemory.flatMap(MemoryBudget.parseSize) } }
extension AttnInspect.Stats: GlobalOptions { var isQuiet: Bool { input.quiet }; var forcesOutput: Bool { input.force }; var memoryLimit: Int? { input.maxMemory.flatMap(MemoryBudget.parseSize) } }
extension AttnInspect.Tokens: GlobalOptions { var isQuiet: Bool { input.quiet }; var forcesOutput: Bool { input.force }; var memoryLimit: Int? { input.maxMemory.flatMap(MemoryBudget.parseSize) } }
extension AttnInspect.Verify: GlobalOptions { var isQuiet: Bool { input.quiet }; var forcesOutput: Bool { input.force }; var memoryLimit: Int? { input.maxMemory.flatMap(MemoryBudget.parseSize) } }

/// How attention is recomputed from q and k: the scale of Q·Kᵀ (nil: 1/√d) and the causal mask. What the
/// command line gives wins; otherwise the file's root attributes `scale` and `causal` (as the exporters write
/// them), which are named on stderr when used.
struct Recomputation {
    var scale: Double?
    var causal: Bool

    init(scale: Double?, causal: Bool) {
        self.scale = scale
        self.causal = causal
    }

    init(in dump: DumpFile, scale: Double?, causal: Bool?) throws {
        var fromFile: [String] = []
        if let causal {
            self.causal = causal
        } else if let attribute = dump.attribute("causal") {
            guard let value = attribute.booleanValue else {
                throw DumpError(file: dump.path, "attribute causal should be true or false (or 1 or 0), found \(attribute); override it with --causal or --no-causal")
            }
            self.causal = value
            if value { fromFile.append("causal") }
        } else {
            self.causal = false
        }
        if let scale {
            self.scale = scale
        } else if let attribute = dump.attribute("scale") {
            guard let value = attribute.realValue, value.isFinite, value > 0 else {
                throw DumpError(file: dump.path, "attribute scale should be one positive number, found \(attribute); override it with --scale")
            }
            self.scale = value
            fromFile.append("scale \(value)")
        } else {
            self.scale = nil
        }
        if !fromFile.isEmpty {
            let overrides = (fromFile.contains("causal") ? ["--no-causal"] : []) + (scale == nil && self.scale != nil ? ["--scale"] : [])
            Console.noteOnce("\(dump.path): recomputing attention from q and k with the file's \(fromFile.joined(separator: " and ")) (override with \(overrides.joined(separator: " or ")))")
        }
    }
}

extension InputOptions: QuickArguments {
    static let quickNames: [QuickName] = [
        .positional("file"), .option("dataset"), .option("batch", unconditional: true), .option("heads"), .option("dtype"),
        .flag("from-qk"), .invertible("causal"), .option("scale", unconditional: true), .option("length", unconditional: true),
        .flag("quiet", short: "q"), .flag("force"), .option("max-memory"), .flag("keep-padding"),
    ]

    static func quick(_ line: inout QuickLine) throws -> Self {
        var o = Self()
        o.file = try line.positional()
        o.dataset = try line.value("dataset")
        o.batchOption = try line.value("batch")
        o.heads = try line.value("heads")
        o.dtype = try line.value("dtype")
        o.fromQK = line.flag("from-qk")
        o.causal = line.invertible("causal")
        o.scale = try line.value("scale")
        o.length = try line.value("length")
        o.quiet = line.flag("quiet")
        o.force = line.flag("force")
        o.maxMemory = try line.value("max-memory")
        o.keepPadding = line.flag("keep-padding")
        try o.validate()
        return o
    }
}
