import Testing
import AttnCore
import AttnTestSupport
@testable import AttnAnalysis

/// A layer of 3 heads × 11 queries × 9 keys (random values; with `masked`, a causal mask: 0 after the query, which
/// `visibleKeys` says), handed out in blocks of `rowsPerBlock` rows on up to `workers` real threads.
private final class BlockedSource: AttentionSource, @unchecked Sendable {
    let file = "blocked", layerCount = 1, headCount = 3, queryCount = 11, keyCount = 9
    let origin = AttentionOrigin.stored
    let tokens: [String]? = nil
    let values: [Float]
    let masked: Bool
    let rowsPerBlock: Int

    init(masked: Bool, rowsPerBlock: Int) {
        self.masked = masked
        self.rowsPerBlock = rowsPerBlock
        var state: UInt64 = 21
        var values: [Float] = []
        for h in 0..<3 {
            for i in 0..<11 {
                for j in 0..<9 {
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    let x = Float(state >> 40) / Float(1 << 24) + Float(h)
                    values.append(masked && j > i ? 0 : x)
                }
            }
        }
        self.values = values
    }

    func visibleKeys(row: Int, layer: Int) -> Range<Int> { masked ? 0..<Swift.min(keyCount, row + 1) : 0..<keyCount }

    func layer(_ index: Int) throws -> LayerAttention {
        LayerAttention(heads: headCount, queries: queryCount, keys: keyCount, values: values)
    }

    func visitBlocks(layer index: Int, heads: Range<Int>, workers: Int, _ body: RowBlockVisitor) throws {
        let perHead = (queryCount + rowsPerBlock - 1) / rowsPerBlock
        let counter = Workers.Counter(heads.count * perHead, workers: workers)
        try values.withUnsafeBufferPointer { v in
            Workers.run(workers) { worker, _ in
                counter.forEach(worker: worker) { item in
                    let h = heads.lowerBound + item / perHead, r0 = (item % perHead) * rowsPerBlock
                    let rows = r0..<Swift.min(queryCount, r0 + rowsPerBlock)
                    let start = (h * queryCount + r0) * keyCount
                    try body(
                        RowBlock(worker: worker, head: h, rows: rows),
                        UnsafeBufferPointer(rebasing: v[start..<(start + rows.count * keyCount)]))
                }
            }
            try counter.check()
        }
    }
}

@Suite("Pooled maps, streamed from row blocks")
struct PooledMapTests {
    /// The mean of each cell's values (over the heads given too), in float64 from the whole layer.
    private func reference(_ source: BlockedSource, heads: [Int], size: Int) -> [[Double]] {
        let (q, k) = (source.queryCount, source.keyCount)
        return stride(from: 0, to: q, by: size).map { r in
            stride(from: 0, to: k, by: size).map { c in
                var sum = 0.0, count = 0
                for h in heads {
                    for i in r..<Swift.min(q, r + size) {
                        for j in c..<Swift.min(k, c + size) {
                            sum += Double(source.values[(h * q + i) * k + j])
                            count += 1
                        }
                    }
                }
                return sum / Double(count)
            }
        }
    }

    @Test(
        """
        the mean over heads and one head, pooled, equal the means of the cells computed in float64 from the whole \
        layer (partial last cells), on 1 and 3 workers, with and without a mask
        """,
        arguments: [HeadFusion.mean, .head(2)], [(size: 1, workers: 1), (4, 1), (4, 3), (3, 3), (16, 3)])
    func againstDirect(fusion: HeadFusion, setting: (size: Int, workers: Int)) throws {
        for masked in [false, true] {
            let source = BlockedSource(masked: masked, rowsPerBlock: 2)
            let map = try PooledMap.ofLayer(
                source, layer: 0, fusion: fusion, pooling: Pooling(size: setting.size), workers: setting.workers)
            let heads = fusion == .mean ? [0, 1, 2] : [2]
            let expected = reference(source, heads: heads, size: setting.size)
            #expect(map.rows == expected.count && map.columns == expected[0].count)
            // One rounding to float32 at the end: within half an ulp of values below 3.
            #expect(maxAbsDifference(map, expected) <= 2.4e-7, "\(fusion) \(setting) masked \(masked)")
        }
    }

    @Test("the same bits whatever the number of workers and the reader's blocks")
    func deterministic() throws {
        for fusion in [HeadFusion.mean, .head(1)] {
            var maps: [[UInt32]] = []
            for (workers, rows) in [(1, 11), (3, 1), (2, 3), (3, 4), (1, 2)] {
                let source = BlockedSource(masked: false, rowsPerBlock: rows)
                let map = try PooledMap.ofLayer(
                    source, layer: 0, fusion: fusion, pooling: Pooling(size: 4), workers: workers)
                maps.append(map.values.map(\.bitPattern))
            }
            #expect(maps.allSatisfy { $0 == maps[0] }, "\(fusion)")
        }
    }

    @Test("pooling one head's map equals that head streamed, bit for bit")
    func poolMatchesStream() throws {
        let source = BlockedSource(masked: true, rowsPerBlock: 3)
        let whole = try HeadFusion.head(1).fuse(try source.layer(0))
        let pooled = PooledMap.pool(whole, Pooling(size: 4))
        let streamed = try PooledMap.ofLayer(source, layer: 0, fusion: .head(1), pooling: Pooling(size: 4), workers: 3)
        #expect(pooled.values.map(\.bitPattern) == streamed.values.map(\.bitPattern))
    }

    @Test("max and min over heads are not streamed (each cell needs every head at once)")
    func extremesRefused() {
        let source = BlockedSource(masked: false, rowsPerBlock: 2)
        for fusion in [HeadFusion.max, .min] {
            #expect(throws: AnalysisError.self) {
                try PooledMap.ofLayer(source, layer: 0, fusion: fusion, pooling: Pooling(size: 2))
            }
        }
    }

    @Test(
        "the default pooling: none up to 2048 positions a side, else at most 2048 cells a side",
        arguments: [(2048, 2048, 1), (2049, 2049, 2), (32768, 32768, 16), (100, 5000, 3), (4097, 10, 3)])
    func automatic(queries: Int, keys: Int, size: Int) {
        let pooling = Pooling.automatic(queries: queries, keys: keys)
        #expect(pooling.size == size)
        #expect(pooling.cells(Swift.max(queries, keys)) <= 2048)
    }
}
