import AttnCore
import AttnReader

/// How a dump is read as attention: the input options of every command that reads one.
public struct SourceOptions: Sendable {
    /// The dataset (HDF5 path or group, NPZ member, safetensors tensor) holding attention; nil: found by name.
    public var dataset: String?
    /// The sample along a batch axis; nil: 0, said in a note when there are several.
    public var batch: Int?
    /// The number of heads, for Q and K stored as `[layer, position, head·dim]`.
    public var heads: Int?
    /// Raw 2-byte data read as this type (bfloat16).
    public var rawAs: ElementType?
    /// Recompute attention from q and k even when the file stores attention.
    public var fromQK: Bool
    /// With q and k: the factor of Q·Kᵀ (nil: the file's `scale` attribute, else 1/√d).
    public var scale: Double?
    /// With q and k: the causal mask (nil: the file's `causal` attribute, else not causal).
    public var causal: Bool?
    /// What becomes of padding.
    public var padding: PaddingChoice
    /// False: attention whose one layer exceeds the memory budget is opened too (`info` reads no layer).
    public var checksLayerMemory: Bool

    public init(
        dataset: String? = nil, batch: Int? = nil, heads: Int? = nil, rawAs: ElementType? = nil, fromQK: Bool = false,
        scale: Double? = nil, causal: Bool? = nil, padding: PaddingChoice = .exclude(length: nil),
        checksLayerMemory: Bool = true
    ) {
        self.dataset = dataset
        self.batch = batch
        self.heads = heads
        self.rawAs = rawAs
        self.fromQK = fromQK
        self.scale = scale
        self.causal = causal
        self.padding = padding
        self.checksLayerMemory = checksLayerMemory
    }

    /// What to do with padding: keep every position, or exclude the pads that `length` (`--length`) or the file's
    /// `attention_mask` or `lengths` give.
    public enum PaddingChoice: Sendable { case keep, exclude(length: Int?) }
}

/// A dump opened as attention: the file, how its tensors were read, and the `AttentionSource` every analysis reads
/// (stored, recomputed from Q and K, padding excluded, one sample of a batch). `open` is the one place where these
/// are put together; the CLI and the tests call it.
public struct OpenedDump {
    public let file: DumpFile
    public let layout: AttentionLayout
    public let source: AttentionSource
    /// The real tokens when padding is excluded.
    public var padding: TokenSelection?
    /// The options it was opened with.
    public var options = SourceOptions()

    /// Opens `path` and the attention in it. What was assumed or chosen (token labels not used, the sample of a
    /// batch, the file's recompute attributes, padding excluded) is said through `note`, once per message.
    public static func open(_ path: String, options: SourceOptions = SourceOptions(), note: (String) -> Void) throws
        -> OpenedDump
    {
        let dump = try DumpFile(path: path, rawAs: options.rawAs)
        let layout = try AttentionLayout.resolve(
            dump,
            options: ReadOptions(
                dataset: options.dataset, batch: options.batch, heads: options.heads,
                fromQK: options.fromQK, checksLayerMemory: options.checksLayerMemory))
        var source: AttentionSource
        var recomputation = Recomputation(scale: options.scale, causal: options.causal ?? false)
        switch layout {
        case .attention(let stored):
            if options.causal == true || options.scale != nil {
                throw AttnError(
                    file: path,
                    """
                    --causal and --scale apply to attention recomputed from q and k, but this file's attention is \
                    stored (\(stored.summary.datasets)); add --from-qk if the file has q and k
                    """
                )
            }
            source = stored
        case .queryKey(let qk):
            recomputation = try Recomputation(in: dump, scale: options.scale, causal: options.causal, note: note)
            source = RecomputedAttention(qk, scale: recomputation.scale, causal: recomputation.causal)
        }
        var padding: TokenSelection?
        if case .exclude(let length) = options.padding,
            let selection = try Padding.selection(
                in: dump, positions: source.keyCount, batch: options.batch, length: length), !selection.keepsAll
        {
            let selfAttention = source.queryCount == source.keyCount
            switch layout {
            case .attention(let stored):
                source = SelectedAttention(stored, queries: selfAttention ? selection : nil, keys: selection)
            case .queryKey(let qk):
                source = RecomputedAttention(
                    SelectedQueryKey(qk, selection: selection), scale: recomputation.scale, causal: recomputation.causal
                )
            }
            note(
                """
                \(path): \(selection.origin) keeps \(selection.kept.count) of \(selection.total) \
                \(selfAttention ? "tokens" : "keys"); padding is excluded (--keep-padding to include it)
                """
            )
            padding = selection
        }
        if let why = dump.unreadableTokenLabels() { note("\(path): no token labels used: \(why)") }
        if let b = layout.summary.batch, options.batch == nil, b.size > 1 {
            note("\(path): batch axis of \(b.size) samples, using sample \(b.used) (choose with --batch B)")
        }
        return OpenedDump(file: dump, layout: layout, source: source, padding: padding, options: options)
    }

    /// The file's q and k as a second source beside its stored attention, recomputed with the file's `scale` and
    /// `causal` (the latter as `causal` says): what `verify` compares the stored attention with. nil when this dump
    /// is not stored attention or the file has no q and k; throws when the file's scale attribute is malformed.
    public func recomputedBeside(causal: Bool, note: (String) -> Void) throws -> (
        source: AttentionSource, recomputation: Recomputation
    )? {
        guard case .attention = layout,
            case .queryKey(let qk)? = try? AttentionLayout.resolve(
                file, options: ReadOptions(dataset: nil, batch: options.batch, heads: options.heads, fromQK: true))
        else { return nil }
        let recomputation = try Recomputation(in: file, scale: nil, causal: causal, note: note)
        // Padding excluded from the stored attention is excluded from q and k too: the softmax runs over the real
        // keys, as the model's did.
        let source: AttentionSource =
            padding.map {
                RecomputedAttention(
                    SelectedQueryKey(qk, selection: $0), scale: recomputation.scale, causal: recomputation.causal)
            } ?? RecomputedAttention(qk, scale: recomputation.scale, causal: recomputation.causal)
        return (source, recomputation)
    }

    /// The attention gradients stored beside the attention (`--gradients`), named or found by name; nil when there
    /// are none.
    public func gradients(named name: String?) throws -> StoredAttention? {
        try AttentionLayout.gradients(
            file, named: name, options: ReadOptions(batch: options.batch, heads: options.heads), matching: source)
    }

    /// Whether the dump is a vision dump: a patch grid requested (`--grid`) or declared (the `patch_grid`
    /// attribute). Nothing is guessed from the token count: a square number of tokens is as likely a sentence.
    public func isVisionDump(gridRequested: Bool) throws -> Bool {
        try gridRequested || declaredGrid() != nil
    }

    /// A layer index as given (negative counts from the end), checked.
    public func layer(_ requested: Int) throws -> Int {
        let count = source.layerCount
        let index = requested < 0 ? count + requested : requested
        guard index >= 0 && index < count else {
            throw AttnError(
                .analysis, file: file.path,
                """
                layer \(requested) is out of range: the dump has \(count) layers (0...\(count - 1), or \
                -\(count)...-1 from the end)
                """
            )
        }
        return index
    }

    /// A head index, checked against the dump.
    public func head(_ h: Int) throws -> Int {
        guard h >= 0 && h < source.headCount else {
            throw AttnError(
                .analysis, file: file.path,
                "head \(h) is out of range: the dump has \(source.headCount) heads (0...\(source.headCount - 1))")
        }
        return h
    }

    /// The file's `patch_grid` attribute, checked: nil when it has none, an error when it is not two positive integers.
    public func declaredGrid() throws -> PatchGrid? {
        guard let attribute = file.attribute("patch_grid") else { return nil }
        guard let declared = attribute.integerValues, declared.count == 2, declared[0] > 0, declared[1] > 0,
            declared[0] <= 1 << 20, declared[1] <= 1 << 20
        else {
            throw AttnError(
                file: file.path,
                """
                attribute patch_grid should be [rows, columns], two positive integers, found \(attribute); give \
                the grid with --grid ROWSxCOLS
                """
            )
        }
        return PatchGrid(rows: declared[0], columns: declared[1])
    }

    /// The file's `prefix_tokens` attribute, checked: nil when it has none, an error when it is not one integer ≥ 0.
    public func declaredPrefix() throws -> Int? {
        guard let attribute = file.attribute("prefix_tokens") else { return nil }
        guard let values = attribute.integerValues, values.count == 1, values[0] >= 0 else {
            throw AttnError(
                file: file.path,
                "attribute prefix_tokens should be one integer, 0 or more, found \(attribute); give it with --prefix N")
        }
        return values[0]
    }

    /// The patch grid: `requested` (`--grid`), else the file's `patch_grid` attribute, else the square of the
    /// keys after the prefix, an assumption said through `note`.
    public func patchGrid(_ requested: PatchGrid?, prefix: Int, note: (String) -> Void) throws -> PatchGrid {
        if let requested { return requested }
        if let declared = try declaredGrid() { return declared }
        let patches = source.keyCount - prefix
        guard let square = PatchGrid.square(holding: patches) else {
            // The prefix nearest to the one used that leaves a square of at least 2 × 2 (CLS and register tokens:
            // up to 16), suggested first.
            let candidates = source.keyCount >= 4 ? Array(0...min(16, source.keyCount - 4)) : []
            let nearest = candidates.filter { $0 != prefix && PatchGrid.square(holding: source.keyCount - $0) != nil }
                .min { abs($0 - prefix) < abs($1 - prefix) }
            let suggestion = nearest.map { p in
                let grid = PatchGrid.square(holding: source.keyCount - p)!
                let guess = p == 0 ? "" : p == 1 ? " (CLS?)" : " (CLS and \(p - 1) register tokens?)"
                return "--prefix \(p) leaves \(source.keyCount - p) keys, a \(grid) grid\(guess); or "
            }
            throw AttnError(
                .analysis, file: file.path,
                """
                \(patches) keys remain after \(prefix) prefix token(s), which is not a perfect square, and the file \
                declares no patch_grid: \(suggestion ?? "")give the grid with --grid ROWSxCOLS (and --prefix)
                """
            )
        }
        note(
            """
            \(file.path): patch grid \(square), the square of the \(patches) keys after \(prefix) prefix token(s) \
            (the file declares no patch_grid; give --grid ROWSxCOLS, --prefix N)
            """)
        return square
    }

    /// The number of prefix tokens: `requested` (`--prefix`), else the file's `prefix_tokens` attribute, else 1;
    /// checked against the number of keys.
    public func prefix(_ requested: Int?) throws -> Int {
        let declared = try declaredPrefix()
        let value = requested ?? declared ?? 1
        guard value >= 0 && value < source.keyCount else {
            let origin =
                requested != nil
                ? "--prefix is \(value)"
                : declared != nil
                    ? "the file's prefix_tokens attribute is \(value)"
                    : "the default of 1 prefix token (CLS; the file declares no prefix_tokens)"
            throw AttnError(
                .analysis, file: file.path,
                """
                \(origin), but the attention has \(source.keyCount) key(s): expected 0...\(source.keyCount - 1) \
                prefix tokens before the patches; give --prefix N
                """
            )
        }
        return value
    }

    /// Token ids (`token_ids` or `input_ids`) of the positions analysed (only the kept ones when
    /// padding is excluded); nil when the file has none.
    public func tokenIDs(sample: Int?) throws -> [Int64]? {
        let selection = (source as? SelectedAttention)?.queries
        guard let ids = try file.tokenIDs(positions: selection?.total ?? source.queryCount, sample: sample) else {
            return nil
        }
        return selection.map { $0.kept.map { ids[$0] } } ?? ids
    }

    /// Runs an analysis step, reporting its errors against this file.
    public func analysing<T>(_ body: () throws -> T) throws -> T {
        try AnalysisError.reported(against: file.path, body)
    }
}

/// How attention is recomputed from q and k: the scale of Q·Kᵀ (nil: 1/√d) and the causal mask. What the
/// command line gives wins; otherwise the file's root attributes `scale` and `causal` (as the exporters write
/// them), which are named through `note` when used.
public struct Recomputation {
    public var scale: Double?
    public var causal: Bool

    public init(scale: Double?, causal: Bool) {
        self.scale = scale
        self.causal = causal
    }

    public init(in dump: DumpFile, scale: Double?, causal: Bool?, note: (String) -> Void) throws {
        var fromFile: [String] = []
        if let causal {
            self.causal = causal
        } else if let attribute = dump.attribute("causal") {
            guard let value = attribute.booleanValue else {
                throw AttnError(
                    file: dump.path,
                    """
                    attribute causal should be true or false (or 1 or 0), found \(attribute); override it with \
                    --causal or --no-causal
                    """
                )
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
                throw AttnError(
                    file: dump.path,
                    "attribute scale should be one positive number, found \(attribute); override it with --scale")
            }
            self.scale = value
            fromFile.append("scale \(value)")
        } else {
            self.scale = nil
        }
        if !fromFile.isEmpty {
            let overrides =
                (fromFile.contains("causal") ? ["--no-causal"] : [])
                + (scale == nil && self.scale != nil ? ["--scale"] : [])
            note(
                """
                \(dump.path): recomputing attention from q and k with the file's \
                \(fromFile.joined(separator: " and ")) (override with \(overrides.joined(separator: " or ")))
                """
            )
        }
    }
}
