import AttnCore

/// Cells of `size` × `size` positions over a map `[query, key]`: ⌈Q / size⌉ × ⌈K / size⌉ cells, the last of each axis
/// holding what is left (a partial cell). Size 1 is no pooling.
public struct Pooling: Sendable, Equatable {
    public let size: Int

    public init(size: Int) {
        precondition(size >= 1, "Pooling: size \(size)")
        self.size = size
    }

    /// The most cells a side of a map drawn without `--pool`.
    public static let defaultCellLimit = 2048

    /// The pooling of a Q × K map when none is asked for: none up to `limit` positions a side, else the smallest
    /// size that gives at most `limit` cells a side (⌈max(Q, K) / limit⌉).
    public static func automatic(queries: Int, keys: Int, limit: Int = defaultCellLimit) -> Pooling {
        let longest = Swift.max(queries, keys)
        return Pooling(size: longest <= limit ? 1 : (longest + limit - 1) / limit)
    }

    /// The cells along an axis of `positions` positions.
    public func cells(_ positions: Int) -> Int { (positions + size - 1) / size }

    /// The positions cell `cell` holds along an axis of `positions` positions.
    public func members(ofCell cell: Int, positions: Int) -> Range<Int> {
        (cell * size)..<Swift.min(positions, (cell + 1) * size)
    }

    /// The memory a pooled map of a Q × K map takes while it is streamed: its sums in `Double` and the map in
    /// `Float` (nil: more than any machine has). The rows waiting for their turn are not counted: a few blocks'
    /// worth, divided by the size.
    public func workingBytes(queries: Int, keys: Int) -> Int? {
        MemoryBudget.bytes([cells(queries), cells(keys)], elementSize: 8 + 4)
    }
}

/// A map `[query, key]` pooled (`Pooling`): each cell the mean of the values it holds, over the heads too for the mean
/// over heads. Every cell's sum is added in `Double` in one fixed order, head after head, query row after query row
/// (each row's cells summed first, `cellSums`), and rounded to `Float` once divided by the cell's count; so the map
/// is the same bit for bit whatever the thread count, the scheduling or the reader's blocks, and `pool` of one head's
/// map equals that head streamed.
public enum PooledMap {
    /// `map` pooled, in the order described above.
    /// - Returns: `[query cell, key cell]`.
    public static func pool(_ map: Matrix, _ pooling: Pooling) -> Matrix {
        let rows = pooling.cells(map.rows), columns = pooling.cells(map.columns)
        var sums = [Double](repeating: 0, count: rows * columns)
        var partial = [Double](repeating: 0, count: columns)
        map.values.withUnsafeBufferPointer { v in
            sums.withUnsafeMutableBufferPointer { s in
                partial.withUnsafeMutableBufferPointer { p in
                    for i in 0..<map.rows {
                        cellSums(
                            UnsafeBufferPointer(rebasing: v[(i * map.columns)..<((i + 1) * map.columns)]),
                            visible: 0..<map.columns, size: pooling.size, into: p.baseAddress!)
                        add(UnsafeBufferPointer(p), into: s.baseAddress! + (i / pooling.size) * columns)
                    }
                }
            }
        }
        return sums.withUnsafeBufferPointer { means($0, pooling, queries: map.rows, keys: map.columns, heads: 1) }
    }

    /// The pooled map of layer `layer` of `source`, one head or the mean over heads, from its row blocks
    /// (`AttentionSource.visitBlocks`) on `workers` threads: memory of the pooled map's sums, a block's row sums per
    /// worker, and the rows that arrive before their turn (with the workers in step, a few blocks' worth).
    /// Max and min over heads need every head of a cell's values at once: pool the fused layer instead (`pool`).
    /// - Returns: `[query cell, key cell]`.
    public static func ofLayer(
        _ source: AttentionSource, layer: Int, fusion: HeadFusion, pooling: Pooling, workers: Int = Workers.count
    ) throws -> Matrix {
        let heads: Range<Int>
        switch fusion {
        case .mean: heads = 0..<source.headCount
        case .head(let h):
            guard h >= 0 && h < source.headCount else {
                throw AnalysisError("head \(h) is out of range: expected 0...\(source.headCount - 1)")
            }
            heads = h..<(h + 1)
        case .max, .min:
            throw AnalysisError("\(fusion) over heads cannot be pooled while streaming: pool the fused layer")
        }
        let q = source.queryCount, k = source.keyCount
        let sums = CellRowSums(pooling, queries: q, keys: k, heads: heads, workers: Swift.max(1, workers))
        try source.visitBlocks(layer: layer, heads: heads, workers: workers) { block, values in
            sums.add(block, values) { source.visibleKeys(row: $0, layer: layer) }
        }
        return try sums.means()
    }

    /// `partial[c]` = the sum of `row`'s values in key cell c over the keys `visible` (outside them the row holds 0:
    /// `AttentionSource.visibleKeys`): lane t of four adds the cell's values t, t + 4, t + 8, ... (its whole runs of
    /// four), the lanes are added (0 + 1) + (2 + 3), then the values left, one by one. No division per cell: with
    /// cells of 4, a division each took longer than the sums (2.4 ns a value against 1.0).
    static func cellSums(
        _ row: UnsafeBufferPointer<Float>, visible: Range<Int>, size: Int, into partial: UnsafeMutablePointer<Double>
    ) {
        let columns = (row.count + size - 1) / size
        let seen = visible.clamped(to: 0..<row.count)
        guard !seen.isEmpty, let p = row.baseAddress else {
            partial.update(repeating: 0, count: columns)
            return
        }
        let first = seen.lowerBound / size, last = (seen.upperBound + size - 1) / size
        partial.update(repeating: 0, count: first)
        var low = seen.lowerBound, high = Swift.min(seen.upperBound, (first + 1) * size)
        for c in first..<last {
            var lanes = SIMD4<Double>(), j = low
            while j + 4 <= high {
                let f = UnsafeRawPointer(p + j).loadUnaligned(as: SIMD4<Float>.self)
                lanes += SIMD4<Double>(Double(f[0]), Double(f[1]), Double(f[2]), Double(f[3]))
                j += 4
            }
            var sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
            while j < high {
                sum += Double(p[j])
                j += 1
            }
            partial[c] = sum
            low = high
            high = Swift.min(seen.upperBound, high + size)
        }
        (partial + last).update(repeating: 0, count: columns - last)
    }

    /// `sums[c] += partial[c]` for every key cell.
    static func add(_ partial: UnsafeBufferPointer<Double>, into sums: UnsafeMutablePointer<Double>) {
        for c in 0..<partial.count { sums[c] += partial[c] }
    }

    /// Each cell's sum divided by its count (`heads` × its query rows × its keys), rounded to `Float`.
    static func means(_ sums: UnsafeBufferPointer<Double>, _ pooling: Pooling, queries: Int, keys: Int, heads: Int)
        -> Matrix
    {
        let rows = pooling.cells(queries), columns = pooling.cells(keys)
        var values = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            let height = pooling.members(ofCell: r, positions: queries).count
            for c in 0..<columns {
                let count = heads * height * pooling.members(ofCell: c, positions: keys).count
                values[r * columns + c] = Float(sums[r * columns + c] / Double(count))
            }
        }
        return Matrix(rows: rows, columns: columns, values: values)
    }
}

/// The sums of a pooled map, streamed: each row of cells is added to in one order, head after head and query row
/// after query row, whichever worker brings the rows. A run of rows that arrives before its turn waits, copied,
/// under its first row's place in that order, and is added when the rows before it are (as `ColumnSums` does with
/// blocks, but row by row: the result does not depend on where the reader cuts its blocks).
private final class CellRowSums: @unchecked Sendable {
    private let pooling: Pooling
    private let queries: Int, keys: Int, columns: Int
    private let heads: Range<Int>
    /// `[query cell, key cell]`; each row of cells is written under its own lock.
    private let sums: UnsafeMutableBufferPointer<Double>
    private let rows: [CellRow]
    /// Per worker, the cell sums of its block's rows (`rows × columns`), grown when needed; each worker uses its own.
    private let scratch: [Scratch]

    private final class Scratch {
        var partials: [Double] = []
    }

    /// One row of cells: its lock, the place in the order of the next query row to add, and the runs waiting.
    private final class CellRow {
        let lock = Lock()
        var next = 0
        var waiting: [Int: [Double]] = [:]
    }

    init(_ pooling: Pooling, queries: Int, keys: Int, heads: Range<Int>, workers: Int) {
        self.pooling = pooling
        self.queries = queries
        self.keys = keys
        self.heads = heads
        columns = pooling.cells(keys)
        sums = .allocate(capacity: pooling.cells(queries) * columns)
        sums.initialize(repeating: 0)
        rows = (0..<pooling.cells(queries)).map { _ in CellRow() }
        scratch = (0..<workers).map { _ in Scratch() }
    }

    deinit { sums.deallocate() }

    /// Adds the rows of `values` (`rows × keys`) of `block`'s head; `visible` gives the keys each query row sees.
    func add(_ block: RowBlock, _ values: UnsafeBufferPointer<Float>, visible: (Int) -> Range<Int>) {
        let n = block.rows.count, size = pooling.size
        let own = scratch[block.worker]
        if own.partials.count < n * columns { own.partials = [Double](repeating: 0, count: n * columns) }
        own.partials.withUnsafeMutableBufferPointer { partials in
            for (r, i) in block.rows.enumerated() {
                PooledMap.cellSums(
                    UnsafeBufferPointer(rebasing: values[(r * keys)..<((r + 1) * keys)]), visible: visible(i),
                    size: size, into: partials.baseAddress! + r * columns)
            }
            // The block's rows, a row of cells at a time.
            var start = block.rows.lowerBound
            while start < block.rows.upperBound {
                let cell = start / size
                let members = pooling.members(ofCell: cell, positions: queries)
                let end = Swift.min(block.rows.upperBound, members.upperBound)
                let first = (start - block.rows.lowerBound) * columns
                add(
                    UnsafeBufferPointer(rebasing: partials[first..<(first + (end - start) * columns)]), cell: cell,
                    place: (block.head - heads.lowerBound) * members.count + start - members.lowerBound)
                start = end
            }
        }
    }

    /// Adds `partials` (consecutive query rows' cell sums) to row of cells `cell`, the first of them at `place` in
    /// its order; or keeps them until the rows before them are added.
    private func add(_ partials: UnsafeBufferPointer<Double>, cell: Int, place: Int) {
        let row = rows[cell]
        row.lock.lock()
        defer { row.lock.unlock() }
        guard place == row.next else {
            row.waiting[place] = Array(partials)
            return
        }
        addInOrder(partials, cell: cell)
        row.next += partials.count / columns
        while let run = row.waiting.removeValue(forKey: row.next) {
            run.withUnsafeBufferPointer { addInOrder($0, cell: cell) }
            row.next += run.count / columns
        }
    }

    /// Adds the rows of `partials` one after the other (the caller holds the row's lock).
    private func addInOrder(_ partials: UnsafeBufferPointer<Double>, cell: Int) {
        let target = sums.baseAddress! + cell * columns
        for r in 0..<(partials.count / columns) {
            PooledMap.add(UnsafeBufferPointer(rebasing: partials[(r * columns)..<((r + 1) * columns)]), into: target)
        }
    }

    /// The means, once every row has been added.
    func means() throws -> Matrix {
        for (cell, row) in rows.enumerated() {
            let expected = heads.count * pooling.members(ofCell: cell, positions: queries).count
            guard row.next == expected, row.waiting.isEmpty else {
                throw AnalysisError(
                    "internal: \(expected - row.next) query rows of query cell \(cell) were not read in order")
            }
        }
        return PooledMap.means(UnsafeBufferPointer(sums), pooling, queries: queries, keys: keys, heads: heads.count)
    }
}
