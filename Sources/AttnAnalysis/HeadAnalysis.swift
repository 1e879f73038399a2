#if canImport(Glibc)
    import Glibc
#endif
import AttnCore
import AttnLinalg

/// Published measures of each head (docs/heads.md): Clark et al. 2019's entropy and attention to
/// token types and neighbours with their role thresholds, TransformerLens's head-detector scores,
/// the ViT paper's mean attention distance, StreamingLLM's sink share. All sums in `Double` from the
/// stored values; rows are never renormalised. `nil` is undefined (a non-finite head, cross-attention,
/// labels missing).
public struct HeadMeasures: Sendable, Equatable, Record {
    public var layer: Int
    public var head: Int
    public var entropy: Double?
    public var firstQueryEntropy: Double?
    public var meanRowMax: Double?
    public var attnFirst: Double?
    public var attnCLS: Double?
    public var attnSEP: Double?
    public var attnPunct: Double?
    public var attnSelf: Double?
    public var attnPrevious: Double?
    public var attnNext: Double?
    public var previousToken: Double?
    public var duplicateToken: Double?
    public var induction: Double?
    public var meanAttentionDistance: Double?
    public var sinkShare: Double?
    /// Clark et al.'s roles whose threshold the head passes (nil for a non-finite head).
    public var roles: [String]?

    init(layer: Int, head: Int) {
        self.layer = layer
        self.head = head
    }

    /// The JSON keys and CSV columns of `heads` (docs/heads.md).
    public var fields: [(key: String, value: FieldValue)] {
        [
            ("layer", .index(layer)), ("head", .index(head)), ("entropy", .real(entropy)),
            ("first_query_entropy", .real(firstQueryEntropy)),
            ("mean_row_max", .real(meanRowMax)), ("attn_first", .real(attnFirst)), ("attn_cls", .real(attnCLS)),
            ("attn_sep", .real(attnSEP)),
            ("attn_punct", .real(attnPunct)), ("attn_self", .real(attnSelf)), ("attn_previous", .real(attnPrevious)),
            ("attn_next", .real(attnNext)),
            ("previous_token", .real(previousToken)), ("duplicate_token", .real(duplicateToken)),
            ("induction", .real(induction)),
            ("mean_attention_distance", .real(meanAttentionDistance)), ("sink_share", .real(sinkShare)),
            ("roles", .labels(roles))
        ]
    }
}

/// How `HeadAnalysis` measures distances between tokens for the mean attention distance.
public enum TokenDistance: Sendable, Equatable {
    /// Patches after `prefix` tokens on a row-major `rows` × `columns` grid; Euclidean distance
    /// between patch positions times `patchSize` (pixels), or in patches when it is nil.
    case grid(rows: Int, columns: Int, prefix: Int, patchSize: Double?)
    /// Positions after `prefix` tokens; distance |q − k| in tokens.
    case sequence(prefix: Int)

    public var prefix: Int {
        switch self {
        case .grid(_, _, let p, _), .sequence(let p): return p
        }
    }
}

public struct HeadAnalysis: Sendable {
    /// Labels of the keys (CLS, SEP and punctuation are found by label), or nil.
    public var keyLabels: [String]?
    /// What duplicate and induction patterns compare: token ids or labels, one per position; nil: none.
    public var matchKeys: [String]?
    public var sinkTokens = 4
    public var excludeBOS = false
    public var excludeCurrentToken = false
    public var distance: TokenDistance
    public var clsLabels: Set<String> = ["[CLS]"]
    public var sepLabels: Set<String> = ["[SEP]"]
    public var punctuationLabels: Set<String> = [".", ","]
    public var outlierZ = 3.5
    public var outlierRatio = 5.0

    public init(keyLabels: [String]?, matchKeys: [String]?, distance: TokenDistance) {
        self.keyLabels = keyLabels
        self.matchKeys = matchKeys
        self.distance = distance
    }

    /// Positions of the special tokens among the key labels (nil without labels).
    public var specialTokens: (cls: [Int], sep: [Int], punct: [Int])? {
        guard let keyLabels else { return nil }
        func find(_ set: Set<String>) -> [Int] { keyLabels.indices.filter { set.contains(keyLabels[$0]) } }
        return (find(clsLabels), find(sepLabels), find(punctuationLabels))
    }

    /// The number of (query, key) pairs of TransformerLens's duplicate-token pattern over n positions (key j < i
    /// holds query i's token), which is also the induction pattern's (key j ≤ i follows query i's token); nil
    /// without ids for every position.
    public func patternPairCount(positions n: Int) -> Int? {
        guard let found = occurrences(positions: n) else { return nil }
        return found.positions.reduce(0) { $0 + $1.count * ($1.count - 1) / 2 }
    }

    /// The measures of every head of layer `l` of `source` and the attention each key receives, its rows visited in
    /// blocks on `workers` workers (never a whole layer of recomputed attention). Each row's sums are kept apart and
    /// added in row order afterwards, so the measures are the same whatever the thread count or the block sizes
    /// (the received sums up to their last bits: `ColumnSums`).
    public func measures(of source: AttentionSource, layer l: Int, workers: Int = Workers.count) throws -> LayerHeads {
        try measures(
            layer: l, heads: source.headCount, queries: source.queryCount, keys: source.keyCount,
            cross: source.isCrossAttention, seeing: ReceivedAttention.seeing(source, layer: l), workers: workers,
            visible: { source.visibleKeys(row: $0, layer: l) }
        ) { body in
            try source.visitBlocks(layer: l, heads: 0..<source.headCount, workers: workers, rowStatistics: true, body)
        }
    }

    /// The same from a layer in memory (every query seeing every key).
    public func measures(of layer: LayerAttention, index l: Int, workers: Int = Workers.count) throws -> LayerHeads {
        try measures(
            layer: l, heads: layer.heads, queries: layer.queries, keys: layer.keys, cross: layer.cross,
            seeing: [Int](repeating: layer.queries, count: layer.keys), workers: workers,
            visible: { _ in 0..<layer.keys }
        ) { body in
            let size = layer.queries * layer.keys
            try layer.values.withUnsafeBufferPointer { all in
                for h in 0..<layer.heads {
                    try body(
                        RowBlock(worker: 0, head: h, rows: 0..<layer.queries),
                        UnsafeBufferPointer(rebasing: all[(h * size)..<((h + 1) * size)]))
                }
            }
        }
    }

    private func measures(
        layer l: Int, heads: Int, queries q: Int, keys k: Int, cross: Bool, seeing: [Int], workers: Int,
        visible: @escaping (Int) -> Range<Int>, visit: (RowBlockVisitor) throws -> Void
    ) throws -> LayerHeads {
        let square = !cross
        if case .grid(let rows, let columns, let prefix, _) = distance, square, k - prefix != rows * columns {
            throw AnalysisError(
                """
                the \(rows)×\(columns) patch grid needs \(rows * columns) patches after \(prefix) prefix \
                token(s), but there are \(k) tokens (\(k - prefix) after the prefix): give --grid and --prefix
                """
            )
        }
        let context = RowContext(
            analysis: self, queries: q, keys: k, cross: cross, special: specialTokens,
            occurrences: square ? occurrences(positions: q) : nil, distances: square ? distanceFunction(tokens: k) : nil
        )
        let table = RowTable<HeadRowSums>(count: heads * q)
        let columns = ColumnSums(heads: heads, keys: k, workers: workers)
        try visit { block, values in
            columns.add(block, values, visible: visible)
            for (r, i) in block.rows.enumerated() {
                let row = UnsafeBufferPointer(rebasing: values[(r * k)..<((r + 1) * k)])
                table[block.head * q + i] = context.sums(row: row, index: i, statistics: block.statistics?[r])
            }
        }
        var records: [HeadMeasures] = []
        var received: [ReceivedAttention] = []
        for h in 0..<heads {
            let m = context.measures(table, head: h, layer: l)
            records.append(m)
            received.append(
                ReceivedAttention(
                    layer: l, head: h, columnSums: m.roles == nil ? nil : columns.head(h), seeing: seeing, queries: q))
        }
        return LayerHeads(records: records, received: received)
    }

    /// Where each token id (`matchKeys`) occurs, ascending, by position: what duplicate-token and induction
    /// patterns look up row by row; nil without ids for every position.
    func occurrences(positions n: Int) -> (ids: [Int], positions: [[Int]])? {
        guard let t = matchKeys, t.count == n else { return nil }
        var numbers: [String: Int] = [:]
        var ids: [Int] = [], positions: [[Int]] = []
        for (i, key) in t.enumerated() {
            let id = numbers[key] ?? positions.count
            if id == positions.count {
                numbers[key] = id
                positions.append([])
            }
            ids.append(id)
            positions[id].append(i)
        }
        return (ids, positions)
    }

    /// d(a, b) between tokens a and b after the prefix (0-based among the n = tokens − prefix), computed when asked
    /// (a matrix of them would be n² doubles: 2 GiB at 16,384 tokens); nil when no token follows the prefix.
    func distanceFunction(tokens: Int) -> ((Int, Int) -> Double)? {
        let p = distance.prefix, n = tokens - p
        guard n > 0 else { return nil }
        switch distance {
        case .grid(_, let columns, _, let patchSize):
            let s = patchSize ?? 1
            return { a, b in
                let dr = Double(a / columns - b / columns), dc = Double(a % columns - b % columns)
                return s * (dr * dr + dc * dc).squareRoot()
            }
        case .sequence:
            return { a, b in Double(abs(a - b)) }
        }
    }

    /// r[j]: the attention key j receives, averaged over the finite heads and the queries
    /// (nil when no head of the layer is finite).
    public static func receivedShares(_ received: [ReceivedAttention]) -> [Double]? {
        let finite = received.compactMap(\.columnSums)
        guard let first = finite.first, let queries = received.first?.queries else { return nil }
        var shares = [Double](repeating: 0, count: first.count)
        for sums in finite { for j in sums.indices { shares[j] += sums[j] } }
        return shares.map { $0 / Double(finite.count * queries) }
    }

    /// One token flagged as an outlier in at least one layer.
    public struct OutlierToken: Sendable, Equatable {
        public var position: Int
        public var token: String?
        public var prefix: Bool
        public var layers: [Int]
        public var maxShare: Double
        public var meanShare: Double
        public var maxRatio: Double
        public var shares: [Double?]
    }

    /// Keys that receive abnormal attention: per layer, a modified z-score (Iglewicz & Hoaglin)
    /// over `outlierZ` and at least `outlierRatio` times the uniform share 1/K.
    public func outliers(shares: [[Double]?], keys k: Int) -> [OutlierToken] {
        var flagged: [Int: [Int]] = [:]
        for (l, layer) in shares.enumerated() {
            guard let r = layer else { continue }
            let med = Self.median(r)
            let mad = Self.median(r.map { abs($0 - med) })
            for j in 0..<k {
                let z = mad == 0 ? (r[j] > med ? Double.infinity : 0) : 0.6745 * (r[j] - med) / mad
                if z > outlierZ && r[j] * Double(k) >= outlierRatio { flagged[j, default: []].append(l) }
            }
        }
        let tokens = flagged.map { j, layers -> OutlierToken in
            let values = shares.map { $0?[j] }
            let known = values.compactMap { $0 }
            let top = known.max() ?? .nan
            return OutlierToken(
                position: j, token: keyLabels.flatMap { $0.count == k ? $0[j] : nil }, prefix: j < distance.prefix,
                layers: layers, maxShare: top, meanShare: known.reduce(0, +) / Double(Swift.max(known.count, 1)),
                maxRatio: top * Double(k), shares: values)
        }
        return tokens.sorted { a, b in
            if a.layers.count != b.layers.count { return a.layers.count > b.layers.count }
            if a.maxShare != b.maxShare { return a.maxShare > b.maxShare }
            return a.position < b.position
        }
    }

    /// numpy's median: the mean of the two middle values for an even count.
    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

/// The mean over query rows of the Jensen–Shannon divergence between two maps' rows, in nats
/// (0 · ln 0 = 0): `diff` between dumps, `heads` between heads.
public enum JensenShannon {
    public static func meanRowDivergence(
        _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, queries q: Int, keys k: Int
    ) -> Double {
        rowDivergenceSum(a, b, queries: q, keys: k) / Double(Swift.max(q, 1))
    }

    /// The sum over the query rows of the Jensen–Shannon divergence between the rows of `a` and `b`.
    public static func rowDivergenceSum(
        _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, queries q: Int, keys k: Int
    ) -> Double {
        var js = 0.0
        for i in 0..<q {
            for j in 0..<k {
                let p = Double(a[i * k + j]), r = Double(b[i * k + j])
                let m = (p + r) / 2
                if p > 0 { js += 0.5 * p * log(p / m) }
                if r > 0 { js += 0.5 * r * log(r / m) }
            }
        }
        return js
    }

    /// The H × H matrix between the heads of `layer`, nil for a pair with a non-finite head.
    public static func betweenHeads(_ layer: LayerAttention) -> [[Double?]] {
        matrix(layer.values, maps: layer.heads, queries: layer.queries, keys: layer.keys)
    }

    /// The symmetric matrix of mean row divergences between the `maps` consecutive queries × keys maps of `values`
    /// (nil where a map holds a non-finite value; 0 on the diagonal). Each pair is computed once, the pairs shared
    /// among the workers.
    public static func matrix(_ values: [Float], maps n: Int, queries: Int, keys: Int) -> [[Double?]] {
        let size = queries * keys
        return values.withUnsafeBufferPointer { all in
            let maps = (0..<n).map { UnsafeBufferPointer(rebasing: all[($0 * size)..<(($0 + 1) * size)]) }
            let finite = maps.map { $0.allSatisfy { $0.isFinite } }
            var pairs: [(Int, Int)] = []
            for a in 0..<n where finite[a] { for b in (a + 1)..<max(n, a + 1) where finite[b] { pairs.append((a, b)) } }
            var divergences = [Double](repeating: 0, count: pairs.count)
            if !pairs.isEmpty {
                divergences.withUnsafeMutableBufferPointer { out in
                    let workers = min(Workers.count, pairs.count)
                    // Each worker writes its own pairs' entries; nothing here throws.
                    Workers.run(workers) { w, _ in
                        for p in stride(from: w, to: pairs.count, by: workers) {
                            out[p] = meanRowDivergence(maps[pairs[p].0], maps[pairs[p].1], queries: queries, keys: keys)
                        }
                    }
                }
            }
            var result = [[Double?]](repeating: [Double?](repeating: nil, count: n), count: n)
            for a in 0..<n where finite[a] { result[a][a] = 0 }
            for (p, (a, b)) in pairs.enumerated() {
                result[a][b] = divergences[p]
                result[b][a] = divergences[p]
            }
            return result
        }
    }

    /// A rough wall-clock estimate of `matrix` for `maps` maps of `queries` × `keys`: each of the n(n−1)/2 pairs
    /// costs about 25 ns per element and thread (two logarithms). Measured: `heads` on the medium benchmark dump
    /// (24 layers of 16 heads, 512 × 512), release build, 2 threads: 11.2 s with the per-layer similarity, 2.2 s
    /// without, 9.0 s for 755 million element pairs, 24 ns each per thread.
    public static func estimatedSeconds(maps n: Int, queries: Int, keys: Int, workers: Int) -> Double {
        let pairs = Double(n) * Double(max(n - 1, 0)) / 2
        return pairs * Double(queries) * Double(keys) * 25e-9 / Double(max(workers, 1))
    }
}

/// Which pairs of heads `heads` compares: within each layer, every pair of the model, or none.
public enum SimilarityScope: String, CaseIterable, Sendable {
    case layer, all, none

    /// The maps compared together (a layer's heads, or every head of `layers` layers) and the estimated seconds of
    /// the whole comparison over `source` (`JensenShannon.estimatedSeconds`, once per layer for `layer`).
    public func estimate(_ source: AttentionSource, layers: Int, workers: Int = Workers.count) -> (
        maps: Int, seconds: Double
    ) {
        let maps = self == .all ? layers * source.headCount : source.headCount
        guard self != .none else { return (maps, 0) }
        let once = JensenShannon.estimatedSeconds(
            maps: maps, queries: source.queryCount, keys: source.keyCount, workers: workers)
        return (maps, self == .all ? once : Double(layers) * once)
    }
}

/// The measures of one layer's heads and the attention each key receives.
public struct LayerHeads: Sendable {
    public var records: [HeadMeasures]
    public var received: [ReceivedAttention]
}

/// What `HeadAnalysis.run` finds in a dump.
public struct HeadsResult {
    /// The layers measured, ascending.
    public var layers: [Int]
    /// Per layer and head.
    public var records: [HeadMeasures]
    /// Per layer and head: the attention each key receives.
    public var received: [ReceivedAttention]
    /// Which pairs of heads were compared.
    public var scope: SimilarityScope
    /// With `SimilarityScope.layer`: each layer's H × H Jensen–Shannon matrix (nil for a pair with a non-finite head).
    public var perLayer: [[[Double?]]]
    /// With `SimilarityScope.all`: the (L·H) × (L·H) matrix.
    public var all: [[Double?]]?
    /// Tokens receiving abnormal attention.
    public var outliers: [HeadAnalysis.OutlierToken]
}

extension HeadAnalysis {
    /// Every measure of every head of `layers` of `source`, the head similarity of `scope` and the outlier tokens;
    /// `step` is called after each layer. The measures stream each layer in row blocks; the per-layer similarity
    /// reads each layer whole (and the measures come from it, read once).
    public func run(
        _ source: AttentionSource, layers: [Int], similarity scope: SimilarityScope, step: (() -> Void)? = nil
    ) throws -> HeadsResult {
        var records: [HeadMeasures] = []
        var received: [ReceivedAttention] = []
        var shares: [[Double]?] = []
        var perLayer: [[[Double?]]] = []
        for l in layers {
            defer { step?() }
            let found: LayerHeads
            if scope == .layer {
                let layer = try source.layer(l)
                found = try AnalysisError.reported(against: source.file) { try measures(of: layer, index: l) }
                perLayer.append(JensenShannon.betweenHeads(layer))
            } else {
                found = try AnalysisError.reported(against: source.file) { try measures(of: source, layer: l) }
            }
            records += found.records
            received += found.received
            shares.append(Self.receivedShares(found.received))
        }
        let all = scope == .all ? try JensenShannon.betweenAllHeads(source, layers: layers) : nil
        let found = outliers(shares: shares, keys: source.keyCount).map { o in
            var o = o
            o.layers = o.layers.map { layers[$0] }  // positions in `layers` back to layer numbers
            return o
        }
        return HeadsResult(
            layers: layers, records: records, received: received, scope: scope, perLayer: perLayer, all: all,
            outliers: found)
    }
}

extension JensenShannon {
    /// The (L·H) × (L·H) matrix between every pair of heads of `layers`, every one of them in memory (refused over
    /// the memory budget).
    public static func betweenAllHeads(_ source: AttentionSource, layers: [Int]) throws -> [[Double?]] {
        let bytes = MemoryBudget.bytes(
            [layers.count, source.headCount, source.queryCount, source.keyCount], elementSize: 4)
        if let refusal = MemoryBudget.refusal(
            """
            --similarity all, every layer of \(layers.count) × \(source.headCount) heads × \
            \(source.queryCount) × \(source.keyCount) in memory
            """,
            bytes: bytes)
        {
            throw AttnError(.resource, file: source.file, refusal + "; use --similarity layer")
        }
        var values: [Float] = []
        values.reserveCapacity(layers.count * source.headCount * source.queryCount * source.keyCount)
        for l in layers { values += try source.layer(l).values }
        return matrix(
            values, maps: layers.count * source.headCount, queries: source.queryCount, keys: source.keyCount)
    }
}

extension HeadAnalysis {
    /// The outlier tokens of `layers` of `source`, each layer's columns summed in row blocks; their `layers` are
    /// layer numbers (`stats --outliers`, which may be given one layer).
    public func outliers(of source: AttentionSource, layers: [Int]) throws -> [OutlierToken] {
        let shares = try layers.map { l in
            let sums = ColumnSums(heads: source.headCount, keys: source.keyCount, workers: Workers.count)
            let finite = FiniteHeads(heads: source.headCount)
            try source.visitBlocks(layer: l, heads: 0..<source.headCount, workers: Workers.count) { block, values in
                sums.add(block, values) { source.visibleKeys(row: $0, layer: l) }
                if !values.allSatisfy({ $0.isFinite }) { finite.markNonFinite(block.head) }
            }
            return Self.receivedShares(
                (0..<source.headCount).map { h in
                    ReceivedAttention(
                        layer: l, head: h, columnSums: finite.isFinite(h) ? sums.head(h) : nil, seeing: [],
                        queries: source.queryCount)
                })
        }
        return outliers(shares: shares, keys: source.keyCount).map { o in
            var o = o
            o.layers = o.layers.map { layers[$0] }  // positions in `layers` back to layer numbers
            return o
        }
    }
}

/// Whether each head of a layer held only finite values, marked from several workers.
final class FiniteHeads: @unchecked Sendable {
    private var nonFinite: [Bool]
    private let lock = Lock()

    init(heads: Int) { nonFinite = [Bool](repeating: false, count: heads) }

    func markNonFinite(_ head: Int) {
        lock.lock()
        defer { lock.unlock() }
        nonFinite[head] = true
    }

    func isFinite(_ head: Int) -> Bool { !nonFinite[head] }
}

/// One value per query row of a layer's heads, written from several workers at distinct indices, read after they
/// are done (so that sums over rows are made in row order).
final class RowTable<Value>: @unchecked Sendable {
    private let storage: UnsafeMutableBufferPointer<Value?>

    init(count: Int) {
        storage = .allocate(capacity: count)
        storage.initialize(repeating: nil)
    }

    deinit {
        storage.deinitialize()
        storage.deallocate()
    }

    subscript(index: Int) -> Value? {
        get { storage[index] }
        set { storage[index] = newValue }
    }
}

/// The sums one query row of a head gives `HeadMeasures`, added over the rows in row order.
struct HeadRowSums {
    var entropy = 0.0, rowMax = 0.0, nonFinite = 0
    var positions = PositionalShares()
    var cls = 0.0, sep = 0.0, punct = 0.0, sink = 0.0
    /// TransformerLens's weights (A without column 0 and/or the diagonal on request): the row's total, its previous
    /// key, its duplicate-token and induction keys.
    var weight = 0.0, previous = 0.0, duplicate = 0.0, induction = 0.0
    /// Σⱼ aᵢⱼ·d(i, j) over the tokens after the prefix.
    var distance = 0.0
}

/// What `HeadAnalysis` needs to turn rows into `HeadRowSums`, and their sums into `HeadMeasures`.
struct RowContext {
    let analysis: HeadAnalysis
    let queries: Int, keys: Int, cross: Bool
    let special: (cls: [Int], sep: [Int], punct: [Int])?
    let occurrences: (ids: [Int], positions: [[Int]])?
    let distances: ((Int, Int) -> Double)?

    /// The sums of query row `i` (`row` holds its keys); `statistics` are the row's when the source has them.
    func sums(row: UnsafeBufferPointer<Float>, index i: Int, statistics: RowStatistics?) -> HeadRowSums {
        var r = HeadRowSums()
        let k = keys
        // The row's entropy and maximum by the row kernel `stats` uses: one −Σ p ln p (Double sums).
        let s = statistics ?? RowKernels.statistics(row)
        r.nonFinite = s.nan + s.inf
        guard r.nonFinite == 0 else { return r }
        r.entropy = s.entropy
        r.rowMax = k > 0 ? s.max : -Double.infinity
        // Key 0, key i, i − 1 and i + 1: the sums stats makes, by the same code.
        r.positions = PositionalShares(row: row, index: i)
        func share(_ columns: [Int]) -> Double { columns.reduce(0.0) { $0 + Double(row[$1]) } }
        if let special {
            r.cls = share(special.cls)
            r.sep = share(special.sep)
            r.punct = share(special.punct)
        }
        for j in 0..<Swift.min(analysis.sinkTokens, k) { r.sink += Double(row[j]) }
        guard !cross else { return r }
        if queries >= 2 {
            // TransformerLens `mul`: Σ A′·P / Σ A′, A′ without column 0 and/or the diagonal on request.
            func weight(_ j: Int) -> Double {
                if analysis.excludeBOS && j == 0 { return 0 }
                if analysis.excludeCurrentToken && i == j { return 0 }
                return Double(row[j])
            }
            r.weight = s.sum
            if analysis.excludeBOS && k > 0 { r.weight -= Double(row[0]) }
            if analysis.excludeCurrentToken && i < k && !(analysis.excludeBOS && i == 0) { r.weight -= Double(row[i]) }
            if i >= 1 { r.previous = weight(i - 1) }
            if let occurrences {
                // Earlier positions p of the same token: duplicate (i, p) and induction (i, p + 1), p + 1 ≤ i.
                for p in occurrences.positions[occurrences.ids[i]] {
                    if p >= i { break }
                    r.duplicate += weight(p)
                    r.induction += weight(p + 1)
                }
            }
        }
        let p = analysis.distance.prefix
        if i >= p, p < k {
            if case .sequence = analysis.distance {
                r.distance = RowKernels.distanceSum(UnsafeBufferPointer(rebasing: row[p...]), from: i - p)
            } else if let distances {
                for j in p..<k { r.distance += Double(row[j]) * distances(i - p, j - p) }
            }
        }
        return r
    }

    /// The measures of head `h` from its rows' sums, added in row order.
    func measures(_ table: RowTable<HeadRowSums>, head h: Int, layer: Int) -> HeadMeasures {
        var m = HeadMeasures(layer: layer, head: h)
        let q = queries, k = keys, rows = Double(q)
        var total = HeadRowSums()
        var firstQueryEntropy: Double?
        for i in 0..<q {
            let r = table[h * q + i] ?? HeadRowSums()
            guard r.nonFinite == 0 else { return m }
            if i == 0 { firstQueryEntropy = r.entropy == 0 ? 0 : r.entropy }
            total.entropy += r.entropy
            total.rowMax += r.rowMax
            total.positions.merge(r.positions)
            total.cls += r.cls
            total.sep += r.sep
            total.punct += r.punct
            total.sink += r.sink
            total.weight += r.weight
            if i >= 1 { total.previous += r.previous }
            total.duplicate += r.duplicate
            total.induction += r.induction
            total.distance += r.distance
        }
        m.firstQueryEntropy = firstQueryEntropy
        m.entropy = total.entropy / rows
        if m.entropy == 0 { m.entropy = 0 }  // +0, not −0
        m.meanRowMax = total.rowMax / rows
        let shares = total.positions.means(queries: q, cross: cross)
        m.attnFirst = shares.first
        m.attnSelf = shares.diagonal
        m.attnPrevious = shares.previous
        m.attnNext = shares.next
        if special != nil {
            m.attnCLS = total.cls / rows
            m.attnSEP = total.sep / rows
            m.attnPunct = total.punct / rows
        }
        m.sinkShare = total.sink / rows
        if !cross {
            if q >= 2 && total.weight != 0 {
                m.previousToken = total.previous / total.weight
                if occurrences != nil {
                    m.duplicateToken = total.duplicate / total.weight
                    m.induction = total.induction / total.weight
                }
            }
            let p = analysis.distance.prefix
            if distances != nil && k - p > 0 { m.meanAttentionDistance = total.distance / Double(k - p) }
        }
        var roles: [String] = []
        let rules: [(String, Double?, Bool)] = [
            ("previous", m.attnPrevious, false), ("next", m.attnNext, false), ("self", m.attnSelf, false),
            ("cls", m.attnCLS, false), ("sep", m.attnSEP, false), ("punct", m.attnPunct, false),
            ("sink", m.sinkShare, false),
            ("broad", m.meanRowMax, true)
        ]
        for (name, value, atMost) in rules {
            guard let value else { continue }
            if atMost ? value <= 0.10 : value > 0.5 { roles.append(name) }
        }
        m.roles = roles
        return m
    }
}
