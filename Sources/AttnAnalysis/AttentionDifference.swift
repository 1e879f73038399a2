#if canImport(Glibc)
    import Glibc
#endif
import AttnCore

/// How two attentions of the same shape differ, head by head: the largest |A − B| and the mean over
/// query rows of the Jensen–Shannon divergence between the rows (in nats; 0 · ln 0 counts as 0).
public struct HeadDifference: Sendable, Equatable, Record {
    public var layer: Int
    public var head: Int
    public var maxAbsDiff: Double
    public var jsDivergence: Double

    /// max |a − b| over two buffers of the same length (NaN where either holds one: `max` keeps the larger finite
    /// value, as Swift's `max` does with NaN second).
    public static func maxAbsDifference(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Double {
        zip(a, b).reduce(0.0) { Swift.max($0, abs(Double($1.0) - Double($1.1))) }
    }

    /// max |a − b| over two whole layers of the same shape (verify's stored against recomputed attention).
    public static func maxAbsDifference(_ a: LayerAttention, _ b: LayerAttention) -> Double {
        a.values.withUnsafeBufferPointer { x in b.values.withUnsafeBufferPointer { y in maxAbsDifference(x, y) } }
    }

    /// The fused maps of one layer of `a` and `b`, and their difference A − B.
    public static func map(_ a: LayerAttention, _ b: LayerAttention, fusion: HeadFusion) throws -> Matrix {
        let x = try fusion.fuse(a), y = try fusion.fuse(b)
        return Matrix(rows: x.rows, columns: x.columns, values: zip(x.values, y.values).map { $0 - $1 })
    }

    /// Every head of layer `layer` of `a` against `b` (same shapes, checked by the caller).
    public static func ofLayer(_ a: LayerAttention, _ b: LayerAttention, layer: Int) throws -> [HeadDifference] {
        guard (a.heads, a.queries, a.keys) == (b.heads, b.queries, b.keys) else {
            throw AnalysisError(
                """
                layer \(layer): shapes differ, \(a.heads)×\(a.queries)×\(a.keys) against \
                \(b.heads)×\(b.queries)×\(b.keys)
                """
            )
        }
        let q = a.queries, k = a.keys, size = q * k
        return a.values.withUnsafeBufferPointer { x in
            b.values.withUnsafeBufferPointer { y in
                (0..<a.heads).map { h in
                    let p = UnsafeBufferPointer(rebasing: x[(h * size)..<((h + 1) * size)])
                    let r = UnsafeBufferPointer(rebasing: y[(h * size)..<((h + 1) * size)])
                    return HeadDifference(
                        layer: layer, head: h, maxAbsDiff: maxAbsDifference(p, r),
                        jsDivergence: JensenShannon.meanRowDivergence(p, r, queries: q, keys: k))
                }
            }
        }
    }
}

extension HeadDifference {
    /// Every head of every layer of `a` against `b`, one layer of each read at a time (same shapes, checked by the
    /// caller); an analysis error is reported against `a`'s file.
    public static func ofSources(_ a: AttentionSource, _ b: AttentionSource) throws -> [HeadDifference] {
        var records: [HeadDifference] = []
        for l in 0..<a.layerCount {
            let x = try a.layer(l), y = try b.layer(l)
            records += try AnalysisError.reported(against: a.file) { try ofLayer(x, y, layer: l) }
        }
        return records
    }
}

extension HeadDifference {
    /// The JSON keys and CSV columns of `diff`.
    public var fields: [(key: String, value: FieldValue)] {
        [
            ("layer", .index(layer)), ("head", .index(head)), ("max_abs_diff", .real(maxAbsDiff)),
            ("js_divergence", .real(jsDivergence))
        ]
    }
}
