import AttnCore

/// Is this really attention? Sums along both axes, signs, non-finite values and the upper triangle,
/// over every layer and head, read one layer at a time.
public struct AttentionChecks: Sendable {
    /// max |Σ_key − 1| over all rows (query rows summing over keys, as attention should).
    public var worstRowSum = 0.0
    /// max |Σ_query − 1| over all columns: small when the dump is transposed.
    public var worstColumnSum = 0.0
    public var negatives = 0
    public var nans = 0
    public var infinities = 0
    /// The largest value above the diagonal (keys after the query), and the number of cells there.
    public var upperMax = 0.0
    public var upperCells = 0
    public var square = true

    public init() {}

    /// Adds one layer.
    public mutating func add(_ layer: LayerAttention) {
        let q = layer.queries, k = layer.keys
        square = square && q == k
        layer.values.withUnsafeBufferPointer { v in
            var columns = [Double](repeating: 0, count: k)
            for h in 0..<layer.heads {
                columns.withUnsafeMutableBufferPointer { c in
                    c.update(repeating: 0)
                    for i in 0..<q {
                        add(row: UnsafeBufferPointer(rebasing: v[((h * q + i) * k)..<((h * q + i + 1) * k)]), i, c)
                    }
                }
                addColumns(columns)
            }
        }
    }

    /// Adds query row `i` (its keys' values), summing its values into `columns`.
    mutating func add(row: UnsafeBufferPointer<Float>, _ i: Int, _ columns: UnsafeMutableBufferPointer<Double>) {
        var sum = 0.0
        for (j, x) in row.enumerated() {
            if x.isNaN { nans += 1; continue }
            if x.isInfinite { infinities += 1; continue }
            if x < 0 { negatives += 1 }
            let d = Double(x)
            sum += d
            columns[j] += d
            if j > i { upperMax = Swift.max(upperMax, abs(d)); upperCells += 1 }
        }
        worstRowSum = Swift.max(worstRowSum, abs(sum - 1))
    }

    /// Adds one head's column sums over all its queries.
    mutating func addColumns(_ columns: [Double]) {
        for c in columns { worstColumnSum = Swift.max(worstColumnSum, abs(c - 1)) }
    }

    /// Adds what another part of the rows found (the column sums apart).
    mutating func merge(_ other: AttentionChecks) {
        worstRowSum = Swift.max(worstRowSum, other.worstRowSum)
        negatives += other.negatives
        nans += other.nans
        infinities += other.infinities
        upperMax = Swift.max(upperMax, other.upperMax)
        upperCells += other.upperCells
    }
}

/// One finding of `verify`: what was checked and the numbers behind it. `passed` is nil for information only.
public enum VerifyFinding: Sendable, Equatable {
    /// How the file was read: its layout's axes and datasets, and the attention's shape.
    case readAs(axes: String, datasets: String, layers: Int, heads: Int, queries: Int, keys: Int)
    /// A lone 3-D tensor, read as one layer of heads.
    case oneLayerOfHeads
    case finite(nans: Int, infinities: Int)
    case nonNegative(negatives: Int)
    /// Rows sum to 1 over the keys within the tolerance.
    case rowSums(worst: Double)
    /// Rows do not, but columns do: the dump looks transposed.
    case transposed(worstRow: Double, worstColumn: Double)
    /// Neither rows nor columns sum to 1: not probabilities.
    case notProbabilities(worstRow: Double, tolerance: Double)
    /// The largest value above the diagonal, checked when causal is claimed, else said.
    case causal(claimed: Bool, upperMax: Double, tolerance: Double)
    /// Q and K are in the file but could not be compared (a malformed attribute, an unreadable tensor).
    case recomputedUnavailable(reason: String)
    /// Q and K do not have the stored attention's shape.
    case recomputedShapeDiffers
    /// The stored attention against the one recomputed from Q and K; `extras`: the rules beyond scale and causal
    /// (a sliding window, softcap, ALiBi), as said, or empty.
    case recomputed(maxDifference: Double, tolerance: Double, scale: Double?, causal: Bool, extras: String = "")

    public var passed: Bool? {
        switch self {
        case .readAs, .oneLayerOfHeads: return nil
        case .finite(let nans, let infinities): return nans + infinities == 0
        case .nonNegative(let negatives): return negatives == 0
        case .rowSums: return true
        case .transposed, .notProbabilities, .recomputedUnavailable, .recomputedShapeDiffers: return false
        case .causal(let claimed, let upperMax, let tolerance): return claimed ? upperMax <= tolerance : nil
        case .recomputed(let difference, let tolerance, _, _, _): return difference <= tolerance
        }
    }
}

extension AttentionChecks {
    /// The findings about the stored values, in the order `verify` prints them: non-finite, negative, row sums
    /// (or transposed), causality (when the map is square and has an upper triangle).
    public func findings(tolerance: Double, claimsCausal: Bool) -> [VerifyFinding] {
        var out: [VerifyFinding] = [.finite(nans: nans, infinities: infinities), .nonNegative(negatives: negatives)]
        if worstRowSum <= tolerance {
            out.append(.rowSums(worst: worstRowSum))
        } else if square && worstColumnSum <= tolerance {
            out.append(.transposed(worstRow: worstRowSum, worstColumn: worstColumnSum))
        } else {
            out.append(.notProbabilities(worstRow: worstRowSum, tolerance: tolerance))
        }
        if square && upperCells > 0 {
            out.append(.causal(claimed: claimsCausal, upperMax: upperMax, tolerance: tolerance))
        }
        return out
    }

    /// Every layer of `source`, its rows visited in blocks on `workers` workers (never a whole layer of recomputed
    /// attention): each worker checks its rows and sums a block's columns in its own K values, then adds them to the
    /// layer's column sums under a lock (memory: H·K + workers·K values, not workers·H·K).
    public static func of(_ source: AttentionSource, workers: Int = Workers.count) throws -> AttentionChecks {
        var checks = AttentionChecks()
        let h = source.headCount, q = source.queryCount, k = source.keyCount
        checks.square = q == k
        for l in 0..<source.layerCount {
            let parts = (0..<Swift.max(1, workers)).map { _ in PartialChecks(keys: k) }
            let layer = ColumnSums(heads: h, keys: k, workers: 0)
            try source.visitBlocks(layer: l, heads: 0..<h, workers: workers) { block, values in
                let part = parts[block.worker]
                part.columns.withUnsafeMutableBufferPointer { columns in
                    columns.update(repeating: 0)
                    for (r, i) in block.rows.enumerated() {
                        part.checks.add(row: UnsafeBufferPointer(rebasing: values[(r * k)..<((r + 1) * k)]), i, columns)
                    }
                }
                layer.add(part.columns, head: block.head)
            }
            for part in parts { checks.merge(part.checks) }
            for head in 0..<h { checks.addColumns(layer.head(head)) }
        }
        return checks
    }
}

/// One worker's checks of the rows it was given, and the column sums of its current block.
private final class PartialChecks: @unchecked Sendable {
    var checks = AttentionChecks()
    var columns: [Double]

    init(keys: Int) { columns = [Double](repeating: 0, count: keys) }
}

extension VerifyFinding {
    /// `verify`'s default tolerance on |stored − recomputed| when the narrowest of attention, q and k is `precision`:
    /// float32 q and k recompute float32 attention to ~1e-7, so 1e-4 (q and k taken before the rotary embedding
    /// fail it); 16-bit values only to ~1e-3, so 2e-2.
    public static func recomputedTolerance(precision: ElementType) -> Double { precision.size >= 4 ? 1e-4 : 2e-2 }

    /// The stored attention `source` against `recomputed` (from the file's Q and K), layer by layer.
    public static func comparing(
        _ source: AttentionSource, with recomputed: AttentionSource, tolerance: Double, scale: Double?, causal: Bool,
        extras: String = ""
    ) throws -> VerifyFinding {
        guard
            (recomputed.layerCount, recomputed.headCount, recomputed.queryCount)
                == (source.layerCount, source.headCount, source.queryCount)
        else { return .recomputedShapeDiffers }
        var worst = 0.0
        for l in 0..<source.layerCount {
            worst = max(worst, HeadDifference.maxAbsDifference(try source.layer(l), try recomputed.layer(l)))
        }
        return .recomputed(maxDifference: worst, tolerance: tolerance, scale: scale, causal: causal, extras: extras)
    }
}
