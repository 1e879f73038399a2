import AttnCore
import AttnLinalg

/// The attention each key of one head receives: the column sums of its map, accumulated from row blocks, so at any
/// length. The keys that receive the most are attention sinks (StreamingLLM: Xiao et al. 2024) and heavy hitters
/// (H2O: Zhang et al. 2023).
public struct ReceivedAttention: Sendable, Equatable {
    public var layer: Int
    public var head: Int
    /// Σᵢ a[i, j] for each key j, over every query row (`[key]`); nil when the head holds NaN or ±Inf.
    public var columnSums: [Double]?
    /// The number of queries that can see key j (the source's mask: `AttentionSource.visibleKeys`; every query for
    /// stored attention).
    public var seeing: [Int]
    /// The number of query rows.
    public var queries: Int

    /// Key j's share of the head's attention, Σᵢ a[i, j] / Q: the shares of a map whose rows sum to 1 sum to 1.
    public func share(_ j: Int) -> Double? { columnSums.map { $0[j] / Double(queries) } }

    /// The mean attention key j receives from the queries that can see it, Σᵢ a[i, j] / #{i sees j} (nil when none
    /// can).
    public func mean(_ j: Int) -> Double? {
        guard let sums = columnSums, seeing[j] > 0 else { return nil }
        return sums[j] / Double(seeing[j])
    }

    /// The `count` keys with the largest share, largest first (the lower position first among equals); none for a
    /// non-finite head.
    public func top(_ count: Int) -> [Int] {
        guard let sums = columnSums, count > 0 else { return [] }
        let order = sums.indices.sorted { sums[$0] != sums[$1] ? sums[$0] > sums[$1] : $0 < $1 }
        return Array(order.prefix(count))
    }

    /// The number of queries that see each key of layer `layer` of `source` (`[key]`), from its mask.
    public static func seeing(_ source: AttentionSource, layer: Int) -> [Int] {
        var steps = [Int](repeating: 0, count: source.keyCount + 1)
        for i in 0..<source.queryCount {
            let visible = source.visibleKeys(row: i, layer: layer)
            steps[visible.lowerBound] += 1
            steps[visible.upperBound] -= 1
        }
        var running = 0
        return steps.dropLast().map { step in
            running += step
            return running
        }
    }
}

/// The column sums of every head of one layer, added from row blocks on several workers: each worker sums a block's
/// rows in its own K values, in row order, and the blocks' sums are added to the head's in row order too (a block
/// finished before the one above it waits, copied, until that one is added). So the sums are the same bit for bit
/// from run to run, whatever the scheduling, for the same blocks (a reader's blocks may depend on the number of
/// workers). Memory H·K + workers·K values, and the blocks waiting (a few with the workers in step).
public final class ColumnSums: @unchecked Sendable {
    private var sums: [Double]
    /// Each worker's block sums, its own memory (written by that worker only, outside the lock).
    private let partials: [UnsafeMutableBufferPointer<Double>]
    /// Per head: the first row not yet added, and the blocks' sums waiting for it, by their first row.
    private var nextRow: [Int]
    private var waiting: [[Int: (end: Int, columns: [Double])]]
    private let keys: Int
    private let lock = Lock()

    public init(heads: Int, keys: Int, workers: Int) {
        self.keys = keys
        sums = [Double](repeating: 0, count: heads * keys)
        partials = (0..<Swift.max(1, workers)).map { _ in
            let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: keys)
            buffer.initialize(repeating: 0)
            return buffer
        }
        nextRow = [Int](repeating: 0, count: heads)
        waiting = [[Int: (end: Int, columns: [Double])]](repeating: [:], count: heads)
    }

    /// Adds the rows of `values` (`rows × keys`) of `block`'s head, each times `weight(i)` for query i when given
    /// (rows of weight 0 are skipped); `visible` gives the keys each row can see, outside which its values are 0
    /// (`AttentionSource.visibleKeys`). The blocks of a head must cover its rows from row 0 on, each row once.
    public func add(
        _ block: RowBlock, _ values: UnsafeBufferPointer<Float>, weight: ((Int) -> Double)? = nil,
        visible: (Int) -> Range<Int>
    ) {
        let columns = partials[block.worker]
        columns.update(repeating: 0)
        for (r, i) in block.rows.enumerated() {
            let seen = visible(i).clamped(to: 0..<keys)
            let row = UnsafeBufferPointer(rebasing: values[(r * keys + seen.lowerBound)..<(r * keys + seen.upperBound)])
            let into = columns.baseAddress! + seen.lowerBound
            if let weight {
                let w = weight(i)
                if w != 0 { for j in 0..<row.count { into[j] += w * Double(row[j]) } }
            } else {
                RowKernels.accumulate(row, into: into)
            }
        }
        let h = block.head
        lock.lock()
        defer { lock.unlock() }
        guard block.rows.lowerBound == nextRow[h] else {
            waiting[h][block.rows.lowerBound] = (block.rows.upperBound, Array(columns))
            return
        }
        addInOrder(UnsafeBufferPointer(columns), head: h)
        nextRow[h] = block.rows.upperBound
        while let next = waiting[h].removeValue(forKey: nextRow[h]) {
            next.columns.withUnsafeBufferPointer { addInOrder($0, head: h) }
            nextRow[h] = next.end
        }
    }

    /// Adds `columns` (`[key]`) to head `head`'s sums (the caller holds the lock, or is alone).
    private func addInOrder(_ columns: UnsafeBufferPointer<Double>, head: Int) {
        sums.withUnsafeMutableBufferPointer { all in
            let base = head * keys
            for j in 0..<columns.count { all[base + j] += columns[j] }
        }
    }

    /// Adds `columns` (`[key]`) to head `head`'s sums, under the lock (in the order the calls come).
    public func add(_ columns: [Double], head: Int) {
        lock.lock()
        defer { lock.unlock() }
        columns.withUnsafeBufferPointer { addInOrder($0, head: head) }
    }

    /// Head `h`'s sums, `[key]`.
    public func head(_ h: Int) -> [Double] { Array(sums[(h * keys)..<((h + 1) * keys)]) }

    deinit { partials.forEach { $0.deallocate() } }
}
