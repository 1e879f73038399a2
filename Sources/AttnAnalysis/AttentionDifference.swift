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
        let q = a.queries, k = a.keys
        return (0..<a.heads).map { h in
            var worst = 0.0, js = 0.0
            for i in 0..<q {
                var rowJS = 0.0
                for j in 0..<k {
                    let index = (h * q + i) * k + j
                    let p = Double(a.values[index]), r = Double(b.values[index])
                    worst = Swift.max(worst, abs(p - r))
                    let m = (p + r) / 2
                    if p > 0 { rowJS += 0.5 * p * log(p / m) }
                    if r > 0 { rowJS += 0.5 * r * log(r / m) }
                }
                js += rowJS
            }
            return HeadDifference(layer: layer, head: h, maxAbsDiff: worst, jsDivergence: js / Double(Swift.max(q, 1)))
        }
    }
}
