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
///
/// Each worker remembers which query rows it has written in the current layer: the first block of a row
/// it sees is stored, later ones are added (or compared), and only the workers that wrote a row are
/// combined for it. Sources hand a row block's heads to one worker (the usual case), so no buffer is
/// cleared between layers and most rows are a single copy; any other split is still combined correctly.
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
        fused = [Double](repeating: 0, count: source.queryCount * source.keyCount)
        boxes = (0..<self.workers).map { _ in PartialBox(rows: source.queryCount, keys: source.keyCount, fusion: fusion) }
    }

    /// Fuses layer `layer` into `fused`.
    func fuse(layer: Int) throws {
        try read(layer: layer)
        try combine(workers: workers)
    }

    /// The layer `read` last; `combine` puts it into `fused`.
    private var readLayer = 0

    /// Reads layer `layer` into the workers' partial results (`combine` then makes `fused`).
    func read(layer: Int) throws {
        let heads: Range<Int>
        if case .head(let h) = fusion { heads = h..<(h + 1) } else { heads = 0..<source.headCount }
        for box in boxes { box.reset() }
        try source.visitBlocks(layer: layer, heads: heads, workers: workers) { block, values in
            boxes[block.worker].add(values, rows: block.rows)
        }
        readLayer = layer
    }

    /// Combines the partial results of the layer `read` last into `fused`, rows split across up to `workers` workers.
    func combine(workers: Int) throws {
        let q = source.queryCount
        let parts = q * source.keyCount >= 1 << 16 ? Swift.max(1, Swift.min(workers, self.workers)) : 1
        let count: Double
        if case .head = fusion { count = 1 } else { count = Double(source.headCount) }
        let missing = fused.withUnsafeMutableBufferPointer { buffer in
            let job = UncheckedSendable((self, buffer.baseAddress!))
            let missing = UncheckedSendable(UnsafeMutablePointer<Int>.allocate(capacity: parts))
            defer { missing.value.deallocate() }
            try? Workers.run(parts) { part, _ in
                missing.value[part] = job.value.0.combine(into: job.value.1, rows: (q * part / parts)..<(q * (part + 1) / parts), count: count)
            }
            return (0..<parts).reduce(0) { $0 + missing.value[$1] }
        }
        guard missing == 0 else {
            throw AnalysisError("internal: \(missing) query rows of layer \(readLayer) were not read")
        }
    }

    /// `out[rows]` = the partial results of the workers that wrote each row, combined (divided by `count` for
    /// a mean). Returns the number of rows no worker wrote.
    private func combine(into o: UnsafeMutablePointer<Double>, rows: Range<Int>, count: Double) -> Int {
        let k = source.keyCount
        var missing = 0
        for r in rows {
            let row = o + r * k
            var writers = 0
            for box in boxes where box.touched[r] { writers += 1 }
            if writers == 1, count != 1, fusion == .mean, let box = boxes.first(where: { $0.touched[r] }) {
                // The usual case: one worker summed every head of the row; divide on the way.
                box.sums.withUnsafeBufferPointer { p in
                    let s = p.baseAddress! + r * k
                    for j in 0..<k { row[j] = s[j] / count }
                }
                continue
            }
            var first = true
            for box in boxes where box.touched[r] {
                switch fusion {
                case .mean, .head:
                    box.sums.withUnsafeBufferPointer { p in
                        let s = p.baseAddress! + r * k
                        if first { for j in 0..<k { row[j] = s[j] } } else { for j in 0..<k { row[j] += s[j] } }
                    }
                case .max, .min:
                    let isMax = fusion == .max
                    box.extremes.withUnsafeBufferPointer { p in
                        let s = p.baseAddress! + r * k
                        if first {
                            for j in 0..<k { row[j] = Double(s[j]) }
                        } else {
                            for j in 0..<k {
                                let v = Double(s[j])
                                if v.isNaN || (isMax ? v > row[j] : v < row[j]) { row[j] = v }
                            }
                        }
                    }
                }
                first = false
            }
            if first { missing += 1; continue }
            if count != 1, fusion == .mean { for j in 0..<k { row[j] /= count } }
        }
        return missing
    }

    /// One worker's partial result, for the rows it has written this layer.
    private final class PartialBox {
        let fusion: HeadFusion
        let keys: Int
        var sums: [Double] = []
        var extremes: [Float] = []
        /// Whether this worker has written each query row in the current layer.
        var touched: [Bool]

        init(rows: Int, keys: Int, fusion: HeadFusion) {
            self.fusion = fusion
            self.keys = keys
            touched = [Bool](repeating: false, count: rows)
            switch fusion {
            case .mean, .head: sums = [Double](repeating: 0, count: rows * keys)
            case .max, .min: extremes = [Float](repeating: 0, count: rows * keys)
            }
        }

        func reset() {
            touched.withUnsafeMutableBufferPointer { $0.update(repeating: false) }
        }

        /// Adds a block of `rows`; a row not yet written this layer is stored as it is (the sum, maximum or
        /// minimum of one value).
        func add(_ values: UnsafeBufferPointer<Float>, rows: Range<Int>) {
            let k = keys
            var fresh = rows.lowerBound
            // Blocks arrive whole (every row new, or every row seen): handle runs of each kind.
            while fresh < rows.upperBound {
                let isNew = !touched[fresh]
                var end = fresh + 1
                while end < rows.upperBound && touched[end] != isNew { end += 1 }
                let slice = UnsafeBufferPointer(rebasing: values[((fresh - rows.lowerBound) * k)..<((end - rows.lowerBound) * k)])
                let offset = fresh * k
                switch fusion {
                case .mean, .head:
                    sums.withUnsafeMutableBufferPointer { s in
                        let target = s.baseAddress! + offset
                        // 0.0 + : a -0.0 is stored as +0.0, as when it was added to a cleared buffer.
                        if isNew { for i in 0..<slice.count { target[i] = 0.0 + Double(slice[i]) } } else { RowKernels.accumulate(slice, into: target) }
                    }
                case .max:
                    extremes.withUnsafeMutableBufferPointer { e in
                        if isNew { (e.baseAddress! + offset).update(from: slice.baseAddress!, count: slice.count) } else { RowKernels.maximum(slice, into: e.baseAddress! + offset) }
                    }
                case .min:
                    extremes.withUnsafeMutableBufferPointer { e in
                        if isNew { (e.baseAddress! + offset).update(from: slice.baseAddress!, count: slice.count) } else { RowKernels.minimum(slice, into: e.baseAddress! + offset) }
                    }
                }
                if isNew { for r in fresh..<end { touched[r] = true } }
                fresh = end
            }
        }
    }
}
