#if canImport(Glibc)
import Glibc
#endif
import AttnCore

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

    public init(_ source: QueryKeySource, scale: Double? = nil, causal: Bool = false) {
        self.source = source
        self.scale = scale ?? 1 / Double(source.headDim).squareRoot()
        self.causal = causal
    }

    public func layer(_ index: Int) throws -> LayerAttention {
        let qk = try source.layer(index)
        return Self.attention(from: qk, scale: scale, causal: causal)
    }

    /// softmax(Q Kᵀ · scale) for every head of one layer.
    /// - Returns: `[head, query, key]`.
    public static func attention(from qk: LayerQueryKey, scale: Double, causal: Bool) -> LayerAttention {
        let s = qk.positions, d = qk.dim, h = qk.heads
        var out = [Float](repeating: 0, count: h * s * s)
        qk.queries.withUnsafeBufferPointer { q in
            qk.keys.withUnsafeBufferPointer { k in
                out.withUnsafeMutableBufferPointer { o in
                    for head in 0..<h {
                        let scores = o.baseAddress! + head * s * s
                        MatrixProduct.multiply(q.baseAddress! + head * s * d, k.baseAddress! + head * s * d, into: scores,
                                               m: s, n: s, k: d, transposeB: true, alpha: Float(scale))
                        for i in 0..<s {
                            let row = scores + i * s
                            let visible = causal ? i + 1 : s
                            var peak = -Float.infinity
                            for j in 0..<visible { peak = Swift.max(peak, row[j]) }
                            var sum = 0.0
                            for j in 0..<visible {
                                let e = expf(row[j] - peak)
                                row[j] = e
                                sum += Double(e)
                            }
                            let inverse = 1 / sum
                            for j in 0..<visible { row[j] = Float(Double(row[j]) * inverse) }
                            for j in visible..<s { row[j] = 0 }
                        }
                    }
                }
            }
        }
        return LayerAttention(heads: h, queries: s, keys: s, values: out)
    }
}
