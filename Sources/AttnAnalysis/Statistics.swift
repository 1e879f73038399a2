#if canImport(Glibc)
import Glibc
#endif
import AttnCore

/// Statistics of one head's map `[query, key]`. Sums are in `Double`.
/// A value is NaN when it is undefined (no previous token, or a NaN/Inf in the map).
public struct HeadStatistics: Sendable, Equatable {
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
    /// Mean over rows of the attention on key 0 (the first token: CLS or a sink).
    public var firstToken: Double
    /// Mean over rows i of aᵢᵢ.
    public var selfAttention: Double
    /// Mean over rows i ≥ 1 of aᵢ,ᵢ₋₁.
    public var previousToken: Double
    public var nanCount: Int
    public var infCount: Int
    public var negativeCount: Int

    /// Computes the statistics of head `head` of `attention`.
    public init(of attention: LayerAttention, layer: Int, head: Int) {
        self.layer = layer
        self.head = head
        let q = attention.queries, k = attention.keys
        let base = head * q * k
        var nan = 0, inf = 0, negative = 0
        var lo = Double.infinity, hi = -Double.infinity, total = 0.0, finite = 0
        var entropySum = 0.0, worstRowSum = 0.0
        var first = 0.0, diagonal = 0.0, previous = 0.0
        attention.values.withUnsafeBufferPointer { v in
            for i in 0..<q {
                var rowSum = 0.0, rowEntropy = 0.0
                let row = base + i * k
                for j in 0..<k {
                    let p = Double(v[row + j])
                    if p.isNaN { nan += 1; continue }
                    if p.isInfinite { inf += 1; continue }
                    if p < 0 { negative += 1 }
                    lo = Swift.min(lo, p)
                    hi = Swift.max(hi, p)
                    total += p
                    finite += 1
                    rowSum += p
                    if p > 0 { rowEntropy -= p * log(p) }
                }
                entropySum += rowEntropy
                worstRowSum = Swift.max(worstRowSum, abs(rowSum - 1))
                first += Double(v[row])
                if i < k { diagonal += Double(v[row + i]) }
                if i >= 1 && i - 1 < k { previous += Double(v[row + i - 1]) }
            }
        }
        let clean = nan == 0 && inf == 0
        nanCount = nan
        infCount = inf
        negativeCount = negative
        entropy = clean ? entropySum / Double(q) : .nan
        normalizedEntropy = k > 1 ? entropy / log(Double(k)) : (clean ? 0 : .nan)
        min = finite > 0 ? lo : .nan
        max = finite > 0 ? hi : .nan
        mean = finite > 0 ? total / Double(finite) : .nan
        rowSumMaxDeviation = clean ? worstRowSum : .nan
        firstToken = first / Double(q)
        let diagonalCount = Swift.min(q, k)
        selfAttention = diagonal / Double(diagonalCount)
        let previousCount = Swift.min(q, k + 1) - 1
        previousToken = previousCount > 0 ? previous / Double(previousCount) : .nan
    }

    /// Statistics of every head of a layer.
    public static func ofLayer(_ attention: LayerAttention, layer: Int) -> [HeadStatistics] {
        (0..<attention.heads).map { HeadStatistics(of: attention, layer: layer, head: $0) }
    }
}
