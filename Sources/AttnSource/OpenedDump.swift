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
    /// The order of the stored attention's axes (`--axes`); nil: the file's `axes` attribute, else by rank (4 axes
    /// as [layer, head, query, key], said in a note).
    public var axes: DeclaredAxes?
    /// With q and k: the causal mask (nil: the file's `causal` attribute, else not causal).
    public var causal: Bool?
    /// With q and k: a sliding window of W keys (0: none), on `windowLayers` (nil: every layer); nil: the file's
    /// `sliding_window` (and `layer_types`) attributes.
    public var window: Int?
    public var windowLayers: WindowLayers?
    /// With q and k: logit soft-capping (nil: the file's `attn_logit_softcapping` attribute).
    public var softcap: Double?
    /// With q and k: the ALiBi bias (nil: the file's `alibi` attribute, else none).
    public var alibi: Bool?
    /// What becomes of padding.
    public var padding: PaddingChoice
    /// False: attention whose one layer exceeds the memory budget is opened too (`info` reads no layer).
    public var checksLayerMemory: Bool

    public init(
        dataset: String? = nil, batch: Int? = nil, heads: Int? = nil, rawAs: ElementType? = nil, fromQK: Bool = false,
        scale: Double? = nil, causal: Bool? = nil, window: Int? = nil, windowLayers: WindowLayers? = nil,
        softcap: Double? = nil, alibi: Bool? = nil, axes: DeclaredAxes? = nil,
        padding: PaddingChoice = .exclude(length: nil), checksLayerMemory: Bool = true
    ) {
        self.axes = axes
        self.window = window
        self.windowLayers = windowLayers
        self.softcap = softcap
        self.alibi = alibi
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
                fromQK: options.fromQK, axes: options.axes, checksLayerMemory: options.checksLayerMemory))
        var source: AttentionSource
        var recomputation = Recomputation(scale: options.scale, causal: options.causal ?? false)
        func recomputed(_ qk: QueryKeySource) -> RecomputedAttention {
            RecomputedAttention(
                qk, scale: recomputation.scale, causal: recomputation.causal, windows: recomputation.windows,
                softcap: recomputation.softcap, alibi: recomputation.alibi)
        }
        switch layout {
        case .attention(let stored):
            if options.causal == true || options.scale != nil || options.window != nil || options.softcap != nil
                || options.alibi == true
            {
                throw AttnError(
                    file: path,
                    """
                    --causal, --scale, --window, --softcap and --alibi apply to attention recomputed from q and k, \
                    but this file's attention is stored (\(stored.summary.datasets)); add --from-qk if the file has \
                    q and k
                    """
                )
            }
            source = stored
        case .queryKey(let qk):
            recomputation = try Recomputation(in: dump, options: options, layers: qk.layerCount, note: note)
            source = recomputed(qk)
        }
        var padding: TokenSelection?
        if case .exclude(let length) = options.padding,
            let selection = try Padding.selection(
                in: dump, positions: source.keyCount, batch: options.batch, length: length), !selection.keepsAll
        {
            let selfAttention = !source.isCrossAttention
            switch layout {
            case .attention(let stored):
                source = SelectedAttention(stored, queries: selfAttention ? selection : nil, keys: selection)
            case .queryKey(let qk):
                source = recomputed(SelectedQueryKey(qk, selection: selection))
            }
            note(
                """
                \(path): \(selection.origin) keeps \(selection.kept.count) of \(selection.total) \
                \(selfAttention ? "tokens" : "keys"); padding is excluded (--keep-padding to include it)
                """
            )
            padding = selection
        }
        if layout.summary.guessedFromRank {
            let other =
                if case .queryKey = layout {
                    "--axes L,B,S,HD for projections of a batch (heads × dim merged, with --heads), B,L,H,S,D for the "
                        + "batch first (or a root attribute qk_axes)"
                } else {
                    "--axes B,H,Q,K for one layer of a batch (or a root attribute axes)"
                }
            note(
                "\(path): \(layout.summary.datasets) read as \(layout.summary.axes), from its number of axes; \(other)")
        }
        if case .queryKey(let qk) = layout, qk.fromUnrotatedHooks {
            note(
                """
                \(path): q and k from TransformerLens's hook_q and hook_k, which are before the rotary embedding: for \
                a rotary model (Llama, Pythia, ...) save hook_rot_q and hook_rot_k
                """
            )
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
        source: AttentionSource, recomputation: Recomputation, precision: ElementType
    )? {
        guard case .attention = layout,
            case .queryKey(let qk)? = try? AttentionLayout.resolve(
                file, options: ReadOptions(dataset: nil, batch: options.batch, heads: options.heads, fromQK: true))
        else { return nil }
        let recomputation = try Recomputation(
            in: file, options: SourceOptions(causal: causal), layers: qk.layerCount, note: note)
        // Padding excluded from the stored attention is excluded from q and k too: the softmax runs over the real
        // keys, as the model's did.
        let base: QueryKeySource = padding.map { SelectedQueryKey(qk, selection: $0) } ?? qk
        let source = RecomputedAttention(
            base, scale: recomputation.scale, causal: recomputation.causal, windows: recomputation.windows,
            softcap: recomputation.softcap, alibi: recomputation.alibi)
        var precision = qk.narrowestType
        if case .attention(let stored) = layout, let type = stored.elementType, type.size < precision.size {
            precision = type
        }
        return (source, recomputation, precision)
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

    /// Query `query` of layer `l`, every head, and the row's index in what is returned: the whole layer for stored
    /// attention (which commands check whole), only that row when recomputed from q and k (at any length).
    public func queryRow(layer l: Int, query: Int) throws -> (attention: LayerAttention, row: Int) {
        guard query >= 0 && query < source.queryCount else {
            throw AttnError(
                .analysis, file: file.path, "token \(query) is out of range: expected 0...\(source.queryCount - 1)")
        }
        guard source.origin != .stored else { return (try source.layer(l), query) }
        return (try source.rows(query..<(query + 1), layer: l), 0)
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

/// The layers a `--window` applies to.
public enum WindowLayers: Sendable, Equatable {
    case even, odd
    case list([Int])

    /// `even`, `odd` or a comma-separated list of layer numbers.
    public init?(_ text: String) {
        switch text {
        case "even": self = .even
        case "odd": self = .odd
        default:
            let numbers = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !numbers.isEmpty, numbers.allSatisfy({ ($0 ?? -1) >= 0 }) else { return nil }
            self = .list(numbers.map { $0! })
        }
    }

    func contains(_ layer: Int) -> Bool {
        switch self {
        case .even: return layer % 2 == 0
        case .odd: return layer % 2 == 1
        case .list(let layers): return layers.contains(layer)
        }
    }
}

/// How attention is recomputed from q and k: the scale of Q·Kᵀ (nil: 1/√d), the causal mask, sliding windows,
/// logit soft-capping and ALiBi. What the command line gives wins; otherwise the file's root attributes, named as
/// Hugging Face configs name them (`scale`, `causal`, `sliding_window` with `layer_types`,
/// `attn_logit_softcapping`, `alibi`), which are named through `note` when used. Without a causal attribute or
/// option, a note says that bidirectional attention is assumed.
public struct Recomputation {
    public var scale: Double?
    public var causal: Bool
    /// The window of each layer (empty: none).
    public var windows: [Int?] = []
    public var softcap: Double?
    public var alibi = false

    public init(scale: Double?, causal: Bool) {
        self.scale = scale
        self.causal = causal
    }

    /// The rules beyond scale and causal, as `info` and `verify` say them ("sliding window 4 on layers 0, 2,
    /// softcap 2.0"), or empty.
    public var extras: String {
        ScoreRules(scale: 1, causal: causal, windows: windows, softcap: softcap, alibi: alibi).extras
            .joined(separator: ", ")
    }

    public init(in dump: DumpFile, options: SourceOptions, layers: Int, note: (String) -> Void) throws {
        var fromFile: [String] = [], overrides: [String] = []
        func attribute<T>(_ name: String, _ read: (AttributeValue) -> T?, expected: String, option: String) throws -> T?
        {
            guard let value = dump.attribute(name) else { return nil }
            guard let read = read(value) else {
                throw AttnError(
                    file: dump.path,
                    "attribute \(name) should be \(expected), found \(value); override it with \(option)")
            }
            return read
        }
        if let causal = options.causal {
            self.causal = causal
        } else if let value = try attribute(
            "causal", \.booleanValue, expected: "true or false (or 1 or 0)", option: "--causal or --no-causal")
        {
            self.causal = value
            if value {
                fromFile.append("causal")
                overrides.append("--no-causal")
            }
        } else {
            self.causal = false
        }
        if let scale = options.scale {
            self.scale = scale
        } else if let value = try attribute(
            "scale", { $0.realValue.flatMap { $0.isFinite && $0 > 0 ? $0 : nil } }, expected: "one positive number",
            option: "--scale")
        {
            self.scale = value
            fromFile.append("scale \(value)")
            overrides.append("--scale")
        } else {
            self.scale = nil
        }
        if let softcap = options.softcap {
            self.softcap = softcap > 0 ? softcap : nil
        } else if let value = try attribute(
            "attn_logit_softcapping", { $0.realValue.flatMap { $0.isFinite && $0 > 0 ? $0 : nil } },
            expected: "one positive number", option: "--softcap")
        {
            softcap = value
            fromFile.append("softcap \(value)")
            overrides.append("--softcap 0")
        }
        if let alibi = options.alibi {
            self.alibi = alibi
        } else if let value = try attribute(
            "alibi", \.booleanValue, expected: "true or false (or 1 or 0)", option: "--alibi or --no-alibi")
        {
            alibi = value
            if value {
                fromFile.append("ALiBi")
                overrides.append("--no-alibi")
            }
        }
        windows = try Self.windows(in: dump, options: options, layers: layers, causal: causal)
        let windowed = windows.enumerated().compactMap { l, w in w.map { (layer: l, size: $0) } }
        if options.window == nil, let first = windowed.first {
            let sizes = Set(windowed.map(\.size)).sorted().map(String.init).joined(separator: "/")
            let layers =
                windowed.count == windows.count
                ? ""
                : " on layers "
                    + windowed.map { "\($0.layer)" }
                    .joined(separator: ", ")
            fromFile.append("sliding window \(windowed.count == 1 ? "\(first.size)" : sizes)\(layers)")
            overrides.append("--window 0")
        }
        // Said once every attribute has been read: a malformed one is the only line.
        if options.causal == nil && dump.attribute("causal") == nil {
            note(
                """
                \(dump.path): recomputing attention from q and k as bidirectional (not causal): the file has no \
                causal attribute; add --causal for a decoder (GPT, Llama, ...), --no-causal to say it is an encoder
                """
            )
        }
        if !fromFile.isEmpty {
            note(
                """
                \(dump.path): recomputing attention from q and k with the file's \
                \(Self.sentence(fromFile)) (override with \(overrides.joined(separator: " or ")))
                """
            )
        }
    }

    /// The window of each layer, from `--window`/`--window-layers` or the attributes `sliding_window` (one size,
    /// or one per layer with 0 for none) and `layer_types` (Hugging Face's per-layer "sliding_attention" and
    /// "full_attention"). A window is defined only with causal masking.
    static func windows(in dump: DumpFile, options: SourceOptions, layers: Int, causal: Bool) throws -> [Int?] {
        var perLayer: [Int?]
        var origin: String
        if let window = options.window {
            guard window > 0 else { return [] }
            let on = options.windowLayers
            perLayer = (0..<layers).map { on == nil || on!.contains($0) ? window : nil }
            origin = "--window \(window)"
            if case .list(let listed)? = on, let outside = listed.first(where: { $0 >= layers }) {
                throw AttnError(
                    file: dump.path, "--window-layers names layer \(outside), but the dump has \(layers) layers")
            }
        } else if let attribute = dump.attribute("sliding_window") {
            let fromText = Self.listed(attribute).flatMap { items in
                items.allSatisfy { Int($0) != nil } ? items.map { Int($0)! } : nil
            }
            guard let sizes = attribute.integerValues ?? fromText, sizes.allSatisfy({ $0 >= 0 }),
                sizes.count == 1 || sizes.count == layers
            else {
                throw AttnError(
                    file: dump.path,
                    """
                    attribute sliding_window should be one window size, or one per layer (0 for none), found \
                    \(attribute); override it with --window W (0: none)
                    """
                )
            }
            perLayer = sizes.count == 1 ? Array(repeating: sizes[0], count: layers) : sizes
            perLayer = perLayer.map { $0 == 0 ? nil : $0 }
            origin = "the file's sliding_window"
            if sizes.count == 1, let types = dump.attribute("layer_types") {
                guard let names = Self.listed(types), names.count == layers,
                    names.allSatisfy({ $0 == "sliding_attention" || $0 == "full_attention" })
                else {
                    throw AttnError(
                        file: dump.path,
                        """
                        attribute layer_types should list, per layer, sliding_attention or full_attention (as \
                        Hugging Face configs do), found \(types); give the windowed layers with --window W \
                        --window-layers LIST
                        """
                    )
                }
                perLayer = zip(perLayer, names).map { $1 == "sliding_attention" ? $0 : nil }
            }
        } else {
            return []
        }
        if !causal, perLayer.contains(where: { $0 != nil }) {
            throw AttnError(
                file: dump.path,
                """
                \(origin) is a sliding window over the keys before each query (i − W < j ≤ i), which needs causal \
                masking: add --causal (a window without it is not defined here)
                """
            )
        }
        return perLayer
    }

    /// `a`, `a and b`, `a, b and c`.
    static func sentence(_ items: [String]) -> String {
        items.count <= 2
            ? items.joined(separator: " and ") : items.dropLast().joined(separator: ", ") + " and " + items.last!
    }

    /// The items of a list attribute: an HDF5 string array, or one string such as `a,b` or `["a", "b"]`
    /// (safetensors metadata).
    static func listed(_ value: AttributeValue) -> [String]? {
        guard case .strings(let strings) = value else { return nil }
        if strings.count > 1 { return strings }
        guard let one = strings.first else { return nil }
        let clutter: Set<Character> = ["[", "]", "\"", "'", " "]
        return one.split(separator: ",").map { String($0.filter { !clutter.contains($0) }) }
    }
}
