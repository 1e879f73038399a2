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

    /// The (query, key) pairs of TransformerLens's duplicate-token and induction patterns over n positions.
    public func patternPairs(positions n: Int) -> (duplicate: [(Int, Int)], induction: [(Int, Int)])? {
        guard let t = matchKeys, t.count == n else { return nil }
        var duplicate: [(Int, Int)] = [], induction: [(Int, Int)] = []
        for i in 0..<n {
            for j in 0..<i where t[j] == t[i] { duplicate.append((i, j)) }
            if i >= 1 { for j in 1...i where t[j - 1] == t[i] { induction.append((i, j)) } }
        }
        return (duplicate, induction)
    }

    /// The measures of every head of `layer` (index `l`).
    public func measures(of layer: LayerAttention, index l: Int) throws -> [HeadMeasures] {
        let q = layer.queries, k = layer.keys, square = !layer.cross
        if case .grid(let rows, let columns, let prefix, _) = distance, square, k - prefix != rows * columns {
            throw AnalysisError(
                """
                the \(rows)×\(columns) patch grid needs \(rows * columns) patches after \(prefix) prefix \
                token(s), but there are \(k) tokens (\(k - prefix) after the prefix): give --grid and --prefix
                """
            )
        }
        let special = specialTokens
        let pairs = square ? patternPairs(positions: q) : nil
        let distances = square ? distanceFunction(tokens: k) : nil
        return layer.values.withUnsafeBufferPointer { all in
            (0..<layer.heads).map { h in
                let a = UnsafeBufferPointer(rebasing: all[(h * q * k)..<((h + 1) * q * k)])
                return measure(
                    a, queries: q, keys: k, cross: layer.cross, layer: l, head: h, special: special, pairs: pairs,
                    distances: distances)
            }
        }
    }

    private func measure(
        _ a: UnsafeBufferPointer<Float>, queries q: Int, keys k: Int, cross: Bool, layer: Int, head: Int,
        special: (cls: [Int], sep: [Int], punct: [Int])?, pairs: (duplicate: [(Int, Int)], induction: [(Int, Int)])?,
        distances: ((Int, Int) -> Double)?
    ) -> HeadMeasures {
        var m = HeadMeasures(layer: layer, head: head)
        guard a.allSatisfy({ $0.isFinite }) else { return m }
        let rows = Double(q)
        func v(_ i: Int, _ j: Int) -> Double { Double(a[i * k + j]) }
        // Each row's entropy and maximum by the row kernel `stats` uses: one implementation of −Σ p ln p (Double sums).
        var entropy = 0.0, rowMax = 0.0
        for i in 0..<q {
            let row = RowKernels.statistics(UnsafeBufferPointer(rebasing: a[(i * k)..<((i + 1) * k)]))
            let h = row.entropy
            if i == 0 { m.firstQueryEntropy = h == 0 ? 0 : h }
            entropy += h
            rowMax += k > 0 ? row.max : -Double.infinity
        }
        m.entropy = entropy / rows
        if m.entropy == 0 { m.entropy = 0 }  // +0, not −0
        m.meanRowMax = rowMax / rows
        func columnsShare(_ columns: [Int]) -> Double {
            var s = 0.0
            for i in 0..<q { for j in columns { s += v(i, j) } }
            return s / rows
        }
        // Key 0, key i, i − 1 and i + 1: the sums stats makes, by the same code.
        var positions = PositionalShares()
        for i in 0..<q {
            positions.merge(PositionalShares(row: UnsafeBufferPointer(rebasing: a[(i * k)..<((i + 1) * k)]), index: i))
        }
        let shares = positions.means(queries: q, cross: cross)
        m.attnFirst = shares.first
        m.attnSelf = shares.diagonal
        m.attnPrevious = shares.previous
        m.attnNext = shares.next
        if let special {
            m.attnCLS = columnsShare(special.cls)
            m.attnSEP = columnsShare(special.sep)
            m.attnPunct = columnsShare(special.punct)
        }
        m.sinkShare = columnsShare(Array(0..<Swift.min(sinkTokens, k)))
        if !cross {
            if q >= 2 {
                // TransformerLens `mul`: Σ A′·P / Σ A′, A′ without column 0 and/or the diagonal on request.
                func weight(_ i: Int, _ j: Int) -> Double {
                    if excludeBOS && j == 0 { return 0 }
                    if excludeCurrentToken && i == j { return 0 }
                    return v(i, j)
                }
                var total = 0.0
                for i in 0..<q { for j in 0..<k { total += weight(i, j) } }
                if total != 0 {
                    m.previousToken = (1..<q).reduce(0.0) { $0 + weight($1, $1 - 1) } / total
                    if let pairs {
                        m.duplicateToken = pairs.duplicate.reduce(0.0) { $0 + weight($1.0, $1.1) } / total
                        m.induction = pairs.induction.reduce(0.0) { $0 + weight($1.0, $1.1) } / total
                    }
                }
            }
            if let distances {
                let p = distance.prefix, n = k - p
                if n > 0 {
                    var sum = 0.0
                    for i in p..<q {
                        for j in p..<k { sum += v(i, j) * distances(i - p, j - p) }
                    }
                    m.meanAttentionDistance = sum / Double(n)
                }
            }
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
    public static func receivedShares(of layer: LayerAttention) -> [Double]? {
        let q = layer.queries, k = layer.keys
        var shares = [Double](repeating: 0, count: k)
        var finite = 0
        layer.values.withUnsafeBufferPointer { all in
            for h in 0..<layer.heads {
                let a = UnsafeBufferPointer(rebasing: all[(h * q * k)..<((h + 1) * q * k)])
                guard a.allSatisfy({ $0.isFinite }) else { continue }
                finite += 1
                for i in 0..<q { for j in 0..<k { shares[j] += Double(a[i * k + j]) } }
            }
        }
        guard finite > 0 else { return nil }
        return shares.map { $0 / Double(finite * q) }
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
        var js = 0.0
        for i in 0..<q {
            for j in 0..<k {
                let p = Double(a[i * k + j]), r = Double(b[i * k + j])
                let m = (p + r) / 2
                if p > 0 { js += 0.5 * p * log(p / m) }
                if r > 0 { js += 0.5 * r * log(r / m) }
            }
        }
        return js / Double(Swift.max(q, 1))
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

    /// The maps compared together (a layer's heads, or every head of the model) and the estimated seconds of the
    /// whole comparison over `source` (`JensenShannon.estimatedSeconds`, once per layer for `layer`).
    public func estimate(_ source: AttentionSource, workers: Int = Workers.count) -> (maps: Int, seconds: Double) {
        let maps = self == .all ? source.layerCount * source.headCount : source.headCount
        guard self != .none else { return (maps, 0) }
        let once = JensenShannon.estimatedSeconds(
            maps: maps, queries: source.queryCount, keys: source.keyCount, workers: workers)
        return (maps, self == .all ? once : Double(source.layerCount) * once)
    }
}

/// What `HeadAnalysis.run` finds in a dump.
public struct HeadsResult {
    /// Per layer and head.
    public var records: [HeadMeasures]
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
    /// Every measure of every head of `source`, layer by layer, the head similarity of `scope` and the outlier tokens;
    /// `step` is called after each layer.
    public func run(_ source: AttentionSource, similarity scope: SimilarityScope, step: (() -> Void)? = nil) throws
        -> HeadsResult
    {
        var records: [HeadMeasures] = []
        var shares: [[Double]?] = []
        var perLayer: [[[Double?]]] = []
        for l in 0..<source.layerCount {
            defer { step?() }
            let layer = try source.layer(l)
            records += try AnalysisError.reported(against: source.file) { try measures(of: layer, index: l) }
            shares.append(Self.receivedShares(of: layer))
            if scope == .layer { perLayer.append(JensenShannon.betweenHeads(layer)) }
        }
        let all = scope == .all ? try JensenShannon.betweenAllHeads(source) : nil
        return HeadsResult(
            records: records, scope: scope, perLayer: perLayer, all: all,
            outliers: outliers(shares: shares, keys: source.keyCount))
    }
}

extension JensenShannon {
    /// The (L·H) × (L·H) matrix between every pair of heads of the model, every layer in memory (refused over the
    /// memory budget).
    public static func betweenAllHeads(_ source: AttentionSource) throws -> [[Double?]] {
        let bytes = MemoryBudget.bytes(
            [source.layerCount, source.headCount, source.queryCount, source.keyCount], elementSize: 4)
        if let refusal = MemoryBudget.refusal(
            """
            --similarity all, every layer of \(source.layerCount) × \(source.headCount) heads × \
            \(source.queryCount) × \(source.keyCount) in memory
            """,
            bytes: bytes)
        {
            throw AttnError(.resource, file: source.file, refusal + "; use --similarity layer")
        }
        var values: [Float] = []
        values.reserveCapacity(source.layerCount * source.headCount * source.queryCount * source.keyCount)
        for l in 0..<source.layerCount { values += try source.layer(l).values }
        return matrix(
            values, maps: source.layerCount * source.headCount, queries: source.queryCount, keys: source.keyCount)
    }
}

extension HeadAnalysis {
    /// The outlier tokens of `layers` of `source`, each layer read whole; their `layers` are layer numbers
    /// (`stats --outliers`, which may be given one layer).
    public func outliers(of source: AttentionSource, layers: [Int]) throws -> [OutlierToken] {
        let shares = try layers.map { Self.receivedShares(of: try source.layer($0)) }
        return outliers(shares: shares, keys: source.keyCount).map { o in
            var o = o
            o.layers = o.layers.map { layers[$0] }  // positions in `layers` back to layer numbers
            return o
        }
    }
}
