import AttnCore
import AttnLinalg
import Dispatch

/// Attention recomputed from per-head queries and keys: softmax(Q Kᵀ · scale) over keys, the row maximum subtracted
/// before `exp`, sums in `Double`, with the rules of `ScoreRules` (causal mask, sliding window, softcap, ALiBi);
/// keys a query cannot see get 0. Grouped keys (GQA) are shared by their query heads, never repeated.
public final class RecomputedAttention: AttentionSource {
    public let source: QueryKeySource
    public let rules: ScoreRules
    /// The factor applied to Q Kᵀ; 1/√d by default.
    public var scale: Double { rules.scale }
    public var causal: Bool { rules.causal }
    public var file: String { source.file }
    public var layerCount: Int { source.layerCount }
    public var headCount: Int { source.headCount }
    public var queryCount: Int { source.positionCount }
    public var keyCount: Int { source.positionCount }
    public var tokens: [String]? { source.tokens }
    public var origin: AttentionOrigin { .recomputed(scale: scale, causal: causal) }
    private let reader: QueryKeyPrefetch
    private let scores = ScoreBuffers()
    /// ALiBi's slope per head (empty without ALiBi).
    private let slopes: [Double]

    public init(
        _ source: QueryKeySource, scale: Double? = nil, causal: Bool = false, windows: [Int?] = [],
        softcap: Double? = nil, alibi: Bool = false
    ) {
        self.source = source
        rules = ScoreRules(
            scale: scale ?? 1 / Double(source.headDim).squareRoot(), causal: causal, windows: windows,
            softcap: softcap, alibi: alibi)
        slopes = alibi ? ScoreRules.alibiSlopes(heads: source.headCount) : []
        reader = QueryKeyPrefetch(source)
    }

    /// The whole layer, its heads recomputed on the workers while one of them reads the next layer's Q and K
    /// (when the layers are read in order).
    public func layer(_ index: Int) throws -> LayerAttention {
        let (qk, next) = try reader.layer(index)
        let workers = Swift.min(Workers.count, qk.heads + (next == nil ? 0 : 1))
        var attention: LayerAttention?
        try AnalysisError.reported(against: file) {
            try Workers.alongside(reader.readAhead(next)) {
                attention = try Self.attention(from: qk, rules: rules, layer: index, workers: workers)
            }
        }
        return attention!
    }

    /// Recomputes one head at a time per worker (Q Kᵀ through single-threaded BLAS on each worker,
    /// then the softmax), so a layer's attention is never whole in memory. When the layers are visited in
    /// order, one worker first reads the next layer's Q and K (`Workers.alongside`) while the others compute
    /// (a thread of its own would wait for a core while the workers hold both).
    public func visitBlocks(layer index: Int, heads: Range<Int>, workers: Int, _ body: RowBlockVisitor) throws {
        let (qk, next) = try reader.layer(index)
        let s = qk.positions
        let workerCount = Swift.min(workers, heads.count + (next == nil ? 0 : 1))
        let counter = Workers.Counter(heads.count, workers: workerCount)
        let rowsPerBlock = Swift.max(1, (32 << 10) / Swift.max(s, 1))  // about 128 KiB of Float
        scores.prepare(count: workerCount, size: s * s)
        let buffers = scores
        Workers.alongside(reader.readAhead(next)) {
            qk.queries.withUnsafeBufferPointer { q in
                qk.keys.withUnsafeBufferPointer { k in
                    Workers.run(workerCount) { worker, _ in
                        let out = buffers[worker]
                        counter.forEach(worker: worker) { item in
                            let h = heads.lowerBound + item
                            Self.scores(head: h, of: qk, q: q, k: k, scale: rules.scale, into: out.baseAddress!)
                            // Softmax a few rows, hand them on while they are still in cache.
                            for r0 in stride(from: 0, to: s, by: rowsPerBlock) {
                                let rows = r0..<Swift.min(s, r0 + rowsPerBlock)
                                for i in rows {
                                    let first = Self.finish(
                                        row: out.baseAddress! + i * s, i, keys: s, head: h, layer: index,
                                        rules: rules, slopes: slopes)
                                    // A row comes out NaN (all of it) when q or k is not finite or Q·Kᵀ overflowed.
                                    if out[i * s + first].isNaN {
                                        throw Self.nonFiniteRow(layer: index, head: h, row: i, of: qk, q: q, k: k)
                                            .about(file: source.file)
                                    }
                                }
                                try body(
                                    RowBlock(worker: worker, head: h, rows: rows),
                                    UnsafeBufferPointer(rebasing: out[(r0 * s)..<(rows.upperBound * s)]))
                            }
                        }
                    }
                }
            }
        }
        try counter.check()
    }

    /// softmax(Q Kᵀ · scale) for every head of one layer, the heads shared out to `workers` workers.
    /// - Returns: `[head, query, key]`.
    /// - Parameter layer: the layer's number, for the error when a row cannot be computed.
    public static func attention(
        from qk: LayerQueryKey, scale: Double, causal: Bool, layer: Int = 0, workers: Int = 1
    ) throws -> LayerAttention {
        try attention(from: qk, rules: ScoreRules(scale: scale, causal: causal), layer: layer, workers: workers)
    }

    /// The attention of every head of one layer under `rules`, the heads shared out to `workers` workers.
    public static func attention(
        from qk: LayerQueryKey, rules: ScoreRules, layer: Int = 0, workers: Int = 1
    ) throws -> LayerAttention {
        let s = qk.positions, h = qk.heads
        let slopes = rules.alibi ? ScoreRules.alibiSlopes(heads: h) : []
        var out = [Float](repeating: 0, count: h * s * s)
        let counter = Workers.Counter(h, workers: workers)
        qk.queries.withUnsafeBufferPointer { q in
            qk.keys.withUnsafeBufferPointer { k in
                out.withUnsafeMutableBufferPointer { o in
                    let all = UncheckedSendable(o)  // each head's S × S part is written by one worker
                    Workers.run(workers) { worker, _ in
                        counter.forEach(worker: worker) { head in
                            let scores = all.value.baseAddress! + head * s * s
                            Self.scores(head: head, of: qk, q: q, k: k, scale: rules.scale, into: scores)
                            for i in 0..<s {
                                let first = finish(
                                    row: scores + i * s, i, keys: s, head: head, layer: layer, rules: rules,
                                    slopes: slopes)
                                if scores[i * s + first].isNaN {
                                    throw nonFiniteRow(layer: layer, head: head, row: i, of: qk, q: q, k: k)
                                }
                            }
                        }
                    }
                }
            }
        }
        try counter.check()
        return LayerAttention(heads: h, queries: s, keys: s, values: out)
    }

    /// Turns query row `i`'s scaled scores into attention under `rules`: softcap and ALiBi on the keys it sees,
    /// softmax over them, 0 for the others. Returns the first key it sees.
    @inline(__always)
    private static func finish(
        row: UnsafeMutablePointer<Float>, _ i: Int, keys s: Int, head: Int, layer: Int, rules: ScoreRules,
        slopes: [Double]
    ) -> Int {
        let visible = rules.visible(row: i, keys: s, layer: layer)
        if rules.softcap != nil || rules.alibi {
            rules.adjust(row, row: i, visible: visible, slope: rules.alibi ? slopes[head] : 0)
        }
        let first = visible.lowerBound
        if first > 0 { row.update(repeating: 0, count: first) }
        RowKernels.softmax(row + first, visible: visible.count, count: s - first)
        return first
    }

    /// Why row `row` of a head's softmax came out NaN: q or k holds a NaN or infinite value, or Q·Kᵀ·scale
    /// overflowed float32 although both are finite.
    static func nonFiniteRow(
        layer: Int, head: Int, row: Int, of qk: LayerQueryKey, q: UnsafeBufferPointer<Float>,
        k: UnsafeBufferPointer<Float>
    ) -> AnalysisError {
        let s = qk.positions, d = qk.dim, base = head * s * d, keyBase = qk.keyHead(of: head) * s * d
        let where_ = "layer \(layer), head \(head)"
        if (0..<d).contains(where: { !q[base + row * d + $0].isFinite }) {
            return AnalysisError(
                "\(where_): q holds NaN or infinite values at position \(row): attention cannot be recomputed from it")
        }
        if let p = (0..<s).first(where: { j in (0..<d).contains { !k[keyBase + j * d + $0].isFinite } }) {
            return AnalysisError(
                "\(where_): k holds NaN or infinite values at position \(p): attention cannot be recomputed from it")
        }
        return AnalysisError(
            """
            \(where_), query \(row): Q·Kᵀ·scale overflows float32 (beyond ±3.4e38) although q and k are finite: \
            they are far larger than a model's (dumped before a normalisation, or with the wrong scale?)
            """
        )
    }

    /// One head's scores Q Kᵀ · scale `[query, key]` into `scores` (S × S floats).
    private static func scores(
        head: Int, of qk: LayerQueryKey, q: UnsafeBufferPointer<Float>, k: UnsafeBufferPointer<Float>,
        scale: Double, into scores: UnsafeMutablePointer<Float>
    ) {
        let s = qk.positions, d = qk.dim
        MatrixProduct.multiply(
            q.baseAddress! + head * s * d, k.baseAddress! + qk.keyHead(of: head) * s * d, into: scores,
            m: s, n: s, k: d, transposeB: true, alpha: Float(scale))
    }
}

/// Each worker's S × S scores, kept from layer to layer (allocated once instead of per layer and worker).
private final class ScoreBuffers: @unchecked Sendable {
    private var buffers: [UnsafeMutableBufferPointer<Float>] = []

    /// At least `count` buffers of `size` floats; called on one thread, before a parallel run.
    func prepare(count: Int, size: Int) {
        if let first = buffers.first, first.count != size {
            buffers.forEach { $0.deallocate() }
            buffers = []
        }
        while buffers.count < count {
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: size)
            buffer.initialize(repeating: 0)
            buffers.append(buffer)
        }
    }

    /// Worker `worker`'s buffer; each worker uses only its own.
    subscript(worker: Int) -> UnsafeMutableBufferPointer<Float> { buffers[worker] }

    deinit { buffers.forEach { $0.deallocate() } }
}

/// Reads a Q/K source layer by layer, reading ahead when the layers are asked for in ascending order
/// (stats, rollout, heads); any other order (one --layer, the grid view's rollout from the last layer down) reads
/// only what is asked. The read ahead is a job for `Workers.alongside`: one worker reads layer i + 1 while the
/// others compute layer i, and the next `layer` call takes what it read (or its error). One caller at a time:
/// the source is read by one thread at a time, the read ahead finishing before `alongside` returns.
final class QueryKeyPrefetch: @unchecked Sendable {
    private let source: QueryKeySource
    /// A layer read ahead.
    private var ready: (index: Int, result: Result<LayerQueryKey, Error>)?
    private var last: Int?

    init(_ source: QueryKeySource) { self.source = source }

    /// Layer `index`, and the layer to read ahead (with `readAhead`) when the layers are being read in order.
    func layer(_ index: Int) throws -> (LayerQueryKey, next: Int?) {
        var found: Result<LayerQueryKey, Error>?
        if let read = ready {
            ready = nil
            if read.index == index { found = read.result }
        }
        let sequential = index == 0 || last == index - 1
        last = index
        let qk = try found?.get() ?? source.layer(index)
        return (qk, sequential && index + 1 < source.layerCount ? index + 1 : nil)
    }

    /// The job that reads layer `index` for the next `layer` call, or nil for no index.
    func readAhead(_ index: Int?) -> (() -> Void)? {
        guard let index else { return nil }
        return { [self] in ready = (index, Result { try source.layer(index) }) }
    }
}
