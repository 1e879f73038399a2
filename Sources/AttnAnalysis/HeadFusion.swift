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
                    for i in 0..<size { let x = Double(v[base + i]); if x.isNaN || x > out[i] { out[i] = x } }
                }
            case .min:
                for i in 0..<size { out[i] = Double(v[i]) }
                for h in 1..<Swift.max(heads, 1) {
                    let base = h * size
                    for i in 0..<size { let x = Double(v[base + i]); if x.isNaN || x < out[i] { out[i] = x } }
                }
            case .head(let h):
                for i in 0..<size { out[i] = Double(v[h * size + i]) }
            }
        }
        return out
    }
}

/// Fuses the heads of one layer after another of a source, reading row blocks on several workers
/// and reusing its buffers from layer to layer: per-worker partial sums (mean, in `Double`) or
/// extremes (max, min), then one combined map.
final class HeadFusionWorkspace {
    let fusion: HeadFusion
    let source: AttentionSource
    let workers: Int
    /// The fused map of the last layer, `[query, key]`.
    private(set) var fused: [Double]
    private let boxes: [PartialBox]

    init(_ fusion: HeadFusion, source: AttentionSource, workers: Int) throws {
        if case .head(let h) = fusion, h < 0 || h >= source.headCount {
            throw AnalysisError("head \(h) is out of range: expected 0...\(source.headCount - 1)")
        }
        self.fusion = fusion
        self.source = source
        let heads: Int
        if case .head = fusion { heads = 1 } else { heads = source.headCount }
        self.workers = Swift.max(1, Swift.min(workers, heads))
        let size = source.queryCount * source.keyCount
        fused = [Double](repeating: 0, count: size)
        boxes = (0..<self.workers).map { _ in PartialBox(size: size, fusion: fusion) }
    }

    /// Fuses layer `layer` into `fused`.
    func fuse(layer: Int) throws {
        let k = source.keyCount, size = fused.count
        let heads: Range<Int>
        if case .head(let h) = fusion { heads = h..<(h + 1) } else { heads = 0..<source.headCount }
        for box in boxes { box.reset() }
        try source.visitBlocks(layer: layer, heads: heads, workers: workers) { block, values in
            boxes[block.worker].add(values, at: block.rows.lowerBound * k)
        }
        // Combine the workers' partial results, rows split across the workers.
        let parts = size >= 1 << 16 ? workers : 1
        let count = Double(heads.count)
        fused.withUnsafeMutableBufferPointer { buffer in
            let job = UncheckedSendable((self, buffer.baseAddress!))
            try? Workers.run(parts) { part, _ in
                job.value.0.combine(into: job.value.1, range: (size * part / parts)..<(size * (part + 1) / parts), count: count)
            }
        }
    }

    /// `out[range]` = the workers' partial results combined (divided by `count` for a mean).
    private func combine(into o: UnsafeMutablePointer<Double>, range: Range<Int>, count: Double) {
        switch fusion {
        case .mean, .head:
            boxes[0].sums.withUnsafeBufferPointer { first in for i in range { o[i] = first[i] } }
            for box in boxes.dropFirst() { box.sums.withUnsafeBufferPointer { p in for i in range { o[i] += p[i] } } }
            if count != 1 { for i in range { o[i] /= count } }
        case .max, .min:
            let isMax = fusion == .max
            boxes[0].extremes.withUnsafeBufferPointer { first in for i in range { o[i] = Double(first[i]) } }
            for box in boxes.dropFirst() {
                box.extremes.withUnsafeBufferPointer { p in
                    for i in range {
                        let v = Double(p[i])
                        if v.isNaN || (isMax ? v > o[i] : v < o[i]) { o[i] = v }
                    }
                }
            }
        }
    }

    /// One worker's partial result.
    private final class PartialBox {
        let fusion: HeadFusion
        var sums: [Double] = []
        var extremes: [Float] = []

        init(size: Int, fusion: HeadFusion) {
            self.fusion = fusion
            switch fusion {
            case .mean, .head: sums = [Double](repeating: 0, count: size)
            case .max, .min: extremes = [Float](repeating: 0, count: size)
            }
        }

        func reset() {
            switch fusion {
            case .mean, .head: sums.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            case .max: extremes.withUnsafeMutableBufferPointer { $0.update(repeating: -.infinity) }
            case .min: extremes.withUnsafeMutableBufferPointer { $0.update(repeating: .infinity) }
            }
        }

        func add(_ values: UnsafeBufferPointer<Float>, at offset: Int) {
            switch fusion {
            case .mean, .head: sums.withUnsafeMutableBufferPointer { RowKernels.accumulate(values, into: $0.baseAddress! + offset) }
            case .max: extremes.withUnsafeMutableBufferPointer { RowKernels.maximum(values, into: $0.baseAddress! + offset) }
            case .min: extremes.withUnsafeMutableBufferPointer { RowKernels.minimum(values, into: $0.baseAddress! + offset) }
            }
        }
    }
}
