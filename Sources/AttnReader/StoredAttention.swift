import AttnCore

/// Attention probabilities stored in a file, read one layer at a time: `[layer, head, query, key]`.
///
/// A single tensor may be `(Q, K)`, `(H, Q, K)`, `(L, H, Q, K)` or `(L, B, H, Q, K)`;
/// per-layer tensors may be `(Q, K)`, `(H, Q, K)` or `(B, H, Q, K)`.
public final class StoredAttention: AttentionSource {
    public let file: String
    public let layerCount: Int
    public let headCount: Int
    public let queryCount: Int
    public let keyCount: Int
    public let origin = AttentionOrigin.stored
    public let tokens: [String]?
    public let keyTokens: [String]?
    public let isCrossAttention: Bool
    /// The stored element type (of the first per-layer tensor).
    public var elementType: ElementType? {
        if case .floating(let type) = tensors.first.info.element { return type }
        return nil
    }
    public let summary: LayoutSummary
    /// What one layer's work holds in memory (a layer and as much again for its analysis), and how many bytes.
    public var layerMemory: (what: String, bytes: Int?) {
        Self.layerMemory(heads: headCount, queries: queryCount, keys: keyCount)
    }

    private static func layerMemory(heads: Int, queries: Int, keys: Int) -> (what: String, bytes: Int?) {
        (
            "one layer of \(heads) heads × \(queries) queries × \(keys) keys",
            MemoryBudget.bytes([heads, queries, keys], elementSize: 2 * 4)
        )
    }
    private let tensors: LayerTensors
    private let batchIndex: Int?
    private let hasLayerAxis: Bool
    private let hasHeadAxis: Bool
    /// The batch axis comes before the layer axis (`--axes B,L,H,Q,K`).
    private let batchFirst: Bool

    init(file dump: DumpFile, layers: LayerTensors, options: ReadOptions, tokens: [String]?) throws {
        file = dump.path
        tensors = layers
        let first = layers.first
        let shape = first.shape
        var batchSize: Int?
        var axes: [String]
        let declared = try options.axes ?? Self.declaredAxes(in: dump)
        var perLayer = false
        if case .perLayer = layers { perLayer = true }
        if let declared, let problem = declared.problem(shape: shape, perLayer: perLayer) {
            throw AttnError(file: dump.path, dataset: first.label, problem)
        }
        switch (perLayer, declared) {
        case (_, let declared?):
            axes = declared.axes.map(\.rawValue)
        case (false, nil):
            switch shape.count {
            case 2: axes = ["query", "key"]
            case 3: axes = ["head", "query", "key"]
            case 4: axes = ["layer", "head", "query", "key"]
            case 5: axes = ["layer", "batch", "head", "query", "key"]
            default:
                throw AttnError(
                    file: dump.path, dataset: first.label,
                    """
                    expected 2 to 5 axes [layer, (batch,) head, query, key], found \(shape.count) axes \
                    \(formatShape(shape))
                    """
                )
            }
        case (true, nil):
            switch shape.count {
            case 2: axes = ["query", "key"]
            case 3: axes = ["head", "query", "key"]
            case 4: axes = ["batch", "head", "query", "key"]
            default:
                throw AttnError(
                    file: dump.path, dataset: first.label,
                    """
                    expected 2 to 4 axes [(batch,) head, query, key] per layer, found \(shape.count) axes \
                    \(formatShape(shape))
                    """
                )
            }
        }
        if perLayer { try layers.checkUniform(file: dump.path) }
        guard case .floating = first.info.element else {
            throw AttnError(.unsupported, file: dump.path, dataset: first.label, unsupportedDtype(first.info.element))
        }
        if let zero = shape.firstIndex(of: 0) {
            throw AttnError(
                file: dump.path, dataset: first.label, "axis \(axes[zero]) has length 0 in shape \(formatShape(shape))")
        }
        func size(_ axis: String) -> Int? { axes.firstIndex(of: axis).map { shape[$0] } }
        hasLayerAxis = size("layer") != nil
        hasHeadAxis = size("head") != nil
        batchFirst = (axes.firstIndex(of: "batch") ?? .max) < (axes.firstIndex(of: "layer") ?? .max)
        switch layers {
        case .single: layerCount = size("layer") ?? 1
        case .perLayer(let all): layerCount = all.count
        }
        headCount = size("head") ?? 1
        queryCount = shape[shape.count - 2]
        keyCount = shape[shape.count - 1]
        let need = Self.layerMemory(heads: headCount, queries: queryCount, keys: keyCount)
        if options.checksLayerMemory { try layers.checkReadable(file: dump.path) }
        if options.checksLayerMemory, let refusal = MemoryBudget.refusal(need.what, bytes: need.bytes) {
            throw AttnError(.resource, file: dump.path, dataset: first.label, refusal)
        }
        batchSize = size("batch")
        batchIndex = try resolveBatch(
            batchSize: batchSize, requested: options.batch, file: dump.path, dataset: first.label)
        if let heads = options.heads, heads != headCount {
            throw AttnError(
                file: dump.path, dataset: first.label,
                "--heads \(heads) does not match the \(headCount) heads of shape \(formatShape(shape))")
        }
        let expectedTokens = queryCount, usedBatch = batchIndex ?? 0
        self.tokens = tokens.flatMap { $0.count == expectedTokens ? $0 : nil }
        // Square attention is cross-attention when the file says so: key labels of its own, or `cross_attention`.
        let keyLabels = try dump.tokenLabels(named: DumpFile.keyTokenNames, sample: options.batch)
        isCrossAttention = try queryCount != keyCount || Self.declaresCrossAttention(dump, keyLabels: keyLabels != nil)
        if isCrossAttention {
            let expectedKeys = keyCount
            keyTokens = keyLabels.flatMap { $0.count == expectedKeys ? $0 : nil }
        } else {
            keyTokens = self.tokens
        }
        var summary = LayoutSummary(
            datasets: layers.label, axes: "[" + axes.joined(separator: ", ") + "]",
            batch: batchSize.map { ($0, usedBatch) }, layerNumbers: layers.layerNumbers)
        if case .single = layers, declared == nil, shape.count == 4 { summary.guessedFromRank = true }
        self.summary = summary
    }

    /// Whether the file says its attention is cross-attention: a root attribute `cross_attention` (true or false,
    /// which wins), else key labels of its own (`key_tokens`, `source_tokens`, ...).
    static func declaresCrossAttention(_ dump: DumpFile, keyLabels: Bool) throws -> Bool {
        guard let attribute = dump.attribute("cross_attention") else { return keyLabels }
        guard let value = attribute.booleanValue else {
            throw AttnError(
                file: dump.path, "attribute cross_attention should be true or false (or 1 or 0), found \(attribute)")
        }
        return value
    }

    /// The file's root attribute `axes`, parsed, when it names attention's axes (not q and k's); nil when it has
    /// none, an error when it cannot be read.
    static func declaredAxes(in dump: DumpFile) throws -> DeclaredAxes? {
        try DeclaredAxes.attribute("axes", of: dump).flatMap { $0.isQueryKey ? nil : $0 }
    }

    public func layer(_ index: Int) throws -> LayerAttention {
        precondition(index >= 0 && index < layerCount, "layer index checked by the caller")
        let values = try tensors.readLayer(index, hasLayerAxis: hasLayerAxis, batch: batchIndex, batchFirst: batchFirst)
        return LayerAttention(
            heads: headCount, queries: queryCount, keys: keyCount, values: values, cross: isCrossAttention)
    }

    public func visitBlocks(
        layer index: Int, heads: Range<Int>, workers: Int, rowStatistics: Bool, _ body: RowBlockVisitor
    ) throws {
        precondition(index >= 0 && index < layerCount && heads.lowerBound >= 0 && heads.upperBound <= headCount)
        guard let direct = directRows(layer: index) else {
            return try visitLayerBlocks(layer: index, heads: heads, workers: workers, body)
        }
        try direct.visit(heads: heads, workers: workers, rowStatistics: rowStatistics, body)
    }

    /// Row-block access to layer `index` without libhdf5 or a whole-layer read, when its storage allows.
    private func directRows(layer index: Int) -> DirectRows? {
        let tensor: StoredTensor
        let prefix: [Int]
        switch tensors {
        case .single(let t):
            tensor = t
            prefix = LayerTensors.leading(index, hasLayerAxis: hasLayerAxis, batch: batchIndex, batchFirst)
        case .perLayer(let all):
            tensor = all[index]
            prefix = batchIndex.map { [$0] } ?? []
        }
        guard let storage = tensor.directStorage else { return nil }
        let withHead = hasHeadAxis
        return DirectRows(
            storage: storage, shape: tensor.shape, headAxis: withHead ? prefix.count : nil,
            file: file, dataset: tensor.label
        ) { h in withHead ? prefix + [h] : prefix }
    }
}

/// The batch sample to read: the requested one (checked) or 0; nil when there is no batch axis.
func resolveBatch(batchSize: Int?, requested: Int?, file: String, dataset: String?) throws -> Int? {
    guard let batchSize else {
        if let requested, requested != 0 {
            throw AttnError(
                file: file, dataset: dataset, "--batch \(requested) is out of range: the data has no batch axis")
        }
        return nil
    }
    let b = requested ?? 0
    guard b >= 0 && b < batchSize else {
        throw AttnError(
            file: file, dataset: dataset,
            "--batch \(b) is out of range: expected 0...\(batchSize - 1) (batch axis of \(batchSize))")
    }
    return b
}
