import AttnCore
import AttnLinalg

/// Attention flow (Abnar & Zuidema 2020, samiraabnar/attention_flow): the attention of each layer,
/// heads averaged, with the residual added and rows renormalised, Âₗ = rows-normalised(mean_h Aₗ + I),
/// is a layered graph: node (l+1, i) → node (l, j) with capacity Âₗ[i, j], node (0, j) being input
/// token j. The flow of layer N from token i to input token j is the maximum flow from node
/// (N+1, i) to node (0, j) through layers N…0; each token's flows are then divided by their sum,
/// as the reference's `compute_flows` does.
///
/// The reference runs networkx's Edmonds–Karp once per pair on the whole graph. Here each pair is
/// Dinic's algorithm on the dense layered residual graph (only layers 0…N, and of layer 0 only the
/// sink, since no flow can leave another input node), in `Double`, the pairs shared among workers.
public struct AttentionFlow: Sendable {
    /// The top attention layer N, 0-based: flows leave the tokens after it.
    public var layer: Int
    /// Stored attention whose rows are not distributions (scores, logits) is used as it is instead of refused
    /// (`ProbabilityCheck`); negative values are refused all the same (capacities must be non-negative).
    public var allowsUnnormalised = false

    public init(layer: Int, allowsUnnormalised: Bool = false) {
        self.layer = layer
        self.allowsUnnormalised = allowsUnnormalised
    }

    /// Residual capacities at or below this count as saturated (capacities are attention weights ≤ 1).
    static let epsilon = 1e-13

    /// Flows from the tokens `tokens` (default every token) after layer `layer` to every input
    /// token, each row divided by its sum. Reads layers 0…`layer` of `source` one at a time.
    /// - Returns: `[tokens.count, keys]`, row-major, in `Double`.
    /// `progress` is called from the workers after each maximum-flow problem (tokens × keys in all).
    public func compute(
        _ source: AttentionSource, tokens: [Int]? = nil, workers: Int = Workers.count,
        progress: (@Sendable () -> Void)? = nil
    ) throws -> [Double] {
        let n = source.queryCount
        let graph = try Self.graph(
            source, layers: 0...layer, workers: workers, checking: allowsUnnormalised ? nil : "flow")
        return try Self.flows(graph, size: n, from: tokens ?? Array(0..<n), workers: workers, progress: progress)
    }

    /// A rough wall-clock estimate for `rows` × `tokens` maximum-flow problems through `layers`
    /// layers, from measurements on this project's benchmark machine (see README, Performance).
    public static func estimatedSeconds(tokens n: Int, rows: Int, layers: Int, workers: Int) -> Double {
        let perEdge = 1.5e-8  // seconds per edge per problem, measured on the 257-token ViT dump (two phases)
        return Double(rows) * Double(n) * Double(layers) * Double(n) * Double(n) * perEdge
            / Double(Swift.max(1, workers))
    }

    /// The memory flow holds: the graph (`layers` × n² in `Double`) and, per worker, its residual network (three
    /// more such arrays); nil when that overflows.
    public static func workingSetBytes(tokens n: Int, layers: Int, workers: Int) -> Int? {
        guard let graph = MemoryBudget.bytes([layers, n, n], elementSize: 8) else { return nil }
        let (total, overflow) = graph.multipliedReportingOverflow(by: 1 + 3 * Swift.max(1, workers))
        return overflow ? nil : total
    }

    /// Âₗ for each layer of `layers`, in `Double`: the heads' mean plus I, rows divided by their sums.
    static func graph(_ source: AttentionSource, layers: ClosedRange<Int>, workers: Int, checking: String? = nil) throws
        -> [[Double]]
    {
        if let why = source.chainRefusal("attention flow") { throw AnalysisError(why) }
        guard layers.lowerBound >= 0 && layers.upperBound < source.layerCount else {
            throw AnalysisError("layer \(layers.upperBound) is out of range: expected 0...\(source.layerCount - 1)")
        }
        let n = source.queryCount
        let workspace = try HeadFusionWorkspace(.mean, source: source, workers: workers, checking: checking)
        return try layers.map { l in
            try workspace.fuse(layer: l)
            var a = workspace.fused
            let bad = a.reduce(0) { $0 + ($1.isFinite && $1 >= 0 ? 0 : 1) }
            guard bad == 0 else {
                throw AttnError(
                    .analysis, file: source.file,
                    """
                    layer \(l) holds \(bad) NaN, infinite or negative values: attention flow needs non-negative \
                    capacities
                    """
                )
            }
            // Â = rownorm(F + I) by the row kernel rollout uses, here in Double.
            a.withUnsafeMutableBufferPointer { rows in
                for i in 0..<n { _ = RowKernels.augmentRowInPlace(rows.baseAddress! + i * n, count: n, diagonal: i) }
            }
            return a
        }
    }

    /// The normalised flows from each of `sources` (tokens at the top of `graph`) to every input token;
    /// the (source, sink) problems are shared among the workers.
    static func flows(
        _ graph: [[Double]], size n: Int, from sources: [Int], workers: Int,
        progress: (@Sendable () -> Void)? = nil
    ) throws -> [Double] {
        for s in sources where s < 0 || s >= n {
            throw AnalysisError("token \(s) is out of range: expected 0...\(n - 1)")
        }
        var out = [Double](repeating: 0, count: sources.count * n)
        let problems = sources.count * n
        let counter = Workers.Counter(problems)
        let workerCount = Swift.max(1, Swift.min(workers, problems))
        out.withUnsafeMutableBufferPointer { buffer in
            let result = UncheckedSendable(buffer)
            Workers.run(workerCount) { _, stopped in
                let network = LayeredNetwork(capacities: graph, size: n)
                while let problem = counter.take(), !stopped() {
                    result.value[problem] = network.maximumFlow(from: sources[problem / n], to: problem % n)
                    progress?()
                }
            }
        }
        for r in 0..<sources.count {
            let total = out[(r * n)..<((r + 1) * n)].reduce(0, +)
            for j in 0..<n { out[r * n + j] /= total }
        }
        return out
    }
}

/// The residual graph of the layered network, reused across (source, sink) pairs by one worker.
/// Node (t, a), t = 0…T with T = layers, has index t·n + a. Its forward arcs go to every (t−1, b)
/// with residual `forward[(t−1)·n² + a·n + b]` (capacity minus flow); its backward arcs go to every
/// (t+1, b) with residual `backward[t·n² + a·n + b]` (the flow from (t+1, b) to (t, a)). Both are
/// rows of n contiguous values, so each scan is a straight loop. Of layer 0 only the sink is used:
/// no flow can leave another input token.
final class LayeredNetwork {
    let n: Int
    let top: Int
    let capacities: UnsafeMutableBufferPointer<Double>
    let forward: UnsafeMutableBufferPointer<Double>
    let backward: UnsafeMutableBufferPointer<Double>
    let level: UnsafeMutableBufferPointer<Int32>
    let nextArc: UnsafeMutableBufferPointer<Int32>
    let queue: UnsafeMutableBufferPointer<Int32>
    var sink = 0

    init(capacities graph: [[Double]], size n: Int) {
        self.n = n
        top = graph.count
        capacities = .allocate(capacity: top * n * n)
        for (t, layer) in graph.enumerated() { for (i, c) in layer.enumerated() { capacities[t * n * n + i] = c } }
        forward = .allocate(capacity: top * n * n)
        backward = .allocate(capacity: top * n * n)
        level = .allocate(capacity: (top + 1) * n)
        nextArc = .allocate(capacity: (top + 1) * n)
        queue = .allocate(capacity: (top + 1) * n)
    }

    deinit {
        for buffer in [capacities, forward, backward] { buffer.deallocate() }
        for buffer in [level, nextArc, queue] { buffer.deallocate() }
    }

    /// The maximum flow from node (top, source) to node (0, sink).
    func maximumFlow(from source: Int, to sink: Int) -> Double {
        self.sink = sink
        _ = forward.update(fromContentsOf: capacities)
        backward.update(repeating: 0)
        let s = top * n + source
        var total = 0.0
        while levels(from: s) {
            nextArc.update(repeating: 0)
            while true {
                let pushed = augment(s, limit: .infinity)
                if pushed <= AttentionFlow.epsilon { break }
                total += pushed
            }
        }
        return total
    }

    /// The arcs of node (t, a): the residual row and the index of its first target, or nil.
    @inline(__always)
    private func arcs(_ t: Int, _ a: Int, backwardArcs: Bool) -> (
        residual: UnsafeMutablePointer<Double>, firstTarget: Int
    )? {
        if backwardArcs {
            return t == top ? nil : (backward.baseAddress! + t * n * n + a * n, (t + 1) * n)
        }
        return t == 0 ? nil : (forward.baseAddress! + (t - 1) * n * n + a * n, (t - 1) * n)
    }

    /// Breadth-first levels from `s` over arcs with residual capacity; whether the sink is reached.
    private func levels(from s: Int) -> Bool {
        level.update(repeating: -1)
        let eps = AttentionFlow.epsilon
        level[s] = 0
        queue[0] = Int32(s)
        var head = 0, tail = 1
        while head < tail {
            let node = Int(queue[head])
            head += 1
            let t = node / n, a = node % n
            if t == 0 { continue }
            let next = level[node] + 1
            if t == 1 {
                if forward[a * n + sink] > eps && level[sink] < 0 {
                    level[sink] = next
                    queue[tail] = Int32(sink)
                    tail += 1
                }
            } else if let (residual, first) = arcs(t, a, backwardArcs: false) {
                for b in 0..<n where residual[b] > eps && level[first + b] < 0 {
                    level[first + b] = next
                    queue[tail] = Int32(first + b)
                    tail += 1
                }
            }
            if let (residual, first) = arcs(t, a, backwardArcs: true) {
                for b in 0..<n where residual[b] > eps && level[first + b] < 0 {
                    level[first + b] = next
                    queue[tail] = Int32(first + b)
                    tail += 1
                }
            }
        }
        return level[sink] >= 0
    }

    /// Pushes up to `limit` from `node` towards the sink along the level graph, through as many
    /// arcs as it takes (a blocking-flow step of Dinic's algorithm); the amount pushed.
    /// Arcs 0..<n are the forward ones, n..<2n the backward ones.
    private func augment(_ node: Int, limit: Double) -> Double {
        if node == sink { return limit }
        let t = node / n, a = node % n
        let eps = AttentionFlow.epsilon
        let want = level[node] + 1
        var done = 0.0
        while Int(nextArc[node]) < 2 * n {
            let k = Int(nextArc[node])
            let isBackward = k >= n
            let b = isBackward ? k - n : k
            if let (residual, first) = arcs(t, a, backwardArcs: isBackward), !(t == 1 && !isBackward && b != sink),
                residual[b] > eps, level[first + b] == want
            {
                let pushed = augment(first + b, limit: Swift.min(limit - done, residual[b]))
                if pushed > 0 {
                    // The arc loses residual, its reverse gains it.
                    residual[b] -= pushed
                    if isBackward {
                        forward[t * n * n + b * n + a] += pushed
                    } else {
                        backward[(t - 1) * n * n + b * n + a] += pushed
                    }
                    done += pushed
                    if limit - done <= eps { return done }
                }
            }
            nextArc[node] += 1
        }
        return done
    }
}
