import AttnCore

/// How the heads of a layer become one map `[query, key]`: element-wise mean, max or min over
/// heads, or one head by index.
public enum HeadFusion: Sendable, Equatable, CustomStringConvertible {
    case mean
    case max
    case min
    case head(Int)

    /// Parses `mean`, `max`, `min` or a head index.
    public init?(argument: String) {
        switch argument {
        case "mean": self = .mean
        case "max": self = .max
        case "min": self = .min
        default:
            guard let index = Int(argument) else { return nil }
            self = .head(index)
        }
    }

    public var description: String {
        switch self {
        case .mean: return "mean"
        case .max: return "max"
        case .min: return "min"
        case .head(let h): return "head \(h)"
        }
    }

    /// Fuses the heads of one layer.
    /// - Returns: `[query, key]`.
    public func fuse(_ layer: LayerAttention) throws -> Matrix {
        Matrix(rows: layer.queries, columns: layer.keys, values: try fusedValues(layer).map { Float($0) })
    }

    /// The fused map in `Double`, row-major `[query, key]`: the mean is summed in `Double`, so the
    /// mean of float16 or float32 heads is exact before its final rounding.
    func fusedValues(_ layer: LayerAttention) throws -> [Double] {
        let size = layer.queries * layer.keys
        let heads = layer.heads
        if case .head(let h) = self, h < 0 || h >= heads {
            throw AnalysisError("head \(h) is out of range: expected 0...\(heads - 1)")
        }
        var out = [Double](repeating: 0, count: size)
        layer.values.withUnsafeBufferPointer { v in
            switch self {
            case .mean:
                for h in 0..<heads {
                    let base = h * size
                    for i in 0..<size { out[i] += Double(v[base + i]) }
                }
                let count = Double(heads)
                for i in 0..<size { out[i] /= count }
            case .max:
                for i in 0..<size { out[i] = Double(v[i]) }
                for h in 1..<Swift.max(heads, 1) {
                    let base = h * size
                    for i in 0..<size { out[i] = Swift.max(out[i], Double(v[base + i])) }
                }
            case .min:
                for i in 0..<size { out[i] = Double(v[i]) }
                for h in 1..<Swift.max(heads, 1) {
                    let base = h * size
                    for i in 0..<size { out[i] = Swift.min(out[i], Double(v[base + i])) }
                }
            case .head(let h):
                for i in 0..<size { out[i] = Double(v[h * size + i]) }
            }
        }
        return out
    }
}
