import Testing
import AttnCore
@testable import AttnAnalysis

/// A source that hands out row blocks the awkward way: each head's rows cut at different places and given to
/// different workers, in an order where a block may mix rows a worker has seen with rows it has not.
private final class SplittingSource: AttentionSource, @unchecked Sendable {
    let file = "splitting", layerCount = 2, headCount = 3, queryCount = 7, keyCount = 5
    let origin = AttentionOrigin.stored
    let tokens: [String]? = nil
    var layers: [[Float]]
    /// Per head, the row cuts and the worker of each block (visited in this order, one thread).
    let plan: [[(rows: Range<Int>, worker: Int)]] = [
        [(0..<3, 0), (3..<7, 1)],
        [(0..<5, 1), (5..<7, 0)],
        [(2..<4, 0), (0..<2, 1), (4..<7, 1)]
    ]

    init() {
        var generator = SplitMix(seed: 42)
        layers = (0..<2).map { _ in (0..<(3 * 7 * 5)).map { _ in Float(generator.unit()) } }
    }

    func layer(_ index: Int) throws -> LayerAttention {
        LayerAttention(heads: headCount, queries: queryCount, keys: keyCount, values: layers[index])
    }

    func visitBlocks(layer index: Int, heads: Range<Int>, workers: Int, rowStatistics: Bool, _ body: RowBlockVisitor)
        throws
    {
        let values = layers[index]
        for h in heads {
            for (rows, worker) in plan[h] {
                let start = (h * queryCount + rows.lowerBound) * keyCount
                try values.withUnsafeBufferPointer { v in
                    try body(
                        RowBlock(worker: worker % workers, head: h, rows: rows),
                        UnsafeBufferPointer(rebasing: v[start..<(start + rows.count * keyCount)]))
                }
            }
        }
    }
}

/// A small deterministic generator (SplitMix64), so that the test needs no seeded system generator.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func unit() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }
}

@Suite("Head fusion over blocks split across workers")
struct FusionSplitTests {
    /// The reference, from the whole layer: mean in Double, max and min of the Float values.
    private func reference(_ values: [Float], fusion: HeadFusion) -> [Double] {
        let size = 7 * 5
        return (0..<size).map { i in
            let column = (0..<3).map { Double(values[$0 * size + i]) }
            switch fusion {
            case .mean: return column.reduce(0, +) / 3
            case .max: return column.max()!
            case .min: return column.min()!
            case .head(let h): return column[h]
            }
        }
    }

    @Test(
        "mean, max, min and one head equal the whole-layer values, layer after layer, on 1, 2 and 3 workers",
        arguments: [HeadFusion.mean, .max, .min, .head(1)], [1, 2, 3])
    func split(fusion: HeadFusion, workers: Int) throws {
        let source = SplittingSource()
        let workspace = try HeadFusionWorkspace(fusion, source: source, workers: workers)
        for layer in [0, 1, 0] {  // reused buffers: a layer must not leak into the next
            try workspace.fuse(layer: layer)
            let expected = reference(source.layers[layer], fusion: fusion)
            for (got, want) in zip(workspace.fused, expected) {
                #expect(abs(got - want) <= 1e-15, "\(fusion) layer \(layer): \(got) vs \(want)")
            }
        }
    }

    @Test(
        "a -0.0 in every head fuses to +0.0 under mean and one head, as numpy's sum from a cleared buffer gives",
        arguments: [HeadFusion.mean, .head(2)])
    func negativeZero(fusion: HeadFusion) throws {
        let source = SplittingSource()
        let size = 7 * 5
        for h in 0..<3 { for i in [0, 17, 34] { source.layers[0][h * size + i] = -0.0 } }
        let workspace = try HeadFusionWorkspace(fusion, source: source, workers: 2)
        try workspace.fuse(layer: 0)
        for i in [0, 17, 34] {
            #expect(
                workspace.fused[i] == 0 && workspace.fused[i].sign == .plus,
                "\(fusion) element \(i): \(workspace.fused[i])")
        }
    }
}
