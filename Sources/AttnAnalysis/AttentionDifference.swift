#if canImport(Glibc)
import Glibc
#endif
import AttnCore

/// How two attentions of the same shape differ, head by head: the largest |A − B| and the mean over
/// query rows of the Jensen–Shannon divergence between the rows (in nats; 0 · ln 0 counts as 0).
public struct HeadDifference: Sendable, Equatable {
    public var layer: Int
    public var head: Int
    public var maxAbsDiff: Double
    public var jsDivergence: Double

    /// Every head of layer `layer` of `a` against `b` (same shapes, checked by the caller).
    public static func ofLayer(_ a: LayerAttention, _ b: LayerAttention, layer: Int) throws -> [HeadDifference] {
        guard (a.heads, a.queries, a.keys) == (b.heads, b.queries, b.keys) else {
            throw AnalysisError("layer \(layer): shapes differ, \(a.heads)×\(a.queries)×\(a.keys) against \(b.heads)×\(b.queries)×\(b.keys)")
        }
        let q = a.queries, k = a.keys, size = q * k
        return a.values.withUnsafeBufferPointer { x in
            b.values.withUnsafeBufferPointer { y in
                (0..<a.heads).map { h in
                    let p = UnsafeBufferPointer(rebasing: x[(h * size)..<((h + 1) * size)])
                    let r = UnsafeBufferPointer(rebasing: y[(h * size)..<((h + 1) * size)])
                    let worst = zip(p, r).reduce(0.0) { Swift.max($0, abs(Double($1.0) - Double($1.1))) }
                    return HeadDifference(layer: layer, head: h, maxAbsDiff: worst,
                                          jsDivergence: JensenShannon.meanRowDivergence(p, r, queries: q, keys: k))
                }
            }
        }
    }
}
