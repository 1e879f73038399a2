#if canImport(Glibc)
    import Glibc
#endif
import AttnCore
import AttnLinalg

/// Statistics of one head's map `[query, key]`. Sums are in `Double`.
/// A value is NaN when it is undefined (no previous token, or a NaN/Inf in the map).
public struct HeadStatistics: Sendable, Equatable, Record {
    public var layer: Int
    public var head: Int
    /// Mean over query rows of −Σⱼ aᵢⱼ ln aᵢⱼ, in nats (0·ln 0 = 0; rows are not renormalised).
    public var entropy: Double
    /// `entropy / ln(keys)` (0 when there is one key).
    public var normalizedEntropy: Double
    /// Smallest, largest and mean finite value.
    public var min: Double
    public var max: Double
    public var mean: Double
    /// `max_i |Σⱼ aᵢⱼ − 1|`.
    public var rowSumMaxDeviation: Double
    /// Mean over rows of the attention on key 0 (the first token: CLS or a sink): `first_token`, and `attn_first`
    /// as `heads` names it (`PositionalShares`).
    public var firstToken: Double
    /// Mean over rows i of aᵢᵢ (NaN for cross-attention, queries ≠ keys): `self`, and `attn_self` as `heads`
    /// names it.
    public var selfAttention: Double
    /// Mean over the rows i ≥ 1 of aᵢ,ᵢ₋₁, ÷(Q − 1) (NaN for cross-attention): `previous_token` in schema
    /// attninspect/1. Not `heads`' `previous_token` (TransformerLens's score).
    public var previousToken: Double
    /// `heads`' `attn_first`, `attn_self` and `attn_previous`, from the same code (`PositionalShares`): means over
    /// all Q rows of the attention on key 0, key i and key i − 1 (row 0 counts as 0 there: ÷Q). NaN, like
    /// `heads`' null, for a head holding NaN or Inf; self and previous NaN for cross-attention.
    public var attnFirst: Double
    public var attnSelf: Double
    public var attnPrevious: Double
    public var nanCount: Int
    public var infCount: Int
    public var negativeCount: Int

    /// Computes the statistics of head `head` of `attention`.
    public init(of attention: LayerAttention, layer: Int, head: Int) {
        var sums = HeadSums()
        let size = attention.queries * attention.keys
        attention.values.withUnsafeBufferPointer { v in
            sums.add(
                rows: 0..<attention.queries, keys: attention.keys,
                values: UnsafeBufferPointer(rebasing: v[(head * size)..<((head + 1) * size)]))
        }
        self.init(
            sums, layer: layer, head: head, queries: attention.queries, keys: attention.keys, cross: attention.cross)
    }

    init(_ sums: HeadSums, layer: Int, head: Int, queries q: Int, keys k: Int, cross: Bool) {
        self.layer = layer
        self.head = head
        let clean = sums.nan == 0 && sums.inf == 0
        nanCount = sums.nan
        infCount = sums.inf
        negativeCount = sums.negative
        entropy = clean ? sums.entropy / Double(q) : .nan
        normalizedEntropy = k > 1 ? entropy / log(Double(k)) : (clean ? 0 : .nan)
        min = sums.finite > 0 ? sums.low : .nan
        max = sums.finite > 0 ? sums.high : .nan
        mean = sums.finite > 0 ? sums.total / Double(sums.finite) : .nan
        rowSumMaxDeviation = clean ? sums.worstRowSum : .nan
        let shares = sums.positions.means(queries: q, cross: cross)
        firstToken = shares.first
        selfAttention = shares.diagonal ?? .nan
        attnFirst = clean ? shares.first : .nan
        attnSelf = clean ? shares.diagonal ?? .nan : .nan
        attnPrevious = clean ? shares.previous ?? .nan : .nan
        previousToken = sums.positions.previousOverLaterQueries(queries: q, cross: cross) ?? .nan
    }

    /// Statistics of every head of layer `layer` of `source`, read block by block on `workers` threads.
    /// Each row's sums are kept apart and added in row order afterwards, so the result is the same
    /// bit for bit whatever the thread count, the scheduling or the reader's block sizes. With `received`, the
    /// same pass adds up every head's columns there (`ReceivedAttention`).
    public static func ofLayer(
        _ source: AttentionSource, layer: Int, workers: Int = Workers.count, received: ColumnSums? = nil
    ) throws -> [HeadStatistics] {
        let heads = source.headCount, keys = source.keyCount, queries = source.queryCount
        let rows = RowTable<HeadSums>(count: heads * queries)
        try source.visitBlocks(layer: layer, heads: 0..<heads, workers: workers, rowStatistics: true) { block, values in
            received?.add(block, values) { source.visibleKeys(row: $0, layer: layer) }
            for (r, i) in block.rows.enumerated() {
                let row = UnsafeBufferPointer(rebasing: values[(r * keys)..<((r + 1) * keys)])
                rows[block.head * queries + i] = HeadSums(row: row, index: i, statistics: block.statistics?[r])
            }
        }
        return (0..<heads).map { h in
            var total = HeadSums()
            for i in 0..<queries { total.merge(rows[h * queries + i] ?? HeadSums()) }
            return HeadStatistics(
                total, layer: layer, head: h, queries: queries, keys: keys, cross: source.isCrossAttention)
        }
    }
}

extension HeadStatistics {
    /// The statistics of every head of layer `layer` of `source` and the attention each of its keys receives, in one
    /// pass.
    public static func withReceived(_ source: AttentionSource, layer: Int, workers: Int = Workers.count) throws -> (
        statistics: [HeadStatistics], received: [ReceivedAttention]
    ) {
        let sums = ColumnSums(heads: source.headCount, keys: source.keyCount, workers: workers)
        let statistics = try ofLayer(source, layer: layer, workers: workers, received: sums)
        let seeing = ReceivedAttention.seeing(source, layer: layer)
        let received = statistics.map { s in
            ReceivedAttention(
                layer: layer, head: s.head, columnSums: s.nanCount + s.infCount == 0 ? sums.head(s.head) : nil,
                seeing: seeing, queries: source.queryCount)
        }
        return (statistics, received)
    }

    /// `entropy`'s grid: every head's mean row entropy (`normalized`: divided by ln K), `[layer][head]`, each layer
    /// by `ofLayer`.
    public static func entropyGrid(_ source: AttentionSource, normalized: Bool, workers: Int = Workers.count) throws
        -> [[Double]]
    {
        try (0..<source.layerCount).map { l in
            try ofLayer(source, layer: l, workers: workers).map { normalized ? $0.normalizedEntropy : $0.entropy }
        }
    }
}

/// The running sums behind `HeadStatistics`, over any set of rows of one head; sums of disjoint
/// row sets merge.
struct HeadSums {
    var nan = 0, inf = 0, negative = 0, finite = 0
    var low = Double.infinity, high = -Double.infinity, total = 0.0
    var entropy = 0.0, worstRowSum = 0.0
    var positions = PositionalShares()

    /// Adds query rows `rows` (values `[row, key]`, `rows.count × keys`), in order.
    mutating func add(rows: Range<Int>, keys k: Int, values: UnsafeBufferPointer<Float>) {
        for (r, i) in rows.enumerated() {
            merge(HeadSums(row: UnsafeBufferPointer(rebasing: values[(r * k)..<((r + 1) * k)]), index: i))
        }
    }

    mutating func merge(_ other: HeadSums) {
        nan += other.nan
        inf += other.inf
        negative += other.negative
        finite += other.finite
        low = Swift.min(low, other.low)
        high = Swift.max(high, other.high)
        total += other.total
        entropy += other.entropy
        worstRowSum = Swift.max(worstRowSum, other.worstRowSum)
        positions.merge(other.positions)
    }
}

extension HeadSums {
    /// The sums of one query row, `index` being its query position; `statistics` are the row's when its source
    /// has them (`RowBlock.statistics`).
    init(row: UnsafeBufferPointer<Float>, index i: Int, statistics: RowStatistics? = nil) {
        let s = statistics ?? RowKernels.statistics(row)
        self.init(
            nan: s.nan, inf: s.inf, negative: s.negative, finite: s.finite, low: s.min, high: s.max,
            total: s.sum, entropy: s.entropy, worstRowSum: abs(s.sum - 1),
            positions: PositionalShares(row: row, index: i))
    }
}

extension HeadStatistics {
    /// The JSON keys and CSV columns of `stats` (README: JSON schema).
    public var fields: [(key: String, value: FieldValue)] {
        [
            ("layer", .index(layer)), ("head", .index(head)), ("entropy", .real(entropy)),
            ("normalized_entropy", .real(normalizedEntropy)),
            ("min", .real(min)), ("max", .real(max)), ("mean", .real(mean)),
            ("row_sum_max_dev", .real(rowSumMaxDeviation)),
            ("first_token", .real(firstToken)), ("self", .real(selfAttention)),
            ("previous_token", .real(previousToken)),
            ("nan_count", .count(nanCount)), ("inf_count", .count(infCount)), ("negative_count", .count(negativeCount)),
            // Added in attninspect/1 (2026-12-06): the same quantities under heads' names, from the same code.
            ("attn_first", .real(attnFirst)), ("attn_self", .real(attnSelf)), ("attn_previous", .real(attnPrevious))
        ]
    }
}
