import AttnCore

/// Attention with padding excluded: only the kept queries and keys, rows not renormalised
/// (a model that masks its padding gives pad keys no weight, so real rows still sum to 1).
/// Either axis may be left whole (`queries`/`keys` nil), as for cross-attention with a mask on one side.
public final class SelectedAttention: AttentionSource {
    public let base: AttentionSource
    public let queries: TokenSelection?
    public let keys: TokenSelection?
    public var file: String { base.file }
    public var layerCount: Int { base.layerCount }
    public var headCount: Int { base.headCount }
    public var queryCount: Int { queries?.kept.count ?? base.queryCount }
    public var keyCount: Int { keys?.kept.count ?? base.keyCount }
    public var origin: AttentionOrigin { base.origin }
    public var tokens: [String]? { queries.map { $0.labels(base.tokens) } ?? base.tokens }
    public var keyTokens: [String]? { keys.map { $0.labels(base.keyTokens) } ?? base.keyTokens }
    public var isCrossAttention: Bool { base.isCrossAttention }

    public init(_ base: AttentionSource, queries: TokenSelection?, keys: TokenSelection?) {
        precondition(
            queries.map { $0.total == base.queryCount } ?? true && keys.map { $0.total == base.keyCount } ?? true)
        self.base = base
        self.queries = queries
        self.keys = keys
    }

    /// The base's visible keys of the kept query `row`, as positions among the kept keys.
    public func visibleKeys(row: Int, layer: Int) -> Range<Int> {
        let visible = base.visibleKeys(row: queries?.kept[row] ?? row, layer: layer)
        guard let kept = keys?.kept else { return visible }
        // The kept keys are ascending: those inside `visible` are consecutive among them.
        func firstAtLeast(_ position: Int) -> Int {
            var (lo, hi) = (0, kept.count)
            while lo < hi {
                let mid = (lo + hi) / 2
                if kept[mid] < position { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }
        return firstAtLeast(visible.lowerBound)..<firstAtLeast(visible.upperBound)
    }

    public func layer(_ index: Int) throws -> LayerAttention {
        let full = try base.layer(index)
        let rows = queries?.kept ?? Array(0..<full.queries), columns = keys?.kept ?? Array(0..<full.keys)
        var values = [Float]()
        values.reserveCapacity(full.heads * rows.count * columns.count)
        for h in 0..<full.heads {
            for i in rows {
                let row = (h * full.queries + i) * full.keys
                for j in columns { values.append(full.values[row + j]) }
            }
        }
        return LayerAttention(
            heads: full.heads, queries: rows.count, keys: columns.count, values: values, cross: full.cross)
    }

    /// The base's blocks, with pad rows skipped and pad columns removed: each run of consecutive
    /// kept rows becomes one block, its columns gathered into a per-worker buffer. Without statistics.
    public func visitBlocks(
        layer index: Int, heads: Range<Int>, workers: Int, rowStatistics: Bool, _ body: RowBlockVisitor
    ) throws {
        let fullKeys = base.keyCount
        // Position in the selection of each base row (nil: excluded).
        var rowIndex = [Int?](repeating: nil, count: base.queryCount)
        for (n, i) in (queries?.kept ?? Array(0..<base.queryCount)).enumerated() { rowIndex[i] = n }
        let columns = keys?.kept
        let buffers = (0..<Swift.max(1, workers)).map { _ in GatherBuffer() }
        let table = rowIndex
        try base.visitBlocks(layer: index, heads: heads, workers: workers) { block, values in
            var start = block.rows.lowerBound
            while start < block.rows.upperBound {
                guard let first = table[start] else { start += 1; continue }
                var end = start + 1
                while end < block.rows.upperBound, let n = table[end], n == first + (end - start) { end += 1 }
                let offset = (start - block.rows.lowerBound) * fullKeys
                let run = RowBlock(worker: block.worker, head: block.head, rows: first..<(first + end - start))
                if let columns {
                    let gather = buffers[block.worker]
                    gather.values.removeAll(keepingCapacity: true)
                    for r in 0..<(end - start) {
                        let row = offset + r * fullKeys
                        for j in columns { gather.values.append(values[row + j]) }
                    }
                    try gather.values.withUnsafeBufferPointer { try body(run, $0) }
                } else {
                    try body(run, UnsafeBufferPointer(rebasing: values[offset..<(offset + (end - start) * fullKeys)]))
                }
                start = end
            }
        }
    }

    private final class GatherBuffer { var values: [Float] = [] }
}

/// Queries and keys of the kept positions only, so attention recomputed from them is a softmax
/// over the real keys alone, as the model computed it with its padding mask.
public final class SelectedQueryKey: QueryKeySource {
    public let base: QueryKeySource
    public let selection: TokenSelection
    public var file: String { base.file }
    public var layerCount: Int { base.layerCount }
    public var headCount: Int { base.headCount }
    public var positionCount: Int { selection.kept.count }
    public var headDim: Int { base.headDim }
    public var keyHeadCount: Int { base.keyHeadCount }
    public var tokens: [String]? { selection.labels(base.tokens) }

    public init(_ base: QueryKeySource, selection: TokenSelection) {
        precondition(selection.total == base.positionCount)
        self.base = base
        self.selection = selection
    }

    public func layer(_ index: Int) throws -> LayerQueryKey {
        let full = try base.layer(index)
        let d = full.dim, kept = selection.kept
        func pick(_ values: [Float], heads: Int) -> [Float] {
            var out = [Float]()
            out.reserveCapacity(heads * kept.count * d)
            for h in 0..<heads {
                for p in kept {
                    let start = (h * full.positions + p) * d
                    out.append(contentsOf: values[start..<(start + d)])
                }
            }
            return out
        }
        return LayerQueryKey(
            heads: full.heads, keyHeads: full.keyHeads, positions: kept.count, dim: d,
            queries: pick(full.queries, heads: full.heads), keys: pick(full.keys, heads: full.keyHeads))
    }
}
