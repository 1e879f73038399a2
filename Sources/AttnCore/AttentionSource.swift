/// The attention of one layer: `[head, query, key]`, row-major, decoded to `Float`.
public struct LayerAttention: Sendable {
    public let heads: Int
    public let queries: Int
    public let keys: Int
    /// `heads * queries * keys` values; `values[(h * queries + i) * keys + j]` is A[h, i, j].
    public var values: [Float]
    /// Queries and keys are different tokens (`AttentionSource.isCrossAttention`), even when as many.
    public var cross: Bool

    public init(heads: Int, queries: Int, keys: Int, values: [Float], cross: Bool? = nil) {
        precondition(
            values.count == heads * queries * keys,
            "LayerAttention: \(values.count) values for \(heads)×\(queries)×\(keys)")
        self.heads = heads
        self.queries = queries
        self.keys = keys
        self.values = values
        self.cross = cross ?? (queries != keys)
    }

    /// The map of one head as a matrix `[query, key]`.
    public func head(_ h: Int) -> Matrix {
        let size = queries * keys
        return Matrix(rows: queries, columns: keys, values: Array(values[(h * size)..<((h + 1) * size)]))
    }
}

/// Where attention comes from: stored probabilities, or recomputed from Q and K.
public enum AttentionOrigin: Sendable, Equatable {
    case stored
    case recomputed(scale: Double, causal: Bool)

    public var label: String {
        switch self {
        case .stored: return "stored attention"
        case .recomputed(_, let causal): return causal ? "recomputed from q and k (causal)" : "recomputed from q and k"
        }
    }
}

/// Attention that can be read one layer at a time: `[layer, head, query, key]`.
/// Implementations keep at most one layer in memory.
public protocol AttentionSource: AnyObject {
    /// The file, as the user named it.
    var file: String { get }
    var layerCount: Int { get }
    var headCount: Int { get }
    var queryCount: Int { get }
    var keyCount: Int { get }
    var origin: AttentionOrigin { get }
    /// Token labels, one per query position, when the file has them.
    var tokens: [String]? { get }
    /// Token labels, one per key position: `tokens` for self-attention; for cross-attention
    /// (queries ≠ keys) the file's own key labels when it has them.
    var keyTokens: [String]? { get }
    /// The keys are other tokens than the queries: queries ≠ keys, or, for a square map, the file says so (key
    /// labels of their own, `key_tokens`, or a root attribute `cross_attention`). Then there is no diagonal, no
    /// previous token, no chaining of layers.
    var isCrossAttention: Bool { get }
    /// Reads layer `index` (0-based): `[head, query, key]`.
    func layer(_ index: Int) throws -> LayerAttention
    /// Hands every row of `heads` in layer `index` to `body` exactly once, in blocks, on up to
    /// `workers` threads, without keeping more than a block per worker in memory where the storage
    /// allows (otherwise one layer: `visitLayerBlocks`). `rowStatistics`: `body` reads `RowBlock.statistics`, which
    /// the sources that can make them with the rows then give (stored float16 decoded with them costs more than
    /// decoded alone); a source may give them unasked where they cost nothing.
    func visitBlocks(
        layer index: Int, heads: Range<Int>, workers: Int, rowStatistics: Bool, _ body: RowBlockVisitor) throws
    /// Query rows `rows` of every head of layer `index`: `[head, row, key]`, `queries` = `rows.count`. Attention
    /// recomputed from q and k computes only those rows (one row costs H·S·d, whatever the length); other sources
    /// read the layer.
    func rows(_ rows: Range<Int>, layer index: Int) throws -> LayerAttention
    /// The keys query `row` can see in layer `layer` under the mask the source knows (recomputed attention's causal
    /// mask and window); all keys when it knows none (stored attention holds probabilities, not the mask).
    func visibleKeys(row: Int, layer: Int) -> Range<Int>
}

extension AttentionSource {
    /// `visitBlocks` for a visitor that does not read `RowBlock.statistics`.
    public func visitBlocks(layer index: Int, heads: Range<Int>, workers: Int, _ body: RowBlockVisitor) throws {
        try visitBlocks(layer: index, heads: heads, workers: workers, rowStatistics: false, body)
    }

    public func visibleKeys(row: Int, layer: Int) -> Range<Int> { 0..<keyCount }

    public func rows(_ rows: Range<Int>, layer index: Int) throws -> LayerAttention {
        let whole = try layer(index)
        let (q, k) = (whole.queries, whole.keys)
        precondition(rows.lowerBound >= 0 && rows.upperBound <= q)
        var values = [Float]()
        values.reserveCapacity(whole.heads * rows.count * k)
        for h in 0..<whole.heads {
            values += whole.values[((h * q + rows.lowerBound) * k)..<((h * q + rows.upperBound) * k)]
        }
        return LayerAttention(heads: whole.heads, queries: rows.count, keys: k, values: values, cross: whole.cross)
    }
    public var keyTokens: [String]? { isCrossAttention ? nil : tokens }
    public var isCrossAttention: Bool { queryCount != keyCount }

    /// Why an analysis that chains layers (rollout, flow) cannot run on this attention, if it cannot.
    public func chainRefusal(_ analysis: String) -> String? {
        guard isCrossAttention else { return nil }
        if queryCount == keyCount {
            return
                """
                \(analysis) chains the layers (each layer's keys must be the previous layer's tokens), so it needs \
                self-attention; this is cross-attention (the file has key labels of its own, or says \
                cross_attention), its keys other tokens than its queries
                """
        }
        return
            """
            \(analysis) chains the layers (each layer's keys must be the previous layer's tokens), so it needs \
            self-attention with queries = keys; this attention has \(queryCount) queries × \(keyCount) keys \
            (cross-attention?)
            """
    }
}

/// Per-head queries and keys of one layer: `[head, position, dim]`, row-major.
public struct LayerQueryKey: Sendable {
    public let heads: Int
    /// Heads of k: `heads` for multi-head attention, fewer for grouped-query attention (GQA, MQA), where query
    /// head h uses key head ⌊h · keyHeads / heads⌋ (Hugging Face's `repeat_kv`), without K being repeated.
    public let keyHeads: Int
    public let positions: Int
    public let dim: Int
    /// `[head, position, dim]`.
    public var queries: [Float]
    /// `[key head, position, dim]`.
    public var keys: [Float]

    public init(heads: Int, keyHeads: Int? = nil, positions: Int, dim: Int, queries: [Float], keys: [Float]) {
        let keyHeads = keyHeads ?? heads
        precondition(keyHeads > 0 && heads % keyHeads == 0)
        precondition(queries.count == heads * positions * dim && keys.count == keyHeads * positions * dim)
        self.heads = heads
        self.keyHeads = keyHeads
        self.positions = positions
        self.dim = dim
        self.queries = queries
        self.keys = keys
    }

    /// The key head query head `head` uses.
    public func keyHead(of head: Int) -> Int { head * keyHeads / heads }
}

/// Q and K that can be read one layer at a time, from which attention is recomputed.
public protocol QueryKeySource: AnyObject {
    var file: String { get }
    var layerCount: Int { get }
    var headCount: Int { get }
    var positionCount: Int { get }
    var headDim: Int { get }
    /// Heads of k (fewer than `headCount` for grouped-query attention).
    var keyHeadCount: Int { get }
    var tokens: [String]? { get }
    func layer(_ index: Int) throws -> LayerQueryKey
}

extension QueryKeySource {
    public var keyHeadCount: Int { headCount }
}
