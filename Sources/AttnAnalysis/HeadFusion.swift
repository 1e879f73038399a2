import AttnCore
import AttnLinalg
import Synchronization

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

    /// Fuses the heads of one layer. The mean is summed in `Double`, head after head, and rounded once, so the
    /// mean of float16 or float32 heads is exact before its final rounding; the map is written straight into
    /// `Float` (no `Double` copy of the whole map: a 16,384-token map is 1 GiB, not 3). Max, min and one head copy
    /// the values as they are (NaN payloads included: a signalling NaN is no longer quietened by a round trip
    /// through `Double`).
    /// - Returns: `[query, key]`.
    public func fuse(_ layer: LayerAttention) throws -> Matrix {
        let size = layer.queries * layer.keys
        let heads = layer.heads
        if case .head(let h) = self, h < 0 || h >= heads {
            throw AnalysisError("head \(h) is out of range: expected 0...\(heads - 1)")
        }
        var out = [Float](repeating: 0, count: size)
        layer.values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                switch self {
                case .mean:
                    // A block of sums at a time, head after head (each head's block read in order).
                    let count = Double(heads), block = 4096
                    var sums = [Double](repeating: 0, count: Swift.min(block, size))
                    for start in stride(from: 0, to: size, by: block) {
                        let n = Swift.min(block, size - start)
                        for j in 0..<n { sums[j] = 0 }
                        for h in 0..<heads {
                            let base = h * size + start
                            for j in 0..<n { sums[j] += Double(v[base + j]) }
                        }
                        for j in 0..<n { o[start + j] = Float(sums[j] / count) }
                    }
                case .max:
                    for i in 0..<size { o[i] = v[i] }
                    for h in 1..<Swift.max(heads, 1) {
                        let base = h * size
                        for i in 0..<size { let x = v[base + i]; if x.isNaN || x > o[i] { o[i] = x } }
                    }
                case .min:
                    for i in 0..<size { o[i] = v[i] }
                    for h in 1..<Swift.max(heads, 1) {
                        let base = h * size
                        for i in 0..<size { let x = v[base + i]; if x.isNaN || x < o[i] { o[i] = x } }
                    }
                case .head(let h):
                    for i in 0..<size { o[i] = v[h * size + i] }
                }
            }
        }
        return Matrix(rows: layer.queries, columns: layer.keys, values: out)
    }
}

/// Fuses the heads of one layer after another of a source, reading row blocks on several workers
/// and reusing its buffers from layer to layer.
///
/// Each query row belongs, for the layer being read, to the worker that writes it first (an atomic claim):
/// that worker stores the row's first head into the shared buffer (`fused` for the mean and one head, in
/// `Double`; `extremes` for max and min) and adds (or compares) the others into it. Sources hand a row
/// block's heads to one worker (the usual case), so every row is written by its owner alone, nothing is
/// cleared between layers, and `combine` only divides the mean in place. A worker handed rows another owns
/// (a source that splits heads across workers) keeps them in a partial result of its own, made when first
/// needed, which `combine` merges in.
final class HeadFusionWorkspace {
    let fusion: HeadFusion
    let source: AttentionSource
    let workers: Int
    /// The fused map of the last layer `combine`d, `[query, key]`; while a layer is read, the owners' sums
    /// (mean, one head).
    private(set) var fused: [Double]
    /// max, min: the owners' extremes while a layer is read.
    private var extremes: [Float] = []
    /// Per query row, the worker that owns it in the layer being read; -1 for none yet.
    private let owners: UnsafeMutablePointer<Atomic<Int>>
    private let rows: Int
    /// Per worker, its partial result for rows others own (nil until it gets one).
    private let strays: [StraySlot]
    /// The command that needs probabilities (`rollout`, `flow`), when each row read is checked to be one
    /// (`ProbabilityCheck`); nil for no check.
    private let probabilitiesFor: String?

    /// - Parameter checking: the command to name when a stored row is not a distribution (`ProbabilityCheck`);
    ///   nil for no check. Attention recomputed from q and k is a softmax, and is not checked.
    init(_ fusion: HeadFusion, source: AttentionSource, workers: Int, checking command: String? = nil) throws {
        if case .head(let h) = fusion, h < 0 || h >= source.headCount {
            throw AnalysisError("head \(h) is out of range: expected 0...\(source.headCount - 1)")
        }
        self.fusion = fusion
        self.source = source
        let heads: Int
        if case .head = fusion { heads = 1 } else { heads = source.headCount }
        self.workers = Swift.max(1, Swift.min(workers, heads))
        rows = source.queryCount
        fused = [Double](repeating: 0, count: source.queryCount * source.keyCount)
        if fusion == .max || fusion == .min {
            extremes = [Float](repeating: 0, count: source.queryCount * source.keyCount)
        }
        owners = .allocate(capacity: rows)
        for r in 0..<rows { (owners + r).initialize(to: Atomic(-1)) }
        strays = (0..<self.workers).map { _ in StraySlot() }
        probabilitiesFor = source.origin == .stored ? command : nil
    }

    deinit {
        owners.deinitialize(count: rows)
        owners.deallocate()
    }

    /// Fuses layer `layer` into `fused`.
    func fuse(layer: Int) throws {
        try read(layer: layer)
        try combine(workers: workers)
    }

    /// The layer `read` last; `combine` puts it into `fused`.
    private var readLayer = 0

    /// Reads layer `layer` into the owners' buffers and the workers' strays (`combine` then makes `fused`).
    func read(layer: Int) throws {
        let heads: Range<Int>
        if case .head(let h) = fusion { heads = h..<(h + 1) } else { heads = 0..<source.headCount }
        for r in 0..<rows { owners[r].store(-1, ordering: .relaxed) }
        for slot in strays { slot.box?.reset() }
        let finding = probabilitiesFor == nil ? nil : ProbabilityCheck.Finding()
        try fused.withUnsafeMutableBufferPointer { f in
            try extremes.withUnsafeMutableBufferPointer { e in
                let shared = UncheckedSendable((f.baseAddress!, e.baseAddress))  // each row written by its owner only
                try source.visitBlocks(layer: layer, heads: heads, workers: workers) { block, values in
                    add(
                        values, rows: block.rows, head: block.head, worker: block.worker, sums: shared.value.0,
                        extremes: shared.value.1,
                        checking: finding)
                }
            }
        }
        if let violation = finding?.take() {
            throw AnalysisError(violation.message(layer: layer, command: probabilitiesFor!))
        }
        readLayer = layer
    }

    /// How a row of a block is written by the worker that got it.
    private enum Claim: Equatable {
        /// Just claimed: the row's first value is stored.
        case first
        /// Owned already: added or compared.
        case owned
        /// Another worker's: kept in this worker's stray result.
        case stray
    }

    private func claim(_ row: Int, by worker: Int) -> Claim {
        let (exchanged, owner) = owners[row].compareExchange(expected: -1, desired: worker, ordering: .relaxed)
        return exchanged ? .first : owner == worker ? .owned : .stray
    }

    /// Writes a block of `rows` of head `head` handed to `worker`, runs of rows of one kind of claim at a time; with
    /// `finding`, notes the first row that is not a distribution (`ProbabilityCheck`): in the same pass as the sums
    /// for the mean and one head, in a pass of its own over the block (in cache) otherwise.
    private func add(
        _ values: UnsafeBufferPointer<Float>, rows: Range<Int>, head: Int, worker: Int,
        sums: UnsafeMutablePointer<Double>, extremes: UnsafeMutablePointer<Float>?,
        checking finding: ProbabilityCheck.Finding?
    ) {
        let k = source.keyCount
        let summing = fusion == .mean || { if case .head = fusion { return true } else { return false } }()
        if let finding, !summing,
            let violation = ProbabilityCheck.firstViolation(values, rows: rows, keys: k, head: head)
        {
            finding.note(violation)
        }
        var start = rows.lowerBound
        var kind = claim(start, by: worker)
        while start < rows.upperBound {
            var end = start + 1
            var next: Claim?
            while end < rows.upperBound {
                let c = claim(end, by: worker)
                if c != kind { next = c; break }
                end += 1
            }
            let slice = UnsafeBufferPointer(
                rebasing: values[((start - rows.lowerBound) * k)..<((end - rows.lowerBound) * k)])
            let offset = start * k
            switch (kind, fusion) {
            case (.first, _) where summing && finding != nil, (.owned, _) where summing && finding != nil:
                // The sums and the check in one pass over each row.
                for r in start..<end {
                    let row = UnsafeBufferPointer(
                        rebasing: values[((r - rows.lowerBound) * k)..<((r - rows.lowerBound + 1) * k)])
                    let (sum, minimum) = RowKernels.accumulateChecking(row, into: sums + r * k, first: kind == .first)
                    if let violation = ProbabilityCheck.violation(sum: sum, minimum: minimum, head: head, row: r) {
                        finding!.note(violation)
                    }
                }
            case (.stray, _):
                if let finding, summing,
                    let violation = ProbabilityCheck.firstViolation(slice, rows: start..<end, keys: k, head: head)
                {
                    finding.note(violation)
                }
                let slot = strays[worker]
                if slot.box == nil { slot.box = PartialBox(rows: self.rows, keys: k, fusion: fusion) }
                slot.box!.add(slice, rows: start..<end)
            case (.first, .mean), (.first, .head):
                // 0.0 + : a -0.0 is stored as +0.0, as when it was added to a cleared buffer.
                let target = sums + offset
                for i in 0..<slice.count { target[i] = 0.0 + Double(slice[i]) }
            case (.owned, .mean), (.owned, .head):
                RowKernels.accumulate(slice, into: sums + offset)
            case (.first, _):
                (extremes! + offset).update(from: slice.baseAddress!, count: slice.count)
            case (.owned, .max):
                RowKernels.maximum(slice, into: extremes! + offset)
            case (.owned, _):
                RowKernels.minimum(slice, into: extremes! + offset)
            }
            start = end
            if let next { kind = next }
        }
    }

    /// `fused` for a caller that changes it in place (rollout divides the summed heads of a mean as it
    /// augments each row, see `combine(dividing:)`).
    func withMutableFused<R>(_ body: (UnsafeMutableBufferPointer<Double>) throws -> R) rethrows -> R {
        try fused.withUnsafeMutableBufferPointer { try body($0) }
    }

    /// Combines the layer `read` last into `fused`, rows split across up to `workers` workers. With `dividing`
    /// false a mean is left as the sum of the heads, for the caller to divide by the head count.
    func combine(workers: Int, dividing: Bool = true) throws {
        let q = source.queryCount
        let parts = q * source.keyCount >= 1 << 16 ? Swift.max(1, Swift.min(workers, self.workers)) : 1
        let count = fusion == .mean && dividing ? Double(source.headCount) : 1
        let boxes = strays.compactMap(\.box)
        let missing = fused.withUnsafeMutableBufferPointer { buffer in
            extremes.withUnsafeBufferPointer { e in
                let job = UncheckedSendable((self, buffer.baseAddress!, e.baseAddress, boxes))
                let missing = UncheckedSendable(UnsafeMutablePointer<Int>.allocate(capacity: parts))
                defer { missing.value.deallocate() }
                Workers.run(parts) { part, _ in
                    let (workspace, fused, extremes, boxes) = job.value
                    missing.value[part] = workspace.combine(
                        into: fused, extremes: extremes, strays: boxes,
                        rows: (q * part / parts)..<(q * (part + 1) / parts), count: count)
                }
                return (0..<parts).reduce(0) { $0 + missing.value[$1] }
            }
        }
        guard missing == 0 else {
            throw AnalysisError("internal: \(missing) query rows of layer \(readLayer) were not read")
        }
    }

    /// `fused[rows]` = each row's owner's result merged with the strays that hold the row (divided by `count`
    /// for a mean). Returns the number of rows no worker wrote.
    private func combine(
        into o: UnsafeMutablePointer<Double>, extremes: UnsafePointer<Float>?, strays: [PartialBox],
        rows: Range<Int>, count: Double
    ) -> Int {
        let k = source.keyCount
        var missing = 0
        for r in rows {
            guard owners[r].load(ordering: .relaxed) >= 0 else { missing += 1; continue }
            let row = o + r * k
            switch fusion {
            case .mean, .head:
                for box in strays where box.touched[r] {
                    box.sums.withUnsafeBufferPointer { p in
                        let s = p.baseAddress! + r * k
                        for j in 0..<k { row[j] += s[j] }
                    }
                }
                if count != 1 { for j in 0..<k { row[j] /= count } }
            case .max, .min:
                let isMax = fusion == .max
                let own = extremes! + r * k
                for j in 0..<k { row[j] = Double(own[j]) }
                for box in strays where box.touched[r] {
                    box.extremes.withUnsafeBufferPointer { p in
                        let s = p.baseAddress! + r * k
                        for j in 0..<k {
                            let v = Double(s[j])
                            if v.isNaN || (isMax ? v > row[j] : v < row[j]) { row[j] = v }
                        }
                    }
                }
            }
        }
        return missing
    }

    /// A worker's stray result, made by that worker when it first needs one.
    private final class StraySlot: @unchecked Sendable {
        var box: PartialBox?
    }

    /// One worker's partial result for the rows it has written this layer (its strays).
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
                let slice = UnsafeBufferPointer(
                    rebasing: values[((fresh - rows.lowerBound) * k)..<((end - rows.lowerBound) * k)])
                let offset = fresh * k
                switch fusion {
                case .mean, .head:
                    sums.withUnsafeMutableBufferPointer { s in
                        let target = s.baseAddress! + offset
                        // 0.0 + : a -0.0 is stored as +0.0, as when it was added to a cleared buffer.
                        if isNew {
                            for i in 0..<slice.count { target[i] = 0.0 + Double(slice[i]) }
                        } else {
                            RowKernels.accumulate(slice, into: target)
                        }
                    }
                case .max:
                    extremes.withUnsafeMutableBufferPointer { e in
                        if isNew {
                            (e.baseAddress! + offset).update(from: slice.baseAddress!, count: slice.count)
                        } else {
                            RowKernels.maximum(slice, into: e.baseAddress! + offset)
                        }
                    }
                case .min:
                    extremes.withUnsafeMutableBufferPointer { e in
                        if isNew {
                            (e.baseAddress! + offset).update(from: slice.baseAddress!, count: slice.count)
                        } else {
                            RowKernels.minimum(slice, into: e.baseAddress! + offset)
                        }
                    }
                }
                if isNew { for r in fresh..<end { touched[r] = true } }
                fresh = end
            }
        }
    }
}
