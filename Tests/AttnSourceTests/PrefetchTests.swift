import Testing
import Foundation
import AttnCore
@testable import AttnSource

/// A Q/K source that counts its reads per layer.
private final class CountingSource: QueryKeySource, @unchecked Sendable {
    let file = "counting", layerCount = 5, headCount = 1, positionCount = 3, headDim = 2
    let tokens: [String]? = nil
    private let lock = NSLock()
    private var counts = [Int](repeating: 0, count: 5)
    var reads: [Int] { lock.withLock { counts } }

    func layer(_ index: Int) throws -> LayerQueryKey {
        lock.withLock { counts[index] += 1 }
        if index == 3 { throw AnalysisError("layer 3 is unreadable") }
        let values = (0..<6).map { Float($0 + index) }
        return LayerQueryKey(heads: 1, positions: 3, dim: 2, queries: values, keys: values)
    }
}

@Suite("Q/K layers read ahead")
struct PrefetchTests {
    @Test("in order, each layer is read once (the next one ahead); an error reaches the caller for its own layer")
    func ascending() throws {
        let source = CountingSource()
        let reader = QueryKeyPrefetch(source)
        for l in 0..<3 {
            let (qk, next) = try reader.layer(l)
            #expect(qk.queries.first == Float(l) && next == l + 1)
            reader.readAhead(next)?()
        }
        #expect(throws: AnalysisError.self) { try reader.layer(3) }
        // Layer 3's read ahead failed; the failure is thrown for layer 3, and layer 4 is read when asked for.
        let (qk, next) = try reader.layer(4)
        #expect(qk.queries.first == 4 && next == nil)
        #expect(source.reads == [1, 1, 1, 1, 1])
    }

    @Test("whole layers in order (heads, verify): each read once, the next by a worker; the values unchanged")
    func wholeLayers() throws {
        let source = CountingSource()
        let attention = RecomputedAttention(source)
        for l in [0, 1, 2, 4] {
            let layer = try attention.layer(l)
            let qk = try CountingSource().layer(l)
            #expect(
                layer.values
                    == (try RecomputedAttention.attention(from: qk, scale: attention.scale, causal: false)).values)
        }
        #expect(source.reads == [1, 1, 1, 1, 1])  // layer 3 was read ahead (and failed) but never asked for
    }

    @Test("from the last layer down, or one layer alone, nothing is read that is not asked for")
    func otherOrders() throws {
        let source = CountingSource()
        let attention = RecomputedAttention(source)
        for l in [4, 2, 1] { _ = try attention.layer(l) }
        #expect(source.reads == [0, 1, 1, 0, 1])
        let single = CountingSource()
        _ = try RecomputedAttention(single).layer(2)
        #expect(single.reads == [0, 0, 1, 0, 0])
    }

    @Test(
        """
        visits in order read each layer once, the next by a worker, with the same values; an unreadable layer is \
        reported for itself
        """
    )
    func readByWorkers() throws {
        let source = CountingSource()
        let attention = RecomputedAttention(source)
        let reference = RecomputedAttention(CountingSource())
        for l in 0..<5 {
            if l == 3 {
                #expect(throws: AnalysisError.self) {
                    try attention.visitBlocks(layer: l, heads: 0..<1, workers: 2) { _, _ in }
                }
                continue
            }
            // One head and one read: two items, so each worker has one; only the head's worker calls the body.
            var seen: [Float] = []
            try attention.visitBlocks(layer: l, heads: 0..<1, workers: 2) { block, values in
                #expect(block.rows == 0..<3)
                seen = Array(values)
            }
            #expect(seen == (try reference.layer(l)).values)
        }
        #expect(source.reads == [1, 1, 1, 1, 1])
    }
}
