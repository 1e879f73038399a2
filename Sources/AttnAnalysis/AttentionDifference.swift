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
            if a.origin == .stored && b.origin == .stored {
                let x = try a.layer(l), y = try b.layer(l)
                records += try AnalysisError.reported(against: a.file) { try ofLayer(x, y, layer: l) }
            } else {
                records += try AnalysisError.reported(against: a.file) { try inRowChunks(a, b, layer: l) }
            }
        }
        return records
    }

    /// Layer `l` of `a` against `b` a chunk of query rows at a time (`AttentionSource.rows`: attention recomputed
    /// from q and k computes only those rows; stored attention is read once and sliced), so that a long sequence's
    /// layer is never whole: about 4 MiB of rows per source. Maxima as maxima, divergences summed in row order.
    static func inRowChunks(_ a: AttentionSource, _ b: AttentionSource, layer l: Int) throws -> [HeadDifference] {
        let h = a.headCount, q = a.queryCount, k = a.keyCount
        let chunk = Swift.max(1, (1 << 20) / Swift.max(1, h * k))
        func reader(_ source: AttentionSource) throws -> (Range<Int>) throws -> LayerAttention {
            guard source.origin == .stored else { return { try source.rows($0, layer: l) } }
            let whole = try source.layer(l)
            return { rows in
                var values = [Float]()
                values.reserveCapacity(h * rows.count * k)
                for head in 0..<h {
                    values += whole.values[((head * q + rows.lowerBound) * k)..<((head * q + rows.upperBound) * k)]
                }
                return LayerAttention(heads: h, queries: rows.count, keys: k, values: values, cross: whole.cross)
            }
        }
        let rowsOfA = try reader(a), rowsOfB = try reader(b)
        var worst = [Double](repeating: 0, count: h), divergence = [Double](repeating: 0, count: h)
        for r0 in stride(from: 0, to: q, by: chunk) {
            let rows = r0..<Swift.min(q, r0 + chunk)
            let x = try rowsOfA(rows), y = try rowsOfB(rows)
            let size = rows.count * k
            x.values.withUnsafeBufferPointer { x in
                y.values.withUnsafeBufferPointer { y in
                    for head in 0..<h {
                        let p = UnsafeBufferPointer(rebasing: x[(head * size)..<((head + 1) * size)])
                        let r = UnsafeBufferPointer(rebasing: y[(head * size)..<((head + 1) * size)])
                        worst[head] = Swift.max(worst[head], maxAbsDifference(p, r))
                        divergence[head] += JensenShannon.rowDivergenceSum(p, r, queries: rows.count, keys: k)
                    }
                }
            }
        }
        return (0..<h).map { head in
            HeadDifference(
                layer: l, head: head, maxAbsDiff: worst[head], jsDivergence: divergence[head] / Double(Swift.max(q, 1)))
        }
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
