import AttnCore

/// Per-head queries and keys stored in a file, read one layer at a time: `[head, position, dim]`.
///
/// A single tensor may be `(L, H, S, d)`, `(L, B, H, S, d)` or `(L, S, H·d)` (heads from the
/// `num_heads` attribute or `--heads`); per-layer tensors `(H, S, d)`, `(B, H, S, d)` or `(S, H·d)`.
public final class StoredQueryKey: QueryKeySource {
    public let file: String
    public let layerCount: Int
    public let headCount: Int
    public let positionCount: Int
    public let headDim: Int
    public let keyHeadCount: Int
    /// The narrower element type of q and k (float16 when either is): what bounds the recomputation's precision.
    public let narrowestType: ElementType
    /// q comes from TransformerLens's `hook_q`, which is before the rotary embedding (`hook_rot_q` is after it).
    public var fromUnrotatedHooks: Bool { lastComponent(queries.first.name).hasSuffix("hook_q") }
    public let tokens: [String]?
    public let summary: LayoutSummary
    /// What one whole layer of work holds in memory (the recomputed attention, H × S × S, and its scores), and how
    /// many bytes: what a command that needs whole layers (`RecomputedAttention.layer`) must be allowed. Commands
    /// that visit rows in blocks need only one layer's q and k and a block per worker.
    public var layerMemory: (what: String, bytes: Int?) { Self.layerMemory(heads: headCount, positions: positionCount) }

    private static func layerMemory(heads: Int, positions: Int) -> (what: String, bytes: Int?) {
        (
            "attention recomputed from q and k for one layer (\(heads) heads × \(positions) × \(positions))",
            ScoreRules.wholeLayerBytes(heads: heads, positions: positions)
        )
    }

    /// One layer's q and k as float32, twice (the next layer is read while one is used), and a block of scores
    /// per worker (`ScoreRules.rowsPerBlock`): what attention recomputed a block of rows at a time holds.
    static func queryKeyMemory(heads: Int, keyHeads: Int, positions: Int, dim: Int) -> (what: String, bytes: Int?) {
        let block = MemoryBudget.bytes(
            [Workers.count, ScoreRules.rowsPerBlock(positions: positions), positions], elementSize: 4)
        let qk = MemoryBudget.bytes([2, heads + keyHeads, positions, dim], elementSize: 4)
        return (
            "q and k of one layer (\(heads) and \(keyHeads) heads × \(positions) × \(dim)), read ahead, and a block "
                + "of scores per worker",
            block.flatMap { b in qk.flatMap { b.addingReportingOverflow($0).overflow ? nil : b + $0 } }
        )
    }
    private let queries: LayerTensors
    private let keys: LayerTensors
    private let batchIndex: Int?
    private let hasLayerAxis: Bool
    /// True for `(…, S, H·d)` and `(…, S, H, d)`: heads are interleaved along the last axis.
    private let mergedHeads: Bool
    /// The batch axis comes before the layer axis (`--axes B,L,H,S,D`).
    private let batchFirst: Bool

    init(file dump: DumpFile, queries: LayerTensors, keys: LayerTensors, options: ReadOptions, tokens: [String]?) throws
    {
        file = dump.path
        self.queries = queries
        self.keys = keys
        let q = queries.first, k = keys.first
        var types: [ElementType] = []
        for t in [q, k] {
            guard case .floating(let type) = t.info.element else {
                throw AttnError(.unsupported, file: dump.path, dataset: t.label, unsupportedDtype(t.info.element))
            }
            types.append(type)
        }
        narrowestType = types.min { $0.size < $1.size }!
        let shape = q.shape
        func differentShapes() -> AttnError {
            AttnError(
                file: dump.path,
                """
                q \(q.name) \(formatShape(q.shape)) and k \(k.name) \(formatShape(k.shape)) have different \
                shapes: expected the same [layer, head, position, dim] (k may have fewer heads: grouped-query \
                attention)
                """
            )
        }
        guard k.shape.count == shape.count else { throw differentShapes() }
        let perLayer: Bool
        switch (queries, keys) {
        case (.single, .single): perLayer = false
        case (.perLayer(let qs), .perLayer(let ks)):
            guard qs.count == ks.count else {
                throw AttnError(
                    file: dump.path,
                    "found \(qs.count) per-layer q datasets but \(ks.count) k datasets: expected one of each per layer")
            }
            try queries.checkUniform(file: dump.path)
            try keys.checkUniform(file: dump.path)
            perLayer = true
        default:
            throw AttnError(
                file: dump.path,
                "q is \(queries.label) but k is \(keys.label): expected both single tensors or both per-layer")
        }
        var axes: [String]
        let declared =
            try options.axes.flatMap { $0.isQueryKey ? $0 : nil } ?? DeclaredAxes.attribute("qk_axes", of: dump)
            ?? DeclaredAxes.attribute("axes", of: dump).flatMap { $0.isQueryKey ? $0 : nil }
        if let declared, let problem = declared.queryKeyProblem(shape: shape, perLayer: perLayer) {
            throw AttnError(file: dump.path, dataset: q.label, problem)
        }
        if !perLayer, declared == nil, shape.count == 4, options.heads != nil {
            // (L, B, S, H·d) with B = H would read as (L, H, S, d) without a word: the declaration must say which.
            throw AttnError(
                file: dump.path, dataset: q.label,
                """
                q \(formatShape(shape)) has 4 axes, read as [layer, head, position, dim] unless declared, but \
                --heads is for q and k with heads and dims merged: say which with --axes L,B,S,HD (projections of a \
                batch) or --axes L,H,S,D
                """
            )
        }
        // TransformerLens's hooks (`blocks.N.attn.hook_rot_q`) hold [batch, position, head, dim].
        let hooks = perLayer && lastComponent(q.name).split(separator: ".").last?.hasPrefix("hook_") == true
        switch (declared, perLayer, shape.count) {
        case (let declared?, _, _): axes = declared.axes.map(\.rawValue)
        case (nil, true, 4) where hooks: axes = ["batch", "position", "head", "dim"]
        case (nil, true, 3) where hooks: axes = ["position", "head", "dim"]
        case (nil, false, 3): axes = ["layer", "position", "head·dim"]
        case (nil, false, 4): axes = ["layer", "head", "position", "dim"]
        case (nil, false, 5): axes = ["layer", "batch", "head", "position", "dim"]
        case (nil, true, 2): axes = ["position", "head·dim"]
        case (nil, true, 3): axes = ["head", "position", "dim"]
        case (nil, true, 4): axes = ["batch", "head", "position", "dim"]
        default:
            let expected =
                perLayer
                ? "2 to 4 axes [(batch,) head, position, dim] per layer"
                : "3 to 5 axes [layer, (batch,) head, position, dim] or [layer, position, head·dim]"
            throw AttnError(
                file: dump.path, dataset: q.label,
                "expected \(expected), found \(shape.count) axes \(formatShape(shape))")
        }
        if let zero = shape.firstIndex(of: 0) {
            throw AttnError(
                file: dump.path, dataset: q.label, "axis \(axes[zero]) has length 0 in shape \(formatShape(shape))")
        }
        func size(_ axis: String) -> Int? { axes.firstIndex(of: axis).map { shape[$0] } }
        // q and k agree on every axis but the heads (grouped-query attention: k has fewer, checked below).
        let headAxis = axes.firstIndex(of: "head") ?? axes.firstIndex(of: "head·dim")!
        guard zip(shape, k.shape).enumerated().allSatisfy({ $0.offset == headAxis || $0.element.0 == $0.element.1 })
        else { throw differentShapes() }
        hasLayerAxis = size("layer") != nil
        batchFirst = (axes.firstIndex(of: "batch") ?? Int.max) < (axes.firstIndex(of: "layer") ?? Int.max)
        // (S, H, d) lies in memory as (S, H·d): read alike, with the heads known.
        let headsAfterPositions = (axes.firstIndex(of: "head") ?? 0) > (axes.firstIndex(of: "position") ?? 0)
        mergedHeads = size("head·dim") != nil || headsAfterPositions
        if case .perLayer(let qs) = queries { layerCount = qs.count } else { layerCount = size("layer") ?? 1 }
        positionCount = size("position")!
        if let merged = size("head·dim") {
            let attributeHeads = dump.attribute("num_heads")?.integerValues?.first
            guard let heads = options.heads ?? attributeHeads else {
                throw AttnError(
                    file: dump.path, dataset: q.label,
                    """
                    shape \(formatShape(shape)) is [layer, position, head·dim]: give the number of heads with \
                    --heads N (no num_heads attribute found)
                    """
                )
            }
            guard heads > 0, merged % heads == 0 else {
                throw AttnError(
                    file: dump.path, dataset: q.label, "\(heads) heads do not divide the last axis of length \(merged)")
            }
            headCount = heads
            headDim = merged / heads
            let keyWidth = k.shape[headAxis]
            guard keyWidth % headDim == 0 else {
                throw AttnError(
                    file: dump.path, dataset: k.label,
                    """
                    k's last axis (\(keyWidth)) is not a multiple of the head dimension \(headDim) (q's \(merged) over \
                    \(heads) heads)
                    """
                )
            }
            keyHeadCount = keyWidth / headDim
        } else {
            headCount = size("head")!
            headDim = size("dim")!
            keyHeadCount = k.shape[headAxis]
            if let heads = options.heads, heads != headCount {
                throw AttnError(
                    file: dump.path, dataset: q.label,
                    "--heads \(heads) does not match the \(headCount) heads of shape \(formatShape(shape))")
            }
        }
        guard keyHeadCount > 0, keyHeadCount <= headCount, headCount % keyHeadCount == 0 else {
            throw AttnError(
                file: dump.path, dataset: k.label,
                """
                k has \(keyHeadCount) heads and q \(headCount): expected as many, or fewer dividing them \
                (grouped-query attention)
                """
            )
        }
        if let declared = dump.attribute("num_key_value_heads") {
            guard let values = declared.integerValues, values.count == 1, values[0] == keyHeadCount else {
                throw AttnError(
                    file: dump.path, dataset: k.label,
                    "attribute num_key_value_heads is \(declared), but k holds \(keyHeadCount) heads")
            }
        }
        if options.checksLayerMemory {
            try queries.checkReadable(file: dump.path)
            try keys.checkReadable(file: dump.path)
        }
        // Whole layers are refused where one is asked for (RecomputedAttention.layer); rows visited in blocks need
        // only q and k.
        let need = Self.queryKeyMemory(
            heads: headCount, keyHeads: keyHeadCount, positions: positionCount, dim: headDim)
        if options.checksLayerMemory, let refusal = MemoryBudget.refusal(need.what, bytes: need.bytes) {
            throw AttnError(.resource, file: dump.path, dataset: q.label, refusal)
        }
        let batchSize = size("batch")
        batchIndex = try resolveBatch(batchSize: batchSize, requested: options.batch, file: dump.path, dataset: q.label)
        let expectedTokens = positionCount, usedBatch = batchIndex ?? 0
        self.tokens = tokens.flatMap { $0.count == expectedTokens ? $0 : nil }
        var summary = LayoutSummary(
            datasets: "\(queries.label) and \(keys.label)", axes: "[" + axes.joined(separator: ", ") + "]",
            batch: batchSize.map { ($0, usedBatch) }, layerNumbers: queries.layerNumbers)
        summary.guessedFromRank = !perLayer && declared == nil && shape.count == 4
        self.summary = summary
    }

    public func layer(_ index: Int) throws -> LayerQueryKey {
        var q = try queries.readLayer(index, hasLayerAxis: hasLayerAxis, batch: batchIndex, batchFirst: batchFirst)
        var k = try keys.readLayer(index, hasLayerAxis: hasLayerAxis, batch: batchIndex, batchFirst: batchFirst)
        if mergedHeads {
            q = splitHeads(q, heads: headCount)
            k = splitHeads(k, heads: keyHeadCount)
        }
        return LayerQueryKey(
            heads: headCount, keyHeads: keyHeadCount, positions: positionCount, dim: headDim, queries: q, keys: k)
    }

    /// `[position, head·dim]` → `[head, position, dim]`.
    private func splitHeads(_ merged: [Float], heads h: Int) -> [Float] {
        var out = [Float](repeating: 0, count: merged.count)
        let s = positionCount, d = headDim
        for p in 0..<s {
            for head in 0..<h {
                for j in 0..<d { out[(head * s + p) * d + j] = merged[p * h * d + head * d + j] }
            }
        }
        return out
    }
}
