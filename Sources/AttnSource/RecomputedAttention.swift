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

    public func visibleKeys(row: Int, layer: Int) -> Range<Int> {
        rules.visible(row: row, keys: keyCount, layer: layer)
    }

    /// The whole layer, its heads recomputed on the workers while one of them reads the next layer's Q and K
    /// (when the layers are read in order).
    public func layer(_ index: Int) throws -> LayerAttention {
        // Refused here, before anything is read, rather than when the file is opened: commands that visit rows in
        // blocks (stats, entropy, verify) never hold a whole layer.
        let (h, s) = (headCount, queryCount)
        let need = ScoreRules.wholeLayerBytes(heads: h, positions: s)
        if let refusal = MemoryBudget.refusal(
            "attention recomputed from q and k for one whole layer (\(h) heads × \(s) × \(s))", bytes: need)
        {
            throw AttnError(
                .resource, file: file,
                refusal + "; stats, entropy, heads and verify read it in row blocks, within the limit")
        }
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

    /// Only query rows `rows` of every head: their scores against the keys they can see, then the rules and the
    /// softmax; `[head, row, key]`.
    public func rows(_ rows: Range<Int>, layer index: Int) throws -> LayerAttention {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= queryCount)
        if let refusal = MemoryBudget.refusal(
            "attention recomputed from q and k for \(rows.count) rows of \(headCount) heads × \(keyCount) keys",
            bytes: MemoryBudget.bytes([headCount, rows.count, keyCount], elementSize: 4))
        {
            throw AttnError(.resource, file: file, refusal)
        }
        let (qk, _) = try reader.layer(index)
        let s = qk.positions, n = rows.count
        var out = [Float](repeating: 0, count: qk.heads * n * s)
        try AnalysisError.reported(against: file) {
            try qk.queries.withUnsafeBufferPointer { q in
                try qk.keys.withUnsafeBufferPointer { k in
                    try out.withUnsafeMutableBufferPointer { o in
                        guard n > 0 else { return }
                        let first = rules.visible(row: rows.lowerBound, keys: s, layer: index).lowerBound
                        let last = rules.visible(row: rows.upperBound - 1, keys: s, layer: index).upperBound
                        let panels = KeyPanels()
                        for h in 0..<qk.heads {
                            let base = o.baseAddress! + h * n * s
                            Self.scores(
                                head: h, rows: rows, keys: first..<Swift.max(first, last), of: qk, q: q, k: k,
                                scale: rules.scale, into: base, panels: panels)
                            for i in rows {
                                let row = base + (i - rows.lowerBound) * s
                                let seen = Self.finish(
                                    row: row, i, keys: s, head: h, layer: index, rules: rules, slopes: slopes)
                                if row[seen].isNaN {
                                    throw Self.nonFiniteRow(layer: index, head: h, row: i, of: qk, q: q, k: k)
                                }
                            }
                        }
                    }
                }
            }
        }
        return LayerAttention(heads: qk.heads, queries: n, keys: s, values: out, cross: false)
    }

    /// Recomputes a block of query rows of one head at a time per worker: the block's scores against the keys its
    /// rows can see (all of them; with causal masking those up to its last row; with a window only the window)
    /// through single-threaded BLAS, then the softmax, handed on while in cache. Memory is a block per worker plus
    /// one layer's Q and K, whatever the length: a head's S × S scores are never whole. When the layers are visited
    /// in order, one worker first reads the next layer's Q and K (`Workers.alongside`) while the others compute.
    /// Every block has its rows' statistics, from the softmax's passes, asked for or not.
    public func visitBlocks(
        layer index: Int, heads: Range<Int>, workers: Int, rowStatistics: Bool, _ body: RowBlockVisitor
    ) throws {
        let (qk, next) = try reader.layer(index)
        let s = qk.positions
        let rowsPerBlock = ScoreRules.rowsPerBlock(positions: s)
        let blocksPerHead = (s + rowsPerBlock - 1) / Swift.max(rowsPerBlock, 1)
        let items = heads.count * blocksPerHead
        let workerCount = Swift.min(workers, items + (next == nil ? 0 : 1))
        let counter = Workers.Counter(items, workers: workerCount)
        scores.prepare(count: workerCount, size: rowsPerBlock * s)
        let buffers = scores
        Workers.alongside(reader.readAhead(next)) {
            qk.queries.withUnsafeBufferPointer { q in
                qk.keys.withUnsafeBufferPointer { k in
                    Workers.run(workerCount) { worker, _ in
                        let out = buffers[worker].baseAddress!
                        let panels = buffers.panels(worker)
                        panels.forget()  // a new layer's keys may sit where the last one's were
                        var statistics = [RowStatistics](
                            repeating: RowStatistics(
                                sum: 0, entropy: 0, min: 0, max: 0, finite: 0, nan: 0, inf: 0, negative: 0),
                            count: rowsPerBlock)
                        counter.forEach(worker: worker) { item in
                            let h = heads.lowerBound + item / blocksPerHead
                            let r0 = (item % blocksPerHead) * rowsPerBlock
                            let rows = r0..<Swift.min(s, r0 + rowsPerBlock)
                            // The keys any row of the block sees: visibility only moves right as rows go down.
                            let first = rules.visible(row: rows.lowerBound, keys: s, layer: index).lowerBound
                            let last = rules.visible(row: rows.upperBound - 1, keys: s, layer: index).upperBound
                            Self.scores(
                                head: h, rows: rows, keys: first..<Swift.max(first, last), of: qk, q: q, k: k,
                                scale: rules.scale, into: out, panels: panels)
                            for i in rows {
                                let row = out + (i - r0) * s
                                let seen = Self.finish(
                                    row: row, i, keys: s, head: h, layer: index, rules: rules, slopes: slopes,
                                    statistics: &statistics[i - r0])
                                // A row comes out NaN (all of it) when q or k is not finite or Q·Kᵀ overflowed.
                                if row[seen].isNaN {
                                    throw Self.nonFiniteRow(layer: index, head: h, row: i, of: qk, q: q, k: k)
                                        .about(file: source.file)
                                }
                            }
                            try body(
                                RowBlock(worker: worker, head: h, rows: rows, statistics: statistics),
                                UnsafeBufferPointer(start: out, count: rows.count * s))
                        }
                    }
                }
            }
        }
        try counter.check()
    }

    /// A rough wall-clock estimate of visiting `layers` (a layer number per layer visited) in row blocks: the
    /// scores each query sees (all keys; half with causal masking; the window), 2·d flop each at about 30 GFLOP/s
    /// per thread (`KeyPanels` makes about 37 on a 2.5 GHz Zen core), and about 2 ns each for the exponential, the
    /// softmax and what the visitor does with it.
    public func estimatedSeconds(layers: [Int], workers: Int) -> Double {
        let s = Double(queryCount), d = Double(source.headDim)
        var pairs = 0.0
        for l in layers {
            if rules.causal, let w = rules.window(layer: l).map({ Swift.min(Double($0), s) }) {
                pairs += w * s - w * (w - 1) / 2
            } else {
                pairs += rules.causal ? s * (s + 1) / 2 : s * s
            }
        }
        return Double(headCount) * pairs * (2 * d / 30e9 + 2e-9) / Double(Swift.max(1, workers))
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
                        let panels = KeyPanels()
                        counter.forEach(worker: worker) { head in
                            let scores = all.value.baseAddress! + head * s * s
                            Self.scores(
                                head: head, rows: 0..<s, keys: 0..<s, of: qk, q: q, k: k, scale: rules.scale,
                                into: scores, panels: panels)
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
    /// softmax over them, 0 for the others. Returns the first key it sees. With `statistics`, also the row's
    /// statistics, from the softmax's passes (`RowKernels.softmaxStatistics`).
    @inline(__always)
    private static func finish(
        row: UnsafeMutablePointer<Float>, _ i: Int, keys s: Int, head: Int, layer: Int, rules: ScoreRules,
        slopes: [Double], statistics: UnsafeMutablePointer<RowStatistics>? = nil
    ) -> Int {
        let visible = rules.visible(row: i, keys: s, layer: layer)
        if rules.softcap != nil || rules.alibi {
            rules.adjust(row, row: i, visible: visible, slope: rules.alibi ? slopes[head] : 0)
        }
        let first = visible.lowerBound
        if first > 0 { row.update(repeating: 0, count: first) }
        if let statistics {
            statistics.pointee = RowKernels.softmaxStatistics(row + first, visible: visible.count, count: s - first)
            if first > 0 {  // the keys before the window: zeros, finite
                statistics.pointee.finite += first
                statistics.pointee.min = 0
            }
        } else {
            RowKernels.softmax(row + first, visible: visible.count, count: s - first)
        }
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

    /// The scores of query rows `rows` of one head against keys `keys`, into rows of S floats (`scores[(i − rows
    /// lower bound)·S + j]` for j in `keys`; the other columns are left as they are), through `panels`, which
    /// packs the head's keys unless they are packed already (the heads of a group share them).
    private static func scores(
        head: Int, rows: Range<Int>, keys: Range<Int>, of qk: LayerQueryKey, q: UnsafeBufferPointer<Float>,
        k: UnsafeBufferPointer<Float>, scale: Double, into scores: UnsafeMutablePointer<Float>, panels: KeyPanels
    ) {
        let s = qk.positions, d = qk.dim
        panels.scores(
            queries: q.baseAddress! + (head * s + rows.lowerBound) * d, rows: rows.count,
            keys: k.baseAddress! + qk.keyHead(of: head) * s * d, keyCount: s, range: keys, dim: d, scale: Float(scale),
            into: scores, rowStride: s)
    }
}

/// Each worker's S × S scores, kept from layer to layer (allocated once instead of per layer and worker).
private final class ScoreBuffers: @unchecked Sendable {
    private var buffers: [UnsafeMutableBufferPointer<Float>] = []
    private var keyPanels: [KeyPanels] = []

    /// At least `count` buffers of `size` floats; called on one thread, before a parallel run.
    func prepare(count: Int, size: Int) {
        if let first = buffers.first, first.count != size {
            buffers.forEach { $0.deallocate() }
            buffers = []
        }
        while keyPanels.count < count { keyPanels.append(KeyPanels()) }
        while buffers.count < count {
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: size)
            buffer.initialize(repeating: 0)
            buffers.append(buffer)
        }
    }

    /// Worker `worker`'s buffer; each worker uses only its own.
    subscript(worker: Int) -> UnsafeMutableBufferPointer<Float> { buffers[worker] }

    /// Worker `worker`'s packed keys, kept with their buffer from layer to layer.
    func panels(_ worker: Int) -> KeyPanels { keyPanels[worker] }

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
