import AttnCore
import AttnLinalg
import Dispatch

/// Attention recomputed from per-head queries and keys: softmax(Q Kᵀ · scale) over keys, the row
/// maximum subtracted before `exp`, sums in `Double`; with `causal`, keys after the query get 0.
public final class RecomputedAttention: AttentionSource {
    public let source: QueryKeySource
    /// The factor applied to Q Kᵀ; 1/√d by default.
    public let scale: Double
    public let causal: Bool
    public var file: String { source.file }
    public var layerCount: Int { source.layerCount }
    public var headCount: Int { source.headCount }
    public var queryCount: Int { source.positionCount }
    public var keyCount: Int { source.positionCount }
    public var tokens: [String]? { source.tokens }
    public var origin: AttentionOrigin { .recomputed(scale: scale, causal: causal) }
    private let reader: QueryKeyPrefetch
    private let scores = ScoreBuffers()

    public init(_ source: QueryKeySource, scale: Double? = nil, causal: Bool = false) {
        self.source = source
        self.scale = scale ?? 1 / Double(source.headDim).squareRoot()
        self.causal = causal
        reader = QueryKeyPrefetch(source)
    }

    public func layer(_ index: Int) throws -> LayerAttention {
        let qk = try reader.layer(index)
        do {
            return try Self.attention(from: qk, scale: scale, causal: causal, layer: index)
        } catch let error as AnalysisError {
            throw AttnError(.analysis, file: file, error.message)
        }
    }

    /// Recomputes one head at a time per worker (Q Kᵀ through single-threaded BLAS on each worker,
    /// then the softmax), so a layer's attention is never whole in memory. When the layers are visited in
    /// order, reading the next layer's Q and K is one more work item, taken first: one worker reads while
    /// the others compute (a thread of its own would wait for a core while the workers hold both).
    public func visitBlocks(layer index: Int, heads: Range<Int>, workers: Int, _ body: RowBlockVisitor) throws {
        let (qk, next) = try reader.layerReadingInline(index)
        let s = qk.positions
        let reads = next == nil ? 0 : 1
        let workerCount = Swift.min(workers, heads.count + reads)
        let counter = Workers.Counter(heads.count + reads, workers: workerCount)
        let rowsPerBlock = Swift.max(1, (32 << 10) / Swift.max(s, 1))  // about 128 KiB of Float
        scores.prepare(count: workerCount, size: s * s)
        let buffers = scores
        let prefetch = UncheckedSendable(reader)  // read by one worker only (the one that takes item 0)
        qk.queries.withUnsafeBufferPointer { q in
            qk.keys.withUnsafeBufferPointer { k in
                Workers.run(workerCount) { worker, _ in
                    let out = buffers[worker]
                    counter.forEach(worker: worker) { item in
                        if let next, item == 0 {
                            prefetch.value.readInline(next)
                            return
                        }
                        let h = heads.lowerBound + item - reads
                        Self.scores(head: h, of: qk, q: q, k: k, scale: scale, into: out.baseAddress!)
                        // Softmax a few rows, hand them on while they are still in cache.
                        for r0 in stride(from: 0, to: s, by: rowsPerBlock) {
                            let rows = r0..<Swift.min(s, r0 + rowsPerBlock)
                            for i in rows {
                                RowKernels.softmax(out.baseAddress! + i * s, visible: causal ? i + 1 : s, count: s)
                                // A row comes out NaN (all of it) when q or k is not finite or Q·Kᵀ overflowed.
                                if out[i * s].isNaN {
                                    throw AttnError(
                                        .analysis, file: source.file,
                                        Self.nonFiniteRow(layer: index, head: h, row: i, of: qk, q: q, k: k).message)
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
        try counter.check()
    }

    /// softmax(Q Kᵀ · scale) for every head of one layer.
    /// - Returns: `[head, query, key]`.
    /// - Parameter layer: the layer's number, for the error when a row cannot be computed.
    public static func attention(from qk: LayerQueryKey, scale: Double, causal: Bool, layer: Int = 0) throws
        -> LayerAttention
    {
        let s = qk.positions, h = qk.heads
        var out = [Float](repeating: 0, count: h * s * s)
        try qk.queries.withUnsafeBufferPointer { q in
            try qk.keys.withUnsafeBufferPointer { k in
                try out.withUnsafeMutableBufferPointer { o in
                    for head in 0..<h {
                        let scores = o.baseAddress! + head * s * s
                        attention(head: head, of: qk, q: q, k: k, scale: scale, causal: causal, into: scores)
                        if let i = (0..<s).first(where: { scores[$0 * s].isNaN }) {
                            throw nonFiniteRow(layer: layer, head: head, row: i, of: qk, q: q, k: k)
                        }
                    }
                }
            }
        }
        return LayerAttention(heads: h, queries: s, keys: s, values: out)
    }

    /// Why row `row` of a head's softmax came out NaN: q or k holds a NaN or infinite value, or Q·Kᵀ·scale
    /// overflowed float32 although both are finite.
    static func nonFiniteRow(
        layer: Int, head: Int, row: Int, of qk: LayerQueryKey, q: UnsafeBufferPointer<Float>,
        k: UnsafeBufferPointer<Float>
    ) -> AnalysisError {
        let s = qk.positions, d = qk.dim, base = head * s * d
        let where_ = "layer \(layer), head \(head)"
        if (0..<d).contains(where: { !q[base + row * d + $0].isFinite }) {
            return AnalysisError(
                "\(where_): q holds NaN or infinite values at position \(row): attention cannot be recomputed from it")
        }
        if let p = (0..<s).first(where: { j in (0..<d).contains { !k[base + j * d + $0].isFinite } }) {
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
            q.baseAddress! + head * s * d, k.baseAddress! + head * s * d, into: scores,
            m: s, n: s, k: d, transposeB: true, alpha: Float(scale))
    }

    /// One head's attention `[query, key]` into `scores` (S × S floats).
    private static func attention(
        head: Int, of qk: LayerQueryKey, q: UnsafeBufferPointer<Float>, k: UnsafeBufferPointer<Float>,
        scale: Double, causal: Bool, into scores: UnsafeMutablePointer<Float>
    ) {
        let s = qk.positions
        Self.scores(head: head, of: qk, q: q, k: k, scale: scale, into: scores)
        for i in 0..<s {
            RowKernels.softmax(scores + i * s, visible: causal ? i + 1 : s, count: s)
        }
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
/// (stats, rollout); any other order (one --layer, the grid view's rollout from the last layer down) reads
/// only what is asked. `layer` reads layer i + 1 on a background thread while layer i is computed;
/// `layerReadingInline` leaves the read to the caller's workers (`readInline`). One caller at a time; the
/// source is only ever read by one thread at a time, since a read waits for the one in flight, and so does
/// `deinit` (no read is left running inside libhdf5 when the process exits).
final class QueryKeyPrefetch: @unchecked Sendable {
    private let source: QueryKeySource
    private var inFlight: (index: Int, done: DispatchGroup, box: ResultBox)?
    /// A layer read by `readInline`.
    private var ready: (index: Int, result: Result<LayerQueryKey, Error>)?
    private var last: Int?

    /// Where the background read leaves its result (published to the caller by `DispatchGroup.wait`).
    private final class ResultBox: @unchecked Sendable { var result: Result<LayerQueryKey, Error>? }

    init(_ source: QueryKeySource) { self.source = source }

    /// Layer `index`; then, when the layers are being read in order, starts reading the next one in the background.
    func layer(_ index: Int) throws -> LayerQueryKey {
        let (qk, next) = try layerReadingInline(index)
        if let next {
            let box = ResultBox(), done = DispatchGroup()
            let reader = UncheckedSendable(source)  // read by this thread only until `done`
            done.enter()
            DispatchQueue.global().async {
                box.result = Result { try reader.value.layer(next) }
                done.leave()
            }
            inFlight = (next, done, box)
        }
        return qk
    }

    /// Layer `index`, and the layer to read next (with `readInline`) when the layers are being read in order.
    func layerReadingInline(_ index: Int) throws -> (LayerQueryKey, next: Int?) {
        var found: Result<LayerQueryKey, Error>?
        if let pending = inFlight {
            pending.done.wait()
            inFlight = nil
            if pending.index == index { found = pending.box.result }
        }
        if let read = ready {
            ready = nil
            if read.index == index { found = read.result }
        }
        let sequential = index == 0 || last == index - 1
        last = index
        let qk = try found?.get() ?? source.layer(index)
        return (qk, sequential && index + 1 < source.layerCount ? index + 1 : nil)
    }

    /// Reads layer `index` for the next `layer` or `layerReadingInline` call; an error is thrown by that call.
    /// Called by one worker while the caller waits for its workers.
    func readInline(_ index: Int) {
        ready = (index, Result { try source.layer(index) })
    }

    deinit { inFlight?.done.wait() }
}
